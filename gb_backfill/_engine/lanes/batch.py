"""The batch lane: rows go to Gameball as asynchronous jobs of up to 1,000 events.

``POST /api/v4.0/integrations/batch/events`` takes ``{"body": [item, ...]}`` and answers a job
id; the job's status is then read (:mod:`.jobs`) until it ends. Results name only the customer,
so a job never holds two rows of one customer. Items listed as successful are ``sent``; failed
ones are ``failed`` with Gameball's reason, and a transient reason (2001) is tried again in a
later job; items in neither list once the job has ended, a job that fails as a whole, and one not
confirmed in time leave their rows ``unknown``, never silently ``sent``. Rows are marked in
flight before their job is posted and the job id is recorded in the ledger, so a later run can
ask how a job ended after a crash. Before each POST the ledger notes that the rows left any
earlier job: a row answered 2001 in job 1 and killed while job 2's POST is out stays in flight
(unknown), never sent a third time on job 1's word.

Jobs hold at most 1,000 items and 1 MiB of JSON; a job refused as a whole (400, or 413 for its
size) is posted again in halves until the items at fault are alone. Posting a job is the shared
delivery loop of :mod:`.base`, within the batch limits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

import httpx

from ... import _gameball as gameball
from ..._clock import Clock
from ..._config import Settings
from ..._vocabulary import Lane, SendErrorCode, Status, Verdict
from ..bookkeeping import Bookkeeper
from ..chunks import OutgoingRow
from ..dispatch import Dispatcher
from ..limiter import Slot
from ..outcomes import Outcome
from ..timeline import Timeline
from .base import BaseLane
from .jobs import JobPoller, JobRead, job_id_of, job_verdicts

__all__ = ["BatchLane"]

_FILL_WAIT = 0.05  # seconds to let a job fill before it goes out part-full
#: Once the run is stopped (Ctrl-C, SIGTERM, an error), how long jobs already posted may still
#: end and give their rows a real outcome; rows of jobs not ended by then are unknown (a later
#: run with the ledger asks Gameball how their jobs ended).
STOP_GRACE = 10.0
_MAX_JOBS = 64  # jobs in flight at once
#: Answers that refuse a job as a whole without judging its rows one by one: the job is split
#: in halves until the items at fault are alone.
_SPLIT_ON = frozenset({400, 413})


class _ReadyRows:
    """Rows ready for a job, by priority (the customer's rows in all, capped): a job takes the
    busiest customers first, then the oldest rows."""

    LEVELS = 64

    def __init__(self) -> None:
        self._levels = [deque[OutgoingRow]() for _ in range(self.LEVELS)]
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, row: OutgoingRow, priority: int) -> None:
        self._levels[min(max(priority, 0), self.LEVELS - 1)].append(row)
        self._count += 1

    def take(self, most: int, max_bytes: int = gameball.MAX_JOB_BYTES) -> list[OutgoingRow]:
        """Up to ``most`` rows, at most one per customer, whose bodies take at most
        ``max_bytes`` (a single row bigger than that goes alone)."""
        taken: list[OutgoingRow] = []
        customers: set[str] = set()
        size = 0
        for level in reversed(self._levels):
            skipped: deque[OutgoingRow] = deque()
            while level and len(taken) < most:
                row = level.popleft()
                cost = len(row.body) + 1
                if row.customer in customers or (taken and size + cost > max_bytes):
                    skipped.append(row)
                    continue
                customers.add(row.customer)
                taken.append(row)
                size += cost
            level.extendleft(reversed(skipped))
            if len(taken) == most:
                break
        self._count -= len(taken)
        return taken

    def drain(self) -> list[OutgoingRow]:
        rows = [row for level in self._levels for row in level]
        for level in self._levels:
            level.clear()
        self._count = 0
        return rows


class BatchLane(BaseLane):
    """Delivers rows in jobs. Strictly private: driven by the run."""

    kind = Lane.BATCH
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
    ) -> None:
        super().__init__(
            settings=settings, client=client, book=book, dispatcher=dispatcher,
            limits=settings.batch_limits, clock=clock, timeline=timeline, quiet_for=quiet_for,
        )  # fmt: skip
        self.bookkeeper = book  # the run's: it knows the rows outstanding and records job ids
        self.poller = JobPoller(
            client=client, base_url=settings.base_url, headers=self.headers,
            limits=settings.status_limits, clock=clock, job_timeout=settings.job_timeout,
        )  # fmt: skip
        self.ready = _ReadyRows()
        self.wake = asyncio.Event()
        self.settled = asyncio.Event()  # set when a job's rows are settled
        self.slots = asyncio.Semaphore(_MAX_JOBS)
        self.input_done = False
        self._filler: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self.create_url = settings.base_url + gameball.BATCH_CREATE_PATH

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._filler = asyncio.create_task(self._fill())

    def offer(self, row: OutgoingRow, *, priority: int = 0) -> None:
        self.ready.add(row, priority)
        self.wake.set()

    def no_more_input(self) -> None:
        """Every row has been offered or is yet to come from the dispatcher alone."""
        self.input_done = True
        self.wake.set()

    async def close(self) -> None:
        self.no_more_input()
        grace: float | None = None
        if self.book.stopped.is_set():
            grace = min(STOP_GRACE, self.settings.job_timeout + self.settings.timeout)
            if self._jobs:
                later = (
                    "the next run with the ledger asks Gameball how their jobs ended"
                    if self.bookkeeper.ledger is not None
                    else "look them up in Gameball before sending any again"
                )
                self.bookkeeper.progress.note(
                    f"gb-backfill: stopping: waiting up to {grace:g} s for {len(self._jobs):,} "
                    "batch job(s) already posted to end; rows of jobs not ended by then are "
                    f"unknown: {later}"
                )
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        if self._filler is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._filler), grace)
            self._filler.cancel()
        left = None if deadline is None else max(deadline - loop.time(), 0.0)
        await self._drain_tasks(list(self._jobs), left)
        self.stop_queued()

    def stop_queued(self) -> None:
        self.stop_rows(self.ready.drain())

    def cancel(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
        for task in self._jobs:
            task.cancel()

    def tasks(self) -> list[asyncio.Task[None]]:
        return [task for task in (self._filler, *self._jobs) if task is not None]

    def holdup(self) -> str | None:
        # The jobs posted and not yet ended first (their rows are what the bar waits for),
        # then what holds the next post or poll.
        said = filter(None, (self.poller.holdup(), self.limiter.holdup()))
        return "; ".join(said) or None

    # --- filling jobs ----------------------------------------------------------------------

    async def _fill(self) -> None:
        while True:
            await self.wake.wait()
            if self.book.stopped.is_set():
                return
            if not self.ready:
                self.wake.clear()
                if self.input_done and not self._jobs and not self.bookkeeper.outstanding:
                    return
                continue
            if len(self.ready) < gameball.MAX_ITEMS_PER_JOB:
                await self._let_it_fill()
            await self.slots.acquire()
            # The job is filled when the limits let it go, not before: rows that became ready
            # meanwhile ride along, and fewer part-full jobs are posted.
            slot = await self.limiter.acquire(self.book.stopped)
            if slot is None:
                self.slots.release()
                continue
            rows = self.ready.take(gameball.MAX_ITEMS_PER_JOB)
            if not rows:
                self.limiter.answered(slot, self.clock())  # nothing went out
                self.slots.release()
                continue
            task = asyncio.create_task(self._run_job(rows, slot))
            self._jobs.add(task)
            task.add_done_callback(self._jobs.discard)

    async def _let_it_fill(self) -> None:
        """More rows may be on their way from the input: a job that waits for them a little
        takes less of the limits than two part-full ones.

        Once the input is all read, rows come only from jobs that settle (the busiest
        customers' next rows), and waiting for them would add to every job cycle of the
        longest chain, the run's critical path. The job goes at once: when posts are scarce,
        the limiter's own wait lets the rows that settle meanwhile ride along.
        """
        self.settled.clear()
        if not self.input_done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.settled.wait(), _FILL_WAIT)

    # --- one job ---------------------------------------------------------------------------

    async def _run_job(self, rows: list[OutgoingRow], slot: Slot) -> None:
        try:
            await self._send_job(rows, slot=slot)
        except asyncio.CancelledError:
            self.stop_rows(rows)
            raise
        except Exception as error:  # any surprise stops the run; every row keeps a status
            self.book.halt(error)
            self.stop_rows(rows, error)
        finally:
            self.slots.release()
            self.wake.set()

    async def _post(self, body: bytes) -> httpx.Response:
        return await self.client.post(self.create_url, content=body, headers=self.headers)

    async def _send_job(
        self, rows: Sequence[OutgoingRow], *, slot: Slot | None = None, part: bool = False
    ) -> None:
        """Post ``rows`` as one batch job, then settle them once it has ended."""
        body = b'{"body":[' + b",".join(row.body for row in rows) + b"]}"

        async def post() -> httpx.Response:
            # Before every POST: the rows leave any earlier job (one that answered 2001).
            self.bookkeeper.posting(rows)
            return await self._post(body)

        response = await self.deliver(rows, post, slot=slot, part=part)
        if response is None:
            return  # the rows are recorded
        job_id = job_id_of(response)
        if job_id is None:
            why = "the batch was accepted without a job id; its outcome is unknown"
            outcome = Outcome(Verdict.UNKNOWN, SendErrorCode.BATCH_NO_JOB_ID, why)
            self.finish(rows, Status.UNKNOWN, outcome)
            return
        for row in rows:
            row.in_flight = True  # accepted: processed or not, its outcome is the job's
        self.bookkeeper.assign_job(rows, job_id)
        self._settle(rows, job_id, await self.poller.wait_for(job_id))

    async def refused(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None:
        if outcome.http_status in _SPLIT_ON and len(rows) > 1:
            # One bad item (or too many bytes) refuses the whole job: halves find it.
            middle = len(rows) // 2
            for half in (rows[:middle], rows[middle:]):
                await self._send_job(half, part=True)
            return
        # Only a 400 or 422 judged the items (or a 413 a single one: it is too large); any other
        # refusal of the whole job (a wrong path) leaves them as good as never sent.
        judged = outcome.http_status in (400, 422) or outcome.http_status == 413
        self.finish(rows, Status.FAILED, outcome, retryable=not judged)

    def _settle(self, rows: Sequence[OutgoingRow], job_id: int, read: JobRead) -> None:
        """Record a job's rows: one verdict pass over the job, and the rows of each verdict
        recorded together."""
        self.settled.set()
        settings = self.settings
        again = not self.book.stopped.is_set()
        for row in rows:
            row.in_flight = False
        customers = [row.customer for row in rows]
        for verdict, positions in job_verdicts(job_id, customers, read, settings.job_timeout):
            alike = [rows[i] for i in positions]
            if verdict.transient and again:
                # Still these customers' rows in flight: those with tries left go into a
                # later job.
                retried = [row for row in alike if row.attempts < settings.retry.attempts]
                for row in retried:
                    self.offer(row, priority=_ReadyRows.LEVELS)
                alike = [row for row in alike if row.attempts >= settings.retry.attempts]
            self.finish(alike, verdict.status, verdict.outcome, retryable=verdict.transient)
