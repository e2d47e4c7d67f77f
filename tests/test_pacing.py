"""The limiter, the adaptive rate and the batch lane's scheduling, on a fake clock: no sleeping."""

import asyncio
import heapq
import itertools
import math
import random
from dataclasses import dataclass, field

import pytest

from gb_backfill import RateLimits
from gb_backfill._dispatch import CustomerCounts
from gb_backfill._lanes.batch import _ReadyRows
from gb_backfill._lanes.jobs import JobDurations
from gb_backfill._limiter import RateLimiter
from gb_backfill._plan import minimum_seconds
from gb_backfill._rate_control import AdaptiveRate
from gb_backfill._rows import Batch, Job


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def grants(limiter: RateLimiter, clock: FakeClock, seconds: float, step: float = 0.001):
    """Times at which requests may go when every caller asks as early as it can."""
    times, end = [], clock.now + seconds
    while clock.now < end:
        if limiter.ready_at() <= clock.now:
            times.append(limiter.take())
        else:
            clock.now = min(limiter.ready_at(), end)
    return times


def most_in_any(times, period):
    j, best = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - period:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_requests_are_spaced_evenly_never_in_a_burst():
    clock = FakeClock()
    limits = RateLimits(per_second=30, per_window=360, window=30.0)
    times = grants(RateLimiter(limits, clock=clock), clock, 5.0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[5:] == pytest.approx([1.05 / 30] * len(gaps[5:])), "evenly, 5% under the limit"
    assert most_in_any(times, 1.0) <= 30


def test_a_request_late_on_its_schedule_catches_up_without_a_burst():
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_second=100, per_window=0), clock=clock)
    times = []
    for _ in range(500):  # every request goes 3 ms after it may: a busy event loop
        clock.now = max(clock.now, limiter.ready_at()) + 0.003
        times.append(limiter.take())
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate == pytest.approx(100 / 1.05, rel=0.01), "the lateness does not lower the rate"
    assert most_in_any(times, 1.0) <= 100


@pytest.mark.parametrize(
    ("per_second", "per_window", "window"), [(100, 1200, 30.0), (30, 360, 30.0)]
)
def test_both_windows_are_kept_at_about_98_percent_of_what_they_allow(
    per_second, per_window, window
):
    clock = FakeClock()
    limits = RateLimits(per_second=per_second, per_window=per_window, window=window)
    times = grants(RateLimiter(limits, clock=clock), clock, 3 * window, step=0.01)
    assert most_in_any(times, 1.0) <= per_second
    assert most_in_any(times, window) <= per_window
    assert len(times) >= 0.97 * 3 * per_window


def test_a_deferral_holds_every_request_back():
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_second=10, per_window=0), clock=clock)
    limiter.take()
    limiter.defer(2.0)
    assert limiter.ready_at() == pytest.approx(clock.now + 2.0)


def test_acquire_stops_waiting_when_the_run_stops():
    async def scenario():
        limiter = RateLimiter(RateLimits(per_second=1, per_window=0))
        stop = asyncio.Event()
        assert await limiter.acquire(stop)
        waiting = asyncio.create_task(limiter.acquire(stop))
        await asyncio.sleep(0)
        stop.set()
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) is False


# --- the batch lane: when to poll, and who goes first ---------------------------------------


def test_job_durations_settle_near_the_real_one_so_most_jobs_need_one_read():
    durations, real = JobDurations(), 0.5
    reads = []
    for _ in range(200):
        waited, count, running_at = durations.first_wait(), 1, 0.0
        while waited < real:
            running_at = waited
            waited += durations.next_wait(count)
            count += 1
        durations.observe(running_at, waited)
        reads.append(count)
    assert 0.4 <= durations.typical <= 0.6
    assert sum(reads[-100:]) / 100 <= 2.0, "about one read per job, rarely three"


def test_job_durations_do_not_feed_on_their_own_polling_delay():
    durations = JobDurations()
    durations.observe(0.0, 2.0)  # a first job read late, during a stall
    for _ in range(40):  # then jobs that end at once are always found ended at the first read
        durations.observe(0.0, durations.first_wait())
    assert durations.typical < 0.1, "the estimate comes down instead of holding itself up"


def test_customer_counts_never_undercount_and_stay_close():
    counts = CustomerCounts()
    first = counts.add([f"c{n}" for n in range(100_000)])
    assert first.min() >= 1
    again = counts.add(["c1", "c1", "c2"])
    assert again[1] >= 3
    assert again[2] >= 2
    assert (first > 1).mean() < 0.01, "few collisions at 100,000 customers"


def test_a_job_takes_the_busiest_customers_first_and_one_row_each():
    batch = Batch(frame=None, offset=0)  # type: ignore[arg-type]
    ready = _ReadyRows()
    rows = [("light", 1), ("busy", 50), ("busy", 50), ("mid", 5)]
    for n, (customer, priority) in enumerate(rows):
        ready.add(Job(batch, n, customer, b"{}", None, n, "batch"), priority)
    taken = ready.take(10)
    assert [job.customer for job in taken] == ["busy", "mid", "light"]
    assert len(ready) == 1
    assert ready.take(10)[0].customer == "busy"


# --- the adaptive rate against a simulated server, on a fake clock ---------------------------


class SlidingServer:
    """A server that counts arrivals in a per-second and a long sliding window, like the
    emulator; its limits can change mid-run."""

    def __init__(self, per_second, per_window=0, window=30.0):
        self.per_second, self.per_window, self.window = per_second, per_window, window
        self.arrivals = []

    def admit(self, now):
        recent = [t for t in self.arrivals[-2000:] if t > now - 1.0]
        windowed = [t for t in self.arrivals[-5000:] if t > now - self.window]
        if self.per_second and len(recent) >= self.per_second:
            return False
        if self.per_window and len(windowed) >= self.per_window:
            return False
        self.arrivals.append(now)
        return True


@dataclass
class Run:
    """What a simulated send did: times in seconds from its start."""

    adaptive: AdaptiveRate
    accepted: list = field(default_factory=list)
    throttled: list = field(default_factory=list)
    rates: list = field(default_factory=list)  # (time, the adaptive rate) at each send
    elapsed: float = 0.0

    @property
    def share_429(self):
        return len(self.throttled) / max(1, len(self.throttled) + len(self.accepted))


def simulate(
    server, seconds=math.inf, *, rows=None, limits=None, rtt=0.05, jitter=0.0, changes=(),
    clock=None, seed=0,
):  # fmt: skip
    """A client sending as fast as its limiter allows (no limit on requests in flight) until
    ``seconds`` pass or ``rows`` rows are accepted (a refused row goes again). A request
    reaches the server ``rtt / 2`` plus up to ``jitter`` seconds (seeded) after it is sent,
    and the answer takes ``rtt / 2`` more; the server counts it when it arrives."""
    limits = limits or RateLimits()
    clock = clock or FakeClock()
    start, draw = clock.now, random.Random(seed)
    run = Run(AdaptiveRate(limits))
    limiter = RateLimiter(limits, adaptive=run.adaptive, clock=clock)
    events, order = [], itertools.count()  # (time, order, sent at, None: arriving / admitted)
    waiting = math.inf if rows is None else rows  # rows to send, or to send again
    changes = sorted(changes)
    while waiting or events:
        while changes and clock.now - start >= changes[0][0]:
            _, server.per_second, server.per_window = changes.pop(0)
        send_at = max(limiter.ready_at(), clock.now) if waiting else math.inf
        if events and events[0][0] <= send_at:
            clock.now, _, sent, admitted = heapq.heappop(events)
            if admitted is None:
                admitted = server.admit(clock.now)
                heapq.heappush(events, (clock.now + rtt / 2, next(order), sent, admitted))
            elif admitted:
                run.adaptive.accepted(sent, clock.now)
                run.accepted.append(clock.now - start)
            else:
                run.adaptive.throttled(sent, clock.now)
                run.throttled.append(clock.now - start)
                limiter.defer(0.5)
                waiting += 1
            continue
        if send_at >= start + seconds:
            break
        clock.now = send_at
        if limiter.ready_at() > clock.now:
            continue  # an answer meanwhile moved the time (the limiter looks again when it wakes)
        sent = limiter.take()
        waiting -= 1
        arrival = sent + rtt / 2 + draw.uniform(0, jitter)
        heapq.heappush(events, (arrival, next(order), sent, None))
        run.rates.append((clock.now - start, run.adaptive.rate(clock.now)))
    run.elapsed = clock.now - start
    return run


def per_second_in(times, start, end):
    return sum(1 for t in times if start <= t < end) / (end - start)


def test_at_the_documented_limits_nothing_is_throttled_and_the_rate_stays_free():
    run = simulate(SlidingServer(100, 1200), 60)
    assert run.throttled == []
    assert len(run.accepted) >= 0.97 * 2 * 1200
    assert all(rate is None for _, rate in run.rates)


def test_a_lower_per_second_limit_is_found_within_two_windows_and_held():
    run = simulate(SlidingServer(20), 90)
    assert per_second_in(run.accepted, 60, 90) >= 0.9 * 20, "within 10% of the real limit"
    late = sum(1 for t in run.throttled if t >= 60)
    assert late <= 0.03 * sum(1 for t in run.accepted if t >= 60), "429s stay a small share"


def test_a_lower_long_window_is_learned_from_what_the_server_accepted():
    run = simulate(SlidingServer(20, 240), 120)
    assert per_second_in(run.accepted, 60, 120) >= 0.9 * 240 / 30
    late = sum(1 for t in run.throttled if t >= 60)
    assert late <= 0.03 * sum(1 for t in run.accepted if t >= 60)


def test_the_rate_recovers_when_the_limit_rises():
    limits = RateLimits(per_second=100, per_window=0)  # no client window to cap the climb
    run = simulate(SlidingServer(10), 120, limits=limits, changes=[(40, 60, 0)])
    assert per_second_in(run.accepted, 20, 40) <= 10.5
    assert per_second_in(run.accepted, 90, 120) >= 0.85 * 60, "probes back up to the new limit"


def test_the_rate_does_not_oscillate_beyond_a_band_once_settled():
    run = simulate(SlidingServer(50), 90)
    settled = [rate for t, rate in run.rates if t >= 45 and rate is not None]
    assert min(settled) >= 0.65 * 50, "one cut at a time: 0.7 of the peak, not a collapse"
    assert max(settled) <= 1.5 * 50


def test_a_low_per_second_limit_is_not_mistaken_for_a_window_quota():
    """A burst against 5/s is refused for up to a second: that is no 5-per-30-s quota."""
    run = simulate(SlidingServer(5), 90)
    assert per_second_in(run.accepted, 30, 90) >= 0.85 * 5
    assert run.adaptive.learned_window is None
    probe = AdaptiveRate(RateLimits())
    for t in range(5):
        probe.sent(t * 0.01)
        probe.accepted(t * 0.01, t * 0.01 + 0.05)
    for step in range(30):  # refusals for 1.5 s after the burst
        probe.sent(0.06 + step * 0.05)
        probe.throttled(0.06 + step * 0.05, 0.11 + step * 0.05)
    assert probe.learned_window is None


# --- the second run: a window still full of the run before ------------------------------------


def second_run(first, second=None, *, stop_first=math.inf):
    """Run A sends ``first`` rows (stopped after ``stop_first`` seconds: an interrupt); then
    run B, another process with a controller of its own, sends ``second`` rows (by default
    the rows A left: a resume) at once to the same server, whose window still holds A's
    requests. Returns (A, B)."""
    server, clock = SlidingServer(100, 1200), FakeClock()
    a = simulate(server, stop_first, rows=first, clock=clock)
    rest = first - len(a.accepted) if second is None else second
    return a, simulate(server, rows=rest, clock=clock)


def test_back_to_back_runs_take_about_the_least_time_for_all_their_requests():
    """Run B starts while A's 1,150 requests fill the server's window: its first refusals
    are about that window, not its quota. B waits for them to leave, then goes on at the
    configured limits: no collapse to a crawl, no lower limits advised."""
    a, b = second_run(1150, 1000)
    assert a.elapsed + b.elapsed <= minimum_seconds(2150, RateLimits()) / 0.90
    assert b.share_429 <= 0.03
    assert b.adaptive.learned_window is None
    assert b.adaptive.found(1e9) is None
    assert per_second_in(b.accepted, b.elapsed - 5, b.elapsed) >= 0.95 * 100 / 1.05


@pytest.mark.parametrize("stopped_at", [6.0, 20.0], ids=["mid-burst", "window-full"])
def test_a_run_resumed_after_an_interrupt_takes_about_the_least_time(stopped_at):
    """A is interrupted mid-burst (6 s) or while its own window is full (20 s); B resumes
    the rest at once, against the server's window that remembers A."""
    a, b = second_run(2150, stop_first=stopped_at)
    assert len(a.accepted) + len(b.accepted) == 2150
    assert a.elapsed + b.elapsed <= minimum_seconds(2150, RateLimits()) / 0.90
    assert b.share_429 <= 0.03
    assert b.adaptive.found(1e9) is None


def test_earlier_requests_that_leave_bit_by_bit_do_not_slow_the_run_after_they_left():
    """The run before sent steadily: its requests leave the window one by one, so the run
    is refused now and then for its first 30 s, and then keeps the configured limits."""
    server, clock = SlidingServer(100, 1200), FakeClock()
    server.arrivals = [clock.now - 30 + n / 40 for n in range(1200)]
    run = simulate(server, 120, clock=clock)
    assert run.throttled, "the earlier requests did get in the way"
    assert per_second_in(run.accepted, 30, 120) >= 0.97 * 1200 / 30
    assert run.adaptive.found(clock.now) is None


def test_a_learned_quota_is_tested_again_as_soon_as_the_refusals_stop():
    """The quota rises from 240 to 1,200 per 30 s at 90 s: the next window uses it all."""
    run = simulate(SlidingServer(100, 240), 150, changes=[(90, 100, 1200)])
    assert per_second_in(run.accepted, 60, 90) <= 240 / 30 * 1.05
    assert per_second_in(run.accepted, 95, 125) >= 0.95 * 1200 / 30


def test_a_learned_quota_reads_what_the_server_allows():
    run = simulate(SlidingServer(20, 240), 150)
    assert run.adaptive.learned_window == pytest.approx(240, rel=0.03)


# --- advice: lower limits only on sustained evidence ------------------------------------------


def test_refusals_at_the_configured_pace_never_advise_lower_limits():
    """Requests that reach the server bunched (up to 0.4 s late) are refused now and then at
    the documented limits; a lower limit is advised only on refusals at a pace below the
    configured one, so never here."""
    run = simulate(SlidingServer(100, 1200), 150, jitter=0.4)
    assert run.throttled, "the bunching did cause refusals"
    assert run.adaptive.found(1e9) is None


def test_a_single_refusal_is_no_evidence():
    """One 429 after the server took 80 in a second (a stall that bunched requests, a pace
    the input set) says nothing sustained about the account."""
    probe = AdaptiveRate(RateLimits())
    for n in range(80):
        probe.sent(n / 80)
        probe.accepted(n / 80, n / 80 + 0.03)
    probe.throttled(1.0, 1.03)
    assert probe.rate(1.1) is not None, "the controller did slow down"
    assert probe.found(1.1) is None


@pytest.mark.parametrize(
    ("server", "found"),
    [(SlidingServer(20), (20, 1200)), (SlidingServer(100, 240), (100, 240))],
    ids=["20/s", "240/30s"],
)
def test_lower_limits_are_advised_on_refusals_over_two_windows(server, found):
    limits = simulate(server, 180).adaptive.found(1e9)
    assert limits is not None
    assert (limits.per_second, limits.per_window) == pytest.approx(found, rel=0.03)


def test_refusals_in_the_first_window_alone_advise_nothing():
    """A short run against a lower limit: its refusals are real, but not sustained."""
    assert simulate(SlidingServer(20, 240), 25).adaptive.found(1e9) is None
