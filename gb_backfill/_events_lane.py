"""The events lane: one request per row to ``/integrations/events``, paced and retried.

The dispatcher (:mod:`._dispatch`) offers a customer's next row only when the customer has
nothing in flight, so at most one request per customer is out and a customer's rows go in
input order, retries included. ``concurrency`` workers take offered rows from a ready queue and
send through one rate limiter that keeps both of Gameball's windows.
Each answer is classified by :mod:`._outcomes`; the final status goes to the
:class:`~._bookkeeping.Bookkeeper`, which is the only place that records it.

The lane stops the run early when going on cannot succeed: on 401/403 (the keys), and when the
same failure ends several attempts in a row with no success between (a wrong base URL, nothing
listening, a server that is down). Rows failed by such a streak stay retryable in the ledger,
so the fixed re-run sends them. Any unexpected error stops the run too, and its row still gets
a status: ``unknown`` if its request may have gone out, otherwise ``aborted``.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx

from ._bookkeeping import Bookkeeper, Job
from ._dispatch import Dispatcher
from ._limiter import RateLimiter
from ._outcomes import (
    Outcome,
    RepeatedFailures,
    SendErrorCode,
    Verdict,
    classify_error,
    classify_response,
)
from ._rate_control import AdaptiveRate
from ._report import Status
from ._timeline import Timeline

if TYPE_CHECKING:
    from ._sender import Settings

__all__: list[str] = []

_EVENTS_PATH = "/api/v{version}/integrations/events"
_FINAL_STATUS = {
    Verdict.SENT: Status.SENT,
    Verdict.FAILED: Status.FAILED,
    Verdict.UNKNOWN: Status.UNKNOWN,
    Verdict.AUTH: Status.FAILED,
}


class EventsLane:
    """Delivers jobs one request each. Strictly private: driven by the sender."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        book: Bookkeeper,
        dispatcher: Dispatcher,
    ) -> None:
        self.settings = settings
        self.client = client
        self.book = book
        self.dispatcher = dispatcher
        limits = settings.limits
        self.adaptive = AdaptiveRate(limits)
        self.limiter = RateLimiter(limits, adaptive=self.adaptive)
        self.random = random.Random()
        self.ready: asyncio.Queue[Job | None] = asyncio.Queue()
        self.http_statuses: Counter[int] = Counter()
        self.requests = 0
        self.auth_failure: Outcome | None = None
        self.breaker = RepeatedFailures()
        self._streak: list[tuple[Job, Outcome]] = []
        self.in_flight = 0
        self.round_trip = 0.0  # seconds, smoothed over recent answers
        self._freed = asyncio.Event()
        self.timeline = Timeline()  # the sender shares one between the lanes
        self._workers: list[asyncio.Task[None]] = []
        base = settings.base_url
        self.urls = {v: base + _EVENTS_PATH.format(version=v) for v in ("4.0", "4.1")}
        self.headers = settings.keys.headers()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker()) for _ in range(self.settings.concurrency)
        ]

    def offer(self, job: Job, *, priority: int = 0) -> None:
        self.ready.put_nowait(job)

    async def close(self) -> None:
        """Let in-flight requests finish (for at most the timeout if the run stopped), then end
        every row still waiting ``aborted``."""
        for _ in self._workers:
            self.ready.put_nowait(None)
        grace = self.settings.timeout + 1.0 if self.book.stopped.is_set() else None
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        while not self.ready.empty():
            job = self.ready.get_nowait()
            if job is not None:
                self.book.record(job, Status.ABORTED, None)

    def cancel(self) -> None:
        for task in self._workers:
            task.cancel()

    # --- delivery --------------------------------------------------------------------------

    def pace(self) -> str | None:
        """The pace Gameball's answers have set, for the progress bar; None while unthrottled."""
        now = self.limiter.clock()
        rate = self.adaptive.rate(now)
        if rate is None:
            return None
        window = self.adaptive.learned_window
        quota = f", {window:,}/{self.adaptive.window:g}s" if window else ""
        return f"{rate:.0f}/s{quota}"

    def allowed_in_flight(self) -> int:
        """Requests in flight the pace needs (Little's law: rate times round trip), with room
        for jitter, within 2 and ``concurrency``. With no rate limit, ``concurrency``."""
        ceiling = self.settings.concurrency
        rate = self.adaptive.rate(self.limiter.clock()) or self.settings.limits.per_second
        if not rate or not self.round_trip:
            return ceiling
        return max(2, min(ceiling, math.ceil(rate * self.round_trip * 1.5) + 1))

    async def _enter(self) -> None:
        while self.in_flight >= self.allowed_in_flight():
            self._freed.clear()
            await self._freed.wait()
        self.in_flight += 1

    def _leave(self, took: float | None) -> None:
        self.in_flight -= 1
        if took is not None:
            self.round_trip = 0.8 * self.round_trip + 0.2 * took if self.round_trip else took
        self._freed.set()

    async def _worker(self) -> None:
        while True:
            job = await self.ready.get()
            if job is None:
                return
            try:
                if self.book.stopped.is_set():
                    self.book.record(job, Status.ABORTED, None)
                else:
                    await self._deliver(job)
            except Exception as error:  # any surprise stops the run; the row keeps a status
                self._surprise(job, error)
            self.dispatcher.done(job)

    def _surprise(self, job: Job, error: Exception) -> None:
        self.book.halt(error)
        if job.recorded:
            return
        if job.in_flight:
            message = (
                f"{type(error).__name__} while its request was in flight; it may have been sent"
            )
            self.book.record(
                job, Status.UNKNOWN, Outcome(Verdict.UNKNOWN, SendErrorCode.ERROR, message)
            )
        else:
            self.book.record(job, Status.ABORTED, None)

    async def _deliver(self, job: Job) -> None:
        """Send one row, retrying what is safe to retry, and record its final status."""
        settings = self.settings
        version = "4.1" if job.token else settings.api_version
        headers = self.headers if not job.token else {**self.headers, "X-GB-TOKEN": job.token}
        last: Outcome | None = None
        throttled_since: float | None = None  # the first 429 of the current streak
        while True:
            await self._enter()
            if not await self.limiter.acquire(self.book.stopped):
                self._leave(None)
                if last is None:
                    self.book.record(job, Status.ABORTED, None)
                else:
                    stopped = f"the run stopped before the next retry; last error: {last.message}"
                    outcome = replace(last, message=stopped)
                    self.book.record(job, Status.FAILED, outcome, retryable=True)
                return
            self.book.begin(job)
            job.attempts += 1
            self.requests += 1
            job.in_flight = True
            sent_at = self.limiter.clock()
            took: float | None = None
            try:
                response = await self.client.post(
                    self.urls[version], content=job.body, headers=headers
                )
                took = self.limiter.clock() - sent_at
                self.http_statuses[response.status_code] += 1
                last = classify_response(response)
            except httpx.HTTPError as error:
                last = classify_error(error)
            except asyncio.CancelledError:
                message = "the run was interrupted while this request was in flight"
                outcome = Outcome(Verdict.UNKNOWN, SendErrorCode.INTERRUPTED, message)
                self.book.record(job, Status.UNKNOWN, outcome)
                raise
            finally:
                self._leave(took)
            job.in_flight = False
            answered_at = self.limiter.clock()
            self.timeline.answer(last.http_status, self.adaptive.rate(answered_at))
            if last.pacing:
                self.adaptive.throttled(sent_at, answered_at)
            elif last.http_status is not None:
                self.adaptive.accepted(sent_at, answered_at)
            if self._watch(job, last):
                return
            verdict = last.verdict
            if verdict is Verdict.UNKNOWN and settings.retry_unknown:
                verdict = Verdict.RETRY
            if verdict is Verdict.AUTH:
                self.auth_failure = self.auth_failure or last
                self.book.halt()
            if verdict is not Verdict.RETRY:
                # Rows refused for the keys were never processed: a fixed re-run sends them.
                retryable = verdict is Verdict.AUTH
                self.book.record(job, _FINAL_STATUS[verdict], last, retryable=retryable)
                return
            if last.pacing:
                # The account's limit, not the row: the pace adapts, and no attempt is used up.
                job.attempts -= 1
                if throttled_since is None:
                    throttled_since = answered_at
                throttled_for = answered_at - throttled_since
                if throttled_for >= settings.retry.throttled_max:
                    message = (
                        f"rate-limited for {throttled_for:.1f} s (throttled_max); "
                        f"last error: {last.message}"
                    )
                    outcome = replace(last, message=message)
                    self.book.record(job, Status.FAILED, outcome, retryable=True)
                    return
            else:
                throttled_since = None
                if job.attempts >= settings.retry.attempts:
                    message = f"gave up after {job.attempts} attempts; last error: {last.message}"
                    outcome = replace(last, message=message)
                    self.book.record(job, Status.FAILED, outcome, retryable=True)
                    return
            wait = settings.retry.backoff(max(job.attempts, 1), self.random.random())
            if last.pacing and last.retry_after is None:
                # No exponential backoff: the shared rate has slowed down already.
                wait = min(wait, settings.retry.wait_initial + settings.retry.wait_jitter)
            if last.retry_after is not None:
                wait = min(last.retry_after, settings.retry.wait_max)
            if last.http_status == 429:
                # A 429 means the account is over its limit: hold every worker, not just this one.
                self.limiter.defer(wait)
            self.book.retrying += 1
            await self.book.pause(wait)
            self.book.retrying -= 1

    def _watch(self, job: Job, outcome: Outcome) -> bool:
        """Feed the breaker; True when it has tripped, having recorded ``job``.

        Only a row's first attempt counts towards a trip: one row failing its retries says
        nothing about the run, eight rows failing alike in a row do.
        """
        if job.attempts > 1 and outcome.verdict is not Verdict.SENT:
            return False
        if not self.breaker.observe(outcome):
            if self.breaker.count <= 1:
                self._streak.clear()
            if outcome.verdict is Verdict.FAILED:
                self._streak.append((job, outcome))
            return False
        self.book.halt()
        status = Status.UNKNOWN if outcome.verdict is Verdict.UNKNOWN else Status.FAILED
        self.book.record(job, status, outcome, retryable=status is Status.FAILED)
        for earlier, failure in self._streak:
            # Failed by the run's configuration, not by the row: let a fixed re-run send it.
            self.book.reconsider(earlier, failure)
        self._streak.clear()
        return True
