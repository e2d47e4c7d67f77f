"""What every lane is, and the one delivery loop they share.

A lane takes rows the dispatcher offers (:meth:`BaseLane.offer`), sends them within its own
limits, and records each row's final status through the bookkeeper, the only place a status is
recorded. The run drives every lane alike: :meth:`~BaseLane.start`, :meth:`~BaseLane.offer`,
:meth:`~BaseLane.close`, :meth:`~BaseLane.cancel`, and reads their ``requests``,
``http_statuses``, ``auth_failure``, ``breaker`` and :meth:`~BaseLane.limits_found`.

:meth:`BaseLane.deliver` sends one request for some rows until it is answered for good:

* a 429 or Gameball's 2001 is the account's pace, not the rows': no attempt is used up, the
  shared rate slows down, every request of the lane waits out a 429 (``Retry-After`` honoured,
  capped by ``wait_max``), and the rows fail only after ``throttled_max`` seconds of it;
* 5xx, 408 and a request that surely did not leave are retried with exponential backoff and
  jitter, up to ``RetryPolicy.attempts``;
* a request that may have been processed (a timeout, a lost connection) makes its rows
  ``unknown``; a 401/403 stops the run; another 4xx fails the rows (a lane may judge it first:
  the batch lane splits a job refused as a whole);
* the same failure on several first attempts in a row trips the breaker and stops the run, and
  the rows that streak failed are made retryable in the ledger (the run's fault, not theirs);
* when the run stops meanwhile, the rows get their status by the one rule of
  :meth:`Bookkeeper.stopped_early`.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Protocol

import httpx

from ..._clock import Clock
from ..._config import RateLimits, Settings, account_limits
from ..._vocabulary import Lane, Status, Verdict
from ..chunks import OutgoingRow
from ..dispatch import Dispatcher
from ..limiter import RateLimiter, Slot
from ..outcomes import Outcome, RepeatedFailures, classify_error, classify_response
from ..rate_control import AdaptiveRate
from ..timeline import Timeline

__all__ = ["BaseLane"]

#: Seconds an answer may take before the progress bar says the run waits for it.
_SLOW_ANSWER = 2.0

#: What a lane sends: one request for its rows; returns the answer or raises httpx's errors.
Post = Callable[[], Awaitable[httpx.Response]]


class Book(Protocol):
    """Where a lane records its rows' fate: the run's
    :class:`~gb_backfill._engine.bookkeeping.Bookkeeper`, or the preview's book of quotes."""

    stopped: asyncio.Event
    retrying: int

    def halt(self, error: BaseException | None = None) -> None: ...

    async def pause(self, seconds: float) -> None: ...

    def begin(self, rows: Sequence[OutgoingRow]) -> None: ...

    def retry_later(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None: ...

    def record(
        self,
        rows: Sequence[OutgoingRow],
        status: Status,
        outcome: Outcome | None,
        *,
        retryable: bool = False,
    ) -> None: ...

    def stopped_early(
        self, rows: Sequence[OutgoingRow], error: BaseException | None = None
    ) -> None: ...

    def reconsider(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None: ...


class BaseLane:
    """One kind of endpoint: rows in, requests out within its limits. Strictly private."""

    kind: Lane
    #: the keyword that sets this lane's limits (``limits``, ``batch_limits``)
    option: str
    #: requests that change nothing (a quote): one that may have been processed is retried
    idempotent = False

    def __init__(
        self,
        *,
        settings: Settings,
        client: httpx.AsyncClient,
        book: Book,
        dispatcher: Dispatcher,
        limits: RateLimits,
        clock: Clock,
        timeline: Timeline,
        quiet_for: float | None = None,
    ) -> None:
        """``quiet_for``: the seconds since a run before this one last sent, as the run's
        ledger knows (``inf``: never); None without a ledger."""
        self.settings = settings
        self.client = client
        self.book = book
        self.dispatcher = dispatcher
        self.clock = clock
        self.timeline = timeline
        self.quiet_for = quiet_for
        earlier = None if quiet_for is None else clock() - quiet_for
        self.adaptive = AdaptiveRate(limits, earlier_sent=earlier)
        # Each request holds its place in the long window until one window after its answer:
        # Gameball counts its arrival, which may come any time before that answer.
        self.limiter = RateLimiter(limits, adaptive=self.adaptive, until_answered=True, clock=clock)
        self.random = random.Random()
        self.http_statuses: Counter[int] = Counter()
        self.requests = 0
        self._unanswered: dict[int, float] = {}  # requests posted, by when, until answered
        #: rows backing off before their next try: when each wait ends, and its rows
        self._backing_off: dict[int, tuple[float, int]] = {}
        self.auth_failure: Outcome | None = None
        self.breaker = RepeatedFailures()
        self._streak: list[tuple[Sequence[OutgoingRow], Outcome]] = []
        self.headers = settings.api_keys.headers()

    # --- the interface the run drives --------------------------------------------------------

    def start(self) -> None:
        """Start the lane's tasks (inside the run's loop)."""
        raise NotImplementedError

    def offer(self, row: OutgoingRow, *, priority: int = 0) -> None:
        """Take ``row``; its status is recorded and the dispatcher told when it is final."""
        raise NotImplementedError

    async def close(self) -> None:
        """Let in-flight requests finish (bounded once the run stopped), then record every row
        still waiting by the stop rule."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Cancel the lane's tasks (after :meth:`close`, or when the run is torn down)."""
        raise NotImplementedError

    def tasks(self) -> list[asyncio.Task[None]]:
        """The lane's running tasks."""
        return []

    def stop_queued(self) -> None:
        """Record every row still queued by the stop rule."""

    async def abandon(self) -> None:
        """After :meth:`cancel` (a second stop cut the wait short): let the cancelled tasks
        record their rows, then record the rows still queued, by the stop rule."""
        await asyncio.gather(*self.tasks(), return_exceptions=True)
        self.stop_queued()

    def holdup(self) -> str | None:
        """Why the lane sends nothing now, and for how long (for the progress bar); None while
        it can send, or has nothing to send."""
        if said := self.limiter.holdup():
            return said
        if self._unanswered:
            oldest = self.clock() - min(self._unanswered.values())
            if oldest >= _SLOW_ANSWER:
                count = len(self._unanswered)
                answers = "an answer" if count == 1 else f"{count:,} answers"
                return f"waiting for {answers} from Gameball: {oldest:,.0f} s so far"
        if self._backing_off:
            # Rows refused in a way that is retried wait out their backoff (and keep their
            # customers' later rows waiting, in order): the bar says so, not nothing.
            soonest = min(until for until, _ in self._backing_off.values())
            rows = sum(count for _, count in self._backing_off.values())
            left = max(math.ceil(soonest - self.clock()), 1)
            return f"retrying {rows:,} row{'' if rows == 1 else 's'}: the next try in {left:,} s"
        return None

    def limits_found(self) -> RateLimits | None:
        """The limits Gameball kept this lane to, when lower than its configured ones: as the
        account's limits, which the same ``reserve=`` shares out the same way."""
        found = self.adaptive.found(self.clock())
        return None if found is None else account_limits(found, self.settings.reserve)

    # --- recording -----------------------------------------------------------------------------

    def finish(
        self,
        rows: Sequence[OutgoingRow],
        status: Status,
        outcome: Outcome | None,
        *,
        retryable: bool = False,
    ) -> None:
        """Record ``rows``' final status, and let their customers' next rows go."""
        self._no_longer_due(rows)
        self.book.record(rows, status, outcome, retryable=retryable)
        self.dispatcher.done_many(rows)

    def stop_rows(self, rows: Sequence[OutgoingRow], error: BaseException | None = None) -> None:
        """Record the rows of ``rows`` not yet recorded by the stop rule."""
        pending = [row for row in rows if not row.recorded]
        self._no_longer_due(pending)
        self.book.stopped_early(pending, error)
        self.dispatcher.done_many(pending)

    def _no_longer_due(self, rows: Sequence[OutgoingRow]) -> None:
        """``rows`` are retried now, or ended: no longer counted as retrying."""
        for row in rows:
            if row.retry_due:
                row.retry_due = False
                self.book.retrying -= 1

    # --- hooks a lane may override -----------------------------------------------------------

    async def _admit(self) -> None:
        """Wait until one more request may be in flight (before taking a turn of the limits)."""

    def _release(self, took: float | None) -> None:
        """A request admitted by :meth:`_admit` is over; ``took`` its round trip, if answered."""

    def classify(self, response: httpx.Response) -> Outcome:
        """What an answer means for its rows (see :mod:`gb_backfill._engine.outcomes`)."""
        return classify_response(response)

    async def refused(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None:
        """Gameball refused the request for good (a 4xx): by default the rows failed."""
        self.finish(rows, Status.FAILED, outcome)

    # --- the delivery loop ---------------------------------------------------------------------

    async def deliver(
        self,
        rows: Sequence[OutgoingRow],
        post: Post,
        *,
        slot: Slot | None = None,
        part: bool = False,
    ) -> httpx.Response | None:
        """Send ``rows`` in one request until it is answered for good.

        Returns the answer when it is final without a failure (a 2xx, or the preview's
        "customer not found": :attr:`Verdict.answered`); otherwise records the rows and returns
        None.
        ``slot``: the first request's place in the limits, taken by the caller.
        ``part``: the rows are part of a request refused as a whole; their refusals do not
        count towards the breaker.
        """
        tries, throttled_since = 0, None
        while True:
            await self._admit()
            if slot is None and (slot := await self.limiter.acquire(self.book.stopped)) is None:
                self._release(None)
                self.stop_rows(rows)
                return None
            response, outcome = await self._attempt(rows, post, slot)
            slot = None
            tries += 1
            if outcome.verdict.answered:
                self.breaker.observe(outcome)  # an answer ends a streak
                return response
            if await self._final(rows, outcome, first=tries == 1 and not part):
                return None
            now = self.clock()
            if outcome.pacing:
                tries -= 1  # the account's pace, not the rows: no attempt is used up
                for row in rows:
                    row.attempts -= 1
                throttled_since = now if throttled_since is None else throttled_since
            else:
                throttled_since = None
            throttled_for = 0.0 if throttled_since is None else now - throttled_since
            if self._out_of_tries(rows, outcome, tries, throttled_for):
                return None
            if outcome.verdict is Verdict.RETRY:  # not an unknown retried on request
                self.book.retry_later(rows, outcome)
            await self._wait(rows, outcome, tries)

    async def _attempt(
        self, rows: Sequence[OutgoingRow], post: Post, slot: Slot
    ) -> tuple[httpx.Response | None, Outcome]:
        """One request in ``slot``: marked in the ledger first, then sent, classified and
        observed; its slot is held until one window after the answer."""
        self._no_longer_due(rows)
        self.book.begin(rows)  # a ledger that cannot mark them: nothing may be sent
        for row in rows:
            row.attempts += 1
            row.requests += 1
            row.in_flight = True
        self.requests += 1
        sent_at = slot.sent_at  # what the limits counted
        posted_at = self.clock()
        took: float | None = None
        response: httpx.Response | None = None
        self._unanswered[id(slot)] = posted_at
        try:
            response = await post()
            took = self.clock() - posted_at
            self.http_statuses[response.status_code] += 1
            outcome = self.classify(response)
        except httpx.HTTPError as error:
            outcome = classify_error(error)
        finally:
            self._unanswered.pop(id(slot), None)
            self._release(took)
        answered_at = self.clock()
        self.limiter.answered(slot, answered_at)
        self.timeline.answer(
            outcome.http_status, self.adaptive.rate(answered_at), lane=self.kind.value
        )
        if outcome.pacing:
            self.adaptive.throttled(sent_at, answered_at, retry_after=outcome.retry_after)
        elif outcome.http_status is not None:
            self.adaptive.accepted(sent_at, answered_at)
        for row in rows:
            row.in_flight = False
            row.last = outcome
        return response, outcome

    async def _final(self, rows: Sequence[OutgoingRow], outcome: Outcome, *, first: bool) -> bool:
        """Record ``rows`` when ``outcome`` is final for them; True if so."""
        if self._tripped(rows, outcome, counts=first):
            return True
        verdict = outcome.verdict
        if verdict is Verdict.UNKNOWN and (self.settings.retry_unknown or self.idempotent):
            return False
        if verdict is Verdict.AUTH:
            # Rows refused for the keys were never processed: a fixed re-run sends them.
            self.auth_failure = self.auth_failure or outcome
            self.book.halt()
            self.finish(rows, Status.FAILED, outcome, retryable=True)
        elif verdict is Verdict.UNKNOWN:
            self.finish(rows, Status.UNKNOWN, outcome)
        elif verdict is Verdict.FAILED:
            await self.refused(rows, outcome)
        return verdict is not Verdict.RETRY

    def _tripped(self, rows: Sequence[OutgoingRow], outcome: Outcome, *, counts: bool) -> bool:
        """Feed the breaker; True when it has tripped, having recorded ``rows``.

        Only first attempts count: one request failing its retries says nothing about the run,
        eight failing alike in a row do.
        """
        if not counts:
            return False
        if not self.breaker.observe(outcome):
            if self.breaker.count <= 1:
                self._streak.clear()
            if outcome.verdict is Verdict.FAILED:
                self._streak.append((rows, outcome))
            return False
        self.book.halt()
        status = Status.UNKNOWN if outcome.verdict is Verdict.UNKNOWN else Status.FAILED
        self.finish(rows, status, outcome, retryable=status is Status.FAILED)
        for earlier, failure in self._streak:
            # Failed by the run's configuration, not by the rows: let a fixed re-run send them.
            self.book.reconsider(earlier, failure)
        self._streak.clear()
        return True

    def _out_of_tries(
        self, rows: Sequence[OutgoingRow], outcome: Outcome, tries: int, throttled_for: float
    ) -> bool:
        """Fail ``rows`` (retryable) when retrying is over; True if so."""
        retry = self.settings.retry
        if outcome.pacing and throttled_for >= retry.throttled_max:
            why = f"rate-limited for {throttled_for:.1f} s (throttled_max)"
        elif not outcome.pacing and tries >= retry.attempts:
            why = f"gave up after {tries} attempts"
        else:
            return False
        self.finish(
            rows, Status.FAILED, replace(outcome, message=f"{why}; last error: {outcome.message}"),
            retryable=True,
        )  # fmt: skip
        return True

    async def _wait(self, rows: Sequence[OutgoingRow], outcome: Outcome, tries: int) -> None:
        """Back off before the next try; a 429 holds every request of the lane."""
        retry = self.settings.retry
        wait = retry.backoff(max(tries, 1), self.random.random())
        if outcome.pacing and outcome.retry_after is None:
            # No exponential backoff: the shared rate has slowed down already.
            wait = min(wait, retry.wait_initial + retry.wait_jitter)
        if outcome.retry_after is not None:
            wait = min(outcome.retry_after, retry.wait_max)
        if outcome.http_status == 429 and outcome.retry_after is not None:
            # Gameball said how long the account is over its limit: hold every request. (Any
            # 429 holds them anyway: the shared controller probes until there is room.)
            self.limiter.defer(wait)
        # Counted as retrying from now until the next request goes (after the backoff, and
        # after waiting for a place in the limits) or the row ends: the bar never loses them.
        for row in rows:
            if not row.retry_due:
                row.retry_due = True
                self.book.retrying += 1
        token = object()
        self._backing_off[id(token)] = (self.clock() + wait, len(rows))
        try:
            await self.book.pause(wait)
        finally:
            del self._backing_off[id(token)]

    async def _drain_tasks(self, tasks: Sequence[asyncio.Task[None]], grace: float | None) -> None:
        """Wait for ``tasks`` (at most ``grace`` seconds), then cancel the late ones."""
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
