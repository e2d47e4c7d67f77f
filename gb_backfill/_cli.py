"""The ``gb-backfill`` command line: demo, validate, preview, send, status, emulator.

One exit-code rule for every command (:data:`EXIT_CODES`, also in ``--help`` and the README).
Whatever ends a run, every row is accounted for in the failures file and the ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import _gameball as gameball
from . import _interrupt
from ._config import (
    API_KEY_ENV,
    BATCH_LIMITS,
    DEFAULT_BATCH_ROWS,
    DEFAULT_CONCURRENCY,
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_TIMEOUT,
    EVENTS_LIMITS,
    MAPPING_KEYWORDS,
    PREVIEW_LIMITS,
    SECRET_KEY_ENV,
    STATUS_LIMITS,
    RateLimits,
    RetryPolicy,
)
from ._errors import (
    AuthenticationError,
    ChangedRowsError,
    ConfigError,
    GameballError,
    LedgerError,
    RepeatedFailureError,
)
from ._input.reader import CSV_TYPES, CsvOptions, InputFile, input_mapping
from ._preview.report import PreviewReport
from ._preview.run import apreview_path
from ._preview.sampling import DEFAULT_SAMPLE_SIZE
from ._reports.send import SendPlan, SendReport
from ._rows.keys import RowKeyMaker, identity_hashes
from ._rows.rules import check_frame, first_failures
from ._rows.warnings import WarningTally, warning_lines
from ._sender import asend_path
from ._store.failures import FailureWriter, failure_rows, input_name

__all__ = ["main"]

T = TypeVar("T")

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
#: The exit-code rule, as ``--help`` and the README state it.
EXIT_CODES = (
    "exit codes: 0 everything asked was done, with nothing invalid or unsent; 1 it finished "
    "with rows invalid, failed or unknown (the failures file says which and why); 2 usage "
    "error (a bad argument, a refused ledger, keys Gameball rejects); 3 stopped early (a "
    "ledger that cannot be written, the same failure on every request, an unexpected error); "
    "130 interrupted (Ctrl-C); 143 terminated (SIGTERM)"
)


def sample_data_path() -> Path:
    """The sample export: in the source tree, or the copy inside the installed package."""
    for folder in (Path(__file__).resolve().parent.parent, Path(__file__).resolve().parent):
        candidate = folder / "sample_data" / "events.parquet"
        if candidate.exists():
            return candidate
    raise ConfigError("sample_data/events.parquet is missing; run sample_data/make_sample.py")


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _add_mapping_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("column mapping (default: found by name)")
    group.add_argument("--customer-id", metavar="COL", help="the customer id column")
    names = group.add_mutually_exclusive_group()
    names.add_argument("--event-name", metavar="COL", help="the event name column")
    names.add_argument("--event", metavar="NAME", help="one event name for every row")
    group.add_argument(
        "--metadata",
        metavar="COL,COL,...",
        type=_columns,
        help="metadata columns (default: every other column not starting with gb_)",
    )
    group.add_argument("--email", metavar="COL", help="the email column")
    group.add_argument("--mobile", metavar="COL", help="the mobile column")
    group.add_argument("--session-token", metavar="COL", help="the session token column")


def _dtype(text: str) -> tuple[str, str]:
    column, sep, kind = text.rpartition("=")
    if not sep or not column:
        raise argparse.ArgumentTypeError(f"expected COL=TYPE, e.g. amount=float; got {text!r}")
    return column, kind


def _add_csv_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CSV input (ids, emails and mobiles are always read as text)")
    group.add_argument(
        "--dtype",
        metavar="COL=TYPE",
        type=_dtype,
        action="append",
        help=f"a column's type, one of {', '.join(CSV_TYPES)} (default: decided once for the "
        "whole file; timestamps stay text unless asked)",
    )
    group.add_argument(
        "--na-values",
        metavar="TEXT,TEXT,...",
        type=lambda text: text.split(","),
        help="more texts that mean missing (default: only an empty field)",
    )
    group.add_argument("--encoding", default="utf-8", help="the files' encoding (default: utf-8)")
    group.add_argument("--sep", help="the field separator (default: , or a tab for .tsv)")


def csv_options(args: argparse.Namespace) -> dict[str, Any]:
    """The CSV keywords the flags gave, for ``send_path`` and the validate command."""
    return {
        "dtype": dict(args.dtype) if args.dtype else None,
        "na_values": args.na_values,
        "encoding": args.encoding,
        "sep": args.sep,
    }


def mapping_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The mapping keywords the flags gave, for ``validate``, ``send`` and friends."""
    return {
        "customer_id": args.customer_id,
        "event_name": args.event_name,
        "event": args.event,
        "metadata": args.metadata,
        "email": args.email,
        "mobile": args.mobile,
        "session_token": args.session_token,
    }


def _validate(args: argparse.Namespace) -> int:
    csv = CsvOptions.make(**csv_options(args))
    mapping = input_mapping(args.input, csv, cli=True, **mapping_keywords(args))
    source = InputFile(args.input, text_columns=mapping.identifier_columns, csv=csv)
    writer = None
    if args.failures:
        writer = FailureWriter(args.failures, input_name=input_name(args.input), types=source.types)
        writer.check()
    codes: Counter[str] = Counter()
    warnings = WarningTally(mapping)
    keys = RowKeyMaker()  # each invalid row's identity, as a send would key it
    rows = offset = invalid = 0
    # A batch at a time, like send: a file of any size validates in bounded memory.
    for frame in source.frames(batch_rows=DEFAULT_BATCH_ROWS):
        checked = check_frame(frame, mapping)
        warnings.add(frame, checked.customer_ids, checked.invalid)
        rows += len(frame)
        per_row = first_failures(checked.failures)
        codes.update(checked.failures["code"])  # every broken rule, as report.failures has them
        invalid += len(per_row)
        if writer is not None and not per_row.empty:
            positions = per_row.index.to_numpy(dtype=np.int64)
            carried = frame["gb_key"].iloc[positions].tolist() if "gb_key" in frame else None
            keyed = keys.identity_keys(identity_hashes(frame, positions, mapping), carried)
            writer.add(
                failure_rows(
                    frame, positions, status="invalid", code=per_row["code"].tolist(),
                    message=per_row["message"].tolist(), row_offset=offset, types=source.types,
                    keys=[keyed.text(i) for i in range(len(positions))],
                )
            )  # fmt: skip
        offset += len(frame)
    keys.close()
    print(f"rows: {rows:,}  valid: {rows - invalid:,}  invalid: {invalid:,}")
    if sum(codes.values()) > invalid:
        print("broken rules by code (a row that breaks two rules counts under each):")
    for code, count in codes.most_common():
        print(f"  {code}: {count:,}")
    for line in warning_lines(warnings.frame()):
        print(line)
    if writer is not None and invalid:
        writer.close()
        print(f"invalid rows written to {args.failures}")
    return EXIT_INCOMPLETE if invalid else EXIT_OK


def _mask(key: str, default: str) -> str:
    return key if key == default else "*" * 8


def _emulator_from(args: argparse.Namespace) -> Any:
    """The emulator the ``emulator`` command's flags describe."""
    from ._emulator import BatchSettings, Campaigns, Emulator, Faults

    # Every Faults field has a flag of the same name.
    faults = Faults(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Faults)})
    batch = BatchSettings(
        status_shape=args.status_shape,
        delay=args.batch_delay,
        item_failures=args.batch_item_failures,
        job_failures=args.batch_job_failures,
        lost_jobs=args.lost_jobs,
        seed=args.seed,
    )
    return Emulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        secret_key=args.secret_key,
        high_security=args.high_security,
        # One RateLimits per endpoint; --window is every endpoint's long window.
        limits=RateLimits(per_second=args.per_second, per_window=args.per_window,
                          window=args.window),
        batch_limits=RateLimits(per_second=args.batch_per_second,
                                per_window=args.batch_per_window, window=args.window),
        status_limits=RateLimits(per_second=args.status_per_second,
                                 per_window=args.status_per_window, window=args.window),
        preview_limits=RateLimits(per_second=args.preview_per_second,
                                  per_window=args.preview_per_window, window=args.window),
        retry_after=args.retry_after,
        background_rate=args.background_rate,
        faults=faults,
        batch=batch,
        campaigns=Campaigns.from_json(args.campaigns) if args.campaigns else Campaigns(),
        customers=args.customers or (),
        existing_share=args.existing_share,
    )  # fmt: skip


async def _serve(emulator: Any, args: argparse.Namespace) -> None:
    """Serve until Ctrl-C or SIGTERM, saying where and with which keys."""
    from ._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY

    try:
        await emulator.start_async()
    except OSError as error:
        raise ConfigError(
            f"cannot serve on {args.host}:{args.port} ({error.strerror or error}); the port "
            "may be in use: pick another with --port, or --port 0 for a free one"
        ) from None
    # Custom keys are the user's secrets; only the documented defaults are shown.
    print(
        f"Gameball emulator on {emulator.base_url}  "
        f"APIKey: {_mask(args.api_key, DEFAULT_API_KEY)}  "
        f"SecretKey: {_mask(args.secret_key, DEFAULT_SECRET_KEY)}  (Ctrl-C stops it)",
        flush=True,
    )
    if args.campaigns:
        campaigns = emulator.campaigns
        print(
            f"reward preview: {len(campaigns.campaigns)} campaigns, "
            f"{len(campaigns.known_events)} event names known without one, "
            f"from {args.campaigns}",
            flush=True,
        )
    stopped = asyncio.Event()
    # SIGTERM (a service manager, `timeout`) stops it as cleanly as Ctrl-C.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    try:
        await stopped.wait()
    finally:
        await emulator.stop_async()


def _check_writable(path: str, flag: str) -> None:
    """Raise :class:`ConfigError` now if ``path`` cannot be written, before anything is done
    that writing it at the end would lose (quotes spent, events received)."""
    existed = os.path.exists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ConfigError(
            f"cannot write {flag} {path} ({error.strerror or error}); choose another path"
        ) from None
    if not existed:
        os.unlink(path)


def _emulator(args: argparse.Namespace) -> int:
    emulator = _emulator_from(args)
    if args.record:
        _check_writable(args.record, "--record")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(emulator, args))
    if args.record:
        try:
            written = emulator.write_events(args.record)
        except OSError as error:
            print(
                f"gb-backfill: cannot write --record {args.record} ({error.strerror or error}): "
                "the events the emulator received are lost",
                file=sys.stderr,
            )
            return EXIT_STOPPED
        print(f"the emulator received {written:,} events; written to {args.record}", flush=True)
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return number


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}")
    return port


#: (flag, type, default, metavar, help) of a flag that takes a value
_Valued = tuple[str, type, object, str, str]


def _add_valued(group: Any, specs: Sequence[_Valued]) -> None:
    for flag, kind, default, metavar, help_text in specs:
        group.add_argument(flag, type=kind, default=default, metavar=metavar, help=help_text)


def _add_emulator(commands: Any) -> None:
    from ._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Faults

    emulator = commands.add_parser(
        "emulator", help="serve a local Gameball emulator", epilog=EXIT_CODES
    )
    emulator.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    emulator.add_argument("--port", type=_port, default=8787, help="0 picks a free port")
    emulator.add_argument("--api-key", default=DEFAULT_API_KEY, help="the APIKey it accepts")
    emulator.add_argument("--secret-key", default=DEFAULT_SECRET_KEY, help="the SecretKey")
    emulator.add_argument(
        "--high-security", action="store_true", help="require SecretKey on v4.0 too"
    )
    emulator.add_argument(
        "--record",
        metavar="PATH",
        help="on exit, write every event it received to this Parquet file (while it runs: "
        "GET /_emulator/events with the APIKey header)",
    )
    limits = emulator.add_argument_group("rate limits per API key (0 lifts a limit)")
    _add_valued(limits, [
        ("--per-second", int, EVENTS_LIMITS.per_second, "N", "requests per second"),
        ("--per-window", int, EVENTS_LIMITS.per_window, "N", "requests per window"),
        ("--window", float, EVENTS_LIMITS.window, "SECONDS", "the window's length"),
    ])  # fmt: skip
    limits.add_argument(
        "--retry-after", nargs="?", const=True, default=False, type=float, metavar="SECONDS",
        help="send Retry-After on 429: the real wait, or always SECONDS (as a gateway may)",
    )  # fmt: skip
    limits.add_argument(
        "--background-rate", type=float, default=0.0, metavar="N",
        help="another client of the key (a live shop): N events requests a second on "
        "average, its 429s counted (0: none)",
    )  # fmt: skip
    faults = emulator.add_argument_group("fault injection (shares are 0 to 1)")
    none = Faults()  # the defaults: no fault at all
    _add_valued(faults, [
        ("--latency", float, none.latency, "SECONDS", "added to every answer"),
        ("--jitter", float, none.jitter, "SECONDS", "random extra latency, up to"),
        ("--server-errors", float, none.server_errors, "SHARE",
         "share of 500/503 before processing"),
        ("--dropped-connections", float, none.dropped_connections, "SHARE",
         "share of connections dropped before processing"),
        ("--lost-responses", float, none.lost_responses, "SHARE",
         "share processed whose answer is lost"),
        ("--slow-reply", float, none.slow_reply, "SECONDS",
         "how long a lost answer hangs (--lost-mode slow)"),
        ("--arrival-delay", float, none.arrival_delay, "SECONDS",
         "before a request is counted against the limits (one-way delay)"),
        ("--arrival-jitter", float, none.arrival_jitter, "SECONDS",
         "random extra arrival delay, up to"),
        ("--seed", int, none.seed, "N", "seed of the faults' random draws"),
    ])  # fmt: skip
    faults.add_argument(
        "--lost-mode", help="drop the connection or hang", choices=["drop", "slow"],
        default=none.lost_mode,
    )  # fmt: skip
    _add_emulator_batch_flags(emulator)
    _add_preview_flags(emulator)
    emulator.set_defaults(run=_emulator)


def _add_emulator_batch_flags(emulator: argparse.ArgumentParser) -> None:
    from ._emulator import BatchSettings

    batch = emulator.add_argument_group("batch endpoints")
    documented = BatchSettings()
    _add_valued(batch, [
        ("--batch-per-second", int, BATCH_LIMITS.per_second, "N", "job creations per second"),
        ("--batch-per-window", int, BATCH_LIMITS.per_window, "N", "job creations per window"),
        ("--status-per-second", int, STATUS_LIMITS.per_second, "N", "job status reads per second"),
        ("--status-per-window", int, STATUS_LIMITS.per_window, "N", "job status reads per window"),
        ("--batch-delay", float, documented.delay, "SECONDS", "how long a job takes to process"),
        ("--batch-item-failures", float, documented.item_failures, "SHARE",
         "share of items that fail, half with the transient 2001"),
        ("--batch-job-failures", float, documented.job_failures, "SHARE",
         "share of jobs that fail as a whole"),
        ("--lost-jobs", float, documented.lost_jobs, "SHARE", "share of jobs that never end"),
    ])  # fmt: skip
    batch.add_argument(
        "--status-shape", choices=["tutorial", "openapi"], default=documented.status_shape,
        help="which documented job status path and body to serve",
    )  # fmt: skip


def _add_preview_flags(emulator: argparse.ArgumentParser) -> None:
    preview = emulator.add_argument_group("reward preview (POST .../events/reward-preview)")
    preview.add_argument(
        "--campaigns",
        metavar="FILE.json",
        help="the campaigns and known event names it quotes from (see docs/reference.md; e.g. "
        "sample_data/campaigns.json); without it every event is EventNotFound",
    )
    preview.add_argument(
        "--customers",
        metavar="ID,ID,...",
        type=_columns,
        help="customers that exist without a live event (others: 404 until their first)",
    )
    preview.add_argument(
        "--existing-share",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of customers that exist anyway, chosen by a hash of the id (1: every one)",
    )
    preview.add_argument(
        "--preview-per-second",
        type=int,
        default=PREVIEW_LIMITS.per_second,
        metavar="N",
        help="previews per second (0 lifts it)",
    )
    preview.add_argument(
        "--preview-per-window",
        type=int,
        default=PREVIEW_LIMITS.per_window,
        metavar="N",
        help="previews per window (0 lifts it)",
    )


def _add_send_flags(parser: argparse.ArgumentParser) -> None:
    _add_connection_flags(parser)
    _add_pace_flags(parser)
    _add_batch_flags(parser)
    _add_bookkeeping_flags(parser)


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("Gameball")
    target.add_argument(
        "--base-url",
        default=gameball.BASE_URL,
        help="where to send: the real Gameball API unless you point it at an emulator, e.g. "
        "http://127.0.0.1:8787 (run `gb-backfill emulator`)",
    )
    target.add_argument(
        "--api-version", choices=["4.0", "4.1"], default="4.0", help="events API version"
    )
    target.add_argument("--api-key", help=f"default: ${API_KEY_ENV} (safer than this flag)")
    target.add_argument("--secret-key", help=f"default: ${SECRET_KEY_ENV}")
    target.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow keys over plain http to a host other than loopback",
    )


def _add_pace_flags(parser: argparse.ArgumentParser) -> None:
    pace = parser.add_argument_group("pace and retries")
    documented = EVENTS_LIMITS
    pace.add_argument(
        "--rate", type=int, default=documented.per_second, help="requests per second (0: none)"
    )
    pace.add_argument(
        "--quota", type=int, default=documented.per_window, help="requests per quota window"
    )
    pace.add_argument(
        "--quota-window",
        type=float,
        default=documented.window,
        metavar="SECONDS",
        help="the quota window's length",
    )
    _add_reserve_flag(pace)
    pace.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="requests in flight at most (fewer when the rate and round trip need fewer)",
    )
    pace.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for an answer (after it, the row is unknown)",
    )
    pace.add_argument(
        "--attempts",
        type=int,
        default=RetryPolicy().attempts,
        help="tries per row for retryable errors",
    )
    pace.add_argument(
        "--resend-changed",
        action="store_true",
        help="send rows that look like rows an earlier run with the ledger sent, written "
        "differently (numbers or timestamps as text, empty for missing); may double-count",
    )
    pace.add_argument(
        "--retry-unknown",
        action="store_true",
        help="also resend rows that may have been processed (may double-count)",
    )


def _add_reserve_flag(group: Any) -> None:
    group.add_argument(
        "--reserve",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="the share of every limit left for other clients of the key, e.g. 0.3 when it also "
        "serves a live shop",
    )


def _add_batch_flags(parser: argparse.ArgumentParser) -> None:
    batch = parser.add_argument_group("batch mode")
    batch.add_argument(
        "--mode",
        choices=["events", "batch"],
        default="events",
        help="events: one request per row; batch: jobs of up to 1,000 rows (needs the secret "
        "key) (default: events)",
    )
    batch.add_argument(
        "--batch-rate",
        type=int,
        default=BATCH_LIMITS.per_second,
        help="batch jobs per second",
    )
    batch.add_argument(
        "--batch-quota",
        type=int,
        default=BATCH_LIMITS.per_window,
        help="batch jobs per quota window",
    )
    batch.add_argument(
        "--job-timeout",
        type=float,
        default=DEFAULT_JOB_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for a job to end before its rows are unknown",
    )
    batch.add_argument(
        "--any-order",
        action="store_true",
        help="let a customer's rows go in several jobs at once (order not kept)",
    )
    batch.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: check and encode every row and print the plan",
    )
    batch.add_argument(
        "--write-bodies",
        metavar="PATH",
        help="with --dry-run, write every request body to this JSONL file",
    )


def _add_bookkeeping_flags(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("bookkeeping")
    out.add_argument(
        "--failures",
        metavar="PATH",
        help="Parquet file for rows not sent (default: the input's full name + "
        ".failures.parquet, e.g. export.csv.failures.parquet)",
    )
    out.add_argument("--ledger", metavar="PATH", help="SQLite ledger: makes re-runs safe")
    out.add_argument(
        "--rebuild-ledger",
        action="store_true",
        help="rebuild a ledger whose database was deleted or replaced from its journal",
    )
    out.add_argument(
        "--row-key", metavar="COL,COL,...", type=_columns, help="your own unique row key"
    )
    out.add_argument(
        "--batch-rows", type=int, default=DEFAULT_BATCH_ROWS, help="rows read at a time"
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar")


def _send_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "base_url": args.base_url,
        "api_version": args.api_version,
        "api_key": args.api_key,
        "secret_key": args.secret_key,
        "allow_insecure_http": args.allow_insecure_http,
        "limits": RateLimits(per_second=args.rate, per_window=args.quota, window=args.quota_window),
        "retry": RetryPolicy(attempts=args.attempts),
        "concurrency": args.concurrency,
        "timeout": args.timeout,
        "retry_unknown": args.retry_unknown,
        "resend_changed": args.resend_changed,
        "reserve": args.reserve,
        "mode": args.mode,
        "batch_limits": RateLimits(
            per_second=args.batch_rate, per_window=args.batch_quota, window=args.quota_window
        ),
        "keep_order": not args.any_order,
        "dry_run": args.dry_run,
        "bodies_path": args.write_bodies,
        "job_timeout": args.job_timeout,
        "ledger": args.ledger,
        "rebuild_ledger": args.rebuild_ledger,
        "row_key": args.row_key,
        "batch_rows": args.batch_rows,
        "progress": False if args.no_progress else None,
    }


# --- errors in the CLI's own terms ------------------------------------------------------------

#: Keywords whose CLI form is not one flag taking the keyword's value.
_SPECIAL_TERMS = {
    "limits": "--rate/--quota",
    "batch_limits": "--batch-rate/--batch-quota",
    "retry": "--attempts",
    "progress": "--no-progress",
    "keep_order": "--any-order",
}
#: Keywords whose flag has another name.
_RENAMED = {"failures_path": "failures", "bodies_path": "write_bodies"}
_KEYWORD_VALUE = re.compile(
    r"(?<![\w.-])([a-z][a-z0-9_]*)="
    r"(RateLimits\([^)]*\)|RetryPolicy\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|'[^']*'|\"[^\"]*\"|[^\s,;)]*)"
)


@functools.cache
def _keyword_flags() -> dict[str, tuple[str, bool]]:
    """Each keyword of the Python API that a command takes as a flag, as (the flag, whether it
    takes a value)."""
    import inspect

    keywords = {*inspect.signature(asend_path).parameters, *MAPPING_KEYWORDS}
    flags: dict[str, tuple[str, bool]] = {}
    commands = build_parser()._subparsers
    assert commands is not None
    for action in commands._group_actions:
        for command in getattr(action, "choices", {}).values():
            for option in command._actions:
                long = [name for name in option.option_strings if name.startswith("--")]
                dest = {v: k for k, v in _RENAMED.items()}.get(option.dest, option.dest)
                if long and dest in keywords and dest not in flags:
                    flags[dest] = (long[0], option.nargs != 0)
    return flags


def cli_terms(message: str) -> str:
    """``message``, written in the Python API's terms (``customer_id=COLUMN``), in the CLI's
    (``--customer-id COLUMN``), so every error the CLI prints names its own flags."""
    flags = _keyword_flags()

    def flag(match: re.Match[str]) -> str:
        keyword, value = match.group(1), match.group(2)
        if keyword in _SPECIAL_TERMS:
            return _SPECIAL_TERMS[keyword]
        if keyword not in flags:
            return match.group(0)
        name, takes_value = flags[keyword]
        if not takes_value:
            return name
        if value.startswith("["):
            value = ",".join(re.findall(r"'([^']*)'", value)) or "A,B"
        elif value.startswith("{"):
            value = "COL=TYPE"
        elif value[:1] in ("'", '"') and not re.search(r"\s", value):
            value = value[1:-1]  # quotes only where the shell needs them
        return f"{name} {value}".rstrip()

    text = _KEYWORD_VALUE.sub(flag, message)
    # "--failures (--failures)": a message that already named the flag says it once.
    return re.sub(r"(--[a-z-]+)([^()]{0,40}?) \(\1[^()]*\)", r"\1\2", text)


def where_rows_are(
    failures: str, ledger: str | None, report: object | None, started: float | None = None
) -> str:
    """Where the rows not sent are, as the files on disk say (never a file that was not
    written): the failures file, or the parts written so far, or the ledger. ``started``: when
    the command started (a failures file written since is this run's)."""
    if isinstance(report, SendReport) and report.failures_path is not None:
        return f"rows not sent are in {report.failures_path}"
    target = Path(failures)
    parts = target.with_name(target.name + ".parts")
    if report is None and not parts.exists():
        # The parts folder is made when the run starts, and goes once the file is merged: a
        # second signal may stop the run between the merge and its report.
        if started is not None and target.exists() and target.stat().st_mtime >= started:
            return f"rows not sent are in {failures}"
        return "nothing was sent: the run had not started"
    if any(parts.glob("part-*.parquet")):
        where = (
            f"the failures file {failures} was not written; the rows not sent found so far "
            f"are in {parts}/ (pd.read_parquet reads the folder)"
        )
    else:
        where = f"the failures file {failures} was not written"
    if ledger:
        where += f"; the ledger {ledger} knows every row sent or in flight: run again with it"
    return where


def _stopped_line(error: BaseException, failures: str, ledger: str | None) -> str:
    """One line: what stopped the run, the counts, and where the rows not sent are (an error
    that stops a run carries its report: the run had started)."""
    text = cli_terms(str(error).splitlines()[0]) if str(error) else ""
    cause = text if isinstance(error, GameballError) else f"{type(error).__name__}: {text}"
    report = getattr(error, "report", None)
    counts = f" {report!r};" if report is not None else ""
    return (
        f"gb-backfill: the run stopped: {cause}{counts} {where_rows_are(failures, ledger, report)}"
    )


async def _until_terminated(work: Awaitable[T], terminated: list[bool]) -> T:
    """Await ``work`` (a send or a preview) on this loop; SIGTERM cancels it, whatever SIGINT's
    disposition, and is noted in ``terminated``.

    A shell starts `cmd &` with SIGINT ignored, so turning SIGTERM into SIGINT would do nothing
    there. A cancelled run finishes what is in flight, accounts for every row and raises
    CancelledError carrying its report.
    """
    loop = asyncio.get_running_loop()
    run = asyncio.current_task()
    assert run is not None

    def terminate() -> None:
        terminated.append(True)
        run.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _send_until_terminated(
    input_path: str, failures: str, options: dict[str, Any], terminated: list[bool],
    started: float,
) -> SendReport | SendPlan | None:  # fmt: skip
    """The send; None when SIGTERM stopped it (after saying so)."""
    try:
        report: SendReport | SendPlan = await _until_terminated(
            asend_path(input_path, failures_path=failures, **options), terminated
        )
        return report
    except asyncio.CancelledError as cancelled:
        if not terminated:
            raise  # Ctrl-C: asyncio.run turns it into KeyboardInterrupt
        partial = getattr(cancelled, "report", None)
        counts = f" {partial!r};" if partial is not None else ""
        where = where_rows_are(failures, options.get("ledger"), partial, started)
        print(f"gb-backfill: terminated;{counts} {where}", file=sys.stderr)
        return None


def _run_send(input_path: str, failures: str, options: dict[str, Any]) -> int:
    terminated: list[bool] = []
    ledger = options.get("ledger")
    started = time.time()
    try:
        report = asyncio.run(
            _send_until_terminated(input_path, failures, options, terminated, started)
        )
    except AuthenticationError as error:
        print(_stopped_line(error, failures, ledger), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:
        # asyncio.run chains the cancelled run, which carries its report.
        cause = interrupt.__cause__ or interrupt.__context__
        partial = getattr(cause, "report", None)
        counts = f" {partial!r};" if partial is not None else ""
        where = where_rows_are(failures, ledger, partial, started)
        print(f"gb-backfill: interrupted;{counts} {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError:
        raise
    except ChangedRowsError as error:
        print(f"gb-backfill: nothing was sent: {cli_terms(str(error))}", file=sys.stderr)
        print(error.examples, file=sys.stderr)
        return EXIT_USAGE
    except (LedgerError, RepeatedFailureError) as error:
        if getattr(error, "report", None) is None:
            raise  # refused before the run started: a usage error
        print(_stopped_line(error, failures, ledger), file=sys.stderr)
        return EXIT_STOPPED
    except Exception as error:
        print(_stopped_line(error, failures, ledger), file=sys.stderr)
        return EXIT_STOPPED
    if report is None:
        return EXIT_TERMINATED
    print(report.summary())
    if isinstance(report, SendPlan):
        # The plan was made; rows it would not send make it incomplete, as a live run.
        return EXIT_OK if report.ok else EXIT_INCOMPLETE
    return EXIT_OK if report.ok else EXIT_INCOMPLETE


def _print_preview(report: PreviewReport, json_path: str | None) -> None:
    print(report.summary())
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(report.to_dict(), out, indent=2, allow_nan=False)
            out.write("\n")
        print(f"  the preview's figures are in {json_path}")


async def _preview_until_terminated(
    input_path: str, options: dict[str, Any], json_path: str | None, terminated: list[bool]
) -> PreviewReport | None:
    """The preview; None when SIGTERM stopped it (after printing what was quoted so far)."""
    try:
        return await _until_terminated(apreview_path(input_path, **options), terminated)
    except asyncio.CancelledError as cancelled:
        if not terminated:
            raise
        print("gb-backfill: terminated; what was quoted so far:", file=sys.stderr)
        partial = getattr(cancelled, "report", None)
        if partial is not None:
            _print_preview(partial, json_path)
        return None


def _run_preview(input_path: str, options: dict[str, Any], json_path: str | None) -> int:
    terminated: list[bool] = []
    try:
        report = asyncio.run(_preview_until_terminated(input_path, options, json_path, terminated))
    except KeyboardInterrupt as interrupt:
        partial = getattr(interrupt.__cause__ or interrupt.__context__, "report", None)
        print("gb-backfill: interrupted; what was quoted so far:", file=sys.stderr)
        if partial is not None:
            _print_preview(partial, json_path)
        return EXIT_INTERRUPTED
    except (AuthenticationError, RepeatedFailureError) as error:
        print(f"gb-backfill: the preview stopped: {cli_terms(str(error))}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, AuthenticationError) else EXIT_STOPPED
    if report is None:
        return EXIT_TERMINATED
    _print_preview(report, json_path)
    # As a dry run: rows it would not send (invalid) or quotes it could not get leave it
    # incomplete.
    return EXIT_OK if report.valid == report.rows and report.quoted == report.sampled else 1


def _preview(args: argparse.Namespace) -> int:
    options = {
        "base_url": args.base_url,
        "api_version": args.api_version,
        "api_key": args.api_key,
        "secret_key": args.secret_key,
        "allow_insecure_http": args.allow_insecure_http,
        "preview_limits": RateLimits(
            per_second=args.preview_rate, per_window=args.preview_quota, window=args.quota_window
        ),
        "retry": RetryPolicy(attempts=args.attempts),
        "concurrency": args.concurrency,
        "timeout": args.timeout,
        "retry_unknown": args.retry_unknown,
        "reserve": args.reserve,
        "sample": args.sample,
        "seed": args.seed,
        "ledger": args.ledger,
        "row_key": args.row_key,
        "batch_rows": args.batch_rows,
        "progress": False if args.no_progress else None,
        **mapping_keywords(args),
        **csv_options(args),
    }
    if args.json:
        _check_writable(args.json, "--json")
    return _run_preview(args.input, options, args.json)


def _add_preview(commands: Any) -> None:
    preview = commands.add_parser(
        "preview",
        help="estimate what sending a file would award, from Gameball's reward preview of a "
        "sample (nothing is sent)",
        epilog=EXIT_CODES,
    )
    preview.add_argument(
        "input", help="a .csv or .parquet file, a directory of them, or a quoted glob"
    )
    _add_mapping_flags(preview)
    _add_csv_flags(preview)
    _add_connection_flags(preview)
    sampling = preview.add_argument_group("sample and pace")
    sampling.add_argument(
        "--sample", type=_positive, default=DEFAULT_SAMPLE_SIZE, metavar="N",
        help="valid rows to quote (the default takes about 15 s at the preview's limits)",
    )  # fmt: skip
    sampling.add_argument("--seed", type=int, default=0, help="the sample's random seed")
    sampling.add_argument(
        "--json", metavar="PATH", help="also write the estimates to this JSON file"
    )
    sampling.add_argument(
        "--preview-rate", type=int, default=PREVIEW_LIMITS.per_second, metavar="N",
        help="quotes per second (0: none)",
    )  # fmt: skip
    sampling.add_argument(
        "--preview-quota", type=int, default=PREVIEW_LIMITS.per_window, metavar="N",
        help="quotes per quota window",
    )  # fmt: skip
    sampling.add_argument(
        "--quota-window", type=float, default=PREVIEW_LIMITS.window, metavar="SECONDS",
        help="the quota window's length",
    )  # fmt: skip
    _add_reserve_flag(sampling)
    sampling.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                          help="quotes in flight at most")  # fmt: skip
    sampling.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                          help="how long to wait for a quote")  # fmt: skip
    sampling.add_argument("--attempts", type=int, default=RetryPolicy().attempts,
                          help="tries per quote for retryable errors")  # fmt: skip
    sampling.add_argument(
        "--retry-unknown", action="store_true",
        help="with --ledger: also quote rows an earlier run may have sent",
    )  # fmt: skip
    rows = preview.add_argument_group("rows")
    rows.add_argument(
        "--ledger", metavar="PATH",
        help="leave out rows this send's ledger says were sent (read only)",
    )  # fmt: skip
    rows.add_argument("--row-key", metavar="COL,COL,...", type=_columns,
                      help="the send's own unique row key (with --ledger)")  # fmt: skip
    rows.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS,
                      help="rows read at a time")  # fmt: skip
    rows.add_argument("--no-progress", action="store_true", help="no progress bar")
    preview.set_defaults(run=_preview)


def default_failures_path(input_path: str) -> str:
    """The failures file of an input when none is named: its full name (``export.csv`` and
    ``export.parquet`` are two inputs) + ``.failures.parquet``, in the working directory."""
    name = Path(input_path.rstrip("/")).name or "input"
    return re.sub(r"[*?\[\]]", "_", name) + ".failures.parquet"


def _send(args: argparse.Namespace) -> int:
    failures = args.failures or default_failures_path(args.input)
    if not args.dry_run and args.base_url.rstrip("/") == gameball.BASE_URL:
        print(
            f"gb-backfill: sending to {gameball.BASE_URL}. {gameball.HISTORY_WARNING}",
            file=sys.stderr,
        )
    options = {**_send_options(args), **mapping_keywords(args), **csv_options(args)}
    return _run_send(args.input, failures, options)


def _sample_slice(sample: Path, rows: int) -> Path:
    """The first ``rows`` rows of the sample, as a file of their own, at the same path on every
    run (so a second demo continues the first's failures file and ledger)."""
    import tempfile

    import pyarrow.parquet as pq

    folder = Path(tempfile.gettempdir()) / f"gb-backfill-demo-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    part = folder / f"events-first-{rows}.parquet"
    scratch = part.with_name(f"{part.name}.{os.getpid()}.tmp")
    pq.write_table(pq.read_table(sample).slice(0, rows), scratch)
    os.replace(scratch, part)
    return part


def _demo_preview(sample: Path, emulator: Any, options: dict[str, Any]) -> None:
    """The demo's first step: what sending the sample would award, from the emulator's quotes."""
    print(f"previewing what sending {sample.name} would award (nothing is sent yet)")
    preview_options = {k: v for k, v in options.items() if k in ("base_url", "api_key",
                       "progress")}  # fmt: skip
    limits = RateLimits.unlimited() if options["limits"] == RateLimits.unlimited() else None
    code = _run_preview(str(sample), {**preview_options, "preview_limits": limits}, None)
    if code in (EXIT_OK, EXIT_INCOMPLETE):
        print(
            f"the estimate leaves out customers the emulator does not know yet (a live send "
            f"creates them); now sending the sample to {emulator.base_url}"
        )


def _demo_emulator(fast: bool) -> Any:
    """The demo's Gameball: a little of what real networks do (so the demo shows retries and an
    unknown or two), the sample shop's campaigns, most of its customers known already."""
    from ._emulator import BatchSettings, Campaigns, Emulator, Faults

    faults = Faults(latency=0.03, jitter=0.02, server_errors=0.02, lost_responses=0.002, seed=7)
    lifted = RateLimits.unlimited()
    return Emulator(
        faults=faults,
        limits=lifted if fast else EVENTS_LIMITS,
        batch_limits=lifted if fast else BATCH_LIMITS,
        batch=BatchSettings(delay=0.02 if fast else BatchSettings().delay),
        campaigns=Campaigns.from_json(sample_data_path().parent / "campaigns.json"),
        existing_share=0.7,
        preview_limits=RateLimits.unlimited() if fast else PREVIEW_LIMITS,
    )


def _demo(args: argparse.Namespace) -> int:
    from ._emulator import DEFAULT_SECRET_KEY

    sample = sample_data_path()
    if args.rows is not None:
        sample = _sample_slice(sample, args.rows)
    limits = RateLimits.unlimited() if args.fast else EVENTS_LIMITS
    batch_limits = RateLimits.unlimited() if args.fast else BATCH_LIMITS
    with _demo_emulator(args.fast) as emulator:
        print(f"Gameball emulator on {emulator.base_url}")
        options = {
            "base_url": emulator.base_url,
            "api_key": emulator.api_key,
            "secret_key": DEFAULT_SECRET_KEY,
            "mode": args.mode,
            "limits": limits,
            "batch_limits": batch_limits,
            "progress": False if args.no_progress else None,
            "ledger": args.ledger,
        }
        if not args.no_preview:
            _demo_preview(sample, emulator, options)
        print(f"sending {sample} in {args.mode} mode")
        code = _run_send(str(sample), args.failures, options)
        accepted = len(emulator.events())
        awarded = int(emulator.awards()["points"].sum())
        lost = emulator.counters.get("lost_response", 0)
    print(f"the emulator recorded {accepted:,} events and awarded {awarded:,} points")
    if not args.no_preview:
        print(
            "  (not the preview's estimate: the preview counts 0 for customers that did not exist "
            "yet, which the send created, and sees each row alone, so caps and progress over a "
            "customer's many events are not added up)"
        )
    if lost:
        # The demo's faults include answers lost after processing: say why rows are unknown.
        print(
            f"{lost:,} of them had their answer lost on the way back (a fault the demo injects, "
            "as real networks do): gb-backfill cannot know whether those rows arrived, so it "
            "marks them unknown and never resends them on its own (retry_unknown=True would). "
            "With a ledger, `gb-backfill status --ledger PATH` lists them as sent, and "
            "`gb-backfill settle` records what Gameball says of them."
        )
    if code == EXIT_INCOMPLETE:
        print(
            f"exit code 1, as for any run that leaves rows unsent: the sample has broken rows on "
            f"purpose and the emulator loses a few answers; they are all in {args.failures}"
        )
    return code


def _status(args: argparse.Namespace) -> int:
    from ._settle import ledger_status

    report = ledger_status(args.ledger)
    print(report.summary(limit=None if args.all else 20))
    if args.json:
        _write_json(args.json, report.to_dict())
        print(f"  the ledger's counts and unknown rows are in {args.json}")
    return EXIT_OK


def _settle(args: argparse.Namespace) -> int:
    from ._settle import keys_from_file, settle

    keys: list[str] = list(args.key or [])
    if args.keys_file:
        keys += keys_from_file(args.keys_file)
    if args.all and keys:
        raise ConfigError("--all settles every unknown row: give it without --key or --keys-file")
    if not args.all and not keys:
        raise ConfigError("name the rows to settle: --key GB_KEY, --keys-file PATH, or --all")
    done = settle(args.ledger, arrived=args.arrived, keys="all" if args.all else keys)
    print(done.summary())
    return EXIT_OK


def _write_json(path: str, data: object) -> None:
    try:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, allow_nan=False, default=str)
            out.write("\n")
    except OSError as error:
        raise ConfigError(
            f"cannot write {path} ({error.strerror or error}); give another --json PATH"
        ) from None


def _add_ledger_commands(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="what a ledger knows: counts, and the rows whose outcome is unknown",
        epilog=EXIT_CODES,
    )
    status.add_argument("--ledger", required=True, metavar="PATH", help="the ledger a send kept")
    status.add_argument("--all", action="store_true", help="list every unknown row")
    status.add_argument(
        "--json", metavar="PATH", help="also write the counts and every unknown row as JSON"
    )
    status.set_defaults(run=_status)
    settle = commands.add_parser(
        "settle",
        help="mark unknown rows as arrived or not, once looked up in Gameball",
        epilog=EXIT_CODES,
    )
    settle.add_argument("--ledger", required=True, metavar="PATH", help="the ledger a send kept")
    verdict = settle.add_mutually_exclusive_group(required=True)
    verdict.add_argument(
        "--arrived", dest="arrived", action="store_true", default=None,
        help="Gameball has them: they are sent from now on, and runs skip them",
    )  # fmt: skip
    verdict.add_argument(
        "--not-arrived", dest="arrived", action="store_false", default=None,
        help="Gameball does not have them: the next run sends each once",
    )  # fmt: skip
    which = settle.add_argument_group("which rows (gb_key values, as in the failures file)")
    which.add_argument("--key", action="append", metavar="GB_KEY", help="one row; repeat it")
    which.add_argument(
        "--keys-file", metavar="PATH",
        help="a file of keys: one per line, or a Parquet/CSV file with a gb_key column (of a "
        "failures file, its unknown rows)",
    )  # fmt: skip
    which.add_argument("--all", action="store_true", help="every unknown row of the ledger")
    settle.set_defaults(run=_settle)


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="preview and send sample_data/ to a local emulator with the sample's campaigns",
        epilog=EXIT_CODES,
    )
    demo.add_argument(
        "--failures",
        default="demo.failures.parquet",
        metavar="PATH",
        help="Parquet file for rows not sent",
    )
    demo.add_argument("--ledger", metavar="PATH", help="a ledger file (a re-run skips all)")
    demo.add_argument(
        "--mode",
        choices=("batch", "events"),
        default="batch",
        help="batch jobs (about a minute), or one request per event (about 10 minutes at the "
        "documented limits)",
    )
    demo.add_argument(
        "--fast", action="store_true", help="lift the rate limits and end batch jobs at once"
    )
    demo.add_argument(
        "--rows", type=_positive, metavar="N", help="send only the sample's first N rows"
    )
    demo.add_argument(
        "--no-preview", action="store_true", help="send without previewing the rewards first"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gb-backfill",
        description="Validate and send historical events to Gameball.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_demo(commands)

    validate = commands.add_parser(
        "validate", help="check a CSV or Parquet file's rows", epilog=EXIT_CODES
    )
    validate.add_argument(
        "input", help="a .csv or .parquet file, a directory of them, or a quoted glob"
    )
    _add_mapping_flags(validate)
    _add_csv_flags(validate)
    validate.add_argument(
        "--failures", metavar="PATH", help="write the invalid rows to this Parquet file"
    )
    validate.set_defaults(run=_validate)

    _add_preview(commands)

    send = commands.add_parser(
        "send", help="send a CSV or Parquet file's rows to Gameball", epilog=EXIT_CODES
    )
    send.add_argument(
        "input", help="a .csv or .parquet file, a directory of them, or a quoted glob"
    )
    _add_mapping_flags(send)
    _add_csv_flags(send)
    _add_send_flags(send)
    send.set_defaults(run=_send)

    _add_ledger_commands(commands)
    _add_emulator(commands)
    for command in commands.choices.values():
        _show_defaults(command)
    return parser


def _version() -> str:
    from . import __version__

    return str(__version__)


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every flag's help says its default (argparse's formatter skips flags without help)."""
    for action in parser._actions:
        default = action.default
        if default is None or default is False or default == argparse.SUPPRESS:
            continue
        text = action.help or ""
        if "%(default)" not in text and "default:" not in text:
            action.help = f"{text} (default: %(default)s)".strip()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    if _interrupt.started():
        print("gb-backfill: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        # Ctrl-C before a send or preview is under way (they say what they did themselves).
        print("gb-backfill: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError as error:
        print(f"gb-backfill: error: {cli_terms(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except GameballError as error:
        print(f"gb-backfill: {cli_terms(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`gb-backfill send ... | head`): say nothing more, and keep
        # Python from complaining about the flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INCOMPLETE
