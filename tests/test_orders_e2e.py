"""Orders end to end over a real socket: the sample's purchases as orders to the emulator, with
lost answers, sent again, in batch mode killed and resumed, and a mixed export."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gb_backfill import Emulator, Faults, RateLimits, RetryPolicy, send
from gb_backfill._emulator import BatchSettings

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "events.parquet"
RETRY = RetryPolicy(attempts=8, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
AS_ORDERS = {
    "kind": "orders", "customer_id": "customer_id", "order_id": "order_id",
    "order_date": "occurred_at", "total_paid": "amount",
}  # fmt: skip
UNLIMITED = {"limits": RateLimits.unlimited(), "order_limits": RateLimits.unlimited(),
             "batch_limits": RateLimits.unlimited()}  # fmt: skip


def purchases(rows=None):
    """The sample's purchases (the first ``rows`` of them)."""
    df = pd.read_parquet(SAMPLE)
    found = df[df["event_name"] == "purchase_completed"].drop(columns="event_name")
    return found if rows is None else found.iloc[:rows]


def utc_millis(stamps: pd.Series) -> pd.Series:
    """The source timestamps as Gameball's orderDate text, written here independently."""
    utc = stamps.dt.tz_convert("UTC")
    millis = (utc.dt.microsecond // 1000).map("{:03d}".format)
    return utc.dt.strftime("%Y-%m-%dT%H:%M:%S.") + millis + "Z"


def emulator(**more):
    return Emulator(limits=RateLimits.unlimited(), orders_limits=RateLimits.unlimited(), **more)


def send_orders(df, emu, **more):
    return send(df, base_url=emu.base_url, api_key=emu.api_key, secret_key=emu.secret_key,
                progress=False, retry=RETRY, concurrency=8, **AS_ORDERS, **UNLIMITED,
                **more)  # fmt: skip


def check_recorded_once_with_their_dates(df, recorded, report):
    """Every valid purchase is recorded exactly once, its orderDate its source timestamp."""
    failures = report.failures
    assert set(failures["gb_status"]) <= {"invalid"}, failures["gb_status"].value_counts()
    refused = set(failures["order_id"].dropna())
    valid = df[df["order_id"].notna() & ~df["order_id"].isin(refused)]
    assert recorded["order_id"].is_unique, "no order recorded twice"
    assert sorted(recorded["order_id"]) == sorted(valid["order_id"])
    expected = utc_millis(valid.set_index("order_id")["occurred_at"])
    dates = recorded.set_index("order_id")["order_date"]
    assert (dates.reindex(expected.index) == expected).all()


@pytest.mark.parametrize(
    "rows", [300, pytest.param(None, marks=pytest.mark.slow, id="every-purchase")]
)
def test_the_sample_purchases_as_orders_with_lost_answers_and_no_ledger_arrive_once(tmp_path, rows):
    df = purchases(rows)
    faults = Faults(lost_responses=0.05, seed=3)
    with emulator(faults=faults) as emu:
        first = send_orders(df, emu, failures_path=tmp_path / "f.parquet")
        recorded = emu.orders()
        lost = emu.counters["orders_lost_response"]
        again = send_orders(df, emu, failures_path=tmp_path / "g.parquet")
        after = emu.orders()
    assert lost >= 5, "the faults were on"
    assert first.counts["unknown"] == 0
    assert first.sent + first.invalid == len(df)
    assert first.already_there == lost, "each lost answer's retry found its order there"
    check_recorded_once_with_their_dates(df, recorded, first)
    # Sent again with no ledger: nothing new, every valid row reported as already there.
    assert len(after) == len(recorded)
    assert again.sent == first.sent
    assert again.already_there == again.sent


def test_batch_mode_orders_arrive_once_with_their_dates(tmp_path):
    df = purchases(1200)
    with emulator(batch=BatchSettings(delay=0.02)) as emu:
        report = send_orders(df, emu, mode="batch", failures_path=tmp_path / "f.parquet")
        recorded = emu.orders()
    assert report.counts["unknown"] == 0
    assert (recorded["api_version"] == "batch").all()
    check_recorded_once_with_their_dates(df, recorded, report)


@pytest.mark.parametrize("rows", [300, pytest.param(None, marks=pytest.mark.slow, id="all")])
def test_a_mixed_export_sends_purchases_as_orders_and_the_rest_as_events(tmp_path, rows):
    df = pd.read_parquet(SAMPLE).iloc[:rows]
    mapping = {**AS_ORDERS, "kind": "events", "orders_from": "purchase_completed",
               "event_name": "event_name"}  # fmt: skip
    with emulator() as emu:
        report = send(df, base_url=emu.base_url, api_key=emu.api_key, secret_key=emu.secret_key,
                      progress=False, retry=RETRY, concurrency=8, **mapping, **UNLIMITED,
                      failures_path=tmp_path / "f.parquet")  # fmt: skip
        orders, events = emu.orders(), emu.events()
    events = events[events["event_name"] != "place_order"]  # the emulator's, for each order
    assert sum(report.counts.values()) == len(df) == report.rows
    assert report.sent + report.invalid == len(df)
    assert report.sent == len(orders) + len(events), "one report for both kinds"
    is_purchase = df["event_name"] == "purchase_completed"
    failed = report.failures
    assert set(failed["gb_status"]) == {"invalid"}
    assert len(orders) == is_purchase.sum() - (failed["event_name"] == "purchase_completed").sum()
    assert not (events["event_name"] == "purchase_completed").any()
    assert (
        (events["customer_id"] + events["event_name"])
        .isin(df["customer_id"] + df["event_name"])
        .all()
    )
    check_recorded_once_with_their_dates(df[is_purchase], orders, report)


def _command(emu, source, ledger, failures):
    return [
        sys.executable, "-m", "gb_backfill", "send", str(source), "--orders",
        "--customer-id", "customer_id", "--order-id", "order_id", "--order-date", "occurred_at",
        "--total-paid", "amount", "--mode", "batch", "--base-url", emu.base_url,
        "--ledger", str(ledger), "--failures", str(failures), "--secret-key", emu.secret_key,
        "--no-progress", "--job-timeout", "60", "--batch-rate", "0", "--batch-quota", "0",
        "--batch-rows", "400",
    ]  # fmt: skip


@pytest.mark.slow
def test_batch_orders_killed_three_times_then_resumed_none_twice_none_lost(tmp_path):
    df = purchases(4000)
    source, ledger = tmp_path / "purchases.parquet", tmp_path / "run.ledger"
    df.to_parquet(source)
    env = {"PATH": "/usr/bin:/bin"}
    rng = random.Random(31)
    # Jobs take a while and their creation answers come late: kills land with jobs in flight.
    with emulator(batch=BatchSettings(delay=0.3, create_delay=0.2)) as emu:
        env["GAMEBALL_API_KEY"] = emu.api_key
        command = _command(emu, source, ledger, tmp_path / "f.parquet")
        for kill in range(3):
            before = emu.counters.get("batch_jobs", 0)
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)  # fmt: skip
            deadline = time.monotonic() + 60
            while emu.counters.get("batch_jobs", 0) <= before and time.monotonic() < deadline:
                assert process.poll() is None, f"run {kill} ended before it was killed"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.6))
            process.send_signal(signal.SIGKILL)
            process.wait()
        before = len(emu.orders())
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        recorded = emu.orders()
    assert final.returncode in (0, 1), final.stderr
    failures = pd.read_parquet(tmp_path / "f.parquet")
    assert set(failures["gb_status"]) == {"invalid"}, failures["gb_status"].value_counts()
    assert recorded["order_id"].is_unique, "0 twice"
    valid = df[~df.index.isin(failures.index)] if "index" not in failures else df
    invalid_ids = set(failures["order_id"].dropna())
    expected = set(df["order_id"].dropna()) - invalid_ids
    assert set(recorded["order_id"]) == expected, "0 lost"
    assert 0 < before < len(expected), "the kills cut real work short"
    assert len(valid) >= len(expected)
    # The emulator refuses a reused orderId (as Gameball does): "0 twice" is its record, and
    # what the client adds is that no row is left unknown or failed (above).
    bodies = recorded["order"].map(json.dumps)
    assert bodies.str.contains('"orderDate"').all()
