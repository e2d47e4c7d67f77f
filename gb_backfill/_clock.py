"""The run clock: one source of time for everything that paces, polls or times a run.

A run takes its clock from the event loop it runs on (``loop.time``), and hands it to the
limiter, the pacing controller, the timeline, the bookkeeper, job polling and the progress bar.
So a test that runs a whole send on a loop whose time is fake (see ``tests/fake_time.py``) sees
every wait happen at once, in order, without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__: list[str] = []

#: Seconds on a monotonic scale: only differences mean anything.
Clock = Callable[[], float]


def run_clock() -> Clock:
    """The running event loop's clock (call it inside the run)."""
    return asyncio.get_running_loop().time
