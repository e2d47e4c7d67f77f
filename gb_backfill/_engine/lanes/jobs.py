"""Batch jobs after they are posted: reading their status until they end, and what it says.

Gameball documents two status paths and two body shapes: the tutorial's
``GET /api/v4/integrations/batch/{jobId}`` (``status``, ``response.successful``/``failed``) and
the OpenAPI's ``GET /api/v4.0/integrations/batches/{id}/status`` (``status``, ``results``/
``errors``). The poller tries the first, falls back to the second on a 404, and reads either
shape; a failure's reason is taken from ``error`` or ``message``.

Status reads have their own limits (assumed: the GET row) and their own adaptive controller.
A job whose status cannot be read several times in a row (a 404: the server forgot it) is given
up within a few reads; one not ended within ``job_timeout`` of its posting is unconfirmed. In
both cases its rows are ``unknown``: they may have been processed. :func:`job_verdict` is the one
place a job's result is read for a row, in this run and for the jobs of a crashed one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from ... import _gameball as gameball
from ..._clock import Clock
from ..._config import RateLimits
from ..._store.ledger import Ledger
from ..._store.storage import EarlierJob
from ..._vocabulary import SendErrorCode, Status, Verdict
from ..limiter import RateLimiter
from ..outcomes import SENT, Outcome, already_there, classify_response
from ..rate_control import AdaptiveRate

__all__: list[str] = []

_MAX_FAILED_READS = 5  # status reads failing in a row before a job is given up as lost
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
    ended = status in gameball.BATCH_ENDED
    whole = status in gameball.BATCH_FAILED_AS_A_WHOLE
    return JobResult(ended, whole, successful, failed, codes)


class JobPoller:
    """Reads batch jobs' status, within the status reads' limits, until they end. Strictly
    private: the batch lane owns one."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str,
        headers: dict[str, str],
        limits: RateLimits,
        clock: Clock,
        job_timeout: float,
    ) -> None:
        self.client, self.base, self.headers = client, base_url, headers
        self.clock = clock
        self.job_timeout = job_timeout
        self.adaptive = AdaptiveRate(limits)
        self.limiter = RateLimiter(limits, adaptive=self.adaptive, clock=clock)
        self.durations = JobDurations()
        self.http_statuses: Counter[int] = Counter()
        self.requests = 0
        self._status_path: str | None = None
        self._never = asyncio.Event()  # polls are not stopped by the run's stop
        self._waiting: dict[int, float] = {}  # the jobs waited for, and since when

    async def wait_for(self, job_id: int, *, deadline: float | None = None) -> JobRead:
        """Poll ``job_id`` with backoff until it ends, until ``deadline`` (on the run clock;
        default: ``job_timeout`` from now, and at least one read), or until its status cannot
        be read ``_MAX_FAILED_READS`` times in a row.

        Polling goes on after the run is told to stop: a posted job is a request in flight,
        and its rows deserve their real outcome.
        """
        started = self.clock()
        self._waiting[job_id] = started
        try:
            return await self._wait_for(job_id, started, deadline)
        finally:
            self._waiting.pop(job_id, None)

    def holdup(self) -> str | None:
        """The jobs being waited for, oldest first, in a person's words (for the progress
        bar); None when none is."""
        if not self._waiting:
            return None
        job_id, since = min(self._waiting.items(), key=lambda item: item[1])
        more = len(self._waiting) - 1
        others = f" and {more:,} more" if more else ""
        return f"waiting for job {job_id}{others}: {self.clock() - since:,.0f} s so far"

    async def _wait_for(self, job_id: int, started: float, deadline: float | None) -> JobRead:
        deadline = started + self.job_timeout if deadline is None else deadline
        wait = self.durations.first_wait()
        running_at, reads, failed = 0.0, 0, 0
        while True:
            await asyncio.sleep(min(wait, max(deadline - self.clock(), 0.0)))
            await self.limiter.acquire(self._never)
            read_at = self.clock() - started
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
            if self.clock() >= deadline:
                return JobRead(None, read.failure)
            wait = self.durations.next_wait(reads)

    async def _poll(self, job_id: int) -> JobRead:
        """One read of the job's status, trying each documented path until one is known."""
        paths = [self._status_path] if self._status_path else list(gameball.BATCH_STATUS_PATHS)
        failure = ""
        for path in paths:
            self.requests += 1
            sent_at = self.clock()
            try:
                response = await self.client.get(
                    self.base + path.format(job=job_id), headers=self.headers
                )
            except httpx.HTTPError as error:
                return JobRead(None, f"{type(error).__name__} reading its status")
            self.http_statuses[response.status_code] += 1
            self._observe(classify_response(response), sent_at)
            if response.status_code >= 300:
                failure = f"HTTP {response.status_code} reading its status"
                continue
            self._status_path = path
            try:
                return JobRead(read_status(response.json()), "")
            except ValueError:
                return JobRead(None, "an unreadable status answer")
        return JobRead(None, failure)

    def _observe(self, outcome: Outcome, sent_at: float) -> None:
        if outcome.pacing:
            self.adaptive.throttled(sent_at, self.clock(), retry_after=outcome.retry_after)
            if outcome.retry_after is not None:
                self.limiter.defer(outcome.retry_after)
        else:
            self.adaptive.accepted(sent_at, self.clock())


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


#: a row the job lists as successful
_LISTED_SENT = _RowVerdict(Status.SENT, SENT)


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
        return _LISTED_SENT
    if customer in result.failed:
        reason = result.failed[customer]
        outcome = Outcome(
            Verdict.FAILED, SendErrorCode.BATCH_ITEM_FAILED, f"batch job {job_id}: {reason}"
        )
        # Only an order can be refused as already there (events have no id to repeat).
        there = already_there(outcome, result.codes.get(customer), reason)
        if there is not outcome:
            return _RowVerdict(Status.SENT, there)
        transient = result.codes.get(customer) == gameball.CONCURRENT_REQUEST
        return _RowVerdict(Status.FAILED, outcome, transient=transient)
    why = "failed as a whole" if result.failed_as_a_whole else "ended without listing this customer"
    message = f"batch job {job_id} {why}; the row may have been processed"
    return _RowVerdict(
        Status.UNKNOWN, Outcome(Verdict.UNKNOWN, SendErrorCode.BATCH_UNLISTED, message)
    )


def job_verdicts(
    job_id: int, customers: Sequence[str], read: JobRead, job_timeout: float
) -> list[tuple[_RowVerdict, list[int]]]:
    """The outcomes of a whole job's rows (``customers[i]`` is row i's) in one pass: each
    distinct verdict with the positions of the rows it applies to. The usual job, every row
    successful, is one set lookup per row and one verdict; other rows are read by
    :func:`job_verdict`."""
    result = read.result
    if result is None:
        return [(job_verdict(job_id, "", read, job_timeout), list(range(len(customers))))]
    successful = result.successful
    sent = [i for i, customer in enumerate(customers) if customer in successful]
    groups: dict[_RowVerdict, list[int]] = {_LISTED_SENT: sent} if sent else {}
    if len(sent) < len(customers):
        for i, customer in enumerate(customers):
            if customer not in successful:
                verdict = job_verdict(job_id, customer, read, job_timeout)
                groups.setdefault(verdict, []).append(i)
    return list(groups.items())


def job_id_of(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get("jobId", body.get("batchId")) if isinstance(body, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def settle_earlier_jobs(
    poller: JobPoller, ledger: Ledger, pending: Sequence[EarlierJob]
) -> int:
    """Ask Gameball how the jobs of a crashed run ended and settle their rows in the ledger.

    Jobs are read concurrently, each until ``job_timeout`` after it was posted (at least once),
    so a resume waits at most about ``job_timeout`` for all of them together, and a job the
    server has forgotten (its status answers 404) is given up within a few reads. Rows of a job
    that is still running stay in flight (unknown), to be asked about again next time; rows of
    a forgotten job become ``unknown``. Returns how many rows were settled.
    """
    timeout = poller.job_timeout

    async def settle(job: EarlierJob) -> int:
        # Posting was on the wall clock of another process: its deadline, on the run clock.
        deadline = poller.clock() + (job.posted_at + timeout - time.time())
        read = await poller.wait_for(job.job_id, deadline=deadline)
        if read.result is None and not read.given_up:
            return 0
        for row in job.rows:
            verdict = job_verdict(job.job_id, row.customer_id, read, timeout)
            ledger.settle(
                row.key, verdict.status, retryable=verdict.transient, attempts=0, http_status=None,
                error_code=verdict.outcome.code, error_message=verdict.outcome.message,
            )  # fmt: skip
        return len(job.rows)

    return sum(await asyncio.gather(*(settle(job) for job in pending)))
