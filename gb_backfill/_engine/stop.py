"""Why a send or a preview stopped before its end, as the run found it.

A run never raises what stopped it: it finishes its bookkeeping (every row gets a status, the
failures file is written, the ledger closed), makes its report, and hands both back. The public
functions raise :class:`~gb_backfill._stops.RunStopped` from them, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: it imports httpx, and the faces import this module
    from .outcomes import Outcome

__all__: list[str] = []


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
