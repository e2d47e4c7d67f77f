"""A client-side rate limiter that keeps within Gameball's windows, the way it counts them.

Gameball allows 100 event requests in any second and 1,200 in any 30 seconds, counted when
they arrive, which can be anywhere between their send and their answer. The long window is a
sliding log of slots: a request takes one when it is sent and, with ``until_answered=True``,
holds it until one window after its answer (:meth:`RateLimiter.answered`), the only bound that
is safe whatever the network's delays (a request never answered keeps it); it costs about a
round trip per window. Without it, a slot is held one window from its send, for callers that
report no answers. The per-second limit is kept on send times by spacing requests evenly, 5%
under the limit (a burst that the client counted right can still reach the server bunched up
when the event loop or the connection pool held some requests back). The spacing follows a
schedule (GCRA) that, at 100/s and above, forgives being late by up to two slots, so a busy
loop does not lower the rate, and no second holds more than the limit; after a pause it starts
afresh, without a burst. An optional
:class:`AdaptiveRate` can space requests further, hold them while the server refuses, and keep
a lower quota in the long window when the account's real limits turn out lower than the
documented ones.

Create one per run, inside the running loop. The clock is injectable for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .._config import SPACING_SLACK, RateLimits
from .rate_control import AdaptiveRate

_RECHECK = 0.05  # seconds between looks while waiting: answers end holds and free slots
# A wait this short is none: the loop fires a timer this close at once, without the clock
# passing it, so waiting for it would spin.
_NO_WAIT = 1e-6
#: A wait shorter than this is the usual spacing between requests, not worth a word.
_WORTH_SAYING = 1.0


def _schedule(rate: float) -> tuple[float, int]:
    """The spacing that keeps requests at 95% of ``rate`` per second, and the slots a late
    request may catch up: worth it where slots are short, and within the limit still (at most
    95% of it plus these slots in any second)."""
    return (1.0 + SPACING_SLACK) / rate, min(2, int(rate * 0.02))


@dataclass(slots=True, eq=False)
class Slot:
    """One request's place in the limiter's windows, from :meth:`RateLimiter.take`."""

    sent_at: float
    #: when it leaves the long window; infinite until its answer when answers are awaited
    expires: float
    answered: bool = False


class _Window:
    """At most ``limit`` slots at a time, each held until its ``expires``."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self._expiries: list[float] = []  # a heap, of the slots with a known end
        self._awaiting = 0  # slots held until their answer

    def add(self, slot: Slot) -> None:
        if math.isinf(slot.expires):
            self._awaiting += 1
        else:
            heapq.heappush(self._expiries, slot.expires)

    def answered(self, slot: Slot, expires: float) -> None:
        self._awaiting -= 1
        slot.expires = expires
        heapq.heappush(self._expiries, expires)

    def free_at(self, limit: int, now: float) -> float:
        """The time when one more request fits, with at most ``limit`` in the window (inf
        until answers come, when every slot that must leave first awaits its answer)."""
        expiries = self._expiries
        while expiries and expiries[0] <= now:
            heapq.heappop(expiries)
        leaving = len(expiries) + self._awaiting - limit + 1  # slots to leave first
        if leaving <= 0:
            return 0.0
        if leaving > len(expiries):
            return math.inf
        return expiries[0] if leaving == 1 else heapq.nsmallest(leaving, expiries)[-1]


class RateLimiter:
    """``await acquire(stop)`` returns a :class:`Slot` when one more request fits; then it
    counts. ``answered(slot, now)`` tells when its answer came.

    ``defer(seconds)`` holds every caller back, for a 429 or a ``Retry-After``.
    """

    def __init__(
        self,
        limits: RateLimits,
        *,
        adaptive: AdaptiveRate | None = None,
        until_answered: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``until_answered``: the caller reports every answer (or giving up) with
        :meth:`answered`; each request holds its slot in the long window until one window
        after it. Otherwise a slot is held one window from its send."""
        self.limits = limits
        self.adaptive = adaptive
        self.until_answered = until_answered
        self.clock = clock
        self.spacing, self.late_slots = (
            _schedule(limits.per_second) if limits.per_second else (0.0, 0)
        )
        self._window = (
            _Window(
                limits.per_window,
                limits.window + limits.slack(limits.window, after_answers=until_answered),
            )
            if limits.per_window
            else None
        )
        self._due = -math.inf  # when the next request is due on the schedule
        self._held_until = 0.0
        self._deferred_for = 0.0  # the seconds the last defer() asked for (a Retry-After)
        self._said_until = 0.0  # the end of the wait holdup() last said: said to its last second
        self.waiting = 0  # callers in acquire() waiting for room (none: nothing is held up)
        # One waiter at a time keeps requests in arrival order and avoids a thundering herd.
        self._turn = asyncio.Lock()

    @property
    def unlimited(self) -> bool:
        return not self.spacing and self._window is None and self.adaptive is None

    def defer(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now."""
        until = self.clock() + seconds
        if until > self._held_until:
            self._held_until, self._deferred_for = until, seconds

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
        """The earliest time the next request may go (inf: not before an answer comes)."""
        now = self.clock()
        spacing, late = self._pace(now)
        ready = max(self._held_until, self._due - late * spacing)
        if self.adaptive is not None:
            ready = max(ready, self.adaptive.held_until(now))
        if self._window is not None:
            ready = max(ready, self._window.free_at(self._limit_of(self._window, now), now))
        return ready

    def holdup(self) -> str | None:
        """Why a request waiting for its turn cannot go yet, and for how long, in a person's
        words (for the progress bar); None when nothing waits, or not for long. A
        ``Retry-After`` holds every request, the one that got it too: it is said while it lasts."""
        now = self.clock()
        # A wait worth a word when it began is counted down to its last second ("1 s"), so the
        # bar is never silent at the end of a wait it announced.
        if self._held_until > now and self._deferred_for >= _WORTH_SAYING:
            left = self._held_until - now
            return f"Retry-After {self._deferred_for:g} s: {math.ceil(left):,} s left"
        if not self.waiting:
            return None
        least = _NO_WAIT if now < self._said_until else _WORTH_SAYING
        ready = self.ready_at()
        if ready - now < least:
            return None
        self._said_until = ready
        if self.adaptive is not None and self.adaptive.held_until(now) - now >= least:
            left = self.adaptive.held_until(now) - now
            return f"throttled by Gameball: next try in {math.ceil(left):,} s"
        window = self._window
        if window is not None:
            free = window.free_at(self._limit_of(window, now), now)
            period = f"{self.limits.window:g} s window"
            if math.isinf(free):
                return f"waiting for the {period}: answers due"
            if free - now >= least:
                return f"waiting for the {period}: {math.ceil(free - now):,} s"
        return None

    def room_beyond(self, reserve: int) -> bool:
        """Whether one more request fits in the long window now with ``reserve`` places kept
        free in it (for requests that may use them)."""
        if self._window is None or reserve <= 0:
            return True
        now = self.clock()
        return self._window.free_at(self._limit_of(self._window, now) - reserve, now) <= now

    def _limit_of(self, window: _Window, now: float) -> int:
        """The requests ``window`` may hold now: the configured quota, or the lower one the
        adaptive rate learned."""
        quota = self.adaptive.quota(now) if self.adaptive is not None else None
        return window.limit if quota is None else min(quota, window.limit)

    def take(self) -> Slot:
        """Count one request as sent now; returns its slot."""
        now = self.clock()
        spacing, late = self._pace(now)
        if now > self._due:
            # Later than the slots a late request may catch up: a pause (the run's start, a
            # full window) or a stalled loop. No burst to catch up: requests the stall held
            # up reach the server late, bunched up with it. The schedule starts afresh.
            self._due = now + late * spacing
        self._due = max(self._due, now) + spacing
        slot = Slot(now, math.inf)
        if self._window is not None:
            if not self.until_answered:
                slot.expires = now + self._window.period
            self._window.add(slot)
        if self.adaptive is not None:
            self.adaptive.sent(now)
        return slot

    def answered(self, slot: Slot, now: float) -> None:
        """``slot``'s request was answered, or given up on, at ``now``: the server counted it
        by then, so it holds its slot in the long window until one window after ``now``."""
        if not self.until_answered or slot.answered:
            return
        slot.answered = True
        if self._window is not None:
            self._window.answered(slot, now + self._window.period)

    async def acquire(self, stop: asyncio.Event) -> Slot | None:
        """Wait for room and take a slot; returns None, taking none, once ``stop`` is set."""
        if self.unlimited and not self._held_until:
            return None if stop.is_set() else Slot(self.clock(), math.inf, answered=True)
        async with self._turn:
            self.waiting += 1
            try:
                while True:
                    if stop.is_set():
                        return None
                    wait = self.ready_at() - self.clock()
                    if wait <= _NO_WAIT:
                        break
                    # Look again soon: an answer may end a hold or free a slot meanwhile.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), min(wait, _RECHECK))
            finally:
                self.waiting -= 1
            return self.take()
