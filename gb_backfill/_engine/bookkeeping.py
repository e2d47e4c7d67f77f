"""The fate of every row of a send, recorded in one place.

A lane (see :mod:`gb_backfill._engine.lanes`) owns delivery: when and how a row's request goes out.
The :class:`Bookkeeper` owns everything a row's outcome touches: the status counts, the ledger, the
failures file, the progress bar, and the room left for reading more input. Lanes call
:meth:`Bookkeeper.begin` before a request goes out and :meth:`Bookkeeper.record` once its row's
outcome is final; rows that need no request (invalid, known to the ledger, never attempted) are
settled with :meth:`Bookkeeper.settle`. Nothing else changes a row's status, so the counts always
add up to the rows read.

The bookkeeper also holds the run's stop switch: :meth:`Bookkeeper.halt` stops new requests
(Ctrl-C, a rejected key, a ledger that cannot be written, any unexpected error) and keeps the
first error, which the run raises once every row has its status.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from .._clock import Clock
from .._rows.warnings import WarningTally
from .._store.failures import FailureWriter, failure_rows
from .._store.journal import Mark
from .._store.ledger import POSTING_JOB, Ledger
from .._vocabulary import STATUSES, SendErrorCode, Status, Verdict
from .chunks import Chunk, NotSent, OutgoingRow
from .outcomes import Outcome
from .progress import Progress
from .stopping import StopSwitch

__all__: list[str] = []

_WRITE_FAILURES_EVERY = 2.0  # seconds
_MAX_LIVE_CHUNKS = 3
_NOT_ATTEMPTED = "not attempted: the run stopped"


class Bookkeeper(StopSwitch):
    """Counts, ledger, failures file and progress for one run. Strictly private."""

    def __init__(
        self,
        *,
        ledger: Ledger | None,
        writer: FailureWriter,
        progress: Progress,
        max_outstanding: int,
        max_live_chunks: int = _MAX_LIVE_CHUNKS,
        clock: Clock,
        warnings: WarningTally | None = None,
    ) -> None:
        super().__init__()
        self.ledger = ledger
        #: the input's warnings, gathered as its chunks are prepared (see
        #: :mod:`gb_backfill._rows.warnings`)
        self.warnings = warnings
        self.clock = clock
        self.writer = writer
        self.progress = progress
        self.counts: Counter[str] = Counter(dict.fromkeys(STATUSES, 0))
        self.error_codes: Counter[str] = Counter()
        self.rows = 0
        self.folded = 0  #: rows skipped as copies of a row met elsewhere in the input
        self.fixed_before = 0  #: invalid rows skipped: their fixed copies were sent before
        self.invalid_folded = 0  #: invalid rows among the folded
        self.already_there = 0  #: ``sent`` orders Gameball refused as duplicates
        self.retrying = 0
        #: ``aborted`` rows the ledger has no record of (never reached): a ledger keeps their
        #: count for ``status`` (see :meth:`~gb_backfill._store.ledger.Ledger.note_last_run`)
        self.never_reached = 0
        self.unwritten: set[Chunk] = set()
        self.written_at = -_WRITE_FAILURES_EVERY  # the first failure is written at once
        self.outstanding = 0
        # Rows admitted but not finished; reading pauses above this, so memory stays bounded.
        self.max_outstanding = max_outstanding
        # Chunks with rows still pending; each holds its frame. A customer stuck in retries
        # could otherwise keep one row, and so one frame, alive in every chunk read since.
        self.live_chunks = 0
        self.max_live_chunks = max_live_chunks
        self.room = asyncio.Event()
        self.room.set()
        self.drained = asyncio.Event()
        self.drained.set()

    # --- the stop switch -------------------------------------------------------------------

    def halt(self, error: BaseException | None = None) -> None:
        """Stop (see :meth:`StopSwitch.halt`), and stop waiting for room or for rows to end."""
        super().halt(error)
        self.room.set()
        self.drained.set()

    # --- rows coming in ----------------------------------------------------------------------

    def open_chunk(self, chunk: Chunk) -> None:
        """Count ``chunk``'s rows in: from now on each of them must end with a status."""
        self.rows += len(chunk.frame)

    def queued(self, chunk: Chunk, offered: int, settled: int) -> None:
        """``offered`` rows of ``chunk`` went to a lane; ``settled`` needed no request."""
        chunk.pending += offered
        self.outstanding += offered
        if chunk.pending:
            self.live_chunks += 1
        if self.outstanding:
            self.drained.clear()
        if not self.has_room():
            self.room.clear()
        self.progress.advance(settled, self.counts, self.retrying)

    def has_room(self) -> bool:
        """True while reading another chunk keeps memory within its bound."""
        return self.outstanding < self.max_outstanding and self.live_chunks < self.max_live_chunks

    def abort_unread(self, frame: pd.DataFrame, offset: int) -> None:
        """Account a chunk read after the run stopped: every row ``aborted``."""
        self.rows += len(frame)
        self.counts[Status.ABORTED] += len(frame)
        self.never_reached += len(frame)
        self.error_codes[SendErrorCode.ABORTED] += len(frame)
        rows = failure_rows(
            frame,
            np.arange(len(frame)),
            status=Status.ABORTED,
            code=SendErrorCode.ABORTED,
            message=_NOT_ATTEMPTED,
            row_offset=offset,
            types=self.writer.types,
        )
        self.writer.add(rows)
        self.progress.advance(len(frame), self.counts, self.retrying)

    # --- outcomes -------------------------------------------------------------------------

    def settle(
        self,
        chunk: Chunk,
        local: int,
        status: Status,
        *,
        code: str | None,
        message: str | None,
        http_status: int | None = None,
        key_index: int | None = None,
        folded: bool = False,
    ) -> None:
        """A row that ends without a request of this run (invalid, known to the ledger, or a
        copy of another row of the input: ``folded``)."""
        self.counts[status] += 1
        self.folded += folded
        if status not in (Status.SENT, Status.SKIPPED):
            self._not_sent(chunk, NotSent(local, status, code, message, http_status, 0, key_index))

    def note_invalid(self, chunk: Chunk, rows: Sequence[tuple[int, int]]) -> None:
        """Note in the ledger the invalid ``rows`` of ``chunk`` (position, key index), so a
        fixed copy of one is known as that row."""
        if self.ledger is not None and rows and chunk.keys is not None:
            keys = chunk.keys.keys
            self.ledger.record_invalid(
                [(keys[index], chunk.offset + local) for local, index in rows]
            )

    def begin(self, rows: Sequence[OutgoingRow]) -> None:
        """Mark ``rows`` in flight in the ledger before their first request goes out, with one
        write to its journal.

        Raises :class:`LedgerError` when the marks cannot be made: then nothing may be sent.
        """
        fresh = [row for row in rows if not row.begun]
        if self.ledger is None or not fresh:
            return
        marks = []
        for row in fresh:
            chunk, index = row.chunk, row.key_index
            loose = None if chunk.loose is None else chunk.loose.keys[index]
            form = 0 if chunk.loose is None else int(chunk.loose.forms[index])
            content, occurrence = chunk.shown_key(index)
            marks.append(
                Mark(row.key, row.customer, chunk.offset + row.local, loose, form, content,
                     occurrence, row.body)
            )  # fmt: skip
        self.ledger.begin_many(marks)
        for row in fresh:
            row.begun = True

    def retry_later(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None:
        """``rows`` were refused in a way the run retries: until their next request they are
        not in flight, and the ledger says so at once (their next :meth:`begin` marks them
        again), so a run killed while they wait leaves them to the next run to send."""
        marked = [row for row in rows if row.begun]
        if self.ledger is None or not marked:
            return
        for row in marked:
            row.begun = False
        self.ledger.retry_later(
            [row.key for row in marked],
            pacing=outcome.pacing,
            http_status=outcome.http_status,
            error_code=outcome.code,
            error_message=f"to be retried: {outcome.message}",
        )

    def stopped_early(
        self, rows: Sequence[OutgoingRow], error: BaseException | None = None
    ) -> None:
        """Record ``rows``, whose delivery ended before a final answer: the one rule for a stop.

        * a request out with no answer yet (interrupted, or ``error`` while it was out) may
          have been processed: ``unknown``;
        * no request made, or only refusals for the pace (429, 2001): ``aborted``, retryable;
        * answered with a failure that was to be retried: ``failed``, retryable.
        """
        groups: dict[tuple[Status, Outcome], list[OutgoingRow]] = {}
        for row in rows:
            if not row.recorded:
                groups.setdefault(_stop_outcome(row, error), []).append(row)
        for (status, outcome), alike in groups.items():  # rows alike recorded together
            if outcome.code == SendErrorCode.BATCH_JOB_OPEN:
                # The ledger keeps them in flight with their job: the next run asks Gameball.
                self.record(alike, status, outcome, ledger=False)
            else:
                self.record(alike, status, outcome, retryable=status is not Status.UNKNOWN)

    def posting(self, rows: Sequence[OutgoingRow]) -> None:
        """Note in the ledger, before a job's POST goes out, that ``rows`` left any earlier job:
        until its answer names the new job, a resume must not ask the old one (which may have
        answered 2001 for them) and send them again."""
        for row in rows:
            row.job_id = None  # out of any earlier job until this one's answer names it
        if self.ledger is not None:
            self.ledger.assign_job(POSTING_JOB, [row.key for row in rows if row.begun])

    def assign_job(self, rows: Sequence[OutgoingRow], job_id: int) -> None:
        """Note in the ledger which batch job carries ``rows``, so a later run can ask."""
        for row in rows:
            row.job_id = job_id
        if self.ledger is not None:
            self.ledger.assign_job(job_id, [row.key for row in rows])

    def record(
        self,
        rows: Sequence[OutgoingRow],
        status: Status,
        outcome: Outcome | None,
        *,
        retryable: bool = False,
        ledger: bool = True,
    ) -> None:
        """The one place a queued row's final status is recorded (here, for ``rows`` alike:
        a job's rows, or rows stopped together, counted, noted and settled in the ledger at once).

        ``outcome`` is None for a row never attempted. Rows are counted first, so a ledger
        that then fails to record them still leaves the counts whole.
        """
        if not rows:
            return
        self.counts[status] += len(rows)
        if status == Status.ABORTED:
            self.never_reached += sum(not row.in_ledger for row in rows)
        if outcome is not None and outcome.code == SendErrorCode.ALREADY_THERE:
            self.already_there += len(rows)
        if status != Status.SENT:
            code = outcome.code if outcome else SendErrorCode.ABORTED
            message = outcome.message if outcome else _NOT_ATTEMPTED
            http = outcome.http_status if outcome else None
            for row in rows:
                entry = NotSent(row.local, status, code, message, http, row.requests, row.key_index)
                self._not_sent(row.chunk, entry)
        chunk, finished = None, 0  # a job's rows mostly come from one chunk: count them so
        for row in rows:
            row.recorded = True
            if row.chunk is not chunk:
                if chunk is not None:
                    self._finished(chunk, finished)
                chunk, finished = row.chunk, 0
            finished += 1
        if chunk is not None:
            self._finished(chunk, finished)
        self.outstanding -= len(rows)
        if self.has_room():
            self.room.set()
        if not self.outstanding:
            self.drained.set()
        self.progress.advance(len(rows), self.counts, self.retrying)
        if self.ledger is not None and ledger:
            self.ledger.settle_many(
                [(row.key, row.requests) for row in rows if row.in_ledger],
                status,
                retryable=retryable,
                http_status=outcome.http_status if outcome else None,
                error_code=outcome.code if outcome else None,
                error_message=outcome.message if outcome else None,
            )
        self.write_failures_soon()

    def _finished(self, chunk: Chunk, rows: int) -> None:
        """``rows`` of ``chunk`` have their final status: a chunk with none pending is let go."""
        chunk.pending -= rows
        if not chunk.pending:
            self.live_chunks -= 1

    def reconsider(self, rows: Sequence[OutgoingRow], outcome: Outcome) -> None:
        """Record in the ledger that ``rows`` failed for the run, not for themselves: retryable."""
        if self.ledger is None:
            return
        for row in rows:
            if row.in_ledger:
                self.ledger.settle(
                    row.key,
                    Status.FAILED,
                    retryable=True,
                    attempts=0,
                    http_status=outcome.http_status,
                    error_code=outcome.code,
                    error_message=outcome.message,
                )

    def _not_sent(self, chunk: Chunk, entry: NotSent) -> None:
        """Note a row that ends without being sent; it reaches the failures file soon."""
        chunk.not_sent.append(entry)
        self.error_codes[entry.code or entry.status] += 1
        self.unwritten.add(chunk)

    def write_failures_soon(self) -> None:
        """Write noted rows if the last write is a while ago; called as rows come and go."""
        if self.unwritten and self.clock() - self.written_at > _WRITE_FAILURES_EVERY:
            self.write_failures()

    def write_failures(self) -> None:
        """Write every noted row as a complete Parquet part, so a crash cannot lose it."""
        self.written_at = self.clock()
        for chunk in list(self.unwritten):
            rows = chunk.not_sent
            self.writer.add(
                failure_rows(
                    chunk.frame,
                    np.asarray([row.local for row in rows], dtype=np.int64),
                    status=[row.status for row in rows],
                    code=[row.code for row in rows],
                    message=[row.message for row in rows],
                    http_status=[row.http_status for row in rows],
                    attempts=[row.attempts for row in rows],
                    keys=[chunk.key_text(row.key_index) for row in rows],
                    row_offset=chunk.offset,
                    types=self.writer.types,
                )
            )
            chunk.not_sent.clear()
            # Finished chunks are let go here: nothing refers to their frames any more.
            self.unwritten.discard(chunk)
        try:
            self.writer.flush()
        except OSError as error:
            # A full disk: the rows stay in the writer's buffer, and the run stops.
            self.halt(error)


def _stop_outcome(row: OutgoingRow, error: BaseException | None) -> tuple[Status, Outcome]:
    """The status and outcome a stop gives ``row`` (see :meth:`Bookkeeper.stopped_early`)."""
    last = row.last
    if row.in_flight and row.job_id is not None and row.job_id >= 0 and error is None:
        message = (
            f"its batch job {row.job_id} had not ended when the run stopped: the next run with "
            "the ledger asks Gameball how it ended"
        )
        return Status.UNKNOWN, Outcome(Verdict.UNKNOWN, SendErrorCode.BATCH_JOB_OPEN, message)
    if row.in_flight:
        if error is not None:
            message = f"{type(error).__name__} while its request was out; it may have been sent"
            return Status.UNKNOWN, Outcome(Verdict.UNKNOWN, SendErrorCode.ERROR, message)
        message = "the run was interrupted while this request was in flight"
        return Status.UNKNOWN, Outcome(Verdict.UNKNOWN, SendErrorCode.INTERRUPTED, message)
    if last is None:
        return Status.ABORTED, Outcome(Verdict.RETRY, SendErrorCode.ABORTED, _NOT_ATTEMPTED)
    if last.pacing and not row.attempts:
        message = (
            f"not sent: the run stopped while Gameball was asking it to slow down ({last.message})"
        )
        return Status.ABORTED, Outcome(
            Verdict.RETRY, SendErrorCode.ABORTED, message, last.http_status
        )
    message = f"the run stopped before the next retry; last error: {last.message}"
    return Status.FAILED, replace(last, message=message)
