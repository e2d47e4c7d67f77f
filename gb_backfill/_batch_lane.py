"""The batch lane: rows go to Gameball as asynchronous jobs of up to 1,000 events.

``POST /api/v4.0/integrations/batch/events`` takes ``{"body": [item, ...]}`` and answers a job
id; the job is polled, with backoff, until it ends. Gameball documents two status paths and two
body shapes: the tutorial's ``GET /api/v4/integrations/batch/{jobId}`` (``status``,
``response.successful``/``response.failed``) and the OpenAPI's
``GET /api/v4.0/integrations/batches/{id}/status`` (``status``, ``results``/``errors``). The lane
tries the first, falls back to the second on 404, and reads either shape; a failure's reason is
taken from ``error`` or ``message``.

Results name only the customer, so a job never holds two rows of one customer. Items listed as
successful are ``sent``; failed ones are ``failed`` with Gameball's reason, and a transient
reason (2001) is tried again in a later job; items in neither list once the job has ended, a
job that fails as a whole, and one not confirmed within ``job_timeout`` leave their rows
``unknown``, never silently ``sent``. Rows are marked in flight before their job is posted, and
the job id is recorded in the ledger, so a later run can ask how a job ended after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

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

MAX_ITEMS = 1000
_CREATE_PATH = "/api/v4.0/integrations/batch/events"
_STATUS_PATHS = (
    "/api/v4/integrations/batch/{job}",
    "/api/v4.0/integrations/batches/{job}/status",
)
_ENDED = frozenset({"completed", "failed", "stopped"})
_TRANSIENT = ("2001",)
_FILL_WAIT = 0.05  # seconds to let a job fill before it goes out part-full
_MAX_JOBS = 64  # jobs in flight at once
_POLL_MIN, _POLL_MAX = 0.05, 5.0


class JobDurations:
    """When to poll a job: learns how long jobs take to end, so most need a single read.

    Status reads have their own limits (100/s, 1,200 per 30 s), so polling early and often
    would both waste them and slow the run. The first read comes a little after the typical
    duration; a job not ended by then is read again with growing waits. Each ended job narrows
    its real duration to between the last read that found it running and the one that found
    it ended, and the midpoint updates the estimate: it cannot inflate itself the way timing
    from posting to the (delayed) read would.
    """

    def __init__(self) -> None:
        self.typical = 0.0  # seconds from posting to the end; 0 until a job has ended

    def first_wait(self) -> float:
        return max(_POLL_MIN, 1.1 * self.typical)

    def next_wait(self, reads: int) -> float:
        """The wait before the next read of a job found running by ``reads`` reads."""
        return min(max(_POLL_MIN, 0.2 * self.typical) * 1.5 ** (reads - 1), _POLL_MAX)

    def observe(self, running_at: float, ended_by: float) -> None:
        """A job was still running ``running_at`` seconds after posting (0: never read so) and
        had ended by ``ended_by``."""
        sample = (running_at + ended_by) / 2 if running_at else 0.5 * ended_by
        self.typical = 0.7 * self.typical + 0.3 * sample if self.typical else sample


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a status answer says of a job."""

    ended: bool
    failed_as_a_whole: bool
    successful: frozenset[str]
    failed: dict[str, str]


def _reason(entry: dict[str, Any]) -> str:
    return str(entry.get("error") or entry.get("message") or "failed (no reason given)")


def read_status(body: object) -> JobResult:
    """Read either documented status shape, leniently."""
    if not isinstance(body, dict):
        return JobResult(False, False, frozenset(), {})
    status = str(body.get("status", "")).lower()
    response = body.get("response")
    if isinstance(response, dict):  # the tutorial's shape
        good, bad = response.get("successful") or [], response.get("failed") or []
    else:  # the OpenAPI's shape
        good, bad = body.get("results") or [], body.get("errors") or []
    successful = frozenset(
        str(e["customerId"]) for e in good if isinstance(e, dict) and "customerId" in e
    )
    failed = {
        str(e["customerId"]): _reason(e) for e in bad if isinstance(e, dict) and "customerId" in e
    }
    return JobResult(status in _ENDED, status in ("failed", "stopped"), successful, failed)


class _ReadyRows:
    """Rows ready for a job, by priority (the customer's rows in all, capped): a job takes the
    busiest customers first, then the oldest rows."""

    _LEVELS = 64

    def __init__(self) -> None:
        self._levels = [deque[Job]() for _ in range(self._LEVELS)]
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, job: Job, priority: int) -> None:
        self._levels[min(max(priority, 0), self._LEVELS - 1)].append(job)
        self._count += 1

    def take(self, most: int) -> list[Job]:
        """Up to ``most`` rows, at most one per customer."""
        taken: list[Job] = []
        customers: set[str] = set()
        for level in reversed(self._levels):
            skipped: deque[Job] = deque()
            while level and len(taken) < most:
                job = level.popleft()
                if job.customer in customers:
                    skipped.append(job)
                    continue
                customers.add(job.customer)
                taken.append(job)
            level.extendleft(reversed(skipped))
            if len(taken) == most:
                break
        self._count -= len(taken)
        return taken

    def drain(self) -> list[Job]:
        jobs = [job for level in self._levels for job in level]
        for level in self._levels:
            level.clear()
        self._count = 0
        return jobs


class BatchLane:
    """Delivers rows in jobs. Strictly private: driven by the sender."""

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
        limits = settings.batch_limits
        # Job creation has its own limits, so its own controller (status reads keep theirs).
        self.adaptive = AdaptiveRate(limits)
        self.limiter = RateLimiter(limits, adaptive=self.adaptive)
        self.status_limiter = RateLimiter(settings.status_limits)
        self.random = random.Random()
        self.ready = _ReadyRows()
        self.wake = asyncio.Event()
        self.settled = asyncio.Event()  # set when a job's rows are settled
        self.slots = asyncio.Semaphore(_MAX_JOBS)
        self.http_statuses: Counter[int] = Counter()
        self.requests = 0
        self.auth_failure: Outcome | None = None
        self.breaker = RepeatedFailures()
        self.input_done = False
        self._status_path: str | None = None
        self._never = asyncio.Event()  # polls are not stopped by the run's stop
        self.durations = JobDurations()
        self.timeline = Timeline()  # the sender shares one between the lanes
        self._filler: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self.base = settings.base_url
        self.headers = settings.keys.headers()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._filler = asyncio.create_task(self._fill())

    def offer(self, job: Job, *, priority: int = 0) -> None:
        self.ready.add(job, priority)
        self.wake.set()

    def no_more_input(self) -> None:
        """Every row has been offered or is yet to come from the dispatcher alone."""
        self.input_done = True
        self.wake.set()

    async def close(self) -> None:
        """Let posted jobs settle (bounded by their timeout if the run stopped), then end every
        row still waiting ``aborted``."""
        self.input_done = True
        self.wake.set()
        grace = (
            self.settings.job_timeout + self.settings.timeout
            if self.book.stopped.is_set()
            else None
        )
        if self._filler is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._filler), grace)
            self._filler.cancel()
        if self._jobs:
            _, late = await asyncio.wait(self._jobs, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for job in self.ready.drain():
            self.book.record(job, Status.ABORTED, None)

    def cancel(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
        for task in self._jobs:
            task.cancel()

    # --- filling jobs ----------------------------------------------------------------------

    async def _fill(self) -> None:
        while True:
            await self.wake.wait()
            if self.book.stopped.is_set():
                return
            if not self.ready:
                self.wake.clear()
                if self.input_done and not self._jobs and not self.book.outstanding:
                    return
                continue
            if len(self.ready) < MAX_ITEMS:
                # More rows may be on their way: from the input, or, once it is all read, from
                # jobs about to settle (the busiest customers' next rows). A job that waits for
                # them a little takes less of the limits than two part-full ones.
                self.settled.clear()
                wait = _FILL_WAIT
                if self.input_done:
                    wait = max(_FILL_WAIT, self.durations.typical / 2)
                if self._jobs or not self.input_done:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.settled.wait(), wait)
            await self.slots.acquire()
            # The job is filled when the limits let it go, not before: rows that became ready
            # meanwhile ride along, and fewer part-full jobs are posted.
            if not await self.limiter.acquire(self.book.stopped):
                self.slots.release()
                continue
            jobs = self.ready.take(MAX_ITEMS)
            if not jobs:
                self.slots.release()
                continue
            task = asyncio.create_task(self._run_job(jobs))
            self._jobs.add(task)
            task.add_done_callback(self._jobs.discard)

    # --- one job ---------------------------------------------------------------------------

    async def _run_job(self, jobs: list[Job]) -> None:
        try:
            await self._deliver(jobs)
        except Exception as error:  # any surprise stops the run; every row keeps a status
            self.book.halt(error)
            for job in jobs:
                if not job.recorded:
                    if job.in_flight:
                        message = (
                            f"{type(error).__name__} while its job was out; it may have been sent"
                        )
                        outcome = Outcome(Verdict.UNKNOWN, SendErrorCode.ERROR, message)
                        self.book.record(job, Status.UNKNOWN, outcome)
                    else:
                        self.book.record(job, Status.ABORTED, None)
                    self.dispatcher.done(job)
        finally:
            self.slots.release()
            self.wake.set()

    def _finish(
        self, job: Job, status: Status, outcome: Outcome | None, *, retryable: bool = False
    ) -> None:
        self.book.record(job, status, outcome, retryable=retryable)
        self.dispatcher.done(job)

    def _finish_all(
        self,
        jobs: Sequence[Job],
        status: Status,
        outcome: Outcome | None,
        *,
        retryable: bool = False,
    ) -> None:
        for job in jobs:
            self._finish(job, status, outcome, retryable=retryable)

    async def _deliver(self, jobs: list[Job]) -> None:
        settings = self.settings
        body = b'{"body":[' + b",".join(job.body for job in jobs) + b"]}"
        last: Outcome | None = None
        attempts = 0
        while True:
            # The first attempt's turn was taken by the filler.
            if attempts and not await self.limiter.acquire(self.book.stopped):
                if last is None:
                    self._finish_all(jobs, Status.ABORTED, None)
                else:
                    message = f"the run stopped before the next retry; last error: {last.message}"
                    stopped = replace(last, message=message)
                    self._finish_all(jobs, Status.FAILED, stopped, retryable=True)
                return
            for job in jobs:
                self.book.begin(job)
                job.attempts += 1
                job.in_flight = True
            attempts += 1
            self.requests += 1
            sent_at = self.limiter.clock()
            try:
                response = await self.client.post(
                    self.base + _CREATE_PATH, content=body, headers=self.headers
                )
            except httpx.HTTPError as error:
                last = classify_error(error)
            else:
                self.http_statuses[response.status_code] += 1
                last = classify_response(response)
                self.timeline.answer(response.status_code, self.adaptive.rate(self.limiter.clock()))
                if last.pacing:
                    self.adaptive.throttled(sent_at, self.limiter.clock())
                else:
                    self.adaptive.accepted(sent_at, self.limiter.clock())
            if last.verdict is Verdict.SENT:
                break
            tripped = attempts == 1 and self.breaker.observe(last)
            if last.verdict is Verdict.AUTH:
                self.auth_failure = self.auth_failure or last
                self.book.halt()
                self._finish_all(jobs, Status.FAILED, last, retryable=True)
                return
            if tripped:
                self.book.halt()
                status = Status.UNKNOWN if last.verdict is Verdict.UNKNOWN else Status.FAILED
                self._finish_all(jobs, status, last, retryable=status is Status.FAILED)
                return
            if last.verdict is Verdict.UNKNOWN and not settings.retry_unknown:
                self._finish_all(jobs, Status.UNKNOWN, last)
                return
            if last.verdict is Verdict.FAILED:
                self._finish_all(jobs, Status.FAILED, last)
                return
            if attempts >= settings.retry.attempts:
                message = f"gave up after {attempts} attempts; last error: {last.message}"
                self._finish_all(
                    jobs, Status.FAILED, replace(last, message=message), retryable=True
                )
                return
            wait = settings.retry.backoff(attempts, self.random.random())
            if last.retry_after is not None:
                wait = min(last.retry_after, settings.retry.wait_max)
            if last.http_status == 429:
                self.limiter.defer(wait)
            await self.book.pause(wait)
        self.breaker.observe(last)
        job_id = _job_id(response)
        if job_id is None:
            outcome = Outcome(
                Verdict.UNKNOWN,
                SendErrorCode.BATCH_NO_JOB_ID,
                "the batch was accepted without a job id; its outcome is unknown",
            )
            self._finish_all(jobs, Status.UNKNOWN, outcome)
            return
        self.book.assign_job(jobs, job_id)
        result = await self._await_job(job_id)
        self._settle(jobs, job_id, result)

    async def _await_job(self, job_id: int) -> JobResult | None:
        """Poll ``job_id`` with backoff until it ends; None when it is not confirmed in time.

        Polling goes on after the run is told to stop: a posted job is a request in flight,
        and its rows deserve their real outcome.
        """
        started = time.monotonic()
        deadline = started + self.settings.job_timeout
        wait = self.durations.first_wait()
        running_at, reads = 0.0, 0
        while time.monotonic() < deadline:
            await asyncio.sleep(min(wait, max(deadline - time.monotonic(), 0.0)))
            await self.status_limiter.acquire(self._never)
            read_at = time.monotonic() - started
            result = await self._poll(job_id)
            if result is not None and result.ended:
                self.durations.observe(running_at, read_at)
                return result
            if result is not None:
                running_at = read_at
            reads += 1
            wait = self.durations.next_wait(reads)
        return None

    async def _poll(self, job_id: int) -> JobResult | None:
        paths = [self._status_path] if self._status_path else list(_STATUS_PATHS)
        for path in paths:
            url = self.base + path.format(job=job_id)
            self.requests += 1
            try:
                response = await self.client.get(url, headers=self.headers)
            except httpx.HTTPError:
                return None
            self.http_statuses[response.status_code] += 1
            if response.status_code == 404 and self._status_path is None:
                continue
            if response.status_code >= 300:
                return None
            self._status_path = path
            try:
                return read_status(response.json())
            except ValueError:
                return None
        return None

    def _settle(self, jobs: list[Job], job_id: int, result: JobResult | None) -> None:
        self.settled.set()
        settings = self.settings
        for job in jobs:
            job.in_flight = False
            if result is None:
                message = (
                    f"batch job {job_id} was not confirmed within {settings.job_timeout:g} s; "
                    "it may have been processed"
                )
                self._finish(
                    job,
                    Status.UNKNOWN,
                    Outcome(Verdict.UNKNOWN, SendErrorCode.BATCH_UNCONFIRMED, message),
                )
            elif job.customer in result.successful:
                self._finish(job, Status.SENT, Outcome(Verdict.SENT, http_status=200))
            elif job.customer in result.failed:
                reason = result.failed[job.customer]
                transient = any(code in reason for code in _TRANSIENT)
                outcome = Outcome(
                    Verdict.FAILED, SendErrorCode.BATCH_ITEM_FAILED, f"batch job {job_id}: {reason}"
                )
                if (
                    transient
                    and job.attempts < settings.retry.attempts
                    and not self.book.stopped.is_set()
                ):
                    # Still this customer's row in flight: it goes into a later job.
                    self.offer(job, priority=_ReadyRows._LEVELS)
                else:
                    self._finish(job, Status.FAILED, outcome, retryable=transient)
            else:
                why = (
                    "failed as a whole"
                    if result.failed_as_a_whole
                    else "ended without listing this customer"
                )
                message = f"batch job {job_id} {why}; the row may have been processed"
                self._finish(
                    job,
                    Status.UNKNOWN,
                    Outcome(Verdict.UNKNOWN, SendErrorCode.BATCH_UNLISTED, message),
                )


def _job_id(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("jobId", body.get("batchId")) if isinstance(body, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def settle_earlier_jobs(lane: BatchLane, pending: dict[int, list[tuple[bytes, str]]]) -> int:
    """Ask Gameball how the jobs of a crashed run ended and settle their rows in the ledger.

    ``pending`` maps job ids to the (key, customer) of their rows still in flight. Returns how
    many rows were settled; rows of a job that cannot be confirmed stay in flight (unknown).
    """
    ledger = lane.book.ledger
    assert ledger is not None
    settled = 0
    for job_id, rows in pending.items():
        result = await lane._await_job(job_id)
        if result is None:
            continue
        for key, customer in rows:
            if customer in result.successful:
                status, retryable, code, message = "sent", False, None, None
            elif customer in result.failed:
                reason = result.failed[customer]
                status, code, message = (
                    "failed",
                    SendErrorCode.BATCH_ITEM_FAILED,
                    f"batch job {job_id}: {reason}",
                )
                retryable = any(c in reason for c in _TRANSIENT)
            else:
                status, retryable, code = "unknown", False, SendErrorCode.BATCH_UNLISTED
                message = f"batch job {job_id} ended without listing this customer"
            ledger.settle(
                key, status, retryable=retryable, attempts=0, http_status=None,
                error_code=code, error_message=message,
            )  # fmt: skip
            settled += 1
    return settled
