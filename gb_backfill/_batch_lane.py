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
import re
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx

from ._bookkeeping import Bookkeeper, Job
from ._dispatch import Dispatcher
from ._ledger import EarlierJob
from ._limiter import RateLimiter
from ._outcomes import (
    CONCURRENT_REQUEST_CODE,
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
#: A job's body is kept under this many bytes (1 MiB): Gameball documents no size limit, and
#: 1 MiB is the smallest request-body limit common in front of web APIs (nginx's default).
MAX_JOB_BYTES = 1 << 20
#: Answers that refuse a job as a whole without judging its rows one by one: the job is split
#: in halves until the items at fault are alone.
_SPLIT_ON = frozenset({400, 413})
_CREATE_PATH = "/api/v4.0/integrations/batch/events"
_STATUS_PATHS = (
    "/api/v4/integrations/batch/{job}",
    "/api/v4.0/integrations/batches/{job}/status",
)
_ENDED = frozenset({"completed", "failed", "stopped"})
_MAX_FAILED_READS = 5  # status reads failing in a row before a job is given up as lost
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
    failed: dict[str, str]  #: customer -> Gameball's reason
    #: customer -> Gameball's error code, where the entry gives one (a ``code`` field, or the
    #: number that opens the reason, as in ``"2001: a request ... is in progress"``)
    codes: dict[str, int] = field(default_factory=dict)


def _reason(entry: dict[str, Any]) -> str:
    return str(entry.get("error") or entry.get("message") or "failed (no reason given)")


def _code(entry: dict[str, Any]) -> int | None:
    code = entry.get("code", entry.get("errorCode"))
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    opening = re.match(r"\s*\(?(\d+)\b", _reason(entry))
    return int(opening.group(1)) if opening else None


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
    listed = [e for e in bad if isinstance(e, dict) and "customerId" in e]
    failed = {str(e["customerId"]): _reason(e) for e in listed}
    codes = {str(e["customerId"]): code for e in listed if (code := _code(e)) is not None}
    return JobResult(status in _ENDED, status in ("failed", "stopped"), successful, failed, codes)


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

    def take(self, most: int, max_bytes: int = MAX_JOB_BYTES) -> list[Job]:
        """Up to ``most`` rows, at most one per customer, whose bodies take at most
        ``max_bytes`` (a single row bigger than that goes alone)."""
        taken: list[Job] = []
        customers: set[str] = set()
        size = 0
        for level in reversed(self._levels):
            skipped: deque[Job] = deque()
            while level and len(taken) < most:
                job = level.popleft()
                cost = len(job.body) + 1
                if job.customer in customers or (taken and size + cost > max_bytes):
                    skipped.append(job)
                    continue
                customers.add(job.customer)
                taken.append(job)
                size += cost
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
            self.book.stopped_early(job)

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
        except asyncio.CancelledError:
            self._stop_all(jobs)
            raise
        except Exception as error:  # any surprise stops the run; every row keeps a status
            self.book.halt(error)
            self._stop_all(jobs, error)
        finally:
            self.slots.release()
            self.wake.set()

    def _stop_all(self, jobs: Sequence[Job], error: BaseException | None = None) -> None:
        """Record every row of a job the run stopped before its final answer (see
        :meth:`Bookkeeper.stopped_early`)."""
        for job in jobs:
            if not job.recorded:
                self.book.stopped_early(job, error)
                self.dispatcher.done(job)

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

    async def _deliver(self, jobs: list[Job], *, part: bool = False) -> None:
        """Post ``jobs`` as one batch job, retrying what is safe to, and settle its rows.

        ``part`` is a half of a job refused as a whole (400, 413): it takes its own turn of the
        limits, and its refusals do not count towards the breaker.
        """
        settings = self.settings
        body = b'{"body":[' + b",".join(job.body for job in jobs) + b"]}"
        last: Outcome | None = None
        attempts = 0  # posts that count against the retry policy (a 429 or 2001 is none)
        throttled_since: float | None = None
        while True:
            # The first attempt's turn was taken by the filler.
            if (attempts or last is not None or part) and not await self.limiter.acquire(
                self.book.stopped
            ):
                self._stop_all(jobs)
                return
            for job in jobs:
                self.book.begin(job)
                job.attempts += 1
                job.requests += 1
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
                if last.pacing:
                    self.adaptive.throttled(sent_at, self.limiter.clock())
                else:
                    self.adaptive.accepted(self.limiter.clock())
            self.timeline.answer(last.http_status, self.adaptive.rate(self.limiter.clock()))
            for job in jobs:
                job.in_flight = last.verdict is Verdict.SENT
                job.last = last
            if last.verdict is Verdict.SENT:
                break
            tripped = attempts == 1 and not part and self.breaker.observe(last)
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
            if last.verdict is Verdict.FAILED and last.http_status in _SPLIT_ON and len(jobs) > 1:
                # One bad item (or too many bytes) refuses the whole job: halves find it.
                middle = len(jobs) // 2
                for half in (jobs[:middle], jobs[middle:]):
                    await self._deliver(half, part=True)
                return
            if last.verdict is Verdict.FAILED:
                # Only a 400 or 422 judged the items (or a 413 a single one: it is too large);
                # any other refusal of the whole job (a wrong path) leaves them as never sent.
                judged = last.http_status in (400, 422) or (
                    last.http_status == 413 and len(jobs) == 1
                )
                self._finish_all(jobs, Status.FAILED, last, retryable=not judged)
                return
            if last.pacing:
                # The account's limit, not the rows: no attempt is used up (as in the events lane).
                attempts -= 1
                for job in jobs:
                    job.attempts -= 1
                now = self.limiter.clock()
                throttled_since = now if throttled_since is None else throttled_since
                if now - throttled_since >= settings.retry.throttled_max:
                    message = f"rate-limited for {now - throttled_since:.1f} s (throttled_max); "
                    outcome = replace(last, message=message + f"last error: {last.message}")
                    self._finish_all(jobs, Status.FAILED, outcome, retryable=True)
                    return
            else:
                throttled_since = None
            if attempts >= settings.retry.attempts:
                message = f"gave up after {attempts} attempts; last error: {last.message}"
                self._finish_all(
                    jobs, Status.FAILED, replace(last, message=message), retryable=True
                )
                return
            wait = settings.retry.backoff(max(attempts, 1), self.random.random())
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
        self._settle(jobs, job_id, await self._await_job(job_id))

    async def _await_job(self, job_id: int, *, deadline: float | None = None) -> JobRead:
        """Poll ``job_id`` with backoff until it ends, until ``deadline`` (a ``time.time()``;
        default: ``job_timeout`` from now, and at least one read), or until its status cannot be
        read ``_MAX_FAILED_READS`` times in a row (a 404: the server has forgotten the job).

        Polling goes on after the run is told to stop: a posted job is a request in flight,
        and its rows deserve their real outcome.
        """
        started = time.monotonic()
        if deadline is None:
            deadline = time.time() + self.settings.job_timeout
        wait = self.durations.first_wait()
        running_at, reads, failed = 0.0, 0, 0
        while True:
            await asyncio.sleep(min(wait, max(deadline - time.time(), 0.0)))
            await self.status_limiter.acquire(self._never)
            read_at = time.monotonic() - started
            read = await self._poll(job_id)
            if read.result is not None and read.result.ended:
                self.durations.observe(running_at, read_at)
                return read
            if read.result is not None:
                running_at, failed = read_at, 0
            else:
                failed += 1
                if failed >= _MAX_FAILED_READS:
                    return replace(read, given_up=True)
            reads += 1
            if time.time() >= deadline:
                return JobRead(None, read.failure)
            wait = self.durations.next_wait(reads)

    async def _poll(self, job_id: int) -> JobRead:
        """One read of the job's status, trying each documented path until one is known."""
        paths = [self._status_path] if self._status_path else list(_STATUS_PATHS)
        failure = ""
        for path in paths:
            url = self.base + path.format(job=job_id)
            self.requests += 1
            try:
                response = await self.client.get(url, headers=self.headers)
            except httpx.HTTPError as error:
                return JobRead(None, f"{type(error).__name__} reading its status")
            self.http_statuses[response.status_code] += 1
            if response.status_code >= 300:
                failure = f"HTTP {response.status_code} reading its status"
                continue
            self._status_path = path
            try:
                return JobRead(read_status(response.json()), "")
            except ValueError:
                return JobRead(None, "an unreadable status answer")
        return JobRead(None, failure)

    def _settle(self, jobs: list[Job], job_id: int, read: JobRead) -> None:
        self.settled.set()
        settings = self.settings
        for job in jobs:
            job.in_flight = False
            verdict = job_verdict(job_id, job.customer, read, settings.job_timeout)
            if (
                verdict.transient
                and job.attempts < settings.retry.attempts
                and not self.book.stopped.is_set()
            ):
                # Still this customer's row in flight: it goes into a later job.
                self.offer(job, priority=_ReadyRows._LEVELS)
                continue
            self._finish(job, verdict.status, verdict.outcome, retryable=verdict.transient)


@dataclass(frozen=True, slots=True)
class JobRead:
    """What polling a job learned: its result, or why its status could not be read."""

    result: JobResult | None
    failure: str
    #: the status could not be read again and again (a 404: the server forgot the job)
    given_up: bool = False


@dataclass(frozen=True, slots=True)
class _RowVerdict:
    status: Status
    outcome: Outcome
    transient: bool = False  #: refused for a reason worth another job (2001)


def job_verdict(job_id: int, customer: str, read: JobRead, job_timeout: float) -> _RowVerdict:
    """The outcome of one row of batch job ``job_id``: the one place a job's result is read
    for a row, in this run and for the jobs of an earlier one."""
    result = read.result
    if result is None:
        if read.given_up:
            code = SendErrorCode.BATCH_JOB_LOST
            message = (
                f"batch job {job_id}'s status could not be read ({read.failure}, "
                f"{_MAX_FAILED_READS} times in a row): Gameball may have forgotten it; "
                "it may have been processed"
            )
        else:
            code = SendErrorCode.BATCH_UNCONFIRMED
            message = (
                f"batch job {job_id} was not confirmed within {job_timeout:g} s; "
                "it may have been processed"
            )
        return _RowVerdict(Status.UNKNOWN, Outcome(Verdict.UNKNOWN, code, message))
    if customer in result.successful:
        return _RowVerdict(Status.SENT, Outcome(Verdict.SENT, http_status=200))
    if customer in result.failed:
        reason = result.failed[customer]
        outcome = Outcome(
            Verdict.FAILED, SendErrorCode.BATCH_ITEM_FAILED, f"batch job {job_id}: {reason}"
        )
        transient = result.codes.get(customer) == CONCURRENT_REQUEST_CODE
        return _RowVerdict(Status.FAILED, outcome, transient=transient)
    why = "failed as a whole" if result.failed_as_a_whole else "ended without listing this customer"
    message = f"batch job {job_id} {why}; the row may have been processed"
    return _RowVerdict(
        Status.UNKNOWN, Outcome(Verdict.UNKNOWN, SendErrorCode.BATCH_UNLISTED, message)
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


async def settle_earlier_jobs(lane: BatchLane, pending: Sequence[EarlierJob]) -> int:
    """Ask Gameball how the jobs of a crashed run ended and settle their rows in the ledger.

    Jobs are read concurrently, each until ``job_timeout`` after it was posted (at least once),
    so a resume waits at most about ``job_timeout`` for all of them together, and a job the
    server has forgotten (its status answers 404) is given up within a few reads. Rows of a job
    that is still running stay in flight (unknown), to be asked about again next time; rows of
    a forgotten job become ``unknown``. Returns how many rows were settled.
    """
    ledger = lane.book.ledger
    assert ledger is not None
    timeout = lane.settings.job_timeout

    async def settle(job: EarlierJob) -> int:
        read = await lane._await_job(job.job_id, deadline=job.posted_at + timeout)
        if read.result is None and not read.given_up:
            return 0
        for key, customer in job.rows:
            verdict = job_verdict(job.job_id, customer, read, timeout)
            ledger.settle(
                key, verdict.status, retryable=verdict.transient, attempts=0, http_status=None,
                error_code=verdict.outcome.code, error_message=verdict.outcome.message,
            )  # fmt: skip
        return len(job.rows)

    return sum(await asyncio.gather(*(settle(job) for job in pending)))
