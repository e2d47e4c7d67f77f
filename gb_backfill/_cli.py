"""The ``gb-backfill`` command line.

Exit codes: 0 when every row is valid (or sent), 1 when some are not, 2 on bad usage.
"""

from __future__ import annotations

import argparse
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
