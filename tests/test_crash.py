"""Kill -9 at random moments, resume with the same ledger: nothing lost, nothing sent twice."""

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gb_backfill import Emulator, Faults, RateLimits
from gb_backfill._cli import main
from gb_backfill._store.ledger import Ledger
from tests.conftest import sigint_as_in_a_terminal


def kill_and_resume(tmp_path, capsys, *, rows, kills, batch_rows):
    """Send ``rows`` rows, kill -9 the sender ``kills`` times at random moments (after a
    random number of arrivals), then resume to the end: nothing lost, nothing sent twice."""
    rng = np.random.default_rng(8)
    df = pd.DataFrame(
        {
            "customerId": [f"cust-{n}" for n in rng.integers(0, rows // 8, rows)],
            "eventName": rng.choice(["purchase", "review"], rows),
            "row_id": [f"r{n}" for n in range(rows)],
        }
    )
    df.loc[[10, rows // 5, rows * 4 // 5], "customerId"] = None
    source = tmp_path / "input.parquet"
    df.to_parquet(source)
    ledger = tmp_path / "run.ledger"
    failures = tmp_path / "failures.parquet"
    faults = Faults(latency=0.01, jitter=0.01, server_errors=0.05, lost_responses=0.01, seed=4)
    moments = random.Random(1234)
    with Emulator(faults=faults, limits=RateLimits.unlimited()) as emu:
        command = [
            sys.executable, "-m", "gb_backfill", "send", str(source),
            "--base-url", emu.base_url, "--ledger", str(ledger), "--failures", str(failures),
            "--rate", "100", "--quota", "0", "--no-progress", "--batch-rows", str(batch_rows),
        ]  # fmt: skip
        # 100/s (95/s with the limiter's slack) whatever the machine's speed: each killed run
        # sends a part of the input and none sends it all.
        env = {"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"}
        killed = parts_seen = 0
        for _ in range(kills):
            before = len(emu.events())
            target = before + moments.randint(5, max(6, rows // (kills + 2)))
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while len(emu.events()) < target and process.poll() is None:
                assert time.monotonic() < deadline, "the sender made no progress"
                time.sleep(0.005)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
            parts = failures.with_name(failures.name + ".parts")
            if any(parts.glob("part-*.parquet")):  # what a killed run found so far is readable
                found = pd.read_parquet(parts)
                assert set(found["gb_status"]) <= {"invalid", "unknown", "failed"}
                parts_seen += 1
        before_resume = Ledger(ledger, read_only=True)
        progress = before_resume.counts()
        before_resume.close()
        finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        events = emu.events()
    assert killed >= kills - 1, "the process was killed mid-run nearly every time"
    assert parts_seen > 0, "killed runs left their failures so far on disk"
    assert 0 < progress.get("sent", 0) < rows - 3, "the killed runs made progress, not all of it"
    headline = finished.stdout.splitlines()[0]
    assert " skipped, " in headline, "the last run skipped what was already sent"
    assert finished.returncode == 1, finished.stderr  # 3 invalid rows and some unknown ones
    check_every_row_once(df, events, failures, ledger, capsys)


def check_every_row_once(df, events, failures, ledger, capsys):
    rows = len(df)
    arrived = events["metadata"].map(lambda m: m["row_id"]).value_counts()
    final = pd.read_parquet(failures)
    status = pd.Series("sent", index=df["row_id"])
    status[final["row_id"]] = final["gb_status"].to_numpy()
    assert set(status) <= {"sent", "invalid", "unknown"}, "every valid row was sent or is unknown"
    assert (status == "invalid").sum() == 3

    sent = status.index[status == "sent"]
    assert (arrived.reindex(sent) == 1).all(), "every sent row arrived exactly once"
    unknown = status.index[status == "unknown"]
    assert arrived.reindex(unknown).fillna(0).max() <= 1, "no unknown row was sent twice"
    assert arrived.max() == 1, "no row arrived twice"

    reader = Ledger(ledger, read_only=True)
    counts = reader.counts()
    reader.close()
    assert counts.get("sent", 0) == len(sent)
    assert counts.get("unknown", 0) + counts.get("in_flight", 0) == len(unknown)
    assert counts.get("invalid", 0) == 3, "invalid rows are noted too, by their own keys"
    assert sum(counts.values()) == rows, "every row is in the ledger"

    held = main(["status", "--ledger", str(ledger)])
    assert held == (1 if len(unknown) else 0), "status exits 1 while rows are held as unknown"
    out = capsys.readouterr().out
    assert f"sent: {len(sent):,}" in out
    assert f"held as unknown: {len(unknown):,}" in out
    counted = re.findall(r"^  [a-z ]+: ([\d,]+)\b", out, flags=re.MULTILINE)
    total = int(re.search(r"([\d,]+) rows recorded", out).group(1).replace(",", ""))
    assert sum(int(n.replace(",", "")) for n in counted) == total == rows, "lines add up"


def one_row_per_customer(rows, source):
    """``rows`` purchases of distinct customers, each with its ``row_id``, written as a CSV."""
    df = pd.DataFrame(
        {
            "customerId": [f"c{n}" for n in range(rows)],
            "eventName": "purchase",
            "row_id": [f"r{n}" for n in range(rows)],
        }
    )
    df.to_csv(source, index=False)
    return df


def test_three_kills_on_a_few_hundred_rows_and_resume(tmp_path, capsys):
    kill_and_resume(tmp_path, capsys, rows=300, kills=3, batch_rows=60)


@pytest.mark.slow
def test_sigkill_and_resume(tmp_path, capsys):
    kill_and_resume(tmp_path, capsys, rows=2500, kills=12, batch_rows=300)


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_kill_while_rows_wait_out_a_429_and_resume_sends_them(tmp_path):
    """Rows refused with 429 wait out its Retry-After (30 s here) before their retry; a kill -9
    meanwhile must leave them to the resume to send, not ``in_flight`` (hence ``unknown``)."""
    rows = 60
    source = tmp_path / "input.csv"
    df = one_row_per_customer(rows, source)
    ledger = tmp_path / "run.ledger"
    quota = RateLimits(per_second=0, per_window=10, window=30)
    with Emulator(limits=quota, retry_after=True) as emu:
        command = [
            sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url", emu.base_url,
            "--ledger", str(ledger), "--failures", str(tmp_path / "failures.parquet"),
            "--rate", "100", "--quota", "0", "--no-progress",
        ]  # fmt: skip
        env = {"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            deadline, waiting = time.monotonic() + 30, 0
            while not waiting and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.05)  # poll: refused rows are recorded as soon as they are refused
                if emu.counters["rate_limited"] and ledger.exists():
                    reader = Ledger(ledger, read_only=True)
                    waiting = reader.counts().get("aborted", 0)
                    reader.close()
            assert emu.counters["rate_limited"], "the server refused nothing"
            assert waiting, "rows waiting out a 429 are still marked in flight in the ledger"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        first = emu.events()
        emu.limits = RateLimits.unlimited()  # the account's window has room again: no hold
        emu.reset()  # (a window keeps the limit it was opened with)
        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        events = pd.concat([first, emu.events()])
        arrived = events["metadata"].map(lambda m: m["row_id"]).value_counts()
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "unknown" not in resumed.stdout, resumed.stdout
    assert set(arrived.index) == set(df["row_id"]), "every row arrived"
    assert (arrived == 1).all(), "none twice"


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_ctrl_c_finishes_in_flight_and_writes_every_row(tmp_path):
    """SIGINT: no new requests, in-flight ones finish, the failures file accounts for the rest."""
    rows = 2_000  # 50 s at 40/s, stopped after 20 arrivals: the run cannot finish first
    source = tmp_path / "input.csv"
    one_row_per_customer(rows, source)
    failures = tmp_path / "failures.parquet"
    with Emulator(faults=Faults(latency=0.05)) as emu:
        command = [
            sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url", emu.base_url,
            "--failures", str(failures), "--rate", "40", "--no-progress",
        ]  # fmt: skip
        env = {"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"}
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=sigint_as_in_a_terminal,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(emu.events()) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)  # poll: the run is under way once rows arrive
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            status = Path(f"/proc/{process.pid}/status").read_text()
            process.kill()
            masks = [line for line in status.splitlines() if line.startswith(("SigBlk", "SigIgn"))]
            raise AssertionError(f"SIGINT did not stop the send within 30 s: {masks}") from None
        arrived = set(emu.events()["metadata"].map(lambda m: m["row_id"]))
    assert process.returncode == 130, err
    assert b"interrupted" in err
    assert f": {len(arrived):,} sent".encode() in err, "the counts so far are printed"
    written = pd.read_parquet(failures)
    assert set(written["gb_status"]) == {"aborted"}
    assert set(written["row_id"]).isdisjoint(arrived), "no aborted row was sent"
    assert len(written) + len(arrived) == rows, "every row is sent or in the failures file"
    assert 0 < len(arrived) < rows
