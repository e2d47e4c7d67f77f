"""Finding the account's real limits: a shared send rate that backs off on refusals and probes back.

Gameball's published limits have changed more than once, and an account's real limit may be
lower than the documented one. :class:`AdaptiveRate` is the one controller a lane's workers
share (status reads may keep another instance). It starts unthrottled (the configured limits
alone apply) and treats a 429 (or a burst of 2001) as the signal.

A refusal at the configured pace after the server took about all of it in the second before
is requests that reached it bunched up (a stalled loop, network jitter), no lower limit: the
pace drops to 92% of what it took, then probes back beyond it. Any other refusal holds the
run: one probe at a time (at once, then 0.25 s, 0.5 s and 1 s in, then every second, or after
the ``Retry-After`` the server named) until the server takes one. Limits are learned only from
what the run sent and what was refused; how long the hold lasts tells three causes apart:

* **the pace** (a per-second limit): the server took ``n`` requests in the second before the
  refusal, and has room again once the first of them has been a second at the server (not
  sooner: then it was the window, other clients, earlier requests, and nothing is cut; the
  probes of a hold count for no second). The rate then follows a CUBIC curve (the shape
  botocore's ``adaptive`` retry mode uses) around ``n``: it is cut to ``BETA`` of it, grows
  back over ``PLATEAU`` seconds, stays flat, then probes beyond it, faster and faster, so a
  limit that rises is found again. It never exceeds the configured limit, nor a quarter above
  the measured send rate (a rate the window holds back is not being probed). One cut per
  episode: refusals of requests sent before the last cut are the same news.
* **a full window**: refusals outlast a second; or, when the server names a wait longer than
  a second (no probe can go sooner), the refusal came at a pace no faster than the per-second
  limit already found. Nothing is cut. While the window may still hold earlier requests (the
  run before, a resume after a crash: the run's first window, unless its ledger shows that no
  run sent within a window before it), these refusals teach nothing about the quota: the run
  waits for those requests to leave and goes on at the configured pace. But if the room comes
  only once its own first requests can leave (earlier ones, sent before the run at no more
  than the per-second limit, would have made room sooner), its own filled the window: that is
  the quota.
* **a lower quota**: a full window once it holds only this run's requests. The quota is what
  the server took in the window before the refusal (counted by send time, as the server counts
  arrivals); the limiter keeps it from then on, and no probe goes beyond it while refusals
  last. It is tested again as soon as the refusals stop, then once per window: one request
  beyond it; if the server takes that, it is dropped.

A ``Retry-After`` is a wait, never a measurement: its length says nothing about the limit.

:meth:`found` advises lower limits only on sustained evidence: refusals at a pace below the
configured one (after a cut, or with the server taking clearly less than that pace), while
the window can hold no earlier requests, over at least two windows. A few refusals of a run at
the configured limits (requests that reached the server bunched, a window still full of the
run before) never advise anything.

Everything takes ``now`` from the caller, so the controller is tested on a fake clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

from .._config import SPACING_SLACK, RateLimits

__all__: list[str] = []

BETA = 0.8  # the share of the accepted rate a throttle cuts to
PLATEAU = 10.0  # seconds for the rate to grow back to the peak; probing beyond it follows
FLOOR = 0.5  # requests per second: never slower
_BUCKET = 0.5  # seconds per sample of the measured send rate
_SMOOTH = 0.8  # weight of the older measured rate
_EPISODE = 1.0  # refused this long into a hold: the long window, not a per-second limit
_PROBE_FIRST = 0.25  # seconds from the first probe (at once) to the next; then at 0.5 s, 1 s ...
_PROBE_MAX = 1.0  # ... and every second after that
_YOUNG_SLACK = 1.0  # seconds past a window for earlier requests to have left it
_BUNCHED = 0.9  # refused after taking this share of the configured pace: bunched up
_GENTLE = 0.92  # what a refusal of requests that reached the server bunched up cuts to
_AT_QUOTA = 0.97  # a count within 3% of a quota is that quota (requests reach the server late)
#: How much sooner than a per-second limit allows room may come (requests that reached the
#: server late): sooner than that, the refusal was not about a per-second limit.
_ROOM_EARLY = 0.25


@dataclass(slots=True)
class _Hold:
    """Sending stopped by refusals: one probe at a time until the server takes one."""

    refused_sent: float  # when the request whose refusal began the hold was sent
    began: float  # when that refusal came
    probe_at: float  # when the next probe may go
    peak: float  # what the server took in the second before the refused request
    evidence: bool  # refused at a pace below the configured one, no earlier requests about
    #: the first request the server took in that second (none before the last hold ended): a
    #: per-second limit has room again only once it has been a second at the server
    second_from: float
    #: the rate's new peak if the hold shows a per-second limit; None: no cut to make
    cut: float | None = None
    pace: bool = True  # its refusals may be about the pace (else no per-second limit is read)
    window: bool = False  # the refusals outlasted a second: the long window is full


class AdaptiveRate:
    """The shared send rate of one kind of endpoint. Strictly private: used by the limiter."""

    def __init__(self, limits: RateLimits, *, earlier_sent: float | None = None) -> None:
        """Starts unthrottled, within ``limits`` (the configured ones, never exceeded).

        ``earlier_sent``: when (on the caller's clock) a run before this one last sent, as
        the run's ledger knows (``-inf``: never); the server's window holds none of those
        requests a window later. None: unknown, so the run's first window may hold some."""
        self.configured = limits
        self._earlier_sent = earlier_sent
        self.ceiling = float(limits.per_second) if limits.per_second else math.inf
        self.configured_window = limits.per_window
        self.window = limits.window
        #: the window quota learned from the server, when it is lower than the configured one
        self.learned_window: int | None = None
        self._cut_at: float | None = None  # when the rate was last cut; None: never throttled
        self._peak = 0.0
        self._young_cut = False  # the last cut came in the run's first window
        self._bunched = -math.inf  # when the rate was last cut for requests that came bunched
        self._hold: _Hold | None = None
        self._accepted: deque[float] = deque()  # send times of accepted requests, two windows
        self._refused: deque[float] = deque()  # send times of refused requests, one window
        self._measured = 0.0
        self._bucket_start: float | None = None
        self._bucket_count = 0
        self._first_sent: float | None = None
        self._last_sent: float | None = None
        self._sends: deque[float] = deque()  # send times, two seconds
        self._retest_at = math.inf  # when the learned quota may be tested next
        self._testing: float | None = None  # send time of the request testing it
        self._best_peak = 0.0  # the most the server was seen to accept in a second
        self._found_peak = 0.0  # the same, from refusals that are evidence
        self._evidence: dict[str, tuple[float, float]] = {}  # kind: (first, last) refusal
        self._resumed = -math.inf  # when the request that ended the last hold was sent

    # --- what happened ---------------------------------------------------------------------

    def sent(self, now: float) -> None:
        """A request was sent: the measured send rate is sampled every half second."""
        if self._first_sent is None:
            self._first_sent = now
        idle = 0.0 if self._last_sent is None else now - self._last_sent
        if idle > 1.0 and self._cut_at is not None and idle > 2.0 / (self.rate(now) or math.inf):
            # Probing is for time spent sending: a pause (a full window, a Retry-After) must
            # not let the rate climb far past the limit it just found. A gap the rate itself
            # sets is no pause: at 1/s or less, every gap would hold the rate where it is.
            self._cut_at += idle
        self._sends.append(now)
        while self._sends[0] <= now - 2.0:
            self._sends.popleft()
        self._last_sent = now
        if self._young_cut and self._hold is None and not self._young(now):
            # Cut while earlier requests may have filled the window: probe beyond it now.
            self._cut_at, self._young_cut = min(self._cut_at or now, now - PLATEAU), False
        self._measure(now)
        hold = self._hold
        if hold is not None:
            held = now - hold.began  # probes at 0, 0.25, 0.5, 1, 2, 3 ... s into the hold
            hold.probe_at = hold.began + max(_PROBE_FIRST, min(2 * held, held + _PROBE_MAX))
        elif self._test_due(now):
            # One request beyond the learned quota (what quota() allowed): is it still this low?
            self._testing, self._retest_at = now, now + self.window

    def accepted(self, sent_at: float, now: float) -> None:
        """A request sent at ``sent_at`` was answered without a throttle."""
        self._accepted.append(sent_at)
        self._forget(now)
        hold = self._hold
        if hold is not None and sent_at > hold.refused_sent:
            self._end_hold(hold, sent_at, now)
        if self._testing is not None and sent_at >= self._testing:
            # The server took one beyond the learned quota: its quota is higher.
            self.learned_window, self._testing = None, None

    def throttled(self, sent_at: float, now: float, *, retry_after: float | None = None) -> None:
        """A request sent at ``sent_at`` was refused for the pace (429, or a burst of 2001),
        with the ``Retry-After`` seconds it named, if any."""
        self._refused.append(sent_at)
        self._forget(now)
        if self._testing is not None and sent_at >= self._testing:
            # The test beyond the learned quota was refused: the quota holds.
            self._testing = None
            if self.learned_window is not None and self.learned_window < self.configured_window:
                self._note("window", now)
            return
        if sent_at <= self._bunched:
            return  # sent before the cut for requests that reached the server bunched up
        hold = self._hold
        if hold is None:
            if not self._bunched_up(sent_at, now):
                self._begin_hold(sent_at, now, retry_after or 0.0)
        elif not hold.window and sent_at - hold.refused_sent >= _EPISODE:
            self._window_full(hold, now)

    # --- how refusals are read -------------------------------------------------------------

    def _taken(self, sent_at: float) -> int:
        """Requests sent in the second before ``sent_at`` and not refused: what the server
        took in its second before that request arrived (it counts arrivals), answered or not
        yet (a refusal comes back sooner than an answer that needed processing)."""
        sent = sum(1 for t in self._sends if sent_at - 1.0 < t < sent_at)
        return sent - sum(1 for t in self._refused if sent_at - 1.0 < t < sent_at)

    def _bunched_up(self, sent_at: float, now: float) -> bool:
        """A refusal at the configured pace after the server took about all of it in the
        second before: requests that reached it bunched up (a stalled loop, network jitter),
        no lower limit. A few percent slower for a while, and no hold; True if so."""
        rate = self.rate(sent_at)
        taken = self._taken(sent_at)
        paced = self.ceiling / (1.0 + SPACING_SLACK)
        if (rate is not None and rate < self.ceiling) or taken < _BUNCHED * paced:
            return False
        # The top of the curve at _GENTLE of what it took: flat, then probing beyond it.
        self._peak, self._cut_at, self._bunched = _GENTLE * taken, now - PLATEAU, now
        self._young_cut = self._young(sent_at)
        return True

    def _not_the_pace(self, sent_at: float, retry_after: float) -> bool:
        """Whether a refusal that names a wait longer than a second (so no probe can show
        the refusals outlast one) came at a pace no faster than the per-second limit the run
        already found: then no per-second limit refused it, the window did."""
        rate = self.rate(sent_at)
        return retry_after > _EPISODE and rate is not None and rate <= self._best_peak

    def _first_taken(self, sent_at: float) -> float:
        """The first request the server took in the second before ``sent_at``, not counting
        those sent before the last hold ended (its probes are no pace)."""
        since = sent_at - 1.0
        refused = {t for t in self._refused if since < t < sent_at}
        taken = (t for t in self._sends if since < t < sent_at and t not in refused)
        return next((t for t in taken if t >= self._resumed), sent_at)

    def _begin_hold(self, sent_at: float, now: float, retry_after: float) -> None:
        rate = self.rate(sent_at)
        taken = self._taken(sent_at)
        # Evidence of a lower limit: refused at a pace below the configured one (sent after a
        # cut, or the server took clearly less than that pace in the second before: no
        # bunching explains it), while the window can hold no earlier requests.
        paced = self.ceiling / (1.0 + SPACING_SLACK)
        lowered = self._cut_at is not None and sent_at > self._cut_at and (rate or math.inf) < paced
        evidence = (lowered or taken < _BUNCHED * paced) and not self._young(sent_at)
        hold = _Hold(sent_at, now, now, float(taken), evidence, self._first_taken(sent_at))
        self._hold = hold
        if self._not_the_pace(sent_at, retry_after):
            # No cut, and no per-second limit read when the hold ends: the window is full.
            hold.pace = False
            self._window_full(hold, now)
            return
        if (self._cut_at is None or sent_at > self._cut_at) and taken:
            # A per-second limit refuses once the server took it in the second before: the cut,
            # made when the hold ends if its length fits a per-second limit. (Sent before the
            # last cut: the same episode. Nothing taken: the window, or too soon to tell.)
            hold.cut = max(float(taken), FLOOR)

    def _window_full(self, hold: _Hold, now: float) -> None:
        """Refusals outlast a per-second limit (or are not about one): the long window is
        full."""
        begun = hold.refused_sent
        young = self._young(begun)
        quota = self._in_window(begun)
        if not young and quota <= 2 * self._best_peak:
            return  # a per-second limit explains that many (a burst is refused for a second)
        hold.window = True  # the pace was not the problem: no cut
        if young or not 0 < quota < _AT_QUOTA * self.configured_window:
            # Earlier requests may fill the window, or it is the configured quota itself
            # (requests that reached the server late): nothing learned about the quota.
            return
        self.learned_window = quota
        self._retest_at = now  # tested again as soon as the refusals stop
        self._note("window", now)

    def _end_hold(self, hold: _Hold, sent_at: float, now: float) -> None:
        """The server took a request sent at ``sent_at``: the hold is over."""
        self._hold, self._resumed = None, sent_at
        if hold.window:
            self._window_ended(hold, sent_at, now)
            return
        if not hold.pace:
            return
        if sent_at < hold.second_from + 1.0 - _ROOM_EARLY:
            # Room again before the requests it took in that second could have left it: the
            # server had not refused for a per-second limit at that count (its window, other
            # clients, earlier requests). No cut.
            return
        # The server had room again once that second passed: a per-second limit, at ``peak``.
        if hold.cut is not None:
            self._peak, self._cut_at = hold.cut, now
            self._young_cut = self._young(hold.refused_sent)
        self._best_peak = max(self._best_peak, hold.peak)
        if hold.evidence:
            self._found_peak = max(self._found_peak, hold.peak)
            self._note("second", hold.began)

    def _window_ended(self, hold: _Hold, sent_at: float, now: float) -> None:
        """A full window has room again for a request sent at ``sent_at``. Refused while it
        might hold earlier requests, the run learned nothing; but if the room came only once
        its own first requests could leave (earlier ones, sent at most at the per-second
        limit before it started, would have made room sooner), its own filled it."""
        first = self._first_sent
        if self.learned_window is not None or first is None or not self._young(hold.refused_sent):
            return
        if sent_at < first + self.window - _YOUNG_SLACK:
            return  # room sooner: earlier requests left
        quota = self._in_window(hold.refused_sent)
        if 0 < quota < _AT_QUOTA * self.configured_window:
            self.learned_window, self._retest_at = quota, now
            self._note("window", now)

    def _note(self, kind: str, now: float) -> None:
        first, _ = self._evidence.get(kind, (now, now))
        self._evidence[kind] = (first, now)

    def _sustained(self, kind: str) -> bool:
        """Refusals of this kind over at least two windows: the first and last one apart."""
        first, last = self._evidence.get(kind, (0.0, 0.0))
        return last - first >= self.window

    def _young(self, when: float) -> bool:
        """While the long window may still hold requests sent before the run: its first
        window, unless the run knows when the runs before it last sent."""
        earlier = self._first_sent if self._earlier_sent is None else self._earlier_sent
        return earlier is None or when < earlier + self.window + _YOUNG_SLACK

    def _measure(self, now: float) -> None:
        if self._bucket_start is None:
            self._bucket_start = now
        elapsed = now - self._bucket_start
        if elapsed >= _BUCKET:
            sample = self._bucket_count / elapsed
            self._measured = _SMOOTH * self._measured + (1 - _SMOOTH) * sample
            self._bucket_start, self._bucket_count = now, 0
        self._bucket_count += 1

    def _forget(self, now: float) -> None:
        while self._accepted and self._accepted[0] <= now - 2 * self.window:
            self._accepted.popleft()
        while self._refused and self._refused[0] <= now - self.window:
            self._refused.popleft()

    def _in_window(self, now: float) -> int:
        """Accepted requests sent in the window before ``now``: what the server counts, as
        it counts arrivals."""
        count = 0
        for sent in reversed(self._accepted):
            if sent <= now - self.window:
                break
            count += sent <= now  # a request sent after ``now`` (a probe since) is not in it
        return count

    def _test_due(self, now: float) -> bool:
        """Whether the next request is to test the learned quota: the server holds that many
        of ours, and a test is due."""
        learned = self.learned_window
        if learned is None or now < self._retest_at or self._hold is not None:
            return False  # while refusals hold the run, the server is refusing: no test
        return self._in_window(now) >= learned

    # --- what to do ------------------------------------------------------------------------

    def rate(self, now: float) -> float | None:
        """The requests per second to send at now; None while never throttled."""
        if self._cut_at is None:
            return None
        t = (now - self._cut_at) / PLATEAU
        cubic = self._peak * (1 + (1 - BETA) * (t - 1) ** 3)
        cap = self.ceiling
        if self._measured:
            cap = min(cap, max(1.25 * self._measured, self._peak))
        return max(FLOOR, min(cubic, cap))

    def held_until(self, now: float) -> float:
        """When the next request may go while refusals hold the run: one probe at a time
        (0: not held)."""
        hold = self._hold
        return 0.0 if hold is None else hold.probe_at

    def quota(self, now: float) -> int | None:
        """The requests the long window may hold now, as learned from the server (the limiter
        keeps it); None: the configured quota. The learned quota counts what the server took,
        so refused requests come on top; and one more when the quota is due a test."""
        learned = self.learned_window
        if learned is None:
            return None
        self._forget(now)
        return learned + len(self._refused) + (1 if self._test_due(now) else 0)

    def found(self, now: float) -> RateLimits | None:
        """The lower limits Gameball keeps for this account, on sustained evidence (refusals
        over two windows at a pace below the configured one); None when there is none."""
        configured = self.configured
        per_second = configured.per_second
        paced = per_second / (1.0 + SPACING_SLACK)
        best = self._found_peak
        # Once a lower window quota holds the run, the per-second limit is seldom met again:
        # its evidence after the first window is enough then.
        second = self._sustained("second") or (
            "second" in self._evidence and self._sustained("window")
        )
        # Below the pace the sender keeps anyway, or it says nothing: a throttle at 97/s under
        # a 100/s limit came from requests that reached the server bunched, not a lower limit.
        if second and best and (not per_second or best < paced):
            per_second = max(1, math.floor(best))
        per_window = configured.per_window
        if self._sustained("window") and self.learned_window is not None:
            per_window = self.learned_window
        if (per_second, per_window) == (configured.per_second, configured.per_window):
            return None
        return replace(configured, per_second=per_second, per_window=per_window)
