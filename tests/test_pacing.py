"""The limiter, the adaptive rate and the batch lane's scheduling, on a fake clock: no sleeping."""

import asyncio
import itertools

import pytest

from gb_backfill import RateLimits
from gb_backfill._dispatch import CustomerCounts
from gb_backfill._lanes.batch import _ReadyRows
from gb_backfill._lanes.jobs import JobDurations
from gb_backfill._limiter import RateLimiter
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


def simulate(server, seconds, *, limits=None, rtt=0.05, changes=()):
    """A client sending as fast as its limiter allows (no limit on requests in flight);
    returns (accepted times, throttled times, rate samples)."""
    import heapq

    from gb_backfill._rate_control import AdaptiveRate

    limits = limits or RateLimits()
    clock = FakeClock()
    start = clock.now
    adaptive = AdaptiveRate(limits)
    limiter = RateLimiter(limits, adaptive=adaptive, clock=clock)
    answers, accepted, throttled, rates = [], [], [], []
    changes = sorted(changes)
    while clock.now < start + seconds:
        while changes and clock.now - start >= changes[0][0]:
            _, per_second, per_window = changes.pop(0)
            server.per_second, server.per_window = per_second, per_window
        send_at = max(limiter.ready_at(), clock.now)
        if answers and answers[0][0] <= send_at:
            clock.now, sent, ok = heapq.heappop(answers)
            if ok:
                adaptive.accepted(clock.now)
                accepted.append(clock.now - start)
            else:
                adaptive.throttled(sent, clock.now)
                throttled.append(clock.now - start)
                limiter.defer(0.5)
            continue
        clock.now = send_at
        sent = limiter.take()
        ok = server.admit(sent + rtt / 2)
        heapq.heappush(answers, (sent + rtt, sent, ok))
        rates.append((clock.now - start, adaptive.rate(clock.now)))
    return accepted, throttled, rates


def per_second_in(times, start, end):
    return sum(1 for t in times if start <= t < end) / (end - start)


def test_at_the_documented_limits_nothing_is_throttled_and_the_rate_stays_free():
    accepted, throttled, rates = simulate(SlidingServer(100, 1200), 60)
    assert throttled == []
    assert len(accepted) >= 0.97 * 2 * 1200
    assert all(rate is None for _, rate in rates)


def test_a_lower_per_second_limit_is_found_within_two_windows_and_held():
    accepted, throttled, _ = simulate(SlidingServer(20), 90)
    assert per_second_in(accepted, 60, 90) >= 0.9 * 20, "within 10% of the real limit"
    late = sum(1 for t in throttled if t >= 60)
    assert late <= 0.03 * sum(1 for t in accepted if t >= 60), "429s stay a small share"


def test_a_lower_long_window_is_learned_from_what_the_server_accepted():
    accepted, throttled, _ = simulate(SlidingServer(20, 240), 120)
    assert per_second_in(accepted, 60, 120) >= 0.9 * 240 / 30
    late = sum(1 for t in throttled if t >= 60)
    assert late <= 0.03 * sum(1 for t in accepted if t >= 60)


def test_the_rate_recovers_when_the_limit_rises():
    limits = RateLimits(per_second=100, per_window=0)  # no client window to cap the climb
    accepted, _, _ = simulate(SlidingServer(10), 120, limits=limits, changes=[(40, 60, 0)])
    assert per_second_in(accepted, 20, 40) <= 10.5
    assert per_second_in(accepted, 90, 120) >= 0.85 * 60, "probes back up to the new limit"


def test_the_rate_does_not_oscillate_beyond_a_band_once_settled():
    _, _, rates = simulate(SlidingServer(50), 90)
    settled = [rate for t, rate in rates if t >= 45 and rate is not None]
    assert min(settled) >= 0.65 * 50, "one cut at a time: 0.7 of the peak, not a collapse"
    assert max(settled) <= 1.5 * 50


def test_a_low_per_second_limit_is_not_mistaken_for_a_window_quota():
    """A burst against 5/s is refused for up to a second: that is no 5-per-30-s quota."""
    from gb_backfill._rate_control import AdaptiveRate

    server, limits = SlidingServer(5), RateLimits()
    accepted, _, _ = simulate(server, 60, limits=limits)
    assert per_second_in(accepted, 30, 60) >= 0.9 * 5
    probe = AdaptiveRate(RateLimits())
    for t in range(5):
        probe.sent(t * 0.01)
        probe.accepted(t * 0.01 + 0.05)
    for step in range(30):  # refusals for 1.5 s after the burst
        probe.throttled(0.06 + step * 0.05, 0.11 + step * 0.05)
    assert probe.learned_window is None
    found = probe.found(2.0)
    assert found is not None
    assert found.per_second == 5


def test_a_throttle_at_the_pace_the_sender_keeps_anyway_finds_no_lower_limit():
    """One 429 while the server counted 97 in a second (requests that reached it bunched)
    says nothing about the account: the sender never goes above 95/s under a 100/s limit."""
    from gb_backfill._rate_control import AdaptiveRate

    limits = RateLimits()
    probe = AdaptiveRate(limits)
    for n in range(97):
        probe.sent(n / 97)
        probe.accepted(n / 97 + 0.03)
    probe.throttled(1.0, 1.03)
    assert probe.rate(1.1) is not None, "the controller did slow down"
    assert probe.found(1.1) is None

    lower = AdaptiveRate(limits)
    for n in range(80):
        lower.sent(n / 80)
        lower.accepted(n / 80 + 0.03)
    lower.throttled(1.0, 1.03)
    found = lower.found(1.1)
    assert found is not None
    assert found.per_second == 80
