"""The limiter, the adaptive rate and the batch lane's scheduling, on a fake clock: no sleeping."""

import asyncio
import itertools

import pytest

from gb_backfill import RateLimits
from gb_backfill._batch_lane import JobDurations, _ReadyRows
from gb_backfill._bookkeeping import Batch, Job
from gb_backfill._dispatch import CustomerCounts
from gb_backfill._limiter import RateLimiter


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
    assert min(gaps) == pytest.approx(1.1 / 30), "spaced at the limit less its slack"
    assert most_in_any(times, 1.0) <= 30


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
