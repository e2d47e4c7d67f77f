"""The limiter, the adaptive rate and the batch lane's scheduling, on a fake clock: no sleeping."""

import asyncio
import heapq
import itertools
import math
import random
from dataclasses import dataclass, field

import pytest

from gb_backfill import RateLimits
from gb_backfill._engine.chunks import Chunk, OutgoingRow
from gb_backfill._engine.lanes.batch import _ReadyRows
from gb_backfill._engine.lanes.jobs import JobDurations
from gb_backfill._engine.limiter import RateLimiter
from gb_backfill._engine.plan import minimum_seconds
from gb_backfill._engine.rate_control import AdaptiveRate
from gb_backfill._engine.sketch import CustomerSketch


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
            times.append(limiter.take().sent_at)
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
        times.append(limiter.take().sent_at)
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


def test_after_a_pause_the_schedule_starts_afresh_without_a_burst():
    """At the run's start and after a full window there is nothing late to catch up: a burst
    there reaches the server bunched up with the requests a busy loop held back."""
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_second=100, per_window=0), clock=clock)
    for _ in range(2):
        times = grants(limiter, clock, 0.1)
        assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([0.0105] * 9)
        clock.now += 5.0  # a pause


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

    assert asyncio.run(scenario()) is None


def test_a_slot_is_held_until_one_window_after_its_answer():
    """The server counts a request when it arrives, anywhere between its send and its answer:
    its slot in the long window ends one window after the answer, and a request still
    unanswered keeps its slot. The per-second spacing stays on send times."""
    clock = FakeClock()
    limits = RateLimits(per_second=10, per_window=2, window=10.0, margin=0.0)
    limiter = RateLimiter(limits, until_answered=True, clock=clock)
    first = limiter.take()
    clock.now += 0.2
    assert limiter.ready_at() == pytest.approx(first.sent_at + 1.05 / 10), "spacing on send"
    second = limiter.take()
    assert limiter.ready_at() == math.inf, "both unanswered: not before an answer"
    clock.now += 2.0
    limiter.answered(first, clock.now)
    assert limiter.ready_at() == pytest.approx(clock.now + 10.0), "a window after the answer"
    limiter.answered(second, clock.now + 0.5)
    limiter.answered(second, clock.now + 5.0)  # told twice: the first answer counts
    assert limiter.ready_at() == pytest.approx(clock.now + 10.0)
    sent_based = RateLimiter(limits, clock=clock)  # callers that report no answers
    sent_based.take()
    sent_based.take()
    assert sent_based.ready_at() == pytest.approx(clock.now + 10.0)


def test_a_learned_quota_in_the_limiter_counts_what_is_still_unanswered():
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_second=0, per_window=5), until_answered=True, clock=clock)
    slots = [limiter.take() for _ in range(5)]
    for slot in slots[:3]:
        limiter.answered(slot, clock.now)
    assert limiter._window.free_at(3, clock.now) == pytest.approx(clock.now + 30.1), (
        "a window and 0.1 s for clocks"
    )
    assert limiter._window.free_at(2, clock.now) == math.inf, "3 of 5 must leave; 2 unanswered"


@pytest.mark.parametrize("until_answered", [True, False], ids=["answers", "send times"])
def test_late_arrivals_meet_no_refusal_when_slots_end_after_answers(until_answered):
    """A busy loop holds the first half second's requests back, and every request reaches
    the server up to 0.3 s late: it counts them later than they were sent, by amounts the
    client cannot see. Holding each slot until one window after its answer keeps every
    window within the quota; slots counted from send times do not."""
    server = SlidingServer(10_000, 1200)  # the long window alone
    run = simulate(server, 125, jitter=0.3, stall=(0.0, 0.5), until_answered=until_answered)
    if until_answered:
        assert run.throttled == []
        assert len(run.accepted) >= 0.99 * 4 * 1200, "four windows, less a round trip each"
    else:
        assert run.throttled, "the control: slots counted from send times meet refusals"


def test_a_learned_quota_reads_within_3_percent_with_jittered_arrivals():
    run = simulate(SlidingServer(20, 240), 150, rtt=0.3, jitter=0.3)
    assert run.adaptive.learned_window == pytest.approx(240, rel=0.03)


def test_status_reads_can_keep_a_controller_of_their_own():
    """Another instance, another kind of endpoint (status reads: 100/s, 1,200 per 30 s):
    it learns that endpoint's lower quota, and the events controller knows nothing of it."""
    from gb_backfill._config import STATUS_LIMITS

    events = AdaptiveRate(RateLimits())
    status = simulate(SlidingServer(100, 240), 120, limits=STATUS_LIMITS).adaptive
    assert status.learned_window == pytest.approx(240, rel=0.03)
    assert events.learned_window is None
    assert events.rate(1e9) is None


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
    counts = CustomerSketch()
    first = counts.add([f"c{n}" for n in range(100_000)])
    assert first.min() >= 1
    again = counts.add(["c1", "c1", "c2"])
    assert again[1] >= 3
    assert again[2] >= 2
    assert (first > 1).mean() < 0.01, "few collisions at 100,000 customers"


def test_a_job_takes_the_busiest_customers_first_and_one_row_each():
    chunk = Chunk(frame=None, offset=0)  # type: ignore[arg-type]
    ready = _ReadyRows()
    rows = [("light", 1), ("busy", 50), ("busy", 50), ("mid", 5)]
    for n, (customer, priority) in enumerate(rows):
        ready.add(OutgoingRow(chunk, n, customer, b"{}", None, n, "batch"), priority)
    taken = ready.take(10)
    assert [row.customer for row in taken] == ["busy", "mid", "light"]
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

    def retry_after(self, now):
        """Seconds until a refused request would be taken, as the emulator's header says
        (whole seconds, rounded up past a half, at least 1)."""
        waits = [0.0]
        recent = [t for t in self.arrivals[-2000:] if t > now - 1.0]
        windowed = [t for t in self.arrivals[-5000:] if t > now - self.window]
        if self.per_second and len(recent) >= self.per_second:
            waits.append(recent[-self.per_second] + 1.0 - now)
        if self.per_window and len(windowed) >= self.per_window:
            waits.append(windowed[-self.per_window] + self.window - now)
        return max(1, round(max(waits) + 0.5))


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
    clock=None, seed=0, defer=0.0, until_answered=True, stall=(0.0, 0.0), retry_after=False,
    wait_max=30.0, quiet=False,
):  # fmt: skip
    """A client sending as fast as its limiter allows (no limit on requests in flight) until
    ``seconds`` pass or ``rows`` rows are accepted (a refused row goes again). A request
    reaches the server ``rtt / 2`` plus up to ``jitter`` seconds (seeded) after it is sent;
    the server counts it when it arrives, refuses it at once or takes ``rtt / 2`` to process
    it, as the emulator does. Requests sent
    in the ``stall`` (from, to) seconds leave only at its end, as from a busy event loop. A
    refusal defers every request by ``defer`` seconds, as the lanes do with a Retry-After; or,
    with ``retry_after``, by the server's ``Retry-After``, which the controller is told."""
    limits = limits or RateLimits()
    clock = clock or FakeClock()
    start, draw = clock.now, random.Random(seed)
    # ``quiet``: the run knows no earlier request is in the server's window (its ledger sent
    # nothing within a window before it).
    run = Run(AdaptiveRate(limits, earlier_sent=-math.inf if quiet else None))
    limiter = RateLimiter(limits, adaptive=run.adaptive, until_answered=until_answered, clock=clock)
    events, order = [], itertools.count()  # (time, order, slot, None: arriving / admitted)
    waiting = math.inf if rows is None else rows  # rows to send, or to send again
    changes = sorted(changes)
    while waiting or events:
        while changes and clock.now - start >= changes[0][0]:
            _, server.per_second, server.per_window = changes.pop(0)
        send_at = max(limiter.ready_at(), clock.now) if waiting else math.inf
        if events and events[0][0] <= send_at:
            clock.now, _, slot, admitted = heapq.heappop(events)
            if admitted is None:
                admitted = server.admit(clock.now)
                answer = clock.now + rtt / 2 if admitted else clock.now  # refused unprocessed
                heapq.heappush(events, (answer, next(order), slot, admitted))
                continue
            limiter.answered(slot, clock.now)
            if admitted:
                run.adaptive.accepted(slot.sent_at, clock.now)
                run.accepted.append(clock.now - start)
            else:
                wait = server.retry_after(clock.now) if retry_after else None
                run.adaptive.throttled(slot.sent_at, clock.now, retry_after=wait)
                run.throttled.append(clock.now - start)
                limiter.defer(defer if wait is None else min(wait, wait_max))
                waiting += 1
            continue
        if send_at >= start + seconds:
            break
        clock.now = send_at
        if limiter.ready_at() > clock.now:
            continue  # an answer meanwhile moved the time (the limiter looks again when it wakes)
        slot = limiter.take()
        waiting -= 1
        leaves = slot.sent_at
        if stall[0] <= leaves - start < stall[1]:
            leaves = start + stall[1]
        arrival = leaves + rtt / 2 + draw.uniform(0, jitter)
        heapq.heappush(events, (arrival, next(order), slot, None))
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


def test_a_low_per_second_limit_is_read_although_refusals_come_back_first():
    """The server refuses at once but takes 100 ms to process what it accepts: when a refusal
    comes, the answers to the requests sent just before it are still on their way, and they
    count as taken (else the pace would be cut to the one or two answers already in)."""
    run = simulate(SlidingServer(5), 90, rtt=0.2)
    assert per_second_in(run.accepted, 30, 90) >= 0.85 * 5


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


def test_a_refusal_of_requests_that_came_bunched_up_slows_the_pace_a_little():
    """Refused at the configured pace after the server took about all of it: requests that
    reached it bunched up, no lower limit. The pace drops to 92% and nothing is held."""
    probe = AdaptiveRate(RateLimits())
    for n in range(96):
        probe.sent(n / 95)
        probe.accepted(n / 95, n / 95 + 0.05)
    probe.sent(1.02)
    probe.throttled(1.02, 1.03)
    assert probe.held_until(1.03) == 0.0
    assert probe.rate(1.03) == pytest.approx(0.92 * 95, rel=0.02)
    for n in range(1, 20 * 90):  # sending at that pace for 20 s
        probe.sent(1.03 + n / 90)
        probe.accepted(1.03 + n / 90, 1.08 + n / 90)
    assert probe.rate(21.03) == pytest.approx(100), "and climbs back to the configured pace"
    assert probe.found(21.03) is None


def test_a_single_refusal_is_no_evidence():
    """One 429 after the server took 80 in a second (a stall that bunched requests, a pace
    the input set) says nothing sustained about the account."""
    probe = AdaptiveRate(RateLimits())
    for n in range(80):
        probe.sent(n / 80)
        probe.accepted(n / 80, n / 80 + 0.03)
    probe.throttled(1.0, 1.03)
    assert probe.held_until(1.03) > 0, "the controller holds the run"
    probe.sent(1.5)
    probe.accepted(1.5, 1.53)  # room again after a second: the pace
    assert probe.rate(1.6) is not None, "the controller did slow down"
    assert probe.found(1.6) is None


@pytest.mark.parametrize(
    ("server", "found"),
    [(SlidingServer(20), (20, 1200)), (SlidingServer(100, 240), (100, 240))],
    ids=["20/s", "240/30s"],
)
def test_lower_limits_are_advised_on_refusals_over_two_windows(server, found):
    limits = simulate(server, 180).adaptive.found(1e9)
    assert limits is not None
    assert (limits.per_second, limits.per_window) == pytest.approx(found, rel=0.03)


def test_a_window_quota_is_learned_when_the_server_names_its_wait():
    """With Retry-After the run waits out every refusal, so none comes a second into a hold to
    tell the long window from a per-second limit: the wait itself does (5/s, 40 per 30 s
    advised 5/s and 1,200 per 30 s)."""
    run = simulate(SlidingServer(5, 40), 150, retry_after=True)
    limits = run.adaptive.found(1e9)
    assert limits is not None
    assert (limits.per_second, limits.per_window) == (5, 40)
    assert len(run.accepted) >= 0.9 * 40 * 150 / 30


def test_refusals_in_the_first_window_alone_advise_nothing():
    """A short run against a lower limit: its refusals are real, but not sustained."""
    assert simulate(SlidingServer(20, 240), 25).adaptive.found(1e9) is None


def test_a_rate_cut_to_one_a_second_climbs_back():
    """A refusal misread at a run's start (a window still full of the run before) can cut the
    rate to about 1/s. Sending at that pace, every gap is over a second: read as pauses, they
    held the rate there for good (a send of 2,000 rows crawled at 1/s for 12 minutes). The
    gaps the rate itself sets are no pause: it climbs back to the limit within two minutes."""
    probe = AdaptiveRate(RateLimits())
    now = 0.0
    for _ in range(50):
        probe.sent(now)
        probe.accepted(now, now + 0.05)
        now += 0.1
    probe._peak, probe._cut_at = 1.0, now  # the cut such a refusal leaves
    start = now
    while now < start + 120:
        rate = probe.rate(now)
        probe.sent(now)
        probe.accepted(now, now + 0.05)
        now += 1.0 / rate
    assert probe.rate(now) == pytest.approx(100.0)


# --- a fresh run against a lower quota, a long Retry-After, a refusal right after a hold -------


class FixedRetryAfterServer(SlidingServer):
    """A server whose every 429 says ``Retry-After: seconds``, as a proxy or a gateway in front
    of an API may, whatever the limit it refused for."""

    def __init__(self, seconds, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seconds = seconds

    def retry_after(self, now):
        return self.seconds


def test_a_fresh_run_learns_a_lower_quota_in_its_first_window():
    """Its ledger sent nothing within a window before it, so the server's window can hold no
    earlier request: the first full window is the quota (240 of the 1,200 configured), learned
    then, and the run keeps to it instead of walking into the same wall a window later."""
    run = simulate(SlidingServer(20, 240), rows=556, quiet=True)
    assert run.adaptive.learned_window == pytest.approx(240, rel=0.03)
    assert run.share_429 <= 0.03, [round(t, 1) for t in run.throttled]
    assert run.elapsed <= minimum_seconds(556, RateLimits(per_second=20, per_window=240)) / 0.9


def test_without_a_ledger_the_first_windows_refusals_are_paid_once():
    """With no ledger the run cannot know the window holds only its own requests: it waits out
    its first full window probing (earlier requests would leave sooner). The room comes only
    when its own first requests leave: its own requests filled the window, so it learns the
    quota then, and from the next window on it keeps to it (one test beyond it a window)."""
    assert simulate(SlidingServer(20, 240), 35).adaptive.learned_window == 240
    run = simulate(SlidingServer(20, 240), rows=556)
    later = [round(t, 1) for t in run.throttled if t > 31.0]  # after the first window
    assert len(later) <= 2, later


def test_a_long_retry_after_is_a_wait_not_a_window():
    """A proxy answers every refusal of a 5/s limit with Retry-After: 120. The run waits (at
    most wait_max, 30 s), learns 5/s from what it sent and what was refused, and advises no
    quota per 30 s: the wait is no measurement."""
    run = simulate(FixedRetryAfterServer(120, 5), rows=40, retry_after=True)
    assert run.elapsed < 100
    found = run.adaptive.found(1e9)
    assert found is None or found.per_window == RateLimits().per_window, found
    assert run.adaptive.learned_window is None


def sparse_then_burst(clock, count):
    """A window full of the run before's requests: ``count`` that leave one every half second,
    then the rest, which leave within ten seconds."""
    start = clock.now - 29.5
    sparse = [start + n * 0.5 for n in range(count)]
    return sparse + [start + 10 + n / 118 for n in range(1200 - count)]


def test_no_deep_cut_from_a_refusal_right_after_a_hold():
    """The window is full of earlier requests that leave one at a time: each hold ends with
    room for its probe alone, and the next refusal's second before held only probes. That is
    no per-second limit of one or two a second: the rate is not cut to a crawl, so the run is
    at the configured pace when the burst of earlier requests leaves (a second run in four
    took 114 s instead of 55 s)."""
    server, clock = SlidingServer(100, 1200), FakeClock()
    server.arrivals = sparse_then_burst(clock, 20)
    run = simulate(server, rows=1500, clock=clock)
    lowest = min((rate for _, rate in run.rates if rate is not None), default=math.inf)
    assert lowest >= 20, lowest
    assert run.elapsed <= 50
    assert run.adaptive.found(1e9) is None


def test_a_per_second_limit_met_right_after_a_hold_is_still_found():
    """Refusals right after a hold cut nothing, but a real per-second limit is still found:
    the window full of an earlier run's requests holds the run first, then the server's 20/s
    refuses it, and it settles there."""
    server, clock = SlidingServer(20, 1200), FakeClock()
    server.arrivals = [clock.now - 12 + n / 95 for n in range(1140)]
    run = simulate(server, 90, clock=clock)
    assert per_second_in(run.accepted, 40, 90) >= 0.9 * 20
    assert run.share_429 <= 0.03


def test_a_fresh_run_with_its_ledger_advises_both_lower_limits():
    """From its first second the window holds only its own requests: refused at 20 a second,
    far below the configured pace (no bunching explains it), the run has evidence of the
    per-second limit at once, and the quota's over the windows after: it advises both."""
    found = simulate(SlidingServer(20, 240), rows=1500, quiet=True).adaptive.found(1e9)
    assert found is not None
    assert (found.per_second, found.per_window) == (20, 240)


@pytest.mark.parametrize(
    ("limits", "sustained"),
    [
        (RateLimits(), 40.0),  # 1,200 per 30 s under 100/s
        (RateLimits(per_second=30, per_window=0), 30.0),
        (RateLimits(per_second=0, per_window=600, window=60), 10.0),
        (RateLimits.unlimited(), None),
    ],
)
def test_the_sustained_rate_the_bar_never_promises_more_than(limits, sustained):
    assert limits.sustained() == sustained
