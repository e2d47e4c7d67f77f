"""Finding the account's real limit: a shared send rate that backs off on 429 and probes back up.

Gameball's published limits have changed more than once, and an account's real limit may be
lower than the documented one. :class:`AdaptiveRate` is the one controller a lane's workers
share. It starts unthrottled (the configured limits alone apply) and treats a 429 (or a burst
of 2001) as the signal:

* **the rate** follows a CUBIC curve (the shape botocore's ``adaptive`` retry mode uses) around
  the rate the server was seen to accept: a throttle sets the peak to what it accepted in the
  second before (which, against a per-second limit, *is* the limit) and cuts the rate to
  ``BETA`` of it; the rate grows back to the peak over ``PLATEAU`` seconds, stays flat near it,
  then probes beyond it, faster and faster, so a limit that rises is found again. It is capped
  at twice the measured send rate and never exceeds the configured limit. One cut per episode:
  throttles of requests sent before the last cut are the same news, not new news.
* **the long window**: when requests are still refused a second into an episode, and the
  server accepted far more in the window before than its per-second limit explains (a burst
  against a per-second limit can be refused for up to a second), the limit is a window's
  quota. Its size is what the server accepted in the window before the episode, and it is
  kept from then on (the rate itself is put back, as it was not the problem). A window that
  passes without a throttle lets the learned quota grow by 10%, up to the configured one.

Everything takes ``now`` from the caller, so the controller is tested on a fake clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

from ._config import SPACING_SLACK, RateLimits

__all__: list[str] = []

BETA = 0.8  # the share of the accepted rate a throttle cuts to
PLATEAU = 10.0  # seconds for the rate to grow back to the peak; probing beyond it follows
FLOOR = 0.5  # requests per second: never slower
_BUCKET = 0.5  # seconds per sample of the measured send rate
_SMOOTH = 0.8  # weight of the older measured rate
_EPISODE = 1.0  # seconds of refusals after which the limit may be a window's quota


class AdaptiveRate:
    """The shared send rate of one kind of endpoint. Strictly private: used by the limiter."""

    def __init__(self, limits: RateLimits) -> None:
        """Starts unthrottled, within ``limits`` (the configured ones, never exceeded)."""
        self.configured = limits
        self.ceiling = float(limits.per_second) if limits.per_second else math.inf
        self.configured_window = limits.per_window
        self.window = limits.window
        #: the window quota learned from the server, when it is lower than the configured one
        self.learned_window: int | None = None
        self.throttles = 0
        self._cut_at: float | None = None  # when the rate was last cut; None: never throttled
        self._peak = 0.0
        self._episode_at: float | None = None  # first throttle of the current episode
        self._rate_before: float | None = None
        self._accepted: deque[float] = deque()
        self._measured = 0.0
        self._bucket_start: float | None = None
        self._bucket_count = 0
        self._grown_at = 0.0
        self._last_sent: float | None = None
        self._best_peak = 0.0  # the most the server was seen to accept in a second

    # --- what happened ---------------------------------------------------------------------

    def sent(self, now: float) -> None:
        """A request was sent: the measured send rate is sampled every half second."""
        if self._cut_at is not None and self._last_sent is not None:
            idle = now - self._last_sent
            if idle > 1.0:
                # Probing is for time spent sending: a pause (a full window, a Retry-After)
                # must not let the rate climb far past the limit it just found.
                self._cut_at += idle
        self._last_sent = now
        if self._bucket_start is None:
            self._bucket_start = now
        elapsed = now - self._bucket_start
        if elapsed >= _BUCKET:
            sample = self._bucket_count / elapsed
            self._measured = _SMOOTH * self._measured + (1 - _SMOOTH) * sample
            self._bucket_start, self._bucket_count = now, 0
        self._bucket_count += 1

    def accepted(self, now: float) -> None:
        """A request was answered without a throttle."""
        self._accepted.append(now)
        while self._accepted and self._accepted[0] <= now - self.window:
            self._accepted.popleft()
        self._episode_at = None
        if self.learned_window is not None and now - self._grown_at >= self.window:
            # A whole window without a throttle: probe a little above the learned quota.
            grown = math.ceil(self.learned_window * 1.1)
            self.learned_window = grown if grown < self.configured_window else None
            self._grown_at = now

    def throttled(self, sent_at: float, now: float) -> None:
        """A request sent at ``sent_at`` was refused for the pace (429, or a burst of 2001)."""
        self.throttles += 1
        used = sum(1 for t in self._accepted if t > sent_at - self.window)
        if self.learned_window is not None and used >= 0.9 * self.learned_window:
            # The learned quota is used up (perhaps after probing above it): the window again,
            # so the quota is relearned and the rate left alone.
            self.learned_window, self._grown_at, self._episode_at = max(used, 1), now, None
            return
        if self._episode_at is None:
            self._episode_at = now
        elif now - self._episode_at >= _EPISODE and self._learn_window(now):
            return
        if self._cut_at is not None and sent_at <= self._cut_at:
            return  # sent before the last cut: the same episode
        current = self.rate(now)
        accepted = sum(1 for t in reversed(self._accepted) if t > sent_at - 1.0)
        fallback = min(self._measured or self.ceiling, current or self.ceiling)
        peak = float(accepted) if accepted else fallback
        if math.isinf(peak):
            peak = 1.0
        self._rate_before = current
        self._peak = max(peak, FLOOR)
        if accepted:  # evidence of what the server takes in a second, not a guess
            self._best_peak = max(self._best_peak, float(accepted))
        self._cut_at = now

    def _learn_window(self, now: float) -> bool:
        """Refusals have outlasted a per-second limit: learn the window's quota. True if so."""
        if self._episode_at is None:
            return False
        begun = self._episode_at
        quota = sum(1 for t in self._accepted if t > begun - self.window and t <= begun)
        if quota <= 0 or quota >= self.configured_window or quota <= 2 * self._best_peak:
            # Not a window: a per-second limit alone explains that many (a burst can be
            # refused for up to a second after it).
            return False
        self.learned_window = quota
        self._grown_at = now
        self._episode_at = now  # one lesson per episode
        # The rate was not the problem: put it back where it was before this episode.
        if self._rate_before is None:
            self._cut_at = None
        else:
            # Start at the top of the curve: the plateau, then probing.
            self._peak, self._cut_at = self._rate_before, now - PLATEAU
        return True

    # --- what to do ------------------------------------------------------------------------

    def rate(self, now: float) -> float | None:
        """The requests per second to send at now; None while never throttled."""
        if self._cut_at is None:
            return None
        t = (now - self._cut_at) / PLATEAU
        cubic = self._peak * (1 + (1 - BETA) * (t - 1) ** 3)
        cap = self.ceiling
        if self._measured:
            cap = min(cap, max(2 * self._measured, self._peak))
        return max(FLOOR, min(cubic, cap))

    def found(self, now: float) -> RateLimits | None:
        """The limits the run settled on, when Gameball's were lower than the configured ones."""
        configured = self.configured
        rate = self.rate(now)
        per_second = configured.per_second
        best = self._best_peak or self._peak
        # Below the pace the sender keeps anyway, or it says nothing: a throttle at 97/s under
        # a 100/s limit came from requests that reached the server bunched, not a lower limit.
        paced = per_second / (1.0 + SPACING_SLACK)
        if rate is not None and best and (not per_second or best < paced):
            per_second = max(1, math.floor(best))
        per_window = self.learned_window or configured.per_window
        if (per_second, per_window) == (configured.per_second, configured.per_window):
            return None
        return replace(configured, per_second=per_second, per_window=per_window)

    def window_free_at(self, now: float) -> float:
        """When the learned window has room for one more request (0: now, or none learned)."""
        if self.learned_window is None or len(self._accepted) < self.learned_window:
            return 0.0
        return self._accepted[-self.learned_window] + self.window
