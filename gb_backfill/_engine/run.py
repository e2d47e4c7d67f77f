"""One send, start to end: rows read a chunk at a time, admitted to the lanes, every row accounted.

How a run goes (:func:`run_send`):

* the failures file and the ledger are checked before anything is read; a ledger that holds sent
  rows is compared with the whole input first, and rows that look sent but differ stop the run
  before anything is sent (:func:`~gb_backfill._engine.passes.refuse_changed_rows`);
* in batch mode, each customer's rows are counted (a pass of the rules alone) and the busiest
  customers' rows are routed to the events lane when that finishes the run sooner
  (:func:`~gb_backfill._engine.passes.route_customers`, :mod:`gb_backfill._engine.makespan`);
* batch jobs a crashed run left are asked about
  (:func:`~gb_backfill._engine.lanes.settle_earlier_jobs`);
* each chunk is read and prepared off the event loop (:mod:`gb_backfill._engine.prepare`), then
  admitted (:class:`Admission`): invalid rows and rows the ledger settles end at once, the rest go
  to the dispatcher, which offers each customer's rows to their lane in order;
* whatever stops the run (Ctrl-C, a rejected key, a failure repeated on every request, a ledger
  that cannot be written, any unexpected error), in-flight requests finish, every row gets a
  status, the failures file is completed, and the run returns its report with what stopped it
  (:class:`~gb_backfill._engine.stopping.Stop`), which the public functions raise;
* all along, the progress bar says what the run does or waits for while no row settles (see
  :mod:`gb_backfill._engine.progress`).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from urllib.parse import urlsplit

import httpx
import pandas as pd

from .._clock import run_clock
from .._config import RateLimits, Settings
from .._errors import LedgerError
from .._reports.send import SendReport
from .._rows.mapping import ColumnMapping
from .._rows.warnings import WarningTally, empty_warnings
from .._store.failures import FailureWriter, input_name
from .._store.ledger import Ledger
from .._store.storage import LedgerEntry
from .._sync import off_loop
from .._vocabulary import Lane, SendErrorCode, Status
from .bookkeeping import Bookkeeper
from .chunks import Chunk, OutgoingRow
from .dispatch import Dispatcher
from .fate import Fate, Folds, Judge, Verdicts, unchanged_invalid
from .lanes import BaseLane, BatchLane, EventsLane, orders_lanes, settle_earlier_jobs
from .makespan import Routing, routes
from .passes import Reader, find_folds, open_ledger, refuse_changed_rows, route_customers
from .prepare import Prepared, Preparer
from .progress import Progress
from .stopping import Stop
from .timeline import Timeline

__all__: list[str] = []

_BATCH_CONNECTIONS = 32
_SUBMIT_STEP = 2_000  # rows handed to the lanes between two turns of the event loop


class Admission:
    """Turns prepared chunks into settled rows and rows for the lanes. Strictly private."""

    def __init__(
        self,
        settings: Settings,
        mapping: ColumnMapping,
        book: Bookkeeper,
        dispatcher: Dispatcher,
        ledger: Ledger | None,
        routing: Routing | None = None,
        folds: Folds | None = None,
    ) -> None:
        self.settings, self.mapping, self.book = settings, mapping, book
        self.dispatcher = dispatcher
        self.ledger = ledger
        # The loose keys are kept, not looked up (that was refuse_changed_rows'): no former ones.
        self.preparer = Preparer(
            settings, mapping, loose=ledger is not None, former=False, routing=routing,
            warnings=book.warnings,
        )  # fmt: skip
        # Rows that look sent but differ were refused before the run (refuse_changed_rows).
        self.judge = Judge(settings, ledger, folds, check_changed=False)
        #: the ledger knew rows before this run: unread rows are looked up even after a stop
        self.ledger_had_rows = ledger is not None and ledger.has_rows()

    def close(self) -> None:
        self.preparer.close()

    async def admit(self, prepared: Prepared) -> None:
        """Settle what needs no request and hand the rest to the lanes.

        The ledger's lookup (in the judge), the last thing that can fail, happens before the
        chunk is counted in, so a failure (or a cancel) before then leaves the whole chunk to
        the caller to abort. Once counted in, every row ends with a status even if this is
        cancelled.
        """
        chunk, rows, busy = prepared.chunk, prepared.rows, prepared.busy
        verdicts = self.judge(prepared)
        self.book.open_chunk(chunk)
        self._settle_invalid(prepared, verdicts)
        held = verdicts.held()
        for index in held:
            self._settle_judged(chunk, rows[index], *verdicts.other[index])
        if held:
            keep = sorted(set(range(len(rows))) - set(held))
            rows, busy = [rows[i] for i in keep], [busy[i] for i in keep]
        settled = len(chunk.frame) - len(rows)
        # Counted before any row is offered: a row may be recorded while the rest still wait.
        self.book.queued(chunk, len(rows), settled)
        submitted = 0
        try:
            for start in range(0, len(rows), _SUBMIT_STEP):
                stop = min(start + _SUBMIT_STEP, len(rows))
                if self.book.stopped.is_set():
                    self.book.stopped_early(rows[start:stop])
                else:
                    self.dispatcher.submit_many(rows[start:stop], busy[start:stop])
                submitted = stop
                await asyncio.sleep(0)  # let requests and answers through between steps
        except BaseException:
            self.book.stopped_early(rows[submitted:])
            raise

    def _settle_invalid(self, prepared: Prepared, verdicts: Verdicts) -> None:
        """The invalid rows: invalid (noted in the ledger by their key), or settled by their
        key's word (sent before, a copy, unknown)."""
        if prepared.worst is None:
            return
        chunk, worst = prepared.chunk, prepared.worst
        first_key = len(prepared.rows)
        noted = []
        failures = zip(worst.index, worst["code"], worst["message"], strict=True)
        for n, (local, code, message) in enumerate(failures):
            index = first_key + n if chunk.keys is not None else None
            fate = verdicts.invalid(n)
            if fate is Fate.INVALID:
                self.book.settle(
                    chunk, int(local), Status.INVALID, code=code, message=message, key_index=index
                )
                if index is not None:
                    noted.append((int(local), index))
            else:
                # Skipped for a copy: sent before (fixed), or folded into one in this input.
                self.book.fixed_before += fate is Fate.SKIP
                self.book.invalid_folded += fate is Fate.FOLD
                self._settle_judged(chunk, int(local), fate, None, key_index=index)
        self.book.note_invalid(chunk, noted)

    def _settle_judged(
        self,
        chunk: Chunk,
        row: OutgoingRow | int,
        fate: Fate,
        entry: LedgerEntry | None,
        *,
        key_index: int | None = None,
    ) -> None:
        """Settle a row the judge says needs no request (see :mod:`gb_backfill._engine.fate`)."""
        local = row if isinstance(row, int) else row.local
        index = key_index if isinstance(row, int) else row.key_index
        book = self.book
        if fate in (Fate.SKIP, Fate.FOLD):
            book.settle(
                chunk, local, Status.SKIPPED, code=None, message=None, folded=fate is Fate.FOLD
            )
        elif fate is Fate.HOLD:
            message = (
                "an earlier run may have sent this row: look it up in Gameball and settle it "
                "(gb-backfill settle; gb_backfill.settle in Python), or resend it with "
                "--retry-unknown (retry_unknown=True)"
            )
            book.settle(
                chunk, local, Status.UNKNOWN, code=SendErrorCode.UNKNOWN_EARLIER, message=message,
                key_index=index,
            )  # fmt: skip
        elif fate is Fate.FAILED and entry is not None:
            book.settle(
                chunk, local, Status.FAILED, code=entry.error_code,
                message=f"failed in an earlier run: {entry.error_message}",
                http_status=entry.http_status, key_index=index,
            )  # fmt: skip
        else:  # a failures file's invalid row, sent again as it was (CHANGED cannot come here)
            code, message = unchanged_invalid(chunk.frame, local)
            book.settle(chunk, local, Status.INVALID, code=code, message=message, key_index=index)

    async def account_unread(self, chunks: Iterator[pd.DataFrame], offset: int) -> None:
        """Give every row the stopped run did not reach its status.

        Rows an earlier run sent or may have sent must not be called "not attempted": when the
        ledger held rows before this run, each chunk is keyed and looked up (nothing is sent,
        as the run has stopped). Otherwise, or once that is interrupted too, rows are aborted.
        """
        careful = self.ledger is not None and self.ledger_had_rows
        try:
            for frame in chunks:
                counted = self.book.rows
                if careful:
                    try:
                        prepared, cancelled = await off_loop(self.preparer.prepare, frame, offset)
                        if cancelled:
                            raise asyncio.CancelledError
                        await self.admit(prepared)
                    except (Exception, asyncio.CancelledError):
                        careful = False  # a second Ctrl-C, or a ledger gone bad: be quick
                if self.book.rows == counted:
                    self.book.abort_unread(frame, offset)
                offset += len(frame)
        except Exception as error:  # a file that breaks mid-read
            self.book.halt(error)


# --- before anything is sent -------------------------------------------------------------------


def quiet_for(ledger: Ledger | None) -> float | None:
    """The seconds since a run with ``ledger`` last sent (``inf``: none ever did): Gameball's
    window holds none of its requests a window later, so refusals then are this run's. None
    without a ledger: the run cannot know."""
    if ledger is None:
        return None
    last = ledger.last_sent_at()
    return math.inf if last is None else max(0.0, time.time() - last)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The run's own client, when the caller gave none (it is closed at the end)."""
    # Batch mode has its own connections for job posts and status reads: a post that waited
    # in the pool behind the events lane would leave late, bunched with the next ones, and
    # break the per-second limit its turn was taken under.
    connections = settings.concurrency + (_BATCH_CONNECTIONS if settings.mode == "batch" else 0)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0), pool=None)
    # Keys never travel in clear text through a proxy: plain http (loopback, or a host the user
    # allowed) ignores HTTP_PROXY and friends; https keeps them, as TLS protects the keys there.
    plain = urlsplit(settings.base_url).scheme == "http"
    return httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=not plain)


# --- the run -----------------------------------------------------------------------------------


def _main_limits(settings: Settings, mapping: ColumnMapping) -> RateLimits:
    """The limits of the lane one row per request mostly goes in: orders when every row is one."""
    return settings.order_limits if mapping.all_orders else settings.limits


def _sustained(settings: Settings, mapping: ColumnMapping) -> float | None:
    """The most rows a second a run sending one row per request can settle over time (the
    events and orders lanes it uses, side by side); None in batch mode (a job carries up to
    1,000 rows) or when a lane it uses has no limit."""
    if settings.mode == Lane.BATCH:
        return None
    lanes = [_main_limits(settings, mapping)]
    if mapping.mixed:
        lanes.append(settings.order_limits)
    rates = [limits.sustained() for limits in lanes]
    return None if None in rates else sum(rate for rate in rates if rate is not None)


class SendRun:
    """The parts of one run, wired together. Strictly private: see :func:`run_send`."""

    def __init__(
        self,
        settings: Settings,
        mapping: ColumnMapping,
        *,
        writer: FailureWriter,
        ledger: Ledger | None,
        client: httpx.AsyncClient,
        bar: Progress,
        routing: Routing | None = None,
        folds: Folds | None = None,
    ) -> None:
        clock = run_clock()
        self.started = time.perf_counter()
        self.settings, self.writer, self.ledger, self.client = settings, writer, ledger, client
        self.bar = bar
        batched = settings.mode == Lane.BATCH
        self.book = Bookkeeper(
            ledger=ledger,
            writer=writer,
            progress=self.bar,
            max_outstanding=max((4 if batched else 2) * settings.batch_rows,
                                4 * settings.concurrency),
            # Batch mode keeps a busy customer's rows waiting one job cycle each: more chunks
            # may wait on them while later rows fill jobs.
            max_live_chunks=10 if batched else 3,
            clock=clock,
            warnings=WarningTally(mapping),
        )  # fmt: skip
        self.dispatcher = Dispatcher(keep_order=settings.keep_order)
        timeline = Timeline(clock)
        quiet = quiet_for(ledger)
        self.events = EventsLane(settings, client, self.book, self.dispatcher, clock=clock,
                                 timeline=timeline, quiet_for=quiet)  # fmt: skip
        self.batch = BatchLane(settings, client, self.book, self.dispatcher, clock=clock,
                               timeline=timeline, quiet_for=quiet)  # fmt: skip
        self.orders, self.batch_orders = orders_lanes(
            settings, client, self.book, self.dispatcher, clock=clock, timeline=timeline,
            batch=self.batch)  # fmt: skip
        self.lanes: tuple[BaseLane, ...] = (self.events, self.batch, self.orders, self.batch_orders)
        self.dispatcher.lanes = {lane.kind: lane for lane in self.lanes}
        self.bar.pace = (self.orders if mapping.all_orders else self.events).pace
        self.bar.sustained = _sustained(settings, mapping)
        self.bar.burst = _main_limits(settings, mapping).per_window
        if batched:  # a trial's batch run was promised 15 s at 12 s in, and took 63 s more
            self.bar.settle = max(settings.batch_limits.window, settings.limits.window)
        self.bar.status = self.holdup
        self.bar.retrying = lambda: self.book.retrying
        self.timeline = timeline
        self.admission = Admission(
            settings, mapping, self.book, self.dispatcher, ledger, routing=routing, folds=folds
        )
        self.routing = routing
        self.all_orders = mapping.all_orders  #: the orders lanes are the run's own
        window = settings.limits.per_window
        if routing is not None and routing.chain_priority is not None and window:
            # A long chain's events-lane row must not wait for the window with the rest.
            self.events.keep_for_chains(priority=routing.chain_priority, places=-(-window // 20))
        self.interrupted = False
        self.cancelled: asyncio.CancelledError | None = None  #: what interrupted it
        self.offset = 0  #: rows read so far

    def holdup(self) -> str | None:
        """Why no lane sends now, and for how long (for the progress bar)."""
        # Lanes that share a job poller name the same job: said once.
        said = dict.fromkeys(filter(None, (lane.holdup() for lane in self.lanes)))
        return "; ".join(said) or None

    async def earlier_jobs(self) -> None:
        """Ask how the batch jobs a crashed run posted ended, before deciding what to send."""
        if self.ledger is not None and (pending := self.ledger.pending_jobs()):
            self.bar.doing(f"asking Gameball how {len(pending):,} earlier batch job(s) ended")
            await settle_earlier_jobs(self.batch.poller, self.ledger, pending)
            self.ledger.commit()

    async def read_and_admit(self, chunks: Iterator[pd.DataFrame]) -> bool:
        """Read, prepare and admit chunks while the run goes on and memory allows (counting
        the rows read in ``self.offset``); returns whether the input can still be read."""
        book, bar = self.book, self.bar
        while not book.stopped.is_set():
            bar.doing(f"reading the input after row {self.offset:,}")
            try:
                frame, cancelled = await off_loop(next, chunks, None)
            except Exception as error:  # a file that breaks mid-read stops the run
                book.halt(error)
                return False
            if frame is None:
                if cancelled:
                    raise asyncio.CancelledError
                break
            offset, counted = self.offset, book.rows
            self.offset += len(frame)
            rows = f"rows {offset + 1:,}-{self.offset:,}"
            bar.doing(
                f"checking {rows} against the ledger" if self.ledger is not None
                else f"checking {rows}"
            )  # fmt: skip
            try:
                if not cancelled:
                    prepared, cancelled = await off_loop(
                        self.admission.preparer.prepare, frame, offset
                    )
                if cancelled:
                    raise asyncio.CancelledError
                await self.admission.admit(prepared)
            except (Exception, asyncio.CancelledError) as error:
                if book.rows == counted:  # not counted yet: the whole chunk is aborted
                    book.abort_unread(frame, offset)
                if isinstance(error, asyncio.CancelledError):
                    raise
                book.halt(error)  # checking, encoding, keys, the ledger
                continue
            bar.doing(None)
            await book.room.wait()
        bar.doing(None)
        return True

    async def go(self, chunks: Iterator[pd.DataFrame]) -> None:
        """Send everything, or stop; either way every row ends with a status."""
        for lane in self.lanes:
            lane.start()
        readable = True
        try:
            try:
                await self.earlier_jobs()
                readable = await self.read_and_admit(chunks)
                for batch in (self.batch, self.batch_orders):
                    batch.no_more_input()
                await self.book.drained.wait()
            except asyncio.CancelledError as cancelled:
                self.interrupted, self.cancelled = True, cancelled
                self.book.halt()
            except Exception as error:  # the ledger, while settling an earlier run's jobs
                self.book.halt(error)
            try:
                if self.book.stopped.is_set() and readable:
                    await self.admission.account_unread(chunks, self.offset)
                self.book.stopped_early(self.dispatcher.waiting())
                for lane in self.lanes:
                    await lane.close()
            except asyncio.CancelledError:
                await self._cut_short()
            self.bar.finish(self.book.counts, stopped=self.book.stopped.is_set())
        finally:
            for lane in self.lanes:
                lane.cancel()
            self.bar.close()
            self.admission.close()

    async def _cut_short(self) -> None:
        """A second stop (Ctrl-C or SIGTERM again) while the run winds down: nothing more is
        waited for. Every row still out or queued is recorded by the stop rule, and the run
        goes on to write its files (the failures file merged, the ledger closed)."""
        self.interrupted = True
        self.book.halt()
        for lane in self.lanes:
            lane.cancel()
        for lane in self.lanes:
            await lane.abandon()
        self.book.stopped_early(self.dispatcher.waiting())

    def finish_files(self, columns: Sequence[Hashable]) -> pd.DataFrame | None:
        """Complete the failures file and commit the ledger, even when the run failed."""
        book, failures = self.book, None
        try:
            book.write_failures()
            failures = self.writer.close(columns)
        except OSError as error:
            book.halt(error)
            failures = self.writer.in_memory()
        if self.ledger is not None:
            self.ledger.note_last_run(
                rows=book.rows, never_reached=book.never_reached,
                input_name=self.settings.input_name, read_with=self.settings.read_with,
            )  # fmt: skip
            try:
                self.ledger.close()
            except LedgerError as error:
                book.halt(error)
        return failures

    def report(self, failures: pd.DataFrame | None) -> SendReport:
        book = self.book
        counts = {status.value: book.counts[status] for status in Status}
        if sum(counts.values()) != book.rows:  # the promise every caller relies on
            raise AssertionError(f"statuses {counts} do not add up to {book.rows} rows")
        found = {lane.option: lane.limits_found() for lane in self.lanes}
        answers: Counter[int] = Counter()
        for lane in self.lanes:
            answers.update(lane.http_statuses)
        answers.update(self.batch.poller.http_statuses)
        single = self.orders if self.all_orders else self.events
        main_lane = self.batch if self.settings.mode == Lane.BATCH else single
        return SendReport(
            counts=counts,
            rows=book.rows,
            elapsed=time.perf_counter() - self.started,
            requests=sum(self._requests_by_kind().values()),
            http_statuses=dict(answers),
            # plain strings, as the failures file's gb_error_code column holds them
            error_codes={str(code): count for code, count in book.error_codes.most_common()},
            failures_path=self.writer.path if self.writer.finished else None,
            failures_in_memory=failures,
            interrupted=self.interrupted,
            limits_found=found["limits"],
            batch_limits_found=found["batch_limits"],
            configured_limits={
                "limits": self.settings.limits,
                "batch_limits": self.settings.batch_limits,
            },
            limits=main_lane.limiter.limits,
            lane_limits={lane.kind.value: lane.limiter.limits for lane in self.lanes},
            mode=self.settings.mode,
            lane_requests=self._requests_by_kind(),
            timeline=self.timeline.frame(),
            folded=book.folded,
            fixed_before=book.fixed_before,
            invalid_folded=book.invalid_folded,
            already_there=book.already_there,
            warnings=book.warnings.frame() if book.warnings is not None else empty_warnings(),
        )

    def _requests_by_kind(self) -> dict[str, int]:
        """Each lane's requests, and the jobs' status reads (``job_status``): they add up to
        the run's requests. A kind that made none is left out."""
        made = {lane.kind.value: lane.requests for lane in self.lanes}
        made["job_status"] = self.batch.poller.requests
        return {kind: count for kind, count in made.items() if count}

    def stop(self) -> Stop | None:
        """What stopped the run, if anything did (the faces raise it, see
        :mod:`gb_backfill._stops`), once every row has its status."""
        if self.interrupted:
            return Stop(interrupted=True, error=self.cancelled)
        if self.book.error is not None:
            return Stop(error=self.book.error)
        refused = next((lane.auth_failure for lane in self.lanes if lane.auth_failure), None)
        if refused is not None:
            return Stop(refused=refused)
        tripped = next((lane.breaker for lane in self.lanes if lane.breaker.tripped_by), None)
        if tripped is not None:
            return Stop(repeated=tripped.tripped_by, threshold=tripped.threshold)
        return None


async def run_send(
    read: Reader,
    *,
    total: int | None,
    settings: Settings,
    mapping: ColumnMapping,
    columns: Sequence[Hashable],
    client: httpx.AsyncClient | None,
    ledger_path: str | os.PathLike[str] | None,
    failures_path: str | os.PathLike[str] | None,
    progress: bool | None,
    source: str | os.PathLike[str] | None = None,
    types: dict[str, str] | None = None,
) -> tuple[SendReport, Stop | None]:
    """One send of the input ``read`` gives, and what stopped it early (None: nothing did);
    ``source`` is its path (None: a DataFrame), and ``types`` the CSV types its columns were
    read as (see :class:`~gb_backfill._store.failures.FailureWriter`)."""
    writer = FailureWriter(failures_path, input_name=input_name(source), types=types)
    writer.check()
    bar = Progress(total, enabled=progress, clock=run_clock())
    async with bar.ticking():
        run = await _prepare_and_go(
            read, settings=settings, mapping=mapping, columns=columns, client=client,
            ledger_path=ledger_path, writer=writer, bar=bar,
        )  # fmt: skip
    report = run.report(run.finish_files(columns))
    return report, run.stop()


async def _prepare_and_go(
    read: Reader,
    *,
    settings: Settings,
    mapping: ColumnMapping,
    columns: Sequence[Hashable],
    client: httpx.AsyncClient | None,
    ledger_path: str | os.PathLike[str] | None,
    writer: FailureWriter,
    bar: Progress,
) -> SendRun:
    """The passes over the input before anything is sent (each may refuse the run), then the
    run itself; ``bar`` says which pass is under way."""
    ledger = None
    routing = None
    try:
        folds = await find_folds(read, settings, columns, bar)
        if ledger_path is not None:
            ledger = open_ledger(ledger_path, settings)
            await refuse_changed_rows(read, settings, mapping, ledger, folds, bar)
        if routes(settings) and mapping.order is None:  # orders take no events lane
            routing = await route_customers(read, settings, mapping, bar)
    except BaseException:
        # Refused before anything was sent: no failures file, no parts left behind, no bar.
        bar.close(leave=False)
        if ledger is not None:
            ledger.close()
        writer.discard()
        raise
    bar.doing(None)
    http = client if client is not None else http_client(settings)
    try:
        run = SendRun(
            settings, mapping, writer=writer, ledger=ledger, client=http,
            bar=bar, routing=routing, folds=folds,
        )  # fmt: skip
        await run.go(read())
    finally:
        if client is None:
            await http.aclose()
    return run
