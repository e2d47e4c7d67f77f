"""A client-side rate limiter with stacked sliding windows, matching how Gameball counts.

Gameball allows 100 event requests in any second and 1,200 in any 30 seconds. A sliding log of
send times per window keeps the client within both exactly, at the highest rate they allow.
Create one per run, inside the running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from ._config import RateLimits


class _Window:
    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.sent: deque[float] = deque(maxlen=limit)

    def free_at(self) -> float:
        """The monotonic time when one more request fits."""
        if len(self.sent) < self.limit:
            return 0.0
        return self.sent[0] + self.period


class RateLimiter:
    """``await acquire(stop)`` returns when one more request fits every window; then it counts.

    ``defer(seconds)`` holds every caller back, for a 429 or a ``Retry-After``.
    """

    def __init__(self, limits: RateLimits) -> None:
        self._windows = [
            _Window(limit, period + limits.slack(period))
            for limit, period in ((limits.per_second, 1.0), (limits.per_window, limits.window))
            if limit
        ]
        self._held_until = 0.0
        # One waiter at a time keeps requests in arrival order and avoids a thundering herd.
        self._turn = asyncio.Lock()

    def defer(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now."""
        self._held_until = max(self._held_until, time.monotonic() + seconds)

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait for a slot and take it; returns False, taking none, once ``stop`` is set."""
        if not self._windows and not self._held_until:
            return not stop.is_set()
        async with self._turn:
            while True:
                if stop.is_set():
                    return False
                now = time.monotonic()
                ready = max([self._held_until, *(w.free_at() for w in self._windows)])
                if ready <= now:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ready - now)
            for window in self._windows:
                window.sent.append(now)
            return True
