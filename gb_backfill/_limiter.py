"""A client-side rate limiter that keeps within Gameball's windows, the way it counts them.

Gameball allows 100 event requests in any second and 1,200 in any 30 seconds. The long window
is kept exactly with a sliding log of send times. The per-second limit is kept by spacing
requests evenly, 5% under the limit (a burst that the client counted right can still reach
the server bunched up when the event loop or the connection pool held some requests back, and
Gameball counts arrivals). The spacing follows a schedule (GCRA) that, at 100/s and above,
forgives being late by up to two slots, so a busy loop does not lower the rate, and no second
holds more than the limit. An optional :class:`AdaptiveRate` can space requests further, hold
them while the server refuses, and keep a lower quota in the long window when the account's
real limits turn out lower than the documented ones.

Create one per run, inside the running loop. The clock is injectable for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from ._config import SPACING_SLACK, RateLimits
from ._rate_control import AdaptiveRate

_RECHECK = 0.05  # seconds between looks while refusals hold the run
# A wait this short is none: the loop fires a timer this close at once, without the clock
# passing it, so waiting for it would spin.
_NO_WAIT = 1e-6


def _schedule(rate: float) -> tuple[float, int]:
    """The spacing that keeps requests at 95% of ``rate`` per second, and the slots a late
    request may catch up: worth it where slots are short, and within the limit still (at most
    95% of it plus these slots in any second)."""
    return (1.0 + SPACING_SLACK) / rate, min(2, int(rate * 0.02))


class _Window:
    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.sent: deque[float] = deque(maxlen=limit)

    def free_at(self, limit: int) -> float:
        """The time when one more request fits, with at most ``limit`` (<= ``self.limit``) in
        the window."""
        if len(self.sent) < limit:
            return 0.0
        return self.sent[len(self.sent) - limit] + self.period


class RateLimiter:
    """``await acquire(stop)`` returns when one more request fits; then it counts.

    ``defer(seconds)`` holds every caller back, for a 429 or a ``Retry-After``.
    """

    def __init__(
        self,
        limits: RateLimits,
        *,
        adaptive: AdaptiveRate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.adaptive = adaptive
        self.clock = clock
        self.spacing, self.late_slots = (
            _schedule(limits.per_second) if limits.per_second else (0.0, 0)
        )
        self._window = (
            _Window(limits.per_window, limits.window + limits.slack(limits.window))
            if limits.per_window
            else None
        )
        self._due = -float("inf")  # when the next request is due on the schedule
        self._held_until = 0.0
        # One waiter at a time keeps requests in arrival order and avoids a thundering herd.
        self._turn = asyncio.Lock()

    @property
    def unlimited(self) -> bool:
        return not self.spacing and self._window is None and self.adaptive is None

    def defer(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now."""
        self._held_until = max(self._held_until, self.clock() + seconds)

    def _pace(self, now: float) -> tuple[float, int]:
        """The spacing between requests and the slots a late one may catch up, at ``now``."""
        spacing, late = self.spacing, self.late_slots
        rate = self.adaptive.rate(now) if self.adaptive is not None else None
        if rate is not None:
            slowed, slowed_late = _schedule(rate)
            if slowed > spacing:
                spacing, late = slowed, min(late, slowed_late)
        return spacing, late

    def ready_at(self) -> float:
        """The earliest time the next request may go."""
        now = self.clock()
        spacing, late = self._pace(now)
        ready = max(self._held_until, self._due - late * spacing)
        quota = None
        if self.adaptive is not None:
            ready = max(ready, self.adaptive.held_until(now))
            quota = self.adaptive.quota(now)
        if self._window is not None:
            limit = self._window.limit if quota is None else min(quota, self._window.limit)
            ready = max(ready, self._window.free_at(limit))
        return ready

    def take(self) -> float:
        """Count one request as sent now; returns the time it was counted at."""
        now = self.clock()
        spacing, _ = self._pace(now)
        self._due = max(self._due, now) + spacing
        if self._window is not None:
            self._window.sent.append(now)
        if self.adaptive is not None:
            self.adaptive.sent(now)
        return now

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait for a slot and take it; returns False, taking none, once ``stop`` is set."""
        if self.unlimited and not self._held_until:
            return not stop.is_set()
        async with self._turn:
            while True:
                if stop.is_set():
                    return False
                wait = self.ready_at() - self.clock()
                if wait <= _NO_WAIT:
                    break
                if self.adaptive is not None and self.adaptive.held_until(self.clock()):
                    # A hold ends with an accepted answer, which this wait cannot see.
                    wait = min(wait, _RECHECK)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            self.take()
            return True
