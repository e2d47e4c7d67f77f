"""Sending to Gameball, and its dry run: the public functions, async cores with sync faces.

:func:`asend` sends a DataFrame and :func:`asend_path` a CSV or Parquet file (or a directory or
glob of them) a batch at a time; :func:`aplan` and :func:`aplan_path` are their dry runs, which
send nothing. :func:`send`, :func:`send_path`, :func:`plan` and :func:`plan_path` are their sync
faces, which work inside a running event loop (a Jupyter cell) too. Their keywords are declared
once in :mod:`gb_backfill._options`; each face checks them, resolves the column mapping, and hands
the input to one run (:mod:`gb_backfill._engine.run`) or to the dry run
(:mod:`gb_backfill._engine.plan`). Every pass over the input runs off the caller's event loop.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ._config import Settings
from ._engine.plan import plan_run
from ._engine.run import run_send
from ._faces import declared, open_input, sync_of
from ._input.arrow import ArrowInput, Frame, FrameInput, open_frame
from ._input.reader import key_frames
from ._input.stores import shown_path
from ._options import (
    PlanOptions,
    PlanPathOptions,
    SendOptions,
    SendPathOptions,
    live_refusal,
    make_settings,
    mapping_of,
    read_with_of,
)
from ._reports.plan import SendPlan
from ._reports.send import SendReport
from ._rows.keys import check_key_columns, check_unique
from ._rows.mapping import ColumnMapping, resolve_mapping
from ._stops import raise_for
from ._store.failures import input_name
from ._sync import offload

__all__ = [
    "aplan",
    "aplan_path",
    "asend",
    "asend_path",
    "plan",
    "plan_path",
    "send",
    "send_path",
]


async def _frame_input(
    df: Frame, options: SendOptions, function: str, *, dry_run: bool = False
) -> tuple[Settings, ColumnMapping, FrameInput | ArrowInput]:
    """The settings, column mapping and input of a send of ``df`` (a DataFrame or a frame that
    speaks Arrow), checked before anything starts; the caller closes the input."""
    settings = make_settings(options, dry_run=dry_run)
    source = await offload(open_frame, df, function)
    try:
        mapping = resolve_mapping(source.columns, **mapping_of(options))
        if settings.row_key:
            check_key_columns(source.columns, settings.row_key)
            frames = source.frames(batch_rows=settings.batch_rows)
            await offload(check_unique, key_frames(frames, settings.row_key), settings.row_key)
    except BaseException:
        source.close()
        raise
    return settings, mapping, source


@declared(SendOptions)
async def asend(df: Frame, options: SendOptions) -> SendReport:
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

    A run that stops early raises :class:`RunStopped` once every row has a status, with the
    report so far as ``error.report``, from what stopped it: :class:`Interrupted` (Ctrl-C, a
    cancelled task), :class:`AuthenticationError` (401/403), :class:`RepeatedFailureError` (the
    same failure ended several requests in a row: a wrong base URL, nothing listening), or
    ``RunStopped`` itself (a ledger that cannot be written, a full disk, anything unexpected).
    Rows failed by the run rather than by their content stay retryable in the ledger.

    With ``ledger=PATH``, rows sent by an earlier run with the same ledger are ``skipped``, and a
    row that carries a ``gb_key`` (a failures file sent again, edited or not) is judged by that
    key's word in the ledger; copies of one ``gb_key`` in the input are sent at most once. See
    the README. A ledger whose database was deleted or replaced while its journal remains is
    refused; ``rebuild_ledger=True`` rebuilds it from the journal. Rows that look like rows an
    earlier run sent, written differently (numbers or timestamps as text, empty for missing),
    stop the run before anything is sent with :class:`ChangedRowsError`, unless
    ``resend_changed=True``. Rows not sent are written to ``failures_path`` (Parquet) and are in
    the report's ``failures``. ``client`` may be your own ``httpx.AsyncClient``; it is not closed.

    ``mode="batch"`` sends rows as Gameball batch jobs of up to 1,000 events (about 25 times
    fewer requests), within ``batch_limits`` (default 30/s and 360 per 30 s), polling each job
    until it ends or ``job_timeout`` seconds pass (its rows are then ``unknown``). A job holds
    at most one row per customer, and a customer's next row waits for its previous job unless
    ``keep_order=False``. Rows with an email, a mobile or a session token, which a batch item
    cannot carry, go one by one in the same run; the batch API needs the secret key.

    The dry run, which sends nothing, is :func:`plan` (same keywords). Cancelling (Ctrl-C)
    stops new requests, lets in-flight ones finish (at most ``timeout`` seconds, or
    ``job_timeout`` for posted jobs), writes the failures file and raises :class:`Interrupted`.
    """
    settings, mapping, source = await _frame_input(df, options, "send")
    try:
        report, stop = await run_send(
            lambda: source.frames(batch_rows=settings.batch_rows), total=source.rows,
            settings=settings, mapping=mapping, columns=list(source.columns),
            client=options.client, ledger_path=options.ledger,
            failures_path=options.failures_path, progress=options.progress,
        )  # fmt: skip
    finally:
        source.close()
    raise_for(report, stop, ledger=options.ledger)
    return report


send = sync_of(
    asend,
    "send",
    """Send ``df`` and wait for the report; the sync face of :func:`asend`, same keywords.

    Works in scripts and inside a running event loop (a Jupyter cell) alike::

        report = df.gameball.send(event="purchase", failures_path="failed.parquet")

    Inside a running loop the send runs on a private loop in a worker thread, so a ``client=``
    made for the caller's loop cannot be used there: in a notebook, pass your own client to
    ``await asend(...)`` instead. Ctrl-C lets the ``KeyboardInterrupt`` go on, its message
    one line: the counts, and where the rows not sent are.
    """,
)


@declared(SendPathOptions)
async def asend_path(path: str | os.PathLike[str], options: SendPathOptions) -> SendReport:
    """Send a CSV or Parquet file (or a directory or glob of them) without loading it whole;
    otherwise as :func:`asend`, with the same keywords and the CSV's.

    At most about ``2 * batch_rows`` rows are held in memory at any time. CSV is read without
    guessing: the mapped id, event name, email, mobile, session token and ``row_key`` columns as
    text exactly as written, only empty fields as missing (``na_values=`` adds more), and every
    other column's type decided once for the whole file (``dtype={"col": "int"}`` overrides it;
    the types are text, int, float, bool and datetime). ``encoding=`` and ``sep=`` as in
    ``pandas.read_csv``. A file that cannot be read fails with :class:`ConfigError` naming the
    place, before anything is sent.
    """
    settings = replace(make_settings(options), input_name=input_name(shown_path(path)),
                       read_with=read_with_of(options))  # fmt: skip
    source, mapping = await open_input(path, options, row_key=settings.row_key or ())
    report, stop = await run_send(
        lambda: source.frames(batch_rows=settings.batch_rows), total=source.rows,
        settings=settings, mapping=mapping, columns=list(source.columns),
        client=options.client, ledger_path=options.ledger,
        failures_path=options.failures_path, progress=options.progress,
        source=shown_path(path),
        types=source.types,
    )  # fmt: skip
    raise_for(report, stop, ledger=options.ledger)
    return report


send_path = sync_of(
    asend_path,
    "send_path",
    """Send a CSV or Parquet file, streaming it; the sync face of :func:`asend_path`.""",
)


@declared(PlanOptions)
async def aplan(df: Frame, options: PlanOptions) -> SendPlan:
    """What sending ``df`` would do, with no network call: the dry run of :func:`asend`, with
    its keywords (no key is needed; given ones are checked).

    Every row is checked and encoded exactly as a live run would, judged by the live run's own
    rule against the ledger (opened read-only), and counted: a :class:`SendPlan` of counts,
    customers, event names, requests per lane, and the time each mode would take.
    ``bodies_path=`` writes the request bodies to JSONL.
    """
    settings, mapping, source = await _frame_input(df, options, "plan", dry_run=True)
    try:
        return await _plan_input(source, mapping, settings, options)
    finally:
        source.close()


plan = sync_of(
    aplan,
    "plan",
    """What sending ``df`` would do, sending nothing; the sync face of :func:`aplan`::

        df.gameball.plan(event="purchase", mode="batch").estimated_seconds
    """,
)


@declared(PlanPathOptions)
async def aplan_path(path: str | os.PathLike[str], options: PlanPathOptions) -> SendPlan:
    """What sending a CSV or Parquet file would do, reading it as :func:`asend_path` would and
    sending nothing; otherwise as :func:`aplan`."""
    settings = replace(
        make_settings(options, dry_run=True),
        input_name=input_name(shown_path(path)),
        read_with=read_with_of(options),
    )
    source, mapping = await open_input(path, options, row_key=settings.row_key or ())
    return await _plan_input(source, mapping, settings, options)


async def _plan_input(
    source: Any, mapping: ColumnMapping, settings: Settings, options: PlanOptions
) -> SendPlan:
    """The dry run of an opened input (a frame's or a file's), with what would refuse the live
    send."""
    planned = await plan_run(
        lambda: source.frames(batch_rows=settings.batch_rows), settings=settings,
        mapping=mapping, ledger_path=options.ledger, bodies_path=options.bodies_path,
        columns=list(source.columns),
    )  # fmt: skip
    return replace(planned, live_refusal=live_refusal(options) or planned.live_refusal)


plan_path = sync_of(
    aplan_path,
    "plan_path",
    """What sending a CSV or Parquet file would do; the sync face of :func:`aplan_path`.""",
)
