"""The ``gb-backfill`` command line: demo, validate, preview, send, status, settle, emulator.

A module per command; each makes its parser and runs it through the library's public
functions, its flags made from the options' declaration (:mod:`gb_backfill._cli.flags`). One
exit-code rule for every command (:data:`EXIT_CODES`, also in ``--help`` and the README).
Whatever ends a run, every row is accounted for in the failures file and the ledger.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import _interrupt
from .._errors import ConfigError, GameballError, Mention, Terms
from . import demo, emulator, preview, send, settle, status, validate
from .flags import Flags
from .shared import EXIT_CODES, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["EXIT_CODES", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gb-backfill",
        description="Validate and send historical events to Gameball.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMAND_MODULES:
        command.add(commands)
    for command_parser in commands.choices.values():
        command_parser.set_defaults(parser=command_parser)
        # "--thousand ." would be taken for --thousands, and --event for --event-name once
        # there is no --event: a flag is written whole, or refused with the one meant.
        command_parser.allow_abbrev = False
    return parser


def _refuse_unknown(command_parser: argparse.ArgumentParser, unknown: list[str]) -> None:
    """Refuse flags the command does not have, with its usage and the flags meant, if any are
    close (argparse would show the top-level usage and no suggestion)."""
    import difflib  # only when a flag is mistyped: not on every command's start
    import re

    known = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", command_parser.format_help()))
    # Flags compared without their dashes, which every flag shares.
    bare = {flag.lstrip("-"): flag for flag in sorted(known)}
    for word in unknown:
        written = word.split("=", 1)[0]
        if not written.startswith("-"):
            continue
        normal = written.lower().replace("_", "-")
        word_written = normal.lstrip("-")
        # A flag the written one begins with (--seperator: --sep), else the closest spelling.
        begins = [flag for name, flag in bare.items() if len(name) >= 3
                  and word_written.startswith(name)]  # fmt: skip
        spelt = [bare[name] for name in difflib.get_close_matches(word_written, bare, n=2)]
        close = [normal] if normal in known else list(dict.fromkeys(begins[-1:] + spelt))[:2]
        if close:
            meant = " or ".join(close)
            command_parser.error(f"no flag {written}; did you mean {meant}? (--help lists all)")
    command_parser.error(f"unrecognized arguments: {' '.join(unknown)} (--help lists the flags)")


def _refuse_unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuse a mistyped command with the one meant (argparse lists them all, none named)."""
    import difflib

    written = next((word for word in argv if not word.startswith("-")), None)
    if written is None or written in _COMMANDS:
        return
    close = difflib.get_close_matches(written.lower(), _COMMANDS, n=1)
    if close:
        parser.error(f"no command {written!r}; did you mean {close[0]}? (--help lists all)")


_COMMAND_MODULES = (demo, validate, preview, send, status, settle, emulator)
#: each command is named as its module
_COMMANDS = tuple(module.__name__.rsplit(".", 1)[-1] for module in _COMMAND_MODULES)


def _version() -> str:
    from .. import __version__

    return str(__version__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    if _interrupt.started():
        print("gb-backfill: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    parser = build_parser()
    _refuse_unknown_command(parser, list(sys.argv[1:] if argv is None else argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _refuse_unknown(args.parser, unknown)
    run: Callable[[argparse.Namespace], int] = args.run
    made: Flags | None = getattr(args, "flags", None)
    terms: Terms = made.terms if made is not None else Mention.in_python
    try:
        return run(args)
    except KeyboardInterrupt:
        # Ctrl-C before a send or preview is under way (they say what they did themselves).
        print("gb-backfill: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigError as error:
        print(f"gb-backfill: error: {error.in_terms(terms)}", file=sys.stderr)
        return EXIT_USAGE
    except GameballError as error:
        print(f"gb-backfill: {error.in_terms(terms)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`gb-backfill send ... | head`): say nothing more, and keep
        # Python from complaining about the flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INCOMPLETE
