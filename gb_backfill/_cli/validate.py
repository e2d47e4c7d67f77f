"""``gb-backfill validate``: a file's rows against Gameball's event rules."""

from __future__ import annotations

import argparse
from typing import Any

from .._options import ValidatePathOptions
from .._rows.warnings import warning_lines
from .._validate import validate_path
from .flags import Flags, add_options, keywords
from .shared import EXIT_CODES, EXIT_INCOMPLETE, EXIT_OK, INPUT

__all__: list[str] = []


def add(commands: Any) -> None:
    validate = commands.add_parser(
        "validate",
        help="check a CSV or Parquet file's rows: the invalid ones counted by broken rule, and "
        "with --failures PATH written there",
        epilog=EXIT_CODES,
    )
    validate.add_argument("input", help=INPUT)
    made = add_options(validate, ValidatePathOptions, face="validate")
    validate.set_defaults(run=run, flags=made)


def run(args: argparse.Namespace) -> int:
    made: Flags = args.flags
    report = validate_path(args.input, **keywords(args, made))
    invalid = report.invalid_rows
    print(f"rows: {report.rows:,}  valid: {report.valid_rows:,}  invalid: {invalid:,}")
    codes = report.counts()
    if int(codes.sum()) > invalid:
        print("broken rules by code (a row that breaks two rules counts under each):")
    for code, count in codes.items():
        print(f"  {code}: {count:,}, e.g. {report.example(str(code))}")
    for line in warning_lines(report.warnings):
        print(line)
    if report.failures_path is not None:
        print(f"invalid rows written to {report.failures_path}")
    elif invalid:
        print("--failures PATH writes the invalid rows there, each with its columns and rules")
    return EXIT_INCOMPLETE if invalid else EXIT_OK
