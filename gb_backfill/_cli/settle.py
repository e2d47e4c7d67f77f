"""``gb-backfill settle``: unknown rows marked as arrived or not, once looked up in Gameball."""

from __future__ import annotations

import argparse
from typing import Any

from .._errors import ConfigError
from .._settle import keys_from_file, settle
from .flags import Flags, add_flag
from .shared import EXIT_CODES, EXIT_OK

__all__: list[str] = []


def add(commands: Any) -> None:
    command = commands.add_parser(
        "settle",
        help="mark unknown rows as arrived or not, once looked up in Gameball",
        epilog=EXIT_CODES,
    )
    made = Flags()
    ledger = add_flag(command, "--ledger", required=True, metavar="PATH",
                      help="the ledger a send kept")  # fmt: skip
    verdict = command.add_mutually_exclusive_group(required=True)
    arrived = add_flag(
        verdict, "--arrived", dest="arrived", action="store_true", default=None,
        help="Gameball has them: the ledger counts them as sent, and runs skip them",
    )  # fmt: skip
    add_flag(
        verdict, "--not-arrived", dest="arrived", action="store_false", default=None,
        help="Gameball does not have them: the next run sends each once",
    )  # fmt: skip
    which = command.add_argument_group("which rows (gb_key values, as in the failures file)")
    add_flag(which, "--key", dest="keys", action="append", metavar="GB_KEY",
             help="one row; repeat it")  # fmt: skip
    add_flag(
        which, "--keys-file", metavar="PATH",
        help="a file of keys: one per line, or a Parquet/CSV file with a gb_key column (of a "
        "failures file, its unknown rows)",
    )  # fmt: skip
    add_flag(which, "--all", action="store_true", help="every unknown row of the ledger")
    # settle()'s keywords as flags, by their dest (keys= is --key, --keys-file or --all).
    made.record(ledger)
    made.record(arrived)
    made.of["keys"] = ("--key/--keys-file/--all", False)
    command.set_defaults(run=run, flags=made)


def run(args: argparse.Namespace) -> int:
    keys: list[str] = list(args.keys or [])
    if args.keys_file:
        keys += keys_from_file(args.keys_file)
    if args.all and keys:
        raise ConfigError("--all settles every unknown row: give it without --key or --keys-file")
    if not args.all and not keys:
        raise ConfigError("name the rows to settle: --key GB_KEY, --keys-file PATH, or --all")
    done = settle(args.ledger, arrived=args.arrived, keys="all" if args.all else keys)
    print(done.summary())
    return EXIT_OK
