"""A run's stop switch, shared by the books a lane records its rows in.

The run's :class:`~gb_backfill._engine.bookkeeping.Bookkeeper` and the preview's
:class:`~gb_backfill._engine.lanes.quotes.QuoteBook` both hold one: :meth:`StopSwitch.halt` stops
new requests and keeps the first error (which the run raises once every row has its status), and
:meth:`StopSwitch.pause` is the lanes' sleep that a stop cuts short.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__: list[str] = []


@dataclass(slots=True, kw_only=True, eq=False)
class StopSwitch:
    """Set once, by whatever stops the run first. Strictly private."""

    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None  #: the first error given to :meth:`halt`

    def halt(self, error: BaseException | None = None) -> None:
        """Stop starting requests; in-flight ones finish, queued rows end ``aborted``.

        The first ``error`` given is the one the run raises at its end.
        """
        if error is not None and self.error is None:
            self.error = error
        self.stopped.set()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, but wake at once when the run stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopped.wait(), seconds)
