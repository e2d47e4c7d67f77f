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
import signal
import sys

TYPE_CHECKING = False  # not `from typing import ...`: typing takes ms to import, before the hook
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any

__all__: list[str] = []


def _one_line(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        # Python still ends the process as SIGINT would (exit status 130 in a shell).
        print("gb-backfill: interrupted", file=sys.stderr)
        return
    if interrupted_while_starting and not _started:
        # Ctrl-C inside a C extension's import (numpy's) comes out as an ImportError: still
        # Ctrl-C, so one line, and the process ends as SIGINT ends it.
        print("gb-backfill: interrupted", file=sys.stderr)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.__excepthook__(kind, value, traceback)


#: Set when Ctrl-C came while starting (see _noted and _held).
interrupted_while_starting = False
_started = False


def _noted(signum: int, frame: object) -> None:
    """Python's own Ctrl-C handler, which also notes that Ctrl-C came (a C extension may turn
    the KeyboardInterrupt into another error)."""
    global interrupted_while_starting
    interrupted_while_starting = True
    raise KeyboardInterrupt


def _held(unraisable: Any) -> None:
    """Ctrl-C that landed in a callback Python cannot raise from (importlib's module locks,
    while pandas loads) would be printed as a traceback and then ignored: while starting, it is
    held for :func:`started` to act on."""
    global interrupted_while_starting
    if not _started and isinstance(unraisable.exc_value, KeyboardInterrupt):
        interrupted_while_starting = True
        return
    sys.__unraisablehook__(unraisable)


def started() -> bool:
    """The command line is about to run its command; True if Ctrl-C came while it started
    (then the command must not run)."""
    global _started
    _started = True
    if signal.getsignal(signal.SIGINT) is _noted:
        # Python's handler again: asyncio turns Ctrl-C into a cancelled run only under it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return interrupted_while_starting


def quiet_when_run_as_the_cli() -> None:
    command = sys.argv[0] if sys.argv else ""
    if command == "-m" or os.path.basename(command) == "gb-backfill":
        sys.excepthook = _one_line
        sys.unraisablehook = _held
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not SIG_IGN (`&`)
            signal.signal(signal.SIGINT, _noted)


quiet_when_run_as_the_cli()
