"""Sending to Gameball: the public functions, one async core and its sync face.

:func:`asend` sends a DataFrame and :func:`asend_path` a CSV or Parquet file (or a directory or
glob of them) a batch at a time; :func:`send` and :func:`send_path` are their sync faces, which
work inside a running event loop (a Jupyter cell) too. Each checks every option first (see
:mod:`gb_backfill._config`), resolves the column mapping, and hands the input to one run
(:mod:`gb_backfill._engine.run`), or to the dry run (:mod:`gb_backfill._engine.plan`), which sends
nothing.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Hashable, Sequence
from typing import Any, Literal, overload

import httpx
import pandas as pd

from . import _gameball as gameball
from ._config import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_CONCURRENCY,
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_TIMEOUT,
    MAPPING_KEYWORDS,
    RateLimits,
    RetryPolicy,
    check_progress,
    make_settings,
    unknown_keywords,
)
from ._engine.plan import dry_run_plan
from ._engine.run import run_send
from ._errors import ConfigError
from ._input.reader import CsvOptions, InputFile, frame_chunks, input_mapping, key_frames
from ._reports.send import SendPlan, SendReport
from ._rows.keys import check_key_columns, check_unique
from ._rows.mapping import resolve_mapping
from ._sync import run_sync

__all__ = ["asend", "asend_path", "send", "send_path"]

_SETTINGS_KEYWORDS = tuple(inspect.signature(make_settings).parameters)


@overload
async def asend(df: pd.DataFrame, *, dry_run: Literal[True], **options: Any) -> SendPlan: ...
@overload
async def asend(
    df: pd.DataFrame, *, dry_run: Literal[False] = False, **options: Any
) -> SendReport: ...
async def asend(
    df: pd.DataFrame,
    *,
    api_key: str | None = None,
    secret_key: str | None = None,
    base_url: str = gameball.BASE_URL,
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
    reserve: float = 0.0,
    dry_run: bool = False,
    bodies_path: str | os.PathLike[str] | None = None,
    **mapping: Any,
) -> SendReport | SendPlan:
    """Send every valid row of ``df`` to Gameball as one event each; the async core.

    Keys default to the ``GAMEBALL_API_KEY`` and ``GAMEBALL_SECRET_KEY`` environment variables;
    ``api_version="4.1"`` needs the secret key. A row with a session token goes to v4.1 with an
    ``X-GB-TOKEN`` header. The mapping keywords (``customer_id=``, ``event=``, ...) are those
    of :func:`validate`.

    Requests stay within ``limits`` (Gameball's 100/s and 1,200 per 30 s by default) less the
    ``reserve`` share left for other clients of the key (a live shop), and slow down when
    Gameball answers 429 (a lower real limit is found and reported). In flight: the rate times
    the round trip, at most ``concurrency``, one per customer, each customer's rows in input
    order. Retryable failures (429, 5xx, 2001, connection refused) are retried per ``retry``;
    other 4xx fail the row; a request that may have been processed (timeout, connection lost)
    makes the row ``unknown``, not retried unless ``retry_unknown=True``.

    The run stops early, once every row has a status, with :class:`AuthenticationError` on
    401/403, with :class:`RepeatedFailureError` when the same failure ends several requests in a
    row (a wrong base URL, nothing listening), with :class:`LedgerError` when the ledger cannot
    be written, and with the error itself on anything unexpected; each carries the report so
    far as ``error.report`` (and as a note in the traceback). Rows failed by the run rather than
    by their content stay retryable in the ledger.

    With ``ledger=PATH``, rows sent by an earlier run with the same ledger are ``skipped``, and a
    row that carries a ``gb_key`` (a failures file sent again, edited or not) is judged by that
    key's word in the ledger; copies of one ``gb_key`` in the input are sent at most once. See
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

    Cancelling (Ctrl-C) stops new requests, lets in-flight ones finish (at most ``timeout``
    seconds, or ``job_timeout`` for posted jobs), writes the failures file and re-raises.
    """
    unknown_keywords(list(mapping), sorted(MAPPING_KEYWORDS | set(_ASEND_KEYWORDS)), "send")
    check_progress(progress)
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
        reserve=reserve,
        dry_run=dry_run,
    )
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"send() takes a pandas DataFrame, not {type(df).__name__}")
    resolved = resolve_mapping(df.columns, **mapping)  # a bad mapping fails before anything starts
    if settings.row_key:
        check_key_columns(df.columns, settings.row_key)
        check_unique([df], settings.row_key)
    if dry_run:
        return dry_run_plan(
            lambda: frame_chunks(df, settings.batch_rows), settings=settings, mapping=resolved,
            ledger_path=ledger, bodies_path=bodies_path, columns=list(df.columns),
        )  # fmt: skip
    return await run_send(
        lambda: frame_chunks(df, settings.batch_rows),
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


@overload
def send(df: pd.DataFrame, *, dry_run: Literal[True], **options: Any) -> SendPlan: ...
@overload
def send(df: pd.DataFrame, *, dry_run: Literal[False] = False, **options: Any) -> SendReport: ...
def send(df: pd.DataFrame, **options: Any) -> SendReport | SendPlan:
    """Send ``df`` and wait for the report; the sync face of :func:`asend`, same keywords.

    Works in scripts and inside a running event loop (a Jupyter cell) alike::

        report = df.gameball.send(event="purchase", failures_path="failed.parquet")

    Inside a running loop the send runs on a private loop in a worker thread, so a ``client=``
    made for the caller's loop cannot be used there: in a notebook, pass your own client to
    ``await asend(...)`` instead.
    """
    result: SendReport | SendPlan = run_sync(asend(df, **options))
    return result


send.__signature__ = inspect.signature(asend)  # type: ignore[attr-defined]  # help() shows it


@overload
async def asend_path(
    path: str | os.PathLike[str], *, dry_run: Literal[True], **options: Any
) -> SendPlan: ...
@overload
async def asend_path(
    path: str | os.PathLike[str], *, dry_run: Literal[False] = False, **options: Any
) -> SendReport: ...
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
    check_progress(options.get("progress"))
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
        return dry_run_plan(
            lambda: source.frames(batch_rows=settings.batch_rows), settings=settings,
            mapping=resolved, ledger_path=options.get("ledger"),
            bodies_path=options.get("bodies_path"), columns=list(source.columns),
        )  # fmt: skip
    return await run_send(
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
        types=source.types,
    )


@overload
def send_path(
    path: str | os.PathLike[str], *, dry_run: Literal[True], **options: Any
) -> SendPlan: ...
@overload
def send_path(
    path: str | os.PathLike[str], *, dry_run: Literal[False] = False, **options: Any
) -> SendReport: ...
def send_path(path: str | os.PathLike[str], **options: Any) -> SendReport | SendPlan:
    """Send a CSV or Parquet file, streaming it; the sync face of :func:`asend_path`."""
    result: SendReport | SendPlan = run_sync(asend_path(path, **options))
    return result


def _path_signature() -> inspect.Signature:
    files = inspect.signature(asend_path).parameters
    sending = inspect.signature(asend).parameters
    params = [files["path"], *(p for n, p in files.items() if n not in ("path", "options"))]
    params += [p for n, p in sending.items() if n != "df"]
    return inspect.Signature(params, return_annotation=SendReport | SendPlan)


send_path.__signature__ = _path_signature()  # type: ignore[attr-defined]
asend_path.__signature__ = _path_signature()  # type: ignore[attr-defined]
