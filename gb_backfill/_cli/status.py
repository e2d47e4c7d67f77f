"""``gb-backfill status``: what a ledger knows."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._errors import ConfigError
from .._settle import ledger_status
from .flags import Flags, add_flag
from .shared import EXIT_CODES, EXIT_INCOMPLETE, EXIT_OK

__all__: list[str] = []


def add(commands: Any) -> None:
    status = commands.add_parser(
        "status",
        help="what a ledger knows and what the next run with it will do; exits 1 while rows "
        "are held as unknown",
        epilog=EXIT_CODES,
    )
    made = Flags()
    made.record(add_flag(status, "--ledger", required=True, metavar="PATH",
                         help="the ledger a send kept"))  # fmt: skip
    add_flag(status, "--all", action="store_true", help="list every unknown row")
    add_flag(status, "--json", metavar="PATH",
             help="also write the counts and every unknown row as JSON")  # fmt: skip
    status.set_defaults(run=run, flags=made)


def run(args: argparse.Namespace) -> int:
    report = ledger_status(args.ledger)
    print(report.summary(limit=None if args.all else 20, terms=args.flags.terms))
    if args.json:
        _write_json(args.json, report.to_dict())
        print(f"  the ledger's counts and unknown rows are in {args.json}")
    held = report.next_run["held_as_unknown"]
    if held:
        # Exit 1, as for a run that leaves rows unknown: they wait for a settle.
        rows = "1 row is" if held == 1 else f"{held:,} rows are"
        print(f"{rows} held as unknown until settled (gb-backfill settle)")
        return EXIT_INCOMPLETE
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
