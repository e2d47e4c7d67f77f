"""The orders lanes: Gameball orders, one per request or in jobs, idempotent by ``orderId``.

Gameball refuses an ``orderId`` it already has ("Never reuse an orderId, duplicates are
rejected"), so an order, unlike an event, can be sent again without being counted twice:

* a refusal that says the order exists (422 with 9003 or 9004, or a message saying so; see
  :func:`~gb_backfill._gameball.is_duplicate_order`) is ``sent``, with the note
  ``already_there``, never a failure;
* a lost answer (a timeout, a dropped connection) is retried like a 5xx, up to
  ``RetryPolicy.attempts`` tries: the retry either records the order or is refused as already
  there. An order whose tries all go unanswered is ``failed`` and retryable, not ``unknown``: a
  re-run sends it again, safely. In a job, an order the job does not confirm (unlisted, the
  job failed as a whole, not ended in time, forgotten) goes into a later job the same way.

:class:`OrdersLane` is the events lane's loop (one order per customer in flight, each customer's
rows in input order) to ``/integrations/orders`` at the Orders limits (30/s, 360 per 30 s).
:class:`BatchOrdersLane` is the batch lane to ``/integrations/batch/orders``, whose jobs share
the batch limits with the jobs of events (Gameball documents no limit of its own for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import httpx

from ... import _gameball as gameball
from ..._clock import Clock
from ..._config import Settings
from ..._vocabulary import Lane, Status, Verdict
from ..bookkeeping import Bookkeeper
from ..chunks import OutgoingRow
from ..dispatch import Dispatcher
from ..outcomes import SENT, Outcome, already_there, classify_order
from ..timeline import Timeline
from .base import Book
from .batch import _SPLIT_ON, BatchLane, _ReadyRows
from .events import EventsLane
from .jobs import JobRead, job_verdicts

__all__ = ["BatchOrdersLane", "OrdersLane", "orders_lanes"]


class OrdersLane(EventsLane):
    """Delivers orders one request each. Strictly private: driven by the run."""

    kind = Lane.ORDERS
    option = "order_limits"
    #: an order sent twice is refused as already there: a lost answer is retried
    idempotent = True

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        book: Book,
        dispatcher: Dispatcher,
        *,
        clock: Clock,
        timeline: Timeline,
        quiet_for: float | None = None,
    ) -> None:
        super().__init__(
            settings, client, book, dispatcher, clock=clock, timeline=timeline,
            limits=settings.order_limits, path=gameball.ORDERS_PATH, quiet_for=quiet_for,
        )  # fmt: skip

    def classify(self, response: httpx.Response) -> Outcome:
        return classify_order(response)

    def delivered(self, row: OutgoingRow, response: httpx.Response) -> None:
        # Accepted, or refused as already there: the note says which.
        self.finish([row], Status.SENT, row.last or SENT)


class BatchOrdersLane(BatchLane):
    """Delivers orders in jobs. Strictly private: driven by the run."""

    kind = Lane.BATCH_ORDERS
    option = "batch_limits"

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        book: Bookkeeper,
        dispatcher: Dispatcher,
        *,
        clock: Clock,
        timeline: Timeline,
        quiet_for: float | None = None,
        shares: BatchLane | None = None,
    ) -> None:
        """``shares``: the batch lane of events, whose limits (and status reads) job posts of
        orders take their turns from."""
        super().__init__(
            settings, client, book, dispatcher, clock=clock, timeline=timeline,
            quiet_for=quiet_for,
        )  # fmt: skip
        self.create_url = settings.base_url + gameball.ORDERS_BATCH_CREATE_PATH
        if shares is not None:
            self.adaptive, self.limiter = shares.adaptive, shares.limiter
            self.poller = shares.poller

    async def refused(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None:
        """A job refused as a whole because an order in it exists: halves find which, and an
        order alone refused so is already there."""
        if outcome.http_status not in _SPLIT_ON and _duplicate(outcome):
            if len(rows) == 1:
                there = already_there(outcome, _code_of(outcome), outcome.message or "")
                self.finish(rows, Status.SENT, there)
                return
            middle = len(rows) // 2
            for half in (rows[:middle], rows[middle:]):
                await self._send_job(half, part=True)
            return
        await super().refused(rows, outcome)

    def _settle(self, rows: Sequence[OutgoingRow], job_id: int, read: JobRead) -> None:
        """Record a job's orders; those it did not confirm go into a later job while they have
        tries left, else fail retryable (sent again, they are refused if already there)."""
        self.settled.set()
        attempts = self.settings.retry.attempts
        again = not self.book.stopped.is_set()
        for row in rows:
            row.in_flight = False
        customers = [row.customer for row in rows]
        for verdict, positions in job_verdicts(job_id, customers, read, self.settings.job_timeout):
            alike = [rows[i] for i in positions]
            unconfirmed = verdict.status is Status.UNKNOWN
            if (verdict.transient or unconfirmed) and again:
                for row in alike:
                    if row.attempts < attempts:
                        self.offer(row, priority=_ReadyRows.LEVELS)
                alike = [row for row in alike if row.attempts >= attempts]
            if unconfirmed:
                failed = replace(verdict.outcome, verdict=Verdict.FAILED)
                self.finish(alike, Status.FAILED, failed, retryable=True)
            else:
                self.finish(alike, verdict.status, verdict.outcome, retryable=verdict.transient)


def _duplicate(outcome: Outcome) -> bool:
    """Whether a refused job's answer says an order in it exists."""
    message = outcome.message or ""
    return gameball.is_duplicate_order(outcome.http_status, _code_of(outcome), message)


def _code_of(outcome: Outcome) -> int | None:
    """Gameball's code, as :func:`classify_response` wrote it into the message."""
    message = outcome.message or ""
    marker = "(Gameball code "
    if marker not in message:
        return None
    digits = message.rsplit(marker, 1)[1].rstrip(")")
    return int(digits) if digits.isdigit() else None


def orders_lanes(
    settings: Settings,
    client: httpx.AsyncClient,
    book: Bookkeeper,
    dispatcher: Dispatcher,
    *,
    clock: Clock,
    timeline: Timeline,
    batch: BatchLane,
) -> tuple[OrdersLane, BatchOrdersLane]:
    """A run's two orders lanes; its batch lane of events, ``batch``, lends jobs of orders its
    limits."""
    orders = OrdersLane(settings, client, book, dispatcher, clock=clock, timeline=timeline,
                        quiet_for=batch.quiet_for)  # fmt: skip
    jobs = BatchOrdersLane(settings, client, book, dispatcher, clock=clock, timeline=timeline,
                           shares=batch)  # fmt: skip
    return orders, jobs
