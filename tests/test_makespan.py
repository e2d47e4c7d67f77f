"""The makespan model and the batch-mode routing of the busiest customers (no network)."""

from types import SimpleNamespace

import pandas as pd
import pytest

from gb_backfill import RateLimits
from gb_backfill._config import BATCH_LIMITS
from gb_backfill._engine.makespan import (
    ASSUMED_LOCAL_ROUND_TRIP,
    ASSUMED_ROUND_TRIP,
    LaneCosts,
    Loads,
    assumed_costs,
    batch_seconds,
    events_seconds,
    job_cycle,
    route,
    routing_floor,
)
from gb_backfill._engine.prepare import LoadCounter
from gb_backfill._rows.mapping import resolve_mapping

COSTS = LaneCosts(
    events_limits=RateLimits(),
    batch_limits=BATCH_LIMITS,
    round_trip=0.005,
    job_seconds=0.2,
    concurrency=32,
)


def test_the_job_cycle_is_post_processing_first_read_and_settle():
    # Measured on loopback: 0.063 s at 0.02 s of processing, 0.240 at 0.2, 0.567 at 0.5.
    for processing, measured in ((0.02, 0.063), (0.2, 0.240), (0.5, 0.567)):
        assert job_cycle(processing, 0.005) == pytest.approx(measured, rel=0.25)


def test_a_busy_customer_is_the_batch_lanes_critical_path():
    assert batch_seconds(100_000, 1, COSTS) == pytest.approx(99 / 30 + COSTS.cycle)
    assert batch_seconds(100_000, 2_000, COSTS) == pytest.approx(2_000 * COSTS.cycle)
    assert events_seconds(2_000, 2_000, COSTS) == pytest.approx(30 + 799 / 100)


def test_the_busiest_customer_takes_the_events_lane_when_that_finishes_first():
    loads = Loads(
        events_rows=0,
        events_chain=0,
        batch_rows=100_000,
        busiest={"b2b": 2_000, "shop": 300, "small": 20},
        others_chain=10,
    )
    routing = route(loads, COSTS)
    assert routing.customers == {"b2b", "shop"}
    assert (routing.events_rows, routing.batch_rows) == (2_300, 97_700)
    # Moving "shop" costs the events lane nothing it had not spent on "b2b" already.
    assert routing.seconds == pytest.approx(events_seconds(2_300, 2_000, COSTS))
    assert routing.seconds < batch_seconds(100_000, 2_000, COSTS) / 10


def test_no_customer_moves_when_the_events_lane_is_already_the_longer():
    # The sample: 2,129 rows only the events lane can carry, the busiest with 115 batch rows.
    loads = Loads(
        events_rows=2_129, events_chain=1, batch_rows=22_064, busiest={"c": 115}, others_chain=3
    )
    routing = route(loads, COSTS)
    assert routing.customers == frozenset()
    assert routing.seconds == pytest.approx(events_seconds(2_129, 1, COSTS))


def test_in_any_order_no_chain_is_shortened():
    loads = Loads(events_rows=0, events_chain=0, batch_rows=5_000, busiest={"c": 2_000})
    assert route(loads, COSTS, keep_order=False).customers == frozenset()


def test_the_count_before_the_run_is_exact_for_the_busiest():
    customers = ["b2b"] * 500 + [f"c{n}" for n in range(3_000)] + ["mid"] * 40
    df = pd.DataFrame({"customerId": customers, "eventName": "purchase"})
    df["email"] = None
    df.loc[:9, "email"] = "a@b.co"  # rows only the events lane can carry
    df.loc[10, "customerId"] = ""  # invalid: not counted
    counter = LoadCounter(resolve_mapping(df.columns), COSTS)
    for start in range(0, len(df), 1_000):
        counter.count(df.iloc[start : start + 1_000])
    assert counter.needs_busiest()
    assert counter.floor == routing_floor(len(df) - 11, COSTS)
    for start in range(0, len(df), 1_000):
        counter.count_busiest(df.iloc[start : start + 1_000])
    loads = counter.loads()
    assert (loads.events_rows, loads.batch_rows, loads.events_chain) == (10, 3_529, 10)
    assert loads.busiest == {"b2b": 489, "mid": 40}
    assert loads.others_chain < counter.floor


@pytest.mark.parametrize(
    ("host", "local"),
    [("localhost", True), ("localhost.", True), ("127.0.0.1", True), ("[::1]", True),
     ("api.gameball.co", False), ("localhost.example", False)],
)  # fmt: skip
def test_a_loopback_server_is_planned_with_the_local_round_trip(host, local):
    """One loopback check for the keys' safety and the plan's round trip: ``localhost.`` (the
    fully qualified name) is loopback to both."""
    settings = SimpleNamespace(
        base_url=f"http://{host}:8000", limits=RateLimits(), batch_limits=BATCH_LIMITS,
        concurrency=32,
    )  # fmt: skip
    costs = assumed_costs(settings)
    assert costs.round_trip == (ASSUMED_LOCAL_ROUND_TRIP if local else ASSUMED_ROUND_TRIP)
