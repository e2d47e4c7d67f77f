"""The quote lane: one request per sampled row to Gameball's reward preview, and its book.

``POST /api/v{version}/integrations/events/reward-preview`` takes the very body a live send
would carry and answers what that event would award the customer now, with no side effects; an
order is quoted by ``/orders/reward-preview``, its body without ``orderId`` and ``orderDate``,
whose answer (``customerFound``, ``totalPoints``: cashback and campaigns, ``cashback``,
``eventRewards``: its ``place_order`` event's quote) is read as an event's quote
(:func:`as_event_quote`), ``customerFound: false`` as the 404 below. It
is the events lane with another path, the preview's limits and two differences:

* a quote changes nothing, so a request that may have been processed (a timeout) is simply
  asked again;
* a 404 with Gameball's code 7000 is an answer, not a failure: the customer does not exist (a
  live send would create it). Any other 404 (a wrong path) is a failure, which trips the
  breaker like any failure repeated on every request;
* a 2xx answer is a quote only in the documented shape (an object with a number
  ``totalPoints`` and a list of ``events``, each an object with an ``eventName``): anything
  else (``{}``, ``{"success": true}``: a server that is not the reward preview) is a failure
  of that request, ``not_a_quote``, never a quote of 0 points.

Rows' fates go to a :class:`QuoteBook`, not to the run's bookkeeper: a preview writes no ledger
and no failures file.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ... import _gameball as gameball
from ..._clock import Clock
from ..._config import Settings
from ..._vocabulary import QuoteOutcome, Status, Verdict
from ..chunks import OutgoingRow
from ..dispatch import Dispatcher
from ..outcomes import Outcome, classify_response, error_details
from ..progress import Progress
from ..stopping import StopSwitch
from ..timeline import Timeline
from .events import EventsLane

__all__ = ["NOT_FOUND", "QuoteBook", "QuoteLane"]

#: A quote's outcome for a customer Gameball does not know.
NOT_FOUND = "customer_not_found"
#: The failure of a request answered 2xx with something that is not a quote.
NOT_A_QUOTE = "not_a_quote"


def quote_problem(answer: object) -> str | None:
    """Why ``answer`` (a 2xx answer's JSON) is not a quote in the documented shape, or None."""
    if not isinstance(answer, dict):
        return "not a JSON object"
    points = answer.get("totalPoints")
    if not isinstance(points, int | float) or isinstance(points, bool):
        return "no number totalPoints"
    events = answer.get("events")
    if not isinstance(events, list):
        return "no list of events"
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("eventName"), str):
            return "an event without its eventName"
        if not isinstance(event.get("campaigns", []), list):
            return f"event {event['eventName']!r} has campaigns that are not a list"
    return None


def order_quote_problem(answer: object) -> str | None:
    """Why ``answer`` is not an order quote in the documented shape (``customerFound``,
    ``totalPoints``; ``eventRewards`` an event's quote or null), or None."""
    if not isinstance(answer, dict):
        return "not a JSON object"
    points = answer.get("totalPoints")
    if not isinstance(points, int | float) or isinstance(points, bool):
        return "no number totalPoints"
    if not isinstance(answer.get("customerFound"), bool):
        return "no customerFound"
    rewards = answer.get("eventRewards")
    if rewards is not None and quote_problem({"totalPoints": 0, "events": [rewards]}):
        return "eventRewards is not an event's quote"
    return None


def as_event_quote(answer: dict[str, Any]) -> dict[str, Any]:
    """An order quote in the shape of an event quote (its ``place_order`` rewards as the one
    event), with its ``cashback`` points and ``totalCoupons`` beside: what the forecast reads."""
    rewards = answer.get("eventRewards")
    cashback = answer.get("cashback")
    points = cashback.get("totalPoints") if isinstance(cashback, dict) else cashback
    return {
        "customerId": answer.get("customerId"),
        "totalPoints": answer["totalPoints"],
        "events": [rewards] if isinstance(rewards, dict) else [],
        "cashback": points if isinstance(points, int | float) else 0,
        "totalCoupons": answer.get("totalCoupons", 0),
    }


def _is_order_quote(response: httpx.Response) -> bool:
    try:
        path = response.request.url.path
    except RuntimeError:  # a response made without a request
        return False
    return path.endswith(gameball.ORDERS_PREVIEW_PATH.rsplit("}", 1)[-1])


def classify_quote(response: httpx.Response) -> Outcome:
    """What the reward preview's answer means for its row: a quote (``SENT``), the customer not
    found (``NOT_FOUND``: an answer, not a failure), or as any answer (see
    :func:`~gb_backfill._engine.outcomes.classify_response`); a 2xx that is not a quote fails."""
    if response.status_code == 404:
        code, message = error_details(response)
        if code == gameball.CUSTOMER_NOT_FOUND:
            return Outcome(Verdict.NOT_FOUND, NOT_FOUND, message, 404)
    outcome = classify_response(response)
    if outcome.verdict is Verdict.SENT:
        order = _is_order_quote(response)
        try:
            answer = response.json()
            problem = (order_quote_problem if order else quote_problem)(answer)
        except ValueError:
            problem = "not JSON"
        if order and problem is None and not answer["customerFound"]:
            # An order's customer Gameball does not know: answered 200, but like the 404.
            return Outcome(Verdict.NOT_FOUND, NOT_FOUND, "the customer does not exist", 200)
        if problem is not None:
            message = (
                f"answered {response.status_code} with something that is not a quote: {problem}"
            )
            return Outcome(Verdict.FAILED, NOT_A_QUOTE, message, response.status_code)
    return outcome


@dataclass(slots=True)
class QuoteBook(StopSwitch):
    """What the quote lane learned of each sampled row (by ``row.local``). Strictly private.

    ``done`` is set once ``expected`` rows have their final status."""

    progress: Progress
    expected: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    retrying: int = 0
    recorded: int = 0
    counts: Counter[str] = field(
        default_factory=lambda: Counter({QuoteOutcome.QUOTED: 0, QuoteOutcome.FAILED: 0})
    )
    #: row -> Gameball's 200 answer
    answers: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: row -> the outcome of a row with no answer: not found, failed, or None (not asked)
    outcomes: dict[int, Outcome | None] = field(default_factory=dict)

    def begin(self, rows: Sequence[OutgoingRow]) -> None:
        """Nothing to mark: a quote awards nothing, so there is no ledger."""

    def retry_later(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None:
        """Nothing to unmark: there is no ledger."""

    def record(
        self,
        rows: Sequence[OutgoingRow],
        status: Status,
        outcome: Outcome | None,
        *,
        retryable: bool = False,
    ) -> None:
        for row in rows:
            row.recorded = True
            if row.local in self.answers:
                self.counts[QuoteOutcome.QUOTED] += 1
                continue
            self.outcomes[row.local] = outcome
            if outcome is None:
                self.counts[QuoteOutcome.NOT_ASKED] += 1
            elif outcome.verdict is Verdict.NOT_FOUND:  # answered: counted with the quotes
                self.counts[QuoteOutcome.QUOTED] += 1
            else:
                self.counts[QuoteOutcome.FAILED] += 1
        self.recorded += len(rows)
        self.progress.advance(len(rows), self.counts, self.retrying)
        if self.recorded >= self.expected:
            self.done.set()

    def stopped_early(
        self, rows: Sequence[OutgoingRow], error: BaseException | None = None
    ) -> None:
        self.record([row for row in rows if not row.recorded], Status.ABORTED, None)

    def reconsider(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None:
        """Nothing to reconsider: a quote is never final in a ledger."""


class QuoteLane(EventsLane):
    """Asks Gameball's reward preview for each row offered. Strictly private."""

    idempotent = True

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        book: QuoteBook,
        dispatcher: Dispatcher,
        *,
        clock: Clock,
        timeline: Timeline,
    ) -> None:
        super().__init__(
            settings, client, book, dispatcher, clock=clock, timeline=timeline,
            path=gameball.PREVIEW_PATH,
        )  # fmt: skip
        self.quotes = book
        #: the rows (``row.local``) that are orders: quoted by the orders' reward preview
        self.orders: set[int] = set()
        base = settings.base_url
        self.order_urls = {
            v: base + gameball.ORDERS_PREVIEW_PATH.format(version=v) for v in gameball.API_VERSIONS
        }

    async def _post(self, row: OutgoingRow) -> httpx.Response:
        if row.local not in self.orders:
            return await super()._post(row)
        # The order preview takes the order without its orderId and orderDate.
        order = json.loads(row.body)
        body = {k: v for k, v in order.items() if k not in ("orderId", "orderDate")}
        url = self.order_urls[self.settings.api_version]
        return await self.client.post(url, json=body, headers=self.headers)

    def classify(self, response: httpx.Response) -> Outcome:
        return classify_quote(response)

    def delivered(self, row: OutgoingRow, response: httpx.Response) -> None:
        if response.status_code == 404 or (row.last and row.last.verdict is Verdict.NOT_FOUND):
            outcome = Outcome(Verdict.NOT_FOUND, NOT_FOUND, "the customer does not exist", 404)
            self.finish([row], Status.SENT, outcome)
            return
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and row.local in self.orders:
            answer = as_event_quote(answer)
        if isinstance(answer, dict):
            self.quotes.answers[row.local] = answer
            self.finish([row], Status.SENT, None)
        else:
            why = Outcome(Verdict.FAILED, "unreadable_quote", "the quote is not a JSON object", 200)
            self.finish([row], Status.FAILED, why)
