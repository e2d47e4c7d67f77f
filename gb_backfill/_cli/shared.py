"""What the commands share: one exit-code rule, a run that SIGTERM stops as Ctrl-C does, and
output paths checked before anything is spent."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable
from typing import TypeVar

from .._errors import ConfigError

__all__: list[str] = []

T = TypeVar("T")

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
#: The exit-code rule, as ``--help`` and the README state it.
EXIT_CODES = (
    "exit codes: 0 everything asked was done, with nothing invalid or unsent; 1 it finished "
    "with rows invalid, failed or unknown (the failures file says which and why; status: rows "
    "are held as unknown until settled); 2 usage "
    "error (a bad argument, a refused ledger, keys Gameball rejects); 3 stopped early (a "
    "ledger that cannot be written, the same failure on every request, an unexpected error); "
    "130 interrupted (Ctrl-C); 143 terminated (SIGTERM)"
)


#: The help of every command's input.
INPUT = (
    "a .csv or .parquet file, a directory of them, or a quoted glob; on disk or in an object "
    "store (s3://, gs://, abfs://)"
)


async def until_terminated(work: Awaitable[T], terminated: list[bool]) -> T:
    """Await ``work`` (a send or a preview) on this loop; SIGTERM cancels it, whatever SIGINT's
    disposition, and is noted in ``terminated``.

    A shell starts `cmd &` with SIGINT ignored, so turning SIGTERM into SIGINT would do nothing
    there. A cancelled run finishes what is in flight, accounts for every row and raises
    :class:`~gb_backfill._stops.Interrupted` with its report.
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


def check_writable(path: str, flag: str) -> None:
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
