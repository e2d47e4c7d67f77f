"""A local emulator of Gameball's API, for the demo, notebooks and end-to-end tests.

* :mod:`.server`: the HTTP server (aiohttp): events, the reward preview, the batch endpoints,
  per-key rate limits, faults, and the record of what it accepted;
* :mod:`.faults`: the faults it injects, and its default keys;
* :mod:`.batch`: its batch jobs (of events and of orders);
* :mod:`.orders`: its orders endpoints, their rules, and the order reward preview;
* :mod:`.record`: what it remembers and shows (events, orders, points, counters);
* :mod:`.campaigns`: its campaigns, which the reward preview quotes and live events achieve.

aiohttp is imported only when the server is first used: the CLI's ``--help`` and
``import gb_backfill`` do not load it. It is an extra (``pip install 'gb-backfill[emulator]'``):
without it the rest of the package works, and ``Emulator(...)`` says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch import BatchSettings
from .campaigns import Campaign, Campaigns, Condition, Coupon, Points, PointsPerUnit
from .faults import DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Faults
from .orders import OrderSettings

if TYPE_CHECKING:
    from .server import RECORD_PATH, Emulator

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET_KEY",
    "RECORD_PATH",
    "BatchSettings",
    "Campaign",
    "Campaigns",
    "Condition",
    "Coupon",
    "Emulator",
    "Faults",
    "OrderSettings",
    "Points",
    "PointsPerUnit",
]


def __getattr__(name: str) -> Any:
    if name in ("Emulator", "RECORD_PATH"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
