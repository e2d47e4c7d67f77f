"""Ctrl-C while the command line starts: one line, not a traceback.

Importing pandas takes the first half second of every ``gb-backfill`` command, before the
command's own handling of Ctrl-C exists; an interrupt then would print a traceback of pandas'
imports. Only when the package is imported to run the command line (``gb-backfill``, or
``python -m gb_backfill``, whose ``sys.argv[0]`` is ``"-m"`` while the package loads) is the
hook set (when this module is imported, first of all): a program that imports gb-backfill
keeps its own.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType

__all__: list[str] = []


def _one_line(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        # Python still ends the process as SIGINT would (exit status 130 in a shell).
        print("gb-backfill: interrupted", file=sys.stderr)
        return
    sys.__excepthook__(kind, value, traceback)


def quiet_when_run_as_the_cli() -> None:
    command = sys.argv[0] if sys.argv else ""
    if command == "-m" or os.path.basename(command) == "gb-backfill":
        sys.excepthook = _one_line


quiet_when_run_as_the_cli()
