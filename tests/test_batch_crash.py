"""Batch mode killed while a job's POST is out: no row goes twice.

A row answered 2001 in job 1 is offered again in job 2. Until job 2's POST is answered with its
id, the ledger must not point the row at job 1: a resume would read job 1's "2001, retryable"
and send the row again, although job 2 delivered it. Job-creation answers that come late (as
across the internet) make that window long enough to be killed in.
"""

import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from gb_backfill import Emulator
from gb_backfill._emulator import BatchSettings
from gb_backfill._store.ledger import Ledger


def _command(emu, source, ledger, failures, *extra):
    return [
        sys.executable, "-m", "gb_backfill", "send", str(source), "--mode", "batch",
        "--base-url", emu.base_url, "--ledger", str(ledger), "--failures", str(failures),
        "--secret-key", emu.secret_key, "--no-progress", "--job-timeout", "60", *extra,
    ]  # fmt: skip


def _env(emu):
    return {"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"}


def _wait_for(condition, process, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, "the sender ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill the sender never came"
        time.sleep(0.005)


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_killed_while_the_second_job_is_posted_sends_no_row_twice(tmp_path):
    rows = 10
    df = pd.DataFrame(
        {"customerId": [f"c{n}" for n in range(rows)], "eventName": "e", "row_id": range(rows)}
    )
    source, ledger = tmp_path / "in.csv", tmp_path / "run.ledger"
    df.to_csv(source, index=False)
    # Job 1 fails every item with 2001; every job's id is answered 2 s after it was created.
    batch = BatchSettings(busy_jobs=1, create_delay=2.0, delay=0.05)
    with Emulator(batch=batch) as emu:
        command = _command(emu, source, ledger, tmp_path / "f.parquet", "--row-key", "row_id")
        process = subprocess.Popen(command, env=_env(emu), stdout=subprocess.DEVNULL)
        try:
            # Job 2 exists and delivered the rows; its answer is 2 s away: kill in that window.
            _wait_for(lambda: emu.counters.get("batch_items_ok", 0) == rows, process)
            assert emu.counters["batch_jobs"] == 2
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait()
        resumed = subprocess.run(command, env=_env(emu), capture_output=True, text=True)
        events = emu.events()
        jobs = emu.counters["batch_jobs"]
    assert len(events) == rows, f"{len(events)} events arrived for {rows} rows"
    assert jobs == 2, "the resume posted no job"
    assert resumed.returncode == 1, resumed.stderr  # the rows are unknown, not sent
    reader = Ledger(ledger, read_only=True)
    counts = reader.counts()
    reader.close()
    assert counts == {"unknown": rows} or counts == {"in_flight": rows}, counts


@pytest.mark.slow
def test_batch_kill_loop_with_slow_job_creation_and_2001_sends_no_row_twice(tmp_path):
    """20 kill -9s at random moments while job answers are 1.5 s late and items fail with 2001:
    each run is killed within 1.7 s of a job's creation (mostly before its answer came)."""
    customers, per_customer, kills = 40, 50, 20
    rows = customers * per_customer
    rng = random.Random(26)
    df = pd.DataFrame(
        {
            "customerId": [f"c{rng.randrange(customers)}" for _ in range(rows)],
            "eventName": "e",
            "row_id": range(rows),
        }
    )
    source, ledger, failures = tmp_path / "in.csv", tmp_path / "run.ledger", tmp_path / "f.pq"
    df.to_csv(source, index=False)
    batch = BatchSettings(
        item_failures=0.3, transient_share=1.0, create_delay=1.5, delay=0.05, seed=3
    )
    with Emulator(batch=batch) as emu:
        command = _command(emu, source, ledger, failures, "--row-key", "row_id")
        killed = 0
        for _ in range(kills):
            jobs_before = emu.counters.get("batch_jobs", 0) + rng.choice([0, 1])
            process = subprocess.Popen(command, env=_env(emu), stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while emu.counters.get("batch_jobs", 0) <= jobs_before and process.poll() is None:
                assert time.monotonic() < deadline, "the sender posted no job"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 1.7))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
        finished = subprocess.run(
            command, env=_env(emu), capture_output=True, text=True, timeout=300
        )
        events = emu.events()
        counters = emu.counters
    arrived = events["metadata"].map(lambda m: int(m["row_id"])).value_counts()
    assert killed >= kills - 2, f"only {killed} runs were killed mid-way"
    assert counters["batch_items_failed"] > 100, "many items were failed with 2001"
    assert arrived.max() == 1, f"{(arrived > 1).sum()} rows arrived twice"
    final = pd.read_parquet(failures)
    assert set(final["gb_status"]) <= {"unknown", "failed"}, finished.stderr
    failed = set(final.loc[final["gb_status"] == "failed", "row_id"].astype(int))
    assert not failed & set(arrived.index), "a row recorded failed arrived"
    assert set(arrived.index) | set(final["row_id"].astype(int)) == set(range(rows))
    print(f"killed {killed}; {len(arrived)} arrived once, {len(final)} unknown or failed")
