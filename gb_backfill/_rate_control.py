"""Finding the account's real limit: a shared send rate that backs off on 429 and probes back up.

Gameball's published limits have changed more than once, and an account's real limit may be
lower than the documented one. :class:`AdaptiveRate` is the one controller all of a lane's
workers share. It starts unthrottled (the configured limits alone apply) and treats a 429 (or a
burst of 2001) as the signal:

* **the rate** follows CUBIC, as botocore's ``adaptive`` retry mode does: a throttle cuts the
  rate to ``beta`` (0.7) of the rate it was sending at, then the rate grows back along
  ``C * (t - K) ** 3 + peak`` (``C`` 0.4), flat near the old peak and probing beyond it, capped
  at twice the measured send rate and never above the configured limit. One cut per episode:
  throttles of requests sent before the last cut are the same episode, not new news.
* **the long window**: when requests are still refused more than a second after an episode
  began (a per-second limit would have cleared by then), the real limit is a window's quota.
  Its size is learned from the requests the server accepted in the window before the episode,
  and kept from then on (the rate itself is restored, as it was not the problem). A window
  that passes without a throttle lets the learned quota grow by 10% again, up to the
  configured one, so a limit that rises is found again.

Everything takes ``now`` from the caller, so the controller is tested on a fake clock.
"""

from __future__ import annotations

import math
from collections import deque

__all__: list[str] = []

BETA = 0.7  # the share of the rate kept after a throttle
SCALE = 0.4  # CUBIC's C: how fast the rate probes back
FLOOR = 0.5  # requests per second: never slower
_BUCKET = 0.5  # seconds per sample of the measured send rate
_SMOOTH = 0.8  # weight of the older measured rate
_EPISODE = 1.0  # seconds of refusals after which the limit is a window's quota


class AdaptiveRate:
    """The shared send rate of one kind of endpoint. Strictly private: used by the limiter."""

    def __init__(self, *, per_second: float, per_window: int, window: float) -> None:
        self.ceiling = float(per_second) if per_second else math.inf
        self.configured_window = per_window
        self.window = window
        #: the window quota learned from the server, when it is lower than the configured one
        self.learned_window: int | None = None
        self.throttles = 0
        self._cut_at: float | None = None  # when the rate was last cut; None: never throttled
        self._peak = 0.0
        self._k = 0.0
        self._episode_at: float | None = None  # first throttle of the current episode
        self._rate_before: float | None = None
        self._accepted: deque[float] = deque()
        self._measured = 0.0
        self._bucket_start: float | None = None
        self._bucket_count = 0
        self._grown_at = 0.0

    # --- what happened ---------------------------------------------------------------------

    def sent(self, now: float) -> None:
        """A request was sent: the measured send rate is sampled every half second."""
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
        if self._episode_at is None:
            self._episode_at = now
        elif now - self._episode_at >= _EPISODE and self._learn_window(now):
            return
        if self._cut_at is not None and sent_at <= self._cut_at:
            return  # sent before the last cut: the same episode
        current = self.rate(now)
        measured = self._measured or current or self.ceiling
        base = min(measured, current) if current is not None else measured
        if math.isinf(base):
            base = max(self._bucket_count / max(now - (self._bucket_start or now), _BUCKET), 1.0)
        self._rate_before = current
        self._peak = base
        self._k = (base * (1 - BETA) / SCALE) ** (1 / 3)
        self._cut_at = now

    def _learn_window(self, now: float) -> bool:
        """Refusals have outlasted a per-second limit: learn the window's quota. True if so."""
        if self._episode_at is None:
            return False
        begun = self._episode_at
        quota = sum(1 for t in self._accepted if t > begun - self.window and t <= begun)
        if quota <= 0 or quota >= self.configured_window:
            return False
        self.learned_window = quota
        self._grown_at = now
        self._episode_at = now  # one lesson per episode
        # The rate was not the problem: put it back where it was before this episode.
        if self._rate_before is None:
            self._cut_at = None
        else:
            self._peak, self._k, self._cut_at = self._rate_before, 0.0, now
        return True

    # --- what to do ------------------------------------------------------------------------

    def rate(self, now: float) -> float | None:
        """The requests per second to send at now; None while never throttled."""
        if self._cut_at is None:
            return None
        t = now - self._cut_at
        cubic = SCALE * (t - self._k) ** 3 + self._peak
        cap = self.ceiling
        if self._measured:
            cap = min(cap, max(2 * self._measured, self._peak))
        return max(FLOOR, min(cubic, cap))

    def window_free_at(self, now: float) -> float:
        """When the learned window has room for one more request (0: now, or none learned)."""
        if self.learned_window is None or len(self._accepted) < self.learned_window:
            return 0.0
        return self._accepted[-self.learned_window] + self.window
