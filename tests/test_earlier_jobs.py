"""Batch jobs whose outcome is not known yet: lost, forgotten by the server, or left by a crash.

A job whose status cannot be read (the server answers 404: it has forgotten the job) is given up
within a few reads, not after ``job_timeout``; a crashed run's jobs are asked about together, each
until ``job_timeout`` after it was posted; and a run stopped meanwhile never calls their rows
"not attempted".
"""

import asyncio
import json
import signal
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

import gb_backfill
from gb_backfill import Emulator, RateLimits, asend, read_failures
from gb_backfill._engine.lanes.jobs import read_status
from gb_backfill._rows.keys import as_keys, natural_hashes
from gb_backfill._store.ledger import Ledger
from tests import fake_time
from tests.conftest import FAST_RETRY

ROWS = 90


def frame(rows=ROWS):
    return pd.DataFrame(
        {"customerId": [f"c{n}" for n in range(rows)], "eventName": "e", "seq": range(rows)}
    )


def crashed_ledger(path, df, jobs, *, posted_at=None):
    """A ledger as a run killed after posting ``jobs`` batch jobs of ``df``'s rows leaves it."""
    keys = as_keys(natural_hashes(df, ["seq"]))
    ledger = Ledger(path)
    ledger.use_keys("columns ['seq']")
    per_job = len(df) // jobs
    for job in range(jobs):
        rows = range(job * per_job, (job + 1) * per_job)
        for row in rows:
            ledger.begin(keys[row], df["customerId"][row], row)
        ledger.assign_job(5000 + job, [keys[row] for row in rows])
    ledger.close()
    if posted_at is not None:
        import sqlite3

        with sqlite3.connect(path) as db:
            db.execute("UPDATE rows SET updated_at = ?", (posted_at,))


def timed(coroutine):
    """Run ``coroutine`` on a fake clock; returns its result and the seconds it took there."""

    async def measure():
        started = fake_time.now()
        result = await coroutine
        return result, fake_time.now() - started

    return fake_time.run(measure())


def gameball(status_of_job):
    """A mock Gameball: jobs posted now are listed as done; ``status_of_job(job_id)`` answers
    for earlier ones."""
    jobs, reads = {}, []

    async def handle(request):
        if request.method == "POST" and request.url.path.endswith("/batch/events"):
            job = 9000 + len(jobs)
            jobs[job] = [item["customerId"] for item in json.loads(request.content)["body"]]
            return httpx.Response(200, json={"jobId": job})
        if request.method == "GET":
            job = int(next(p for p in reversed(request.url.path.split("/")) if p.isdigit()))
            reads.append(job)
            if job in jobs:
                done = [{"customerId": c} for c in jobs[job]]
                return httpx.Response(
                    200, json={"status": "completed", "response": {"successful": done}}
                )
            return await status_of_job(job)
        return httpx.Response(200)

    return handle, reads


async def send(df, tmp_path, handler, **options):
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return await asend(
        df,
        api_key="k",
        secret_key="s",
        client=client,
        mode="batch",
        progress=False,
        retry=FAST_RETRY,
        row_key=["seq"],
        limits=RateLimits.unlimited(),
        batch_limits=RateLimits.unlimited(),
        ledger=tmp_path / "ledger",
        failures_path=tmp_path / "failures.parquet",
        **options,
    )


async def forgotten(job):
    return httpx.Response(404, json={"code": 4000, "message": "No such job."})


async def running(job):
    return httpx.Response(200, json={"status": "running"})


def test_a_job_the_server_forgot_is_given_up_in_a_few_reads_not_after_job_timeout(tmp_path):
    async def main():
        async def lose_new_jobs(request):
            if request.method == "GET":
                return await forgotten(0)
            return httpx.Response(200, json={"jobId": 77})

        return await send(frame(), tmp_path, lose_new_jobs)

    report, took = timed(main())
    assert took < 10, "job_timeout is 300 s; a lost job costs seconds"
    assert report.unknown == ROWS
    failures = read_failures(tmp_path / "failures.parquet")
    assert set(failures["gb_error_code"]) == {"batch_job_lost"}
    assert failures["gb_error_message"].str.contains("HTTP 404").all()


def test_nine_forgotten_jobs_of_a_crashed_run_are_settled_together_and_promptly(tmp_path):
    df = frame()
    crashed_ledger(tmp_path / "ledger", df, jobs=9)
    handler, reads = gameball(forgotten)

    report, took = timed(send(df, tmp_path, handler))
    assert took < 10
    assert report.unknown == ROWS, "their rows may have been processed: unknown, not resent"
    assert report.sent == 0
    assert set(reads) == {5000 + job for job in range(9)}
    ledger = Ledger(tmp_path / "ledger", read_only=True)
    assert ledger.counts() == {"unknown": ROWS}, "a forgotten job's rows are settled unknown"
    ledger.close()


def test_earlier_jobs_still_running_are_waited_for_together_until_job_timeout_after_posting(
    tmp_path,
):
    df = frame()
    # Posted a while ago: their job_timeout has passed, so one read each settles the question.
    crashed_ledger(tmp_path / "ledger", df, jobs=9, posted_at=time.time() - 60)
    handler, reads = gameball(running)
    report, took = timed(send(df, tmp_path, handler, job_timeout=30))
    assert took < 5, "jobs posted 60 s ago are past their 30 s timeout"
    assert report.unknown == ROWS
    assert sorted(reads) == [5000 + job for job in range(9)], "one read each"

    # Posted just now: all nine are waited for together, not one after another.
    posted = time.time()
    crashed_ledger(tmp_path / "ledger2", df, jobs=9, posted_at=posted)
    (tmp_path / "ledger").unlink()
    (tmp_path / "ledger2").rename(tmp_path / "ledger")
    report, took = timed(send(df, tmp_path, handler, job_timeout=1.5))
    # The timeout counts from the (real) time of posting: real time that passed before the
    # run looked (a loaded machine) is not waited for again on the fake clock.
    waited_at_least = 1.5 - (time.time() - posted) - 0.1
    assert waited_at_least < took < 6, (
        f"nine jobs took {took:.1f} s; one after another would be 13.5 s"
    )
    assert report.unknown == ROWS


def test_a_run_stopped_while_asking_about_earlier_jobs_never_calls_their_rows_not_attempted(
    tmp_path,
):
    df = frame()
    crashed_ledger(tmp_path / "ledger", df.iloc[:30], jobs=3)
    handler, reads = gameball(running)

    async def main():
        task = asyncio.create_task(send(df, tmp_path, handler, job_timeout=60))
        while not reads:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(gb_backfill.Interrupted) as stopped:
            await task
        return stopped.value.report

    report = fake_time.run(main())
    assert report.rows == ROWS
    assert report.unknown == 30, "rows whose jobs may have been processed are unknown"
    assert report.aborted == ROWS - 30
    failures = read_failures(tmp_path / "failures.parquet")
    earlier = failures[failures["seq"] < 30]
    assert set(earlier["gb_status"]) == {"unknown"}
    assert not earlier["gb_error_message"].str.contains("not attempted").any()


def test_only_gameballs_code_2001_makes_a_failed_item_transient():
    body = {
        "status": "completed",
        "response": {
            "failed": [
                {"customerId": "a", "error": "2001: a request for this customer is in progress"},
                {"customerId": "b", "message": "order 2001 was refused"},
                {"customerId": "c", "message": "busy", "code": 2001},
                {"customerId": "d", "message": "(2001) busy"},
                {"customerId": "e", "message": "20011: something else"},
            ]
        },
    }
    assert read_status(body).codes == {"a": 2001, "c": 2001, "d": 2001, "e": 20011}


@pytest.mark.slow
def test_a_resume_after_kill_9_with_nine_jobs_the_server_forgot_finishes_promptly(tmp_path):
    """The server restarts and forgets every job; the resume must not wait out job_timeout."""
    # 100 customers of 12 rows each, in any order: jobs of 100 rows, one row per customer each,
    # two a second; the run is killed once 9 are posted.
    df = frame(1200).assign(customerId=[f"c{n % 100}" for n in range(1200)])
    source = tmp_path / "in.parquet"
    df.to_parquet(source)
    ledger = tmp_path / "ledger"
    env = {
        "GAMEBALL_SECRET_KEY": "emulator-secret-key",
        "PATH": "/usr/bin:/bin",
    }

    def command(emu):
        return [
            sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url", emu.base_url,
            "--mode", "batch", "--ledger", str(ledger), "--no-progress", "--failures",
            str(tmp_path / "f.parquet"), "--row-key", "seq", "--any-order", "--batch-rate", "2",
        ]  # fmt: skip

    slow_jobs = Emulator(**_lifted(delay=600))  # its jobs never end while we watch
    with slow_jobs as first:
        killed = subprocess.Popen(
            command(first),
            env={**env, "GAMEBALL_API_KEY": first.api_key},
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while first.counters["batch_jobs"] < 9 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # let the ledger's journal take the last job ids
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    lost = first.counters["batch_jobs"]
    assert 9 <= lost < 12
    assert first.counters["batch_items_ok"] == 0, "nothing processed by the server that forgot"
    with Emulator(**_lifted(delay=0.05)) as second:  # a new server: no job of the first
        started = time.monotonic()
        resumed = subprocess.run(
            command(second),
            env={**env, "GAMEBALL_API_KEY": second.api_key},
            capture_output=True,
            text=True,
            timeout=120,
        )
        took = time.monotonic() - started
        arrived = second.events()["metadata"].map(lambda m: m["seq"]).value_counts()
    assert took < 60, f"the resume took {took:.0f} s"
    assert resumed.returncode == 1, resumed.stderr  # some rows are unknown
    assert "unknown_earlier" in resumed.stdout
    assert arrived.max() == 1, "nothing was sent twice"
    failures = read_failures(tmp_path / "f.parquet")
    assert set(failures["gb_status"]) == {"unknown"}
    assert len(failures) == 100 * lost
    assert set(arrived.index) | set(failures["seq"]) == set(df["seq"]), "arrived or unknown"


def _lifted(**options):
    """The emulator's batch endpoints without rate limits, as the emulator's keywords."""
    from gb_backfill import BatchSettings, RateLimits

    unlimited = RateLimits.unlimited()
    return {
        "batch": BatchSettings(**options),
        "batch_limits": unlimited,
        "status_limits": unlimited,
    }


def test_status_says_the_next_run_asks_gameball_about_rows_in_batch_jobs(tmp_path, capsys):
    """Rows a killed run left in posted batch jobs are not for a person to settle: status says
    the next run asks Gameball how each job ended, exits 0 for them, and settle --all leaves
    them to that run."""
    from gb_backfill._cli import main

    ledger = tmp_path / "ledger"
    crashed_ledger(ledger, frame(), jobs=3)
    status = gb_backfill.ledger_status(ledger)
    assert status.next_run["asked_of_gameball"] == ROWS
    assert status.next_run["held_as_unknown"] == 0
    assert status.unknown.empty, "none is listed to look up and settle"
    assert main(["status", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert f"asked of gameball: {ROWS} (in batch jobs a stopped run posted; the next run asks" in (
        out
    )
    settled = gb_backfill.settle(ledger, keys="all", arrived=False)
    assert settled.settled == 0, "a guess by hand would risk sending a processed row again"
    assert gb_backfill.ledger_status(ledger).next_run["asked_of_gameball"] == ROWS
