"""Sending rows to Gameball: rate-limited, concurrent, retrying, and accounting for every row.

One async core, :func:`asend`, and its sync face, :func:`send`; :func:`send_path` and
:func:`asend_path` stream a CSV or Parquet file a batch at a time. How a run goes:

* options are checked before anything is read or sent, with messages in the caller's terms;
* rows are read a batch at a time (a DataFrame is sliced the same way), checked, turned into
  request bodies and keyed (:mod:`._row_keys`); invalid rows end as ``invalid``;
* with a ledger, rows it records as sent end as ``skipped``, and rows whose outcome it does not
  know stay ``unknown`` (unless ``retry_unknown``);
* the rest go to the events lane (:mod:`._events_lane`), which owns delivery; every outcome is
  recorded by the bookkeeper (:mod:`._bookkeeping`), which owns each row's fate;
* whatever stops the run (Ctrl-C, a rejected key, a failure repeated on every request, a ledger
  that cannot be written, any unexpected error), in-flight requests finish, every row gets a
  status, the failures file is completed, and then the run raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd

from ._batch_lane import BatchLane, settle_earlier_jobs
from ._bookkeeping import Batch, Bookkeeper, Job
from ._config import DEFAULT_BASE_URL, Keys, RateLimits, RetryPolicy, check_base_url
from ._dispatch import BATCH, EVENTS, CustomerCounts, Dispatcher
from ._errors import (
    AuthenticationError,
    ChangedRowsError,
    ConfigError,
    LedgerError,
    RepeatedFailureError,
)
from ._events_lane import EventsLane
from ._failures import FailureWriter, input_name
from ._input import CsvOptions, InputFile, input_mapping, key_frames
from ._ledger import Ledger, LedgerEntry
from ._loose import ChangedRows, loose_keys
from ._mapping import ColumnMapping, resolve_mapping
from ._outcomes import SendErrorCode
from ._payloads import encode_rows
from ._plan import SendPlan
from ._plan import dry_run as _dry_run
from ._progress import Progress
from ._report import SendReport, Status
from ._row_keys import (
    CONTENT_SCHEME,
    ContentKeys,
    check_key_columns,
    check_unique,
    keys_for,
)
from ._rules import check_frame, first_failures
from ._sync import run_sync
from ._timeline import Timeline

__all__ = ["asend", "asend_path", "send", "send_path"]

MAPPING_KEYWORDS = frozenset(
    {"customer_id", "event_name", "event", "metadata", "email", "mobile", "session_token"}
)
# One place for the defaults that asend, asend_path and the CLI share.
DEFAULT_CONCURRENCY = 32  # an upper bound: requests in flight follow rate x round trip
DEFAULT_TIMEOUT = 30.0
DEFAULT_BATCH_ROWS = 50_000
DEFAULT_JOB_TIMEOUT = 300.0
#: Gameball's "others" row (30/s, 360 per 30 s), the likeliest limit for batch job creation.
BATCH_LIMITS = RateLimits(per_second=30, per_window=360)
#: Job status reads, assumed to count as GETs (100/s, 1,200 per 30 s); not documented.
STATUS_LIMITS = RateLimits(per_second=100, per_window=1200)

# What an HTTP header value may hold here: visible ASCII. A key read from a file with its
# newline, or pasted with a no-break space, is refused before anything is sent.
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The checked options of one send. Strictly private."""

    keys: Keys
    base_url: str
    api_version: str
    limits: RateLimits
    retry: RetryPolicy
    concurrency: int
    timeout: float
    retry_unknown: bool
    batch_rows: int
    row_key: tuple[Hashable, ...] | None
    mode: str = "events"
    batch_limits: RateLimits = BATCH_LIMITS
    status_limits: RateLimits = STATUS_LIMITS
    keep_order: bool = True
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    rebuild_ledger: bool = False
    resend_changed: bool = False


def _whole(name: str, value: object, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ConfigError(f"{name}= must be a whole number of at least {least}, not {value!r}")
    return int(value)


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(f"{name}= must be a number of seconds, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name}= must be a finite number of seconds above 0, not {value!r}")
    return number


def _check_key(keyword: str, env: str, value: str | None) -> None:
    if value is not None and not _HEADER_VALUE.fullmatch(value):
        # The key itself is never shown: it is a secret.
        raise ConfigError(
            f"{keyword}= holds whitespace or characters an HTTP header cannot carry (a newline "
            f"from a file? a no-break space?): fix it where you set {keyword}= or {env}"
        )


def _check_limits(name: str, limits: object) -> None:
    if limits is None or isinstance(limits, RateLimits):
        return
    example = ", ".join(f"{k}={v!r}" for k, v in limits.items()) if isinstance(limits, dict) else ""
    raise ConfigError(
        f"{name}= takes gb_backfill.RateLimits(...), not {type(limits).__name__}: "
        f"{name}=RateLimits({example or 'per_second=100, per_window=1200, window=30'})"
    )


def unknown_keywords(given: Sequence[str], known: Sequence[str], where: str) -> None:
    """Raise :class:`ConfigError` for keywords not in ``known``, naming the nearest known one."""
    for keyword in given:
        if keyword in known:
            continue
        near = difflib.get_close_matches(keyword, known, n=1)
        hint = f"; did you mean {near[0]}=?" if near else f"; the keywords are {', '.join(known)}"
        raise ConfigError(f"{where}() got an unknown keyword {keyword}={hint}")


def make_settings(
    *,
    api_key: str | None = None,
    secret_key: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    api_version: str = "4.0",
    limits: RateLimits | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    retry_unknown: bool = False,
    allow_insecure_http: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    row_key: Sequence[Hashable] | None = None,
    mode: Literal["events", "batch"] | str = "events",
    batch_limits: RateLimits | None = None,
    keep_order: bool = True,
    job_timeout: float = DEFAULT_JOB_TIMEOUT,
    rebuild_ledger: bool = False,
    resend_changed: bool = False,
    dry_run: bool = False,
) -> Settings:
    """Check every option of a send, in the caller's terms, before anything starts."""
    if mode not in ("events", "batch"):
        raise ConfigError(f"mode must be 'events' or 'batch', not {mode!r}")
    api_version = str(api_version).removeprefix("v")
    if api_version not in ("4.0", "4.1"):
        raise ConfigError(f"api_version= must be '4.0' or '4.1', not {api_version!r}")
    for name, value in (("api_key", api_key), ("secret_key", secret_key)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name}= must be a string, not {type(value).__name__}")
    # A dry run sends nothing, so it needs no key; a key it is given is still checked.
    keys = Keys.resolve(api_key, secret_key, required=not dry_run)
    _check_key("api_key", "GAMEBALL_API_KEY", keys.api_key or None)
    _check_key("secret_key", "GAMEBALL_SECRET_KEY", keys.secret_key)
    if api_version == "4.1" and not keys.secret_key and not dry_run:
        raise ConfigError(
            "api_version='4.1' needs the secret key: pass secret_key=... or set GAMEBALL_SECRET_KEY"
        )
    if mode == "batch" and not keys.secret_key and not dry_run:
        raise ConfigError(
            "mode='batch' needs the secret key (Gameball's batch API requires it): pass "
            "secret_key=... or set GAMEBALL_SECRET_KEY"
        )
    for name, given in (("limits", limits), ("batch_limits", batch_limits)):
        _check_limits(name, given)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigError(
            f"retry= takes gb_backfill.RetryPolicy(...), not {type(retry).__name__}: "
            "e.g. retry=RetryPolicy(attempts=6)"
        )
    if isinstance(row_key, str):
        raise ConfigError(f"row_key= takes a list of columns, e.g. row_key=[{row_key!r}]")
    return Settings(
        keys=keys,
        base_url=check_base_url(base_url, allow_insecure_http=allow_insecure_http),
        api_version=api_version,
        limits=limits or RateLimits(),
        retry=retry or RetryPolicy(),
        concurrency=_whole("concurrency", concurrency, least=1),
        timeout=_seconds("timeout", timeout),
        retry_unknown=bool(retry_unknown),
        batch_rows=_whole("batch_rows", batch_rows, least=1),
        row_key=tuple(row_key) if row_key else None,
        mode=mode,
        batch_limits=batch_limits or BATCH_LIMITS,
        # Lifting the batch limits (a local emulator) lifts the status reads' limits too.
        status_limits=(
            RateLimits.unlimited()
            if batch_limits is not None and not (batch_limits.per_second or batch_limits.per_window)
            else STATUS_LIMITS
        ),
        keep_order=bool(keep_order),
        job_timeout=_seconds("job_timeout", job_timeout),
        rebuild_ledger=bool(rebuild_ledger),
        resend_changed=bool(resend_changed),
    )


_SETTINGS_KEYWORDS = tuple(inspect.signature(make_settings).parameters)


# --- one run -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch checked, encoded and keyed, ready to be admitted."""

    batch: Batch
    jobs: list[Job]  #: one per valid row
    busy: list[int]  #: each job's customer's rows so far (batch mode), else 0
    worst: pd.DataFrame | None  #: the invalid rows' first failures


_BATCH_CONNECTIONS = 32
_SUBMIT_CHUNK = 2_000  # rows handed to the lanes between two turns of the event loop


class _Preparer:
    """Checks, encodes and keys batches and makes their jobs: the CPU-heavy part, which touches
    no run state, so it runs off the event loop. Strictly private."""

    def __init__(self, settings: Settings, mapping: ColumnMapping, *, loose: bool) -> None:
        self.settings, self.mapping, self.loose = settings, mapping, loose
        self.content_keys = ContentKeys()
        self.customer_counts = CustomerCounts()

    def close(self) -> None:
        self.content_keys.close()

    def prepare(self, frame: pd.DataFrame, offset: int) -> _Prepared:
        checked = check_frame(frame, self.mapping)
        encoded = encode_rows(frame, checked)
        keyed = keys_for(
            frame,
            encoded.positions,
            encoded.bodies,
            row_key=self.settings.row_key,
            counter=self.content_keys,
        )
        loose = loose_keys(frame, checked, encoded, self.content_keys) if self.loose else None
        batch = Batch(frame, offset, keyed, bool(self.settings.row_key), loose)
        batched = self.settings.mode == "batch"
        # How busy each row's customer is: batch mode sends the busiest first.
        busy = (
            self.customer_counts.add(encoded.customer_ids).tolist()
            if batched
            else [0] * len(encoded)
        )
        tokens = encoded.session_tokens or [None] * len(encoded)
        rows = zip(
            encoded.positions.tolist(),
            encoded.customer_ids,
            encoded.bodies,
            tokens,
            encoded.plain.tolist(),
            strict=True,
        )
        jobs = [
            # A batch item carries customerId and events only; the rest take the events lane.
            Job(batch, local, customer, body, token, index, BATCH if batched and simple else EVENTS)
            for index, (local, customer, body, token, simple) in enumerate(rows)
        ]
        worst = first_failures(checked.failures) if checked.invalid.any() else None
        return _Prepared(batch, jobs, busy, worst)


class _Admission:
    """Turns input batches into settled rows and jobs for the lane. Strictly private."""

    def __init__(
        self,
        settings: Settings,
        mapping: ColumnMapping,
        book: Bookkeeper,
        dispatcher: Dispatcher,
        ledger: Ledger | None,
    ) -> None:
        self.settings, self.mapping, self.book = settings, mapping, book
        self.dispatcher = dispatcher
        self.ledger = ledger
        self.preparer = _Preparer(settings, mapping, loose=ledger is not None)
        self.prepare = self.preparer.prepare
        #: the ledger knew rows before this run: unread rows are looked up even after a stop
        self.ledger_had_rows = ledger is not None and ledger.has_rows()

    def close(self) -> None:
        self.preparer.close()

    async def admit(self, prepared: _Prepared) -> None:
        """Settle what needs no request and hand the rest to the lanes.

        The ledger's lookup, the last thing that can fail, happens before the batch is counted
        in, so a failure (or a cancel) before then leaves the whole batch to the caller to
        abort. Once counted in, every row ends with a status even if this is cancelled.
        """
        batch, jobs, busy = prepared.batch, prepared.jobs, prepared.busy
        keys = batch.keys.keys if batch.keys is not None else []
        known = self.ledger.lookup(keys) if self.ledger is not None and keys else {}

        self.book.open_batch(batch)
        worst = prepared.worst
        if worst is not None:
            for local, code, message in zip(
                worst.index, worst["code"], worst["message"], strict=True
            ):
                self.book.settle(batch, int(local), Status.INVALID, code=code, message=message)
        settled = len(batch.frame) - len(jobs)
        if known:
            keep = [
                index
                for index, key in enumerate(keys)
                if (entry := known.get(key)) is None
                or not self._settled_by_ledger(batch, jobs[index].local, index, entry)
            ]
            settled += len(jobs) - len(keep)
            jobs, busy = [jobs[i] for i in keep], [busy[i] for i in keep]
        # Counted before any row is offered: a row may be recorded while the rest still wait.
        self.book.queued(batch, len(jobs), settled)
        submitted = 0
        try:
            for start in range(0, len(jobs), _SUBMIT_CHUNK):
                stop = min(start + _SUBMIT_CHUNK, len(jobs))
                for index in range(start, stop):
                    if self.book.stopped.is_set():
                        self.book.stopped_early(jobs[index])
                    else:
                        self.dispatcher.submit(jobs[index], rows=busy[index])
                submitted = stop
                await asyncio.sleep(0)  # let requests and answers through between chunks
        except BaseException:
            for job in jobs[submitted:]:
                self.book.stopped_early(job)
            raise

    async def account_unread(self, batches: Iterator[pd.DataFrame], offset: int) -> None:
        """Give every row the stopped run did not reach its status.

        Rows an earlier run sent or may have sent must not be called "not attempted": when the
        ledger held rows before this run, each batch is keyed and looked up (nothing is sent,
        as the run has stopped). Otherwise, or once that is interrupted too, rows are aborted.
        """
        careful = self.ledger is not None and self.ledger_had_rows
        try:
            for frame in batches:
                counted = self.book.rows
                if careful:
                    try:
                        prepared, cancelled = await _off_loop(self.prepare, frame, offset)
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

    def _settled_by_ledger(self, batch: Batch, local: int, index: int, entry: LedgerEntry) -> bool:
        """Apply what the ledger knows; True when the row is settled without a request."""
        if entry.status == "sent":
            self.book.settle(batch, local, Status.SKIPPED, code=None, message=None)
            return True
        if entry.status in ("unknown", "in_flight") and not self.settings.retry_unknown:
            message = "an earlier run may have sent this row; pass retry_unknown=True to resend"
            self.book.settle(
                batch, local, Status.UNKNOWN, code=SendErrorCode.UNKNOWN_EARLIER, message=message,
                key_index=index,
            )  # fmt: skip
            return True
        if entry.status == "failed" and not entry.retryable:
            self.book.settle(
                batch,
                local,
                Status.FAILED,
                code=entry.error_code,
                message=f"failed in an earlier run: {entry.error_message}",
                http_status=entry.http_status,
                key_index=index,
            )
            return True
        return False


def _note_changed_rows(
    ledger: Ledger, prepared: _Prepared, mapping: ColumnMapping, changed: ChangedRows
) -> None:
    """Note the rows of ``prepared`` that look like rows an earlier run sent, written
    differently (see :mod:`._loose`)."""
    batch = prepared.batch
    if batch.keys is None or batch.loose is None:
        return
    looses, forms = batch.loose
    found = ledger.changed(batch.keys.keys, looses)
    rows = {prepared.jobs[i].local: (int(forms[i]), then) for i, then in found.items()}
    if rows:
        changed.add(batch.frame, batch.offset, mapping, rows)


async def _refuse_changed_rows(
    read: Callable[[], Iterator[pd.DataFrame]],
    settings: Settings,
    mapping: ColumnMapping,
    ledger: Ledger,
) -> None:
    """Raise :class:`ChangedRowsError`, before anything is sent, when rows of the input look
    like rows an earlier run with ``ledger`` sent but are written differently.

    It reads the whole input once more (checking and keying it off the loop), and only when the
    ledger holds sent rows to compare with, so a first run pays nothing.
    """
    if settings.resend_changed or not ledger.has_loose_keys():
        return
    scanner = _Preparer(settings, mapping, loose=True)
    changed = ChangedRows()
    batches, offset = read(), 0
    try:
        while True:
            frame, cancelled = await _off_loop(next, batches, None)
            if frame is not None and not cancelled:
                prepared, cancelled = await _off_loop(scanner.prepare, frame, offset)
            if cancelled:
                raise asyncio.CancelledError
            if frame is None:
                break
            _note_changed_rows(ledger, prepared, mapping, changed)
            offset += len(frame)
    finally:
        scanner.close()
    if changed.count:
        raise ChangedRowsError(changed.message(), rows=changed.count, examples=changed.frame())


def _open_ledger(path: str | os.PathLike[str], settings: Settings) -> Ledger:
    ledger = Ledger(path, rebuild=settings.rebuild_ledger)
    scheme = f"columns {list(map(str, settings.row_key))}" if settings.row_key else CONTENT_SCHEME
    try:
        ledger.use_keys(scheme)
    except LedgerError:
        ledger.close()
        raise
    return ledger


def _client(settings: Settings) -> httpx.AsyncClient:
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


T = TypeVar("T")


async def _off_loop(fn: Callable[..., T], *args: Any) -> tuple[T, bool]:
    """Run ``fn`` in a worker thread, so the event loop keeps requests at their pace meanwhile.

    A thread cannot be interrupted: when the run is cancelled meanwhile, this still waits for
    ``fn`` and returns its result with True, so the caller can account for it, then stop.
    """
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(future), cancelled
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            cancelled = True


async def _send_batches(
    read: Callable[[], Iterator[pd.DataFrame]],
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
) -> SendReport:
    """One run; ``source`` is the input's path (None: a DataFrame)."""
    started = time.perf_counter()
    writer = FailureWriter(failures_path, input_name=input_name(source))
    writer.check()
    ledger = None
    try:
        if ledger_path is not None:
            ledger = _open_ledger(ledger_path, settings)
            await _refuse_changed_rows(read, settings, mapping, ledger)
    except BaseException:
        # Refused before anything was sent: no failures file, no parts left behind.
        if ledger is not None:
            ledger.close()
        writer.discard()
        raise
    batches = read()
    own_client = client is None
    http = client if client is not None else _client(settings)
    bar = Progress(total, enabled=progress)
    book = Bookkeeper(
        ledger=ledger,
        writer=writer,
        progress=bar,
        max_outstanding=max(
            (2 if settings.mode == "events" else 4) * settings.batch_rows,
            4 * settings.concurrency,
        ),
        # Batch mode keeps a busy customer's rows waiting one job cycle each: more batches may
        # wait on them while later rows fill jobs.
        max_live_batches=3 if settings.mode == "events" else 10,
    )
    dispatcher = Dispatcher(keep_order=settings.keep_order)
    lane = EventsLane(settings, http, book, dispatcher)
    jobs = BatchLane(settings, http, book, dispatcher)
    dispatcher.lanes = {EVENTS: lane, BATCH: jobs}
    bar.pace = lane.pace
    lane.timeline = jobs.timeline = Timeline()
    admission = _Admission(settings, mapping, book, dispatcher, ledger)
    interrupted = False
    offset = 0
    readable = True
    lane.start()
    jobs.start()
    try:
        try:
            if ledger is not None:
                # Jobs a crashed run posted: ask how they ended before deciding what to send.
                pending = ledger.pending_jobs()
                if pending:
                    await settle_earlier_jobs(jobs, pending)
                    ledger.commit()
            while not book.stopped.is_set():
                try:
                    frame, cancelled = await _off_loop(next, batches, None)
                except Exception as error:  # a file that breaks mid-read stops the run
                    readable = False
                    book.halt(error)
                    break
                if frame is None:
                    if cancelled:
                        raise asyncio.CancelledError
                    break
                counted = book.rows
                try:
                    if not cancelled:
                        prepared, cancelled = await _off_loop(admission.prepare, frame, offset)
                    if cancelled:
                        raise asyncio.CancelledError
                    await admission.admit(prepared)
                except (Exception, asyncio.CancelledError) as error:
                    if book.rows == counted:  # not counted yet: the whole batch is aborted
                        book.abort_unread(frame, offset)
                    offset += len(frame)
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    book.halt(error)  # checking, encoding, keys, the ledger
                    continue
                offset += len(frame)
                await book.room.wait()
            jobs.no_more_input()
            await book.drained.wait()
        except asyncio.CancelledError:
            interrupted = True
            book.halt()
        if book.stopped.is_set() and readable:
            await admission.account_unread(batches, offset)
        for job in dispatcher.waiting():
            book.stopped_early(job)
        await lane.close()
        await jobs.close()
        bar.finish(book.counts)
    finally:
        lane.cancel()
        jobs.cancel()
        bar.close()
        admission.close()
        if own_client:
            await http.aclose()
    failures = _finish_files(book, writer, ledger, columns)
    report = _report(
        book, (lane, jobs), time.perf_counter() - started, failures, writer, interrupted
    )
    _raise_for(book, (lane, jobs), report, interrupted)
    return report


def _finish_files(
    book: Bookkeeper, writer: FailureWriter, ledger: Ledger | None, columns: Sequence[Hashable]
) -> pd.DataFrame | None:
    """Complete the failures file and commit the ledger, even when the run failed."""
    failures: pd.DataFrame | None = None
    try:
        book.write_failures()
        failures = writer.close(columns)
    except OSError as error:
        book.halt(error)
        failures = writer.in_memory()
    if ledger is not None:
        try:
            ledger.close()
        except LedgerError as error:
            book.halt(error)
    return failures


def _report(
    book: Bookkeeper,
    lanes: tuple[EventsLane, BatchLane],
    elapsed: float,
    failures: pd.DataFrame | None,
    writer: FailureWriter,
    interrupted: bool,
) -> SendReport:
    counts = {status.value: book.counts[status] for status in Status}
    if sum(counts.values()) != book.rows:  # the promise every caller relies on
        raise AssertionError(f"statuses {counts} do not add up to {book.rows} rows")
    return SendReport(
        counts=counts,
        rows=book.rows,
        elapsed=elapsed,
        requests=sum(lane.requests for lane in lanes),
        http_statuses=dict(sum((lane.http_statuses for lane in lanes), Counter())),
        error_codes=dict(book.error_codes.most_common()),
        failures_path=writer.path if writer.finished else None,
        failures_in_memory=failures,
        interrupted=interrupted,
        limits_found=lanes[0].adaptive.found(time.monotonic()),
        limits=lanes[1].settings.batch_limits
        if lanes[0].settings.mode == "batch"
        else lanes[0].settings.limits,
        timeline=lanes[0].timeline.frame(),
    )


def _raise_for(
    book: Bookkeeper, lanes: tuple[EventsLane, BatchLane], report: SendReport, interrupted: bool
) -> None:
    """Raise what stopped the run, now that every row has its status."""
    where = f"; rows not sent are in {report.failures_path}" if report.failures_path else ""
    summary = f"{report!r}{where}"
    if interrupted:
        cancelled = asyncio.CancelledError()
        cancelled.report = report  # type: ignore[attr-defined]  # the CLI prints its counts
        raise cancelled
    error = book.error
    if error is not None:
        # The report travels with whatever stopped the run (most exceptions take attributes).
        with contextlib.suppress(AttributeError):
            error.report = report  # type: ignore[attr-defined]
        error.add_note(f"gb-backfill: the run stopped; {summary}")
        raise error
    failure = lanes[0].auth_failure or lanes[1].auth_failure
    if failure is not None:
        raise AuthenticationError(
            f"Gameball rejected the keys (HTTP {failure.http_status}: {failure.message}); the "
            f"run stopped and {report.counts['aborted']:,} rows were not attempted. Check the "
            "API key and secret key (GAMEBALL_API_KEY, GAMEBALL_SECRET_KEY) and the base URL.",
            status_code=failure.http_status or 401,
            report=report,
        )
    breaker = lanes[0].breaker if lanes[0].breaker.tripped_by else lanes[1].breaker
    tripped = breaker.tripped_by
    if tripped is not None:
        raise RepeatedFailureError(
            f"{breaker.threshold} requests in a row failed the same way ({tripped.code}: "
            f"{tripped.message}), so the run stopped instead of retrying every row. Check the "
            "base URL and that Gameball (or the emulator) is reachable; the rows it failed stay "
            "retryable in the ledger, so a fixed re-run sends them.",
            report=report,
        )


# --- the public functions -------------------------------------------------------------------


def _slices(df: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(df), rows):
        yield df.iloc[start : start + rows]
    if df.empty:
        yield df


async def asend(
    df: pd.DataFrame,
    *,
    api_key: str | None = None,
    secret_key: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    api_version: Literal["4.0", "4.1"] | str = "4.0",
    limits: RateLimits | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    retry_unknown: bool = False,
    allow_insecure_http: bool = False,
    ledger: str | os.PathLike[str] | None = None,
    row_key: Sequence[Hashable] | None = None,
    failures_path: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    client: httpx.AsyncClient | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    mode: Literal["events", "batch"] | str = "events",
    batch_limits: RateLimits | None = None,
    keep_order: bool = True,
    job_timeout: float = DEFAULT_JOB_TIMEOUT,
    rebuild_ledger: bool = False,
    resend_changed: bool = False,
    dry_run: bool = False,
    bodies_path: str | os.PathLike[str] | None = None,
    **mapping: Any,
) -> SendReport | SendPlan:
    """Send every valid row of ``df`` to Gameball as one event each; the async core.

    Keys default to the ``GAMEBALL_API_KEY`` and ``GAMEBALL_SECRET_KEY`` environment variables;
    ``api_version="4.1"`` needs the secret key. A row with a session token goes to v4.1 with an
    ``X-GB-TOKEN`` header. The mapping keywords (``customer_id=``, ``event=``, ...) are those
    of :func:`validate`.

    Requests stay within ``limits`` (Gameball's 100/s and 1,200 per 30 s by default), and slow
    down on their own when Gameball answers 429 (an account's real limit may be lower; the
    report says so). As many are in flight as the rate times the round trip needs, at most
    ``concurrency``, and one per customer, each customer's rows in input order.
    Retryable failures (429, 5xx, 2001, connection refused) are retried per ``retry``; other
    4xx fail the row; a request that may have been processed (timeout, connection lost) makes
    the row ``unknown`` and is not retried unless ``retry_unknown=True``.

    The run stops early, once every row has a status, with :class:`AuthenticationError` on
    401/403, with :class:`RepeatedFailureError` when the same failure ends several requests in a
    row (a wrong base URL, nothing listening), with :class:`LedgerError` when the ledger cannot
    be written, and with the error itself on anything unexpected; each carries the report so
    far as ``error.report`` (and as a note in the traceback). Rows failed by the run rather than
    by their content stay retryable in the ledger.

    With ``ledger=PATH``, rows sent by an earlier run with the same ledger are ``skipped``; see
    the README. A ledger whose database was deleted or replaced while its journal remains is
    refused; ``rebuild_ledger=True`` rebuilds it from the journal. Rows that look like rows an
    earlier run sent, written differently (numbers or timestamps as text, empty for missing),
    stop the run before anything is sent with :class:`ChangedRowsError`, unless
    ``resend_changed=True``. Rows not sent are written to
    ``failures_path`` (Parquet) and are in the report's ``failures``. ``client`` may be your
    own ``httpx.AsyncClient``; it is not closed.

    ``mode="batch"`` sends rows as Gameball batch jobs of up to 1,000 events (about 25 times
    fewer requests), within ``batch_limits`` (default 30/s and 360 per 30 s), polling each job
    until it ends or ``job_timeout`` seconds pass (its rows are then ``unknown``). A job holds
    at most one row per customer, and a customer's next row waits for its previous job unless
    ``keep_order=False``. Rows with an email, a mobile or a session token, which a batch item
    cannot carry, go one by one in the same run; the batch API needs the secret key.

    ``dry_run=True`` sends nothing: it checks and encodes every row as a live run would and
    returns a :class:`SendPlan` (counts, customers, event names, requests per lane, estimated
    time for each mode); ``bodies_path=`` writes the request bodies to JSONL.

    Cancelling (Ctrl-C) stops new requests, lets in-flight ones finish (for at most
    ``timeout`` seconds, or ``job_timeout`` for posted jobs), writes the failures file and
    re-raises.
    """
    unknown_keywords(list(mapping), sorted(MAPPING_KEYWORDS | set(_ASEND_KEYWORDS)), "send")
    settings = make_settings(
        api_key=api_key,
        secret_key=secret_key,
        base_url=base_url,
        api_version=api_version,
        limits=limits,
        retry=retry,
        concurrency=concurrency,
        timeout=timeout,
        retry_unknown=retry_unknown,
        allow_insecure_http=allow_insecure_http,
        batch_rows=batch_rows,
        row_key=row_key,
        mode=mode,
        batch_limits=batch_limits,
        keep_order=keep_order,
        job_timeout=job_timeout,
        rebuild_ledger=rebuild_ledger,
        resend_changed=resend_changed,
        dry_run=dry_run,
    )
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"send() takes a pandas DataFrame, not {type(df).__name__}")
    resolved = resolve_mapping(df.columns, **mapping)  # a bad mapping fails before anything starts
    if settings.row_key:
        check_key_columns(df.columns, settings.row_key)
        check_unique([df], settings.row_key)
    if dry_run:
        return _dry_run(
            _slices(df, settings.batch_rows),
            settings=settings,
            mapping=resolved,
            ledger_path=ledger,
            bodies_path=bodies_path,
        )
    return await _send_batches(
        lambda: _slices(df, settings.batch_rows),
        total=len(df),
        settings=settings,
        mapping=resolved,
        columns=list(df.columns),
        client=client,
        ledger_path=ledger,
        failures_path=failures_path,
        progress=progress,
    )


_ASEND_KEYWORDS = tuple(
    name for name in inspect.signature(asend).parameters if name not in ("df", "mapping")
)


def send(df: pd.DataFrame, **options: Any) -> SendReport | SendPlan:
    """Send ``df`` and wait for the report; the sync face of :func:`asend`, same keywords.

    Works in scripts and inside a running event loop (a Jupyter cell) alike::

        report = df.gameball.send(event="purchase", failures_path="failed.parquet")

    Inside a running loop the send runs on a private loop in a worker thread, so a ``client=``
    made for the caller's loop cannot be used there: in a notebook, pass your own client to
    ``await asend(...)`` instead.
    """
    return run_sync(asend(df, **options))


send.__signature__ = inspect.signature(asend)  # type: ignore[attr-defined]  # help() shows it


async def asend_path(
    path: str | os.PathLike[str],
    *,
    dtype: dict[Hashable, str] | None = None,
    na_values: Sequence[str] | None = None,
    encoding: str | None = None,
    sep: str | None = None,
    **options: Any,
) -> SendReport | SendPlan:
    """Send a CSV or Parquet file (or a directory or glob of them) without loading it whole;
    otherwise as :func:`asend`, with the same keywords.

    At most about ``2 * batch_rows`` rows are held in memory at any time. CSV is read without
    guessing: the mapped id, event name, email, mobile, session token and ``row_key`` columns as
    text exactly as written, only empty fields as missing (``na_values=`` adds more), and every
    other column's type decided once for the whole file (``dtype={"col": "int"}`` overrides it;
    the types are text, int, float, bool and datetime). ``encoding=`` and ``sep=`` as in
    ``pandas.read_csv``. A file that cannot be read fails with :class:`ConfigError` naming the
    place, before anything is sent.
    """
    known = sorted(MAPPING_KEYWORDS | set(_ASEND_KEYWORDS))
    unknown_keywords(list(options), known, "send_path")
    mapping = {k: v for k, v in options.items() if k in MAPPING_KEYWORDS}
    sending = {k: v for k, v in options.items() if k in _SETTINGS_KEYWORDS}
    settings = make_settings(**sending)
    csv = CsvOptions.make(sep=sep, encoding=encoding, na_values=na_values, dtype=dtype)
    resolved = input_mapping(path, csv, **mapping)
    text_columns = [*resolved.identifier_columns, *(settings.row_key or ())]
    source = InputFile(path, text_columns=text_columns, csv=csv)
    if settings.row_key:
        check_key_columns(source.columns, settings.row_key)
        keyed = key_frames(source.frames(batch_rows=settings.batch_rows), settings.row_key)
        check_unique(keyed, settings.row_key)
    if options.get("dry_run"):
        return _dry_run(
            source.frames(batch_rows=settings.batch_rows),
            settings=settings,
            mapping=resolved,
            ledger_path=options.get("ledger"),
            bodies_path=options.get("bodies_path"),
        )
    return await _send_batches(
        lambda: source.frames(batch_rows=settings.batch_rows),
        total=source.rows,
        settings=settings,
        mapping=resolved,
        columns=list(source.columns),
        client=options.get("client"),
        ledger_path=options.get("ledger"),
        failures_path=options.get("failures_path"),
        progress=options.get("progress"),
        source=path,
    )


def send_path(path: str | os.PathLike[str], **options: Any) -> SendReport | SendPlan:
    """Send a CSV or Parquet file, streaming it; the sync face of :func:`asend_path`."""
    return run_sync(asend_path(path, **options))


def _path_signature() -> inspect.Signature:
    files = inspect.signature(asend_path).parameters
    sending = inspect.signature(asend).parameters
    params = [files["path"], *(p for n, p in files.items() if n not in ("path", "options"))]
    params += [p for n, p in sending.items() if n != "df"]
    return inspect.Signature(params, return_annotation=SendReport | SendPlan)


send_path.__signature__ = _path_signature()  # type: ignore[attr-defined]
asend_path.__signature__ = _path_signature()  # type: ignore[attr-defined]
