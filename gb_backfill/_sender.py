"""Sending rows to Gameball: rate-limited, concurrent, retrying, and accounting for every row.

One async core, :func:`asend`, and its sync face, :func:`send`; :func:`send_path` and
:func:`asend_path` stream a CSV or Parquet file a batch at a time. How a run goes:

* rows are read a batch at a time (a DataFrame is sliced the same way), checked, and turned into
  request bodies; invalid rows end as ``invalid`` and are never sent;
* with a ledger, rows it records as sent end as ``skipped``, and rows whose outcome it does not
  know stay ``unknown`` (unless ``retry_unknown``);
* the rest wait in a queue per customer: at most one request per customer is in flight, and a
  customer's rows go out in input order, retries included;
* ``concurrency`` workers take customers from a ready queue and send through one rate limiter
  that keeps both of Gameball's windows;
* outcomes are classified by :mod:`._outcomes`: retry, fail, ``unknown`` (never retried unless
  asked), or stop the run at once on 401/403;
* rows not sent go to the failures file as their batch completes, so a crash leaves them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter, deque
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import pandas as pd

from ._config import DEFAULT_BASE_URL, Keys, RateLimits, RetryPolicy, check_base_url
from ._errors import AuthenticationError, ConfigError, LedgerError
from ._failures import FailureWriter, failure_rows
from ._input import CsvOptions, InputFile, columns_of, key_frames
from ._ledger import Ledger, LedgerEntry
from ._limiter import RateLimiter
from ._mapping import ColumnMapping, resolve_mapping
from ._outcomes import Outcome, Verdict, classify_error, classify_response
from ._payloads import encode_rows
from ._progress import Progress
from ._report import STATUSES, SendReport
from ._row_keys import (
    CONTENT_SCHEME,
    ContentKeys,
    as_keys,
    check_key_columns,
    check_unique,
    natural_hashes,
)
from ._rules import check_frame, first_failures
from ._sync import run_sync

__all__ = ["asend", "asend_path", "send", "send_path"]

MAPPING_KEYWORDS = frozenset(
    {"customer_id", "event_name", "event", "metadata", "email", "mobile", "session_token"}
)
# One place for the defaults that asend, asend_path and the CLI share.
DEFAULT_CONCURRENCY = 8  # ~40 requests/s at 50-200 ms latency need only a few in flight
DEFAULT_TIMEOUT = 30.0
DEFAULT_BATCH_ROWS = 50_000
_EVENTS_PATH = "/api/v{version}/integrations/events"
_USER_AGENT = "gb-backfill"
_FINAL_STATUS = {
    Verdict.SENT: "sent",
    Verdict.FAILED: "failed",
    Verdict.UNKNOWN: "unknown",
    Verdict.AUTH: "failed",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Settings:
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


# A row that ends without being sent: position in its batch, status, code, message, HTTP
# status, attempts, gb_key.
_NotSent = tuple[int, str, str | None, str | None, int | None, int, str | None]
_WRITE_FAILURES_EVERY = 2.0  # seconds
_MAX_LIVE_BATCHES = 3


@dataclass(eq=False, slots=True)
class _Batch:
    """One slice of the input, kept until every row in it has its final status."""

    frame: pd.DataFrame
    offset: int
    pending: int = 0
    not_sent: list[_NotSent] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Job:
    batch: _Batch
    local: int
    customer: str
    body: bytes
    token: str | None
    key: bytes
    key_text: str
    attempts: int = 0


class _Run:
    """The state of one send. Strictly private: built and driven by :func:`_send_batches`."""

    def __init__(
        self,
        settings: _Settings,
        client: httpx.AsyncClient,
        ledger: Ledger | None,
        writer: FailureWriter,
        progress: Progress,
        mapping: ColumnMapping,
    ) -> None:
        self.settings = settings
        self.mapping = mapping
        self.client = client
        self.ledger = ledger
        self.writer = writer
        self.progress = progress
        self.counts: Counter[str] = Counter(dict.fromkeys(STATUSES, 0))
        self.error_codes: Counter[str] = Counter()
        self.content_keys = ContentKeys()
        self.http_statuses: Counter[int] = Counter()
        self.requests = 0
        self.rows = 0
        self.retrying = 0
        self.auth_failure: Outcome | None = None
        self.unwritten: set[_Batch] = set()
        self.written_at = -_WRITE_FAILURES_EVERY  # the first failure is written at once
        self.stop = asyncio.Event()
        self.limiter = RateLimiter(settings.limits)
        self.random = random.Random()
        self.queues: dict[str, deque[_Job]] = {}
        self.ready: asyncio.Queue[str | None] = asyncio.Queue()
        self.outstanding = 0
        # Rows admitted but not finished; reading pauses above this, so memory stays bounded.
        self.max_outstanding = max(2 * settings.batch_rows, 4 * settings.concurrency)
        # Batches with rows still pending; each holds its frame. A customer stuck in retries
        # could otherwise keep one row, and so one frame, alive in every batch read since.
        self.live_batches = 0
        self.room = asyncio.Event()
        self.room.set()
        self.drained = asyncio.Event()
        self.drained.set()
        base = settings.base_url
        self.urls = {v: base + _EVENTS_PATH.format(version=v) for v in ("4.0", "4.1")}
        self.headers = {
            "APIKey": settings.keys.api_key,
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if settings.keys.secret_key:
            self.headers["SecretKey"] = settings.keys.secret_key

    # --- admitting input ---------------------------------------------------------------

    def admit(self, frame: pd.DataFrame, offset: int) -> None:
        """Check a batch, settle what needs no request, and queue the rest per customer."""
        self.rows += len(frame)
        batch = _Batch(frame, offset)
        checked = check_frame(frame, self.mapping)
        if checked.invalid.any():
            worst = first_failures(checked.failures)
            for local, code, message in zip(
                worst.index, worst["code"], worst["message"], strict=True
            ):
                self.not_sent(batch, (int(local), "invalid", code, message, None, 0, None))
            self.counts["invalid"] += len(worst)
        encoded = encode_rows(frame, checked)
        if self.settings.row_key:
            valid = frame.iloc[encoded.positions]
            keys = as_keys(natural_hashes(valid, self.settings.row_key))
            key_texts = [key.hex() for key in keys]
        else:
            carried = None
            if "gb_key" in frame.columns:
                carried = frame["gb_key"].iloc[encoded.positions].tolist()
            keys, key_texts = self.content_keys.keys(encoded.bodies, carried)
        known: dict[bytes, LedgerEntry] = {}
        if self.ledger is not None and len(encoded):
            known = self.ledger.lookup(keys)
        tokens = encoded.session_tokens or [None] * len(encoded)
        settled = len(frame) - len(encoded)
        for local, customer, body, token, key, key_text in zip(
            encoded.positions.tolist(),
            encoded.customer_ids,
            encoded.bodies,
            tokens,
            keys,
            key_texts,
            strict=True,
        ):
            entry = known.get(key)
            if entry is not None and not self._needs_sending(batch, local, entry, key_text):
                settled += 1
                continue
            job = _Job(batch, local, customer, body, token, key, key_text)
            batch.pending += 1
            queue = self.queues.get(customer)
            if queue is None:
                self.queues[customer] = deque([job])
                self.ready.put_nowait(customer)
            else:
                queue.append(job)
        self.outstanding += batch.pending
        if batch.pending:
            self.live_batches += 1
        if self.outstanding:
            self.drained.clear()
        if not self.has_room():
            self.room.clear()
        self.progress.advance(settled, self.counts, self.retrying)

    def _needs_sending(self, batch: _Batch, local: int, entry: LedgerEntry, key: str) -> bool:
        """Apply what the ledger knows; False when the row is settled without a request."""
        if entry.status == "sent":
            self.counts["skipped"] += 1
            return False
        if entry.status in ("unknown", "in_flight") and not self.settings.retry_unknown:
            message = "an earlier run may have sent this row; pass retry_unknown=True to resend"
            self.not_sent(batch, (local, "unknown", "unknown_earlier", message, None, 0, key))
            self.counts["unknown"] += 1
            return False
        if entry.status == "failed" and not entry.retryable:
            message = f"failed in an earlier run: {entry.error_message}"
            failure = (local, "failed", entry.error_code, message, entry.http_status, 0, key)
            self.not_sent(batch, failure)
            self.counts["failed"] += 1
            return False
        return True

    def abort_unread(self, frame: pd.DataFrame, offset: int) -> None:
        """Account a batch read after the run stopped: every row ``aborted``."""
        self.rows += len(frame)
        self.counts["aborted"] += len(frame)
        message = "not attempted: the run stopped"
        rows = failure_rows(
            frame,
            np.arange(len(frame)),
            status="aborted",
            code="aborted",
            message=message,
            row_offset=offset,
        )
        self.writer.add(rows)
        self.progress.advance(len(frame), self.counts, self.retrying)

    # --- finishing rows -------------------------------------------------------------------

    def finish(
        self, job: _Job, status: str, outcome: Outcome | None, *, retryable: bool = False
    ) -> None:
        self.counts[status] += 1
        batch = job.batch
        if status != "sent":
            code = outcome.code if outcome else status
            message = outcome.message if outcome else "not attempted: the run stopped"
            http = outcome.http_status if outcome else None
            self.not_sent(
                batch, (job.local, status, code, message, http, job.attempts, job.key_text)
            )
        if self.ledger is not None and job.attempts:
            self.ledger.settle(
                job.key,
                status,
                retryable=retryable,
                attempts=job.attempts,
                http_status=outcome.http_status if outcome else None,
                error_code=outcome.code if outcome else None,
                error_message=outcome.message if outcome else None,
            )
        batch.pending -= 1
        self.outstanding -= 1
        if not batch.pending:
            self.live_batches -= 1
        self.write_failures_soon()
        if self.has_room():
            self.room.set()
        if not self.outstanding:
            self.drained.set()
        self.progress.advance(1, self.counts, self.retrying)

    def has_room(self) -> bool:
        """True while reading another batch keeps memory within its bound."""
        return self.outstanding < self.max_outstanding and self.live_batches < _MAX_LIVE_BATCHES

    def not_sent(self, batch: _Batch, entry: _NotSent) -> None:
        """Note a row that ends without being sent; it reaches the failures file soon."""
        batch.not_sent.append(entry)
        self.error_codes[entry[2] or entry[1]] += 1
        self.unwritten.add(batch)
        self.write_failures_soon()

    def write_failures_soon(self) -> None:
        """Write noted rows if the last write is a while ago; called as rows come and go."""
        if self.unwritten and time.monotonic() - self.written_at > _WRITE_FAILURES_EVERY:
            self.write_failures()

    def write_failures(self) -> None:
        """Write every noted row as a complete Parquet part, so a crash cannot lose it."""
        for batch in self.unwritten:
            local, status, code, message, http, attempts, keys = zip(*batch.not_sent, strict=True)
            self.writer.add(
                failure_rows(
                    batch.frame,
                    np.asarray(local, dtype=np.int64),
                    status=status,
                    code=code,
                    message=message,
                    http_status=http,
                    attempts=attempts,
                    keys=keys,
                    row_offset=batch.offset,
                )
            )
            batch.not_sent.clear()
        # Finished batches are let go here: nothing refers to their frames any more.
        self.unwritten.clear()
        self.writer.flush()
        self.written_at = time.monotonic()

    def halt(self) -> None:
        """Stop starting requests; in-flight ones finish, queued rows end ``aborted``."""
        self.stop.set()
        self.room.set()
        self.drained.set()

    # --- sending ---------------------------------------------------------------------------

    async def worker(self) -> None:
        while True:
            customer = await self.ready.get()
            if customer is None:
                return
            queue = self.queues[customer]
            while queue and not self.stop.is_set():
                await self.deliver(queue.popleft())
            if not queue:
                del self.queues[customer]

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the run stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def deliver(self, job: _Job) -> None:
        """Send one row, retrying what is safe to retry, and record its final status."""
        settings = self.settings
        version = "4.1" if job.token else settings.api_version
        headers = self.headers if not job.token else {**self.headers, "X-GB-TOKEN": job.token}
        last: Outcome | None = None
        while True:
            if not await self.limiter.acquire(self.stop):
                if last is None:
                    self.finish(job, "aborted", None)
                else:
                    stopped = f"the run stopped before the next retry; last error: {last.message}"
                    self.finish(job, "failed", replace(last, message=stopped), retryable=True)
                return
            if self.ledger is not None and not job.attempts:
                self.ledger.begin(job.key, job.customer, job.batch.offset + job.local)
            job.attempts += 1
            self.requests += 1
            try:
                response = await self.client.post(
                    self.urls[version], content=job.body, headers=headers
                )
            except httpx.HTTPError as error:
                last = classify_error(error)
            except asyncio.CancelledError:
                message = "the run was interrupted while this request was in flight"
                self.finish(job, "unknown", Outcome(Verdict.UNKNOWN, "interrupted", message))
                raise
            else:
                self.http_statuses[response.status_code] += 1
                last = classify_response(response)
            verdict = last.verdict
            if verdict is Verdict.UNKNOWN and settings.retry_unknown:
                verdict = Verdict.RETRY
            if verdict is Verdict.AUTH:
                self.auth_failure = self.auth_failure or last
                self.halt()
            if verdict is not Verdict.RETRY:
                self.finish(job, _FINAL_STATUS[verdict], last)
                return
            if job.attempts >= settings.retry.attempts:
                message = f"gave up after {job.attempts} attempts; last error: {last.message}"
                self.finish(job, "failed", replace(last, message=message), retryable=True)
                return
            wait = last.retry_after
            if wait is None:
                wait = settings.retry.backoff(job.attempts, self.random.random())
            if last.http_status == 429:
                # A 429 means the account is over its limit: hold every worker, not just this one.
                self.limiter.defer(wait)
            self.retrying += 1
            await self._pause(wait)
            self.retrying -= 1

    def report(
        self, elapsed: float, failures: pd.DataFrame | None, path: Path | None, interrupted: bool
    ) -> SendReport:
        counts = {status: self.counts[status] for status in STATUSES}
        if sum(counts.values()) != self.rows:  # the promise every caller relies on
            raise AssertionError(f"statuses {counts} do not add up to {self.rows} rows")
        return SendReport(
            counts=counts,
            rows=self.rows,
            elapsed=elapsed,
            requests=self.requests,
            http_statuses=dict(self.http_statuses),
            error_codes=dict(self.error_codes.most_common()),
            failures_in_memory=failures,
            failures_path=path,
            interrupted=interrupted,
        )


def _open_ledger(path: str | os.PathLike[str], settings: _Settings) -> Ledger:
    ledger = Ledger(path)
    scheme = f"columns {list(map(str, settings.row_key))}" if settings.row_key else CONTENT_SCHEME
    try:
        ledger.use_keys(scheme)
    except LedgerError:
        ledger.close()
        raise
    return ledger


async def _send_batches(
    batches: Iterator[pd.DataFrame],
    *,
    total: int | None,
    settings: _Settings,
    mapping: ColumnMapping,
    columns: Sequence[Hashable],
    client: httpx.AsyncClient | None,
    ledger_path: str | os.PathLike[str] | None,
    failures_path: str | os.PathLike[str] | None,
    progress: bool | None,
) -> SendReport:
    started = time.perf_counter()
    ledger = _open_ledger(ledger_path, settings) if ledger_path is not None else None
    own_client = client is None
    if client is None:
        limits = httpx.Limits(
            max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
        )
        timeout = httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0), pool=None)
        client = httpx.AsyncClient(limits=limits, timeout=timeout)
    writer = FailureWriter(failures_path)
    bar = Progress(total, enabled=progress)
    run = _Run(settings, client, ledger, writer, bar, mapping)
    workers = [asyncio.create_task(run.worker()) for _ in range(settings.concurrency)]
    interrupted = False
    offset = 0
    try:
        try:
            for frame in batches:
                if run.stop.is_set():
                    run.abort_unread(frame, offset)
                else:
                    run.admit(frame, offset)
                offset += len(frame)
                await run.room.wait()
            await run.drained.wait()
        except asyncio.CancelledError:
            interrupted = True
            run.halt()
            # Every row must be accounted for: the rest of the input is read and aborted.
            for frame in batches:
                run.abort_unread(frame, offset)
                offset += len(frame)
        for _ in workers:
            run.ready.put_nowait(None)
        # In-flight requests may finish (bounded by the timeout); then they are cut off.
        grace = settings.timeout + 1.0 if run.stop.is_set() else None
        _, late = await asyncio.wait(workers, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for queue in run.queues.values():
            while queue:
                run.finish(queue.popleft(), "aborted", None)
        run.write_failures()
    finally:
        for task in workers:
            task.cancel()
        bar.close()
        run.content_keys.close()
        if ledger is not None:
            ledger.close()
        if own_client:
            await client.aclose()
    failures = writer.close(columns)
    path = Path(failures_path) if failures_path is not None else None
    report = run.report(time.perf_counter() - started, failures, path, interrupted)
    if interrupted:
        raise asyncio.CancelledError
    if run.auth_failure is not None:
        failure = run.auth_failure
        raise AuthenticationError(
            f"Gameball rejected the keys (HTTP {failure.http_status}: {failure.message}); the "
            f"run stopped and {report.counts['aborted']:,} rows were not attempted. Check the "
            "API key and secret key (GAMEBALL_API_KEY, GAMEBALL_SECRET_KEY) and the base URL.",
            status_code=failure.http_status or 401,
            report=report,
        )
    return report


def _settings(
    *,
    mapping: dict[str, Any],
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
) -> _Settings:
    unknown = set(mapping) - MAPPING_KEYWORDS
    if unknown:
        raise ConfigError(
            f"unknown keyword(s) {', '.join(sorted(unknown))}; the mapping keywords are "
            f"{', '.join(sorted(MAPPING_KEYWORDS))}"
        )
    api_version = str(api_version).removeprefix("v")
    if api_version not in ("4.0", "4.1"):
        raise ConfigError(f"api_version must be '4.0' or '4.1', not {api_version!r}")
    keys = Keys.resolve(api_key, secret_key)
    if api_version == "4.1" and not keys.secret_key:
        raise ConfigError(
            "api_version='4.1' needs the secret key: pass secret_key=... or set GAMEBALL_SECRET_KEY"
        )
    if concurrency < 1 or timeout <= 0 or batch_rows < 1:
        raise ConfigError("concurrency and batch_rows must be at least 1, timeout > 0 seconds")
    if isinstance(row_key, str):
        raise ConfigError(f"row_key takes a list of columns, e.g. row_key=[{row_key!r}]")
    return _Settings(
        keys=keys,
        base_url=check_base_url(base_url, allow_insecure_http=allow_insecure_http),
        api_version=api_version,
        limits=limits or RateLimits(),
        retry=retry or RetryPolicy(),
        concurrency=concurrency,
        timeout=timeout,
        retry_unknown=retry_unknown,
        batch_rows=batch_rows,
        row_key=tuple(row_key) if row_key else None,
    )


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
    **mapping: Any,
) -> SendReport:
    """Send every valid row of ``df`` to Gameball as one event each; the async core.

    Keys default to the ``GAMEBALL_API_KEY`` and ``GAMEBALL_SECRET_KEY`` environment variables;
    ``api_version="4.1"`` needs the secret key. A row with a session token goes to v4.1 with an
    ``X-GB-TOKEN`` header. The mapping keywords (``customer_id=``, ``event=``, ...) are those
    of :func:`validate`.

    Requests stay within ``limits`` (Gameball's 100/s and 1,200 per 30 s by default), at most
    ``concurrency`` at once and one per customer, each customer's rows in input order.
    Retryable failures (429, 5xx, 2001, connection refused) are retried per ``retry``; other
    4xx fail the row; a request that may have been processed (timeout, connection lost) makes
    the row ``unknown`` and is not retried unless ``retry_unknown=True``. 401/403 stop the run
    at once with :class:`AuthenticationError` (its ``report`` holds the run so far).

    With ``ledger=PATH``, rows sent by an earlier run with the same ledger are ``skipped``; see
    the README. Rows not sent are written to ``failures_path`` (Parquet) and are in the
    report's ``failures``. ``client`` may be your own ``httpx.AsyncClient``; it is not closed.

    Cancelling (Ctrl-C) stops new requests, lets in-flight ones finish (for at most
    ``timeout`` seconds), writes the failures file and re-raises.
    """
    settings = _settings(
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
        mapping=mapping,
    )
    resolved = resolve_mapping(df.columns, **mapping)  # a bad mapping fails before anything starts
    if settings.row_key:
        check_key_columns(df.columns, settings.row_key)
        check_unique([df], settings.row_key)
    return await _send_batches(
        _slices(df, settings.batch_rows),
        total=len(df),
        settings=settings,
        mapping=resolved,
        columns=list(df.columns),
        client=client,
        ledger_path=ledger,
        failures_path=failures_path,
        progress=progress,
    )


def send(df: pd.DataFrame, **options: Any) -> SendReport:
    """Send ``df`` and wait for the report; the sync face of :func:`asend`, same keywords.

    Works in scripts and inside a running event loop (a Jupyter cell) alike::

        report = df.gameball.send(event="purchase", failures_path="failed.parquet")

    Inside a running loop the send runs on a private loop in a worker thread, so a ``client=``
    made for the caller's loop cannot be used there: in a notebook, pass your own client to
    ``await asend(...)`` instead.
    """
    return run_sync(asend(df, **options))


async def asend_path(
    path: str | os.PathLike[str],
    *,
    row_key: Sequence[Hashable] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: bool | None = None,
    dtype: dict[Hashable, str] | None = None,
    na_values: Sequence[str] | None = None,
    encoding: str | None = None,
    sep: str | None = None,
    **options: Any,
) -> SendReport:
    """Send a CSV or Parquet file (or a directory or glob of them) without loading it whole;
    otherwise as :func:`asend`.

    At most about ``2 * batch_rows`` rows are held in memory at any time. CSV is read without
    guessing: the mapped id, event name, email, mobile, session token and ``row_key`` columns as
    text exactly as written, only empty fields as missing (``na_values=`` adds more), and every
    other column's type decided once for the whole file (``dtype={"col": "int"}`` overrides it;
    the types are text, int, float, bool and datetime). ``encoding=`` and ``sep=`` as in
    ``pandas.read_csv``.
    """
    mapping = {k: v for k, v in options.items() if k in MAPPING_KEYWORDS}
    sending = {k: v for k, v in options.items() if k not in MAPPING_KEYWORDS}
    ledger_path = sending.pop("ledger", None)
    failures_path = sending.pop("failures_path", None)
    client = sending.pop("client", None)
    try:
        settings = _settings(mapping=mapping, batch_rows=batch_rows, row_key=row_key, **sending)
    except TypeError as error:  # an unknown keyword
        raise ConfigError(f"send_path(): {error}") from None
    csv = CsvOptions.make(sep=sep, encoding=encoding, na_values=na_values, dtype=dtype)
    resolved = resolve_mapping(columns_of(path, csv), **mapping)
    text_columns = [
        c
        for c in (
            resolved.customer_id,
            resolved.event_name,
            resolved.email,
            resolved.mobile,
            resolved.session_token,
            *(settings.row_key or ()),
        )
        if c is not None
    ]
    source = InputFile(path, text_columns=text_columns, csv=csv)
    if settings.row_key:
        check_key_columns(source.columns, settings.row_key)
        keyed = key_frames(source.frames(batch_rows=batch_rows), settings.row_key)
        check_unique(keyed, settings.row_key)
    return await _send_batches(
        source.frames(batch_rows=batch_rows),
        total=source.rows,
        settings=settings,
        mapping=resolved,
        columns=list(source.columns),
        client=client,
        ledger_path=ledger_path,
        failures_path=failures_path,
        progress=progress,
    )


def send_path(path: str | os.PathLike[str], **options: Any) -> SendReport:
    """Send a CSV or Parquet file, streaming it; the sync face of :func:`asend_path`."""
    return run_sync(asend_path(path, **options))
