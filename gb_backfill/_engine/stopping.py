"""How a run stops: the switch that stops it, and the record of why it stopped.

The run's :class:`~gb_backfill._engine.bookkeeping.Bookkeeper` and the preview's
:class:`~gb_backfill._engine.lanes.quotes.QuoteBook` both hold a :class:`StopSwitch`:
:meth:`StopSwitch.halt` stops new requests and keeps the first error, and
:meth:`StopSwitch.pause` is the lanes' sleep that a stop cuts short.

A run never raises what stopped it: it finishes its bookkeeping (every row gets a status, the
failures file is written, the ledger closed), makes its report, and hands both back with a
:class:`Stop`. The public functions raise :class:`~gb_backfill._stops.RunStopped` from them, in
one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: it imports httpx, and the faces import this module
    from .outcomes import Outcome

__all__: list[str] = []


@dataclass(slots=True, kw_only=True, eq=False)
class StopSwitch:
    """Set once, by whatever stops the run first. Strictly private."""

    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None  #: the first error given to :meth:`halt`

    def halt(self, error: BaseException | None = None) -> None:
        """Stop starting requests; in-flight ones finish, queued rows end ``aborted``.

        The first ``error`` given is the one the run's :class:`Stop` reports.
        """
        if error is not None and self.error is None:
            self.error = error
        self.stopped.set()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, but wake at once when the run stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), seconds)


@dataclass(frozen=True, slots=True)
class Stop:
    """What stopped a run: an interrupt (Ctrl-C, SIGTERM, a cancelled task), an error (the
    ledger, a file, a bug), Gameball rejecting the keys, or the same failure ``threshold``
    requests in a row (at most one of the last three is set)."""

    interrupted: bool = False
    error: BaseException | None = None
    refused: Outcome | None = None
    repeated: Outcome | None = None
    threshold: int = 0
