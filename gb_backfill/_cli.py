"""The ``gb-backfill`` command line.

Exit codes: 0 when every row is valid (or sent), 1 when some are not, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._errors import ConfigError, GameballError
from ._failures import failure_rows, write_parquet
from ._input import read_table
from ._mapping import resolve_mapping
from ._rules import check_frame

__all__ = ["main"]

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2


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


def _first_failures(failures: pd.DataFrame) -> pd.DataFrame:
    """One line per invalid row: its first failure's code and every message."""
    grouped = failures.groupby("position", sort=True)
    return pd.DataFrame(
        {
            "code": grouped["code"].first(),
            "message": grouped["message"].agg("; ".join),
        }
    )


def _validate(args: argparse.Namespace) -> int:
    df = read_table(args.input)
    mapping = resolve_mapping(df.columns, **mapping_keywords(args))
    checked = check_frame(df, mapping)
    invalid = int(checked.invalid.sum())
    print(f"rows: {len(df):,}  valid: {len(df) - invalid:,}  invalid: {invalid:,}")
    if invalid:
        per_row = _first_failures(checked.failures)
        for code, count in per_row["code"].value_counts().items():
            print(f"  {code}: {count:,}")
        if args.failures:
            positions = per_row.index.to_numpy(dtype=np.int64)
            rows = failure_rows(
                df,
                positions,
                status="invalid",
                code=per_row["code"].tolist(),
                message=per_row["message"].tolist(),
            )
            write_parquet(rows, args.failures)
            print(f"invalid rows written to {args.failures}")
    return EXIT_INCOMPLETE if invalid else EXIT_OK


def _mask(key: str, default: str) -> str:
    return key if key == default else "*" * 8


def _emulator(args: argparse.Namespace) -> int:
    from ._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Emulator, Faults

    try:
        faults = Faults(
            latency=args.latency,
            jitter=args.jitter,
            server_errors=args.server_errors,
            dropped_connections=args.dropped_connections,
            lost_responses=args.lost_responses,
            lost_mode=args.lost_mode,
            slow_reply=args.slow_reply,
            seed=args.seed,
        )
        emulator = Emulator(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            secret_key=args.secret_key,
            high_security=args.high_security,
            per_second=args.per_second,
            per_window=args.per_window,
            window=args.window,
            retry_after=args.retry_after,
            faults=faults,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None

    async def serve() -> None:
        await emulator.start_async()
        # Custom keys are the user's secrets; only the documented defaults are shown.
        print(
            f"Gameball emulator on {emulator.base_url}  "
            f"APIKey: {_mask(args.api_key, DEFAULT_API_KEY)}  "
            f"SecretKey: {_mask(args.secret_key, DEFAULT_SECRET_KEY)}  (Ctrl-C stops it)",
            flush=True,
        )
        stopped = asyncio.Event()
        # SIGTERM (a service manager, `timeout`) stops it as cleanly as Ctrl-C.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        try:
            await stopped.wait()
        finally:
            await emulator.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return EXIT_OK


def _add_emulator(commands: Any) -> None:
    from ._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY

    emulator = commands.add_parser("emulator", help="serve a local Gameball emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    emulator.add_argument("--api-key", default=DEFAULT_API_KEY, help="the APIKey it accepts")
    emulator.add_argument("--secret-key", default=DEFAULT_SECRET_KEY, help="the SecretKey")
    emulator.add_argument(
        "--high-security", action="store_true", help="require SecretKey on v4.0 too"
    )
    limits = emulator.add_argument_group("rate limits per API key (0 lifts a limit)")
    limits.add_argument("--per-second", type=int, default=100, metavar="N")
    limits.add_argument("--per-window", type=int, default=1200, metavar="N")
    limits.add_argument("--window", type=float, default=30.0, metavar="SECONDS")
    limits.add_argument("--retry-after", action="store_true", help="send Retry-After on 429")
    faults = emulator.add_argument_group("fault injection (shares are 0 to 1)")
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument("--jitter", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument("--server-errors", type=float, default=0.0, metavar="SHARE")
    faults.add_argument("--dropped-connections", type=float, default=0.0, metavar="SHARE")
    faults.add_argument("--lost-responses", type=float, default=0.0, metavar="SHARE")
    faults.add_argument("--lost-mode", choices=["drop", "slow"], default="drop")
    faults.add_argument("--slow-reply", type=float, default=30.0, metavar="SECONDS")
    faults.add_argument("--seed", type=int, default=0)
    emulator.set_defaults(run=_emulator)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gb-backfill", description="Validate and send historical events to Gameball."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check a CSV or Parquet file's rows")
    validate.add_argument("input", help="a .csv or .parquet file")
    _add_mapping_flags(validate)
    validate.add_argument(
        "--failures", metavar="PATH", help="write the invalid rows to this Parquet file"
    )
    validate.set_defaults(run=_validate)
    _add_emulator(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as error:
        print(f"gb-backfill: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except GameballError as error:
        print(f"gb-backfill: {error}", file=sys.stderr)
        return EXIT_USAGE
