"""Batch mode against the emulator, for both documented status shapes."""

import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from gb_backfill import BatchSettings, Emulator, RateLimits, RetryPolicy, read_failures, send
from gb_backfill._engine.lanes.jobs import read_status

FAST = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.05, wait_jitter=0.0)
SHAPES = ["tutorial", "openapi"]


def history(rows=3000, customers=1200, seed=0):
    """Customers with a long tail: a few with a dozen rows, most with one or two."""
    rng = np.random.default_rng(seed)
    per_customer = np.maximum(1, (12 / np.sqrt(np.arange(1, customers + 1))).astype(int))
    who = np.repeat(np.arange(customers), per_customer)
    who = rng.permutation(np.resize(who, rows) if len(who) < rows else who[:rows])
    return pd.DataFrame(
        {
            "customerId": [f"c{n}" for n in who],
            "eventName": rng.choice(["purchase", "review"], rows),
            "seq": np.arange(rows),
        }
    )


def lifted(**options):
    """The emulator's batch endpoints without rate limits (the client lifts its own too), as
    the emulator's keywords."""
    unlimited = RateLimits.unlimited()
    return {
        "batch": BatchSettings(**options),
        "batch_limits": unlimited,
        "status_limits": unlimited,
    }


def batch_send(emu, df, **options):
    settings = {
        "base_url": emu.base_url,
        "api_key": emu.api_key,
        "secret_key": "emulator-secret-key",
        "mode": "batch",
        "limits": RateLimits.unlimited(),
        "batch_limits": RateLimits.unlimited(),
        "retry": FAST,
        "progress": False,
        **options,
    }
    return send(df, **settings)


def arrivals(emu):
    return emu.events()["metadata"].map(lambda m: m["seq"]).value_counts()


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_mode_delivers_every_valid_row_once_in_customer_order(shape):
    df = history(1500, 600)
    df.loc[[5, 50], "customerId"] = ""
    with Emulator(**lifted(status_shape=shape, delay=0.02)) as emu:
        report = batch_send(emu, df)
        events = emu.events()
        counters = emu.counters
    assert (report.sent, report.invalid) == (len(df) - 2, 2)
    assert counters["batch_jobs"] < len(df) / 10, "rows went in jobs, not one by one"
    seqs = events["metadata"].map(lambda m: m["seq"])
    assert seqs.value_counts().max() == 1
    assert set(seqs) == set(df["seq"]) - {5, 50}
    assert (events["api_version"] == "batch").all()
    ordered = events.assign(seq=seqs).sort_values("received_at", kind="stable")
    for _, rows in ordered.groupby("customer_id"):
        assert rows["seq"].is_monotonic_increasing, "a customer's rows arrive in input order"


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize("shape", SHAPES)
def test_item_failures_land_in_the_failures_file_with_their_reasons(shape, tmp_path):
    df = history(600, 300, seed=1)
    batch = lifted(status_shape=shape, delay=0.01, item_failures=0.2, seed=3)
    with Emulator(**batch) as emu:
        report = batch_send(emu, df, failures_path=tmp_path / "f.parquet")
        counts = arrivals(emu)
    failures = read_failures(tmp_path / "f.parquet")
    assert report.failed == len(failures) > 0
    assert counts.max() == 1
    assert report.sent == len(counts)
    reasons = failures["gb_error_message"]
    assert reasons.str.contains("3003|2001").all(), "Gameball's reason is kept"
    assert report.sent + report.failed == len(df)


@pytest.mark.parametrize("fault", ["lost_jobs", "job_failures"])
def test_a_lost_or_failed_job_leaves_its_rows_unknown(fault, tmp_path):
    df = history(300, 300, seed=2).assign(customerId=lambda d: [f"u{n}" for n in range(len(d))])
    batch = lifted(delay=0.01, **{fault: 1.0})
    with Emulator(**batch) as emu:
        report = batch_send(emu, df, job_timeout=0.5, failures_path=tmp_path / "f.parquet")
    assert report.unknown == len(df)
    assert report.sent == 0
    codes = set(read_failures(tmp_path / "f.parquet")["gb_error_code"])
    assert codes == ({"batch_unconfirmed"} if fault == "lost_jobs" else {"batch_unlisted"})


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_rows_a_batch_item_cannot_carry_take_the_events_lane_in_the_same_run():
    df = history(400, 50, seed=4)
    df["email"] = np.where(df["seq"] % 7 == 0, "a@b.co", None)
    df["sessionToken"] = np.where(df["seq"] % 11 == 0, "tok.x", None)
    with Emulator(**lifted(delay=0.01)) as emu:
        report = batch_send(emu, df)
        events = emu.events()
    assert report.sent == len(df)
    seqs = events["metadata"].map(lambda m: m["seq"])
    assert seqs.value_counts().max() == 1
    one_by_one = set(seqs[events["api_version"] != "batch"])
    assert one_by_one == set(df.loc[df["email"].notna() | df["sessionToken"].notna(), "seq"])
    ordered = events.assign(seq=seqs).sort_values("received_at", kind="stable")
    for _, rows in ordered.groupby("customer_id"):
        assert rows["seq"].is_monotonic_increasing, "order holds across both lanes"


def test_without_customer_order_a_customer_rides_several_jobs_but_never_twice_in_one():
    df = pd.DataFrame({"customerId": "busy", "eventName": "e", "seq": range(30)})
    with Emulator(**lifted(delay=0.3)) as emu:
        started = time.monotonic()
        report = batch_send(emu, df, keep_order=False)
        elapsed = time.monotonic() - started
        counters = emu.counters
    assert report.sent == 30
    assert counters["batch_jobs"] == 30, "one item per customer per job"
    assert elapsed < 30 * 0.3, "the jobs ran side by side, not one cycle per row"


def test_both_status_shapes_read_alike():
    tutorial = {
        "status": "completed",
        "response": {
            "successful": [{"customerId": "a", "message": "ok"}],
            "failed": [
                {"customerId": "b", "error": "2001: busy"},
                {"customerId": "c", "message": "x"},
            ],
        },
    }
    openapi = {
        "status": "completed",
        "results": [{"customerId": "a"}],
        "errors": [{"customerId": "b", "error": "2001: busy"}, {"customerId": "c", "message": "x"}],
    }
    for body in (tutorial, openapi):
        result = read_status(body)
        assert result.ended
        assert result.successful == {"a"}
        assert result.failed == {"b": "2001: busy", "c": "x"}
    assert not read_status({"status": "running"}).ended
    assert not read_status({"status": "processing"}).ended
    assert read_status({"status": "failed"}).failed_as_a_whole


def crash_between_posting_and_result(tmp_path, *, rows, customers, delay):
    """kill -9 once jobs are posted (their ids recorded) and before any ended; the next run
    asks how they ended and settles their rows, sending nothing twice."""
    df = history(rows, customers, seed=5)
    source = tmp_path / "in.parquet"
    df.to_parquet(source)
    ledger = tmp_path / "l"
    with Emulator(**lifted(delay=delay)) as emu:
        command = [
            sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url", emu.base_url,
            "--mode", "batch", "--ledger", str(ledger), "--no-progress", "--failures",
            str(tmp_path / "f.parquet"),
            # Every row in a job: with the events limits in force, the busiest customers' rows
            # would take the events lane, and one in flight at the kill is rightly unknown.
            "--rate", "0", "--quota", "0",
        ]  # fmt: skip
        env = {
            "GAMEBALL_API_KEY": emu.api_key,
            "GAMEBALL_SECRET_KEY": "emulator-secret-key",
            "PATH": "/usr/bin:/bin",
        }
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        # A job is polled once its id reached the client (and the ledger): kill after that.
        while emu.counters["status_polls"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # jobs posted and recorded, none settled yet
        process.wait(timeout=60)
        assert emu.counters["batch_items_ok"] == 0, "killed before any job ended"
        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        counts = arrivals(emu)
    assert resumed.returncode == 0, resumed.stdout
    assert "unknown" not in resumed.stdout, "the killed run's jobs were settled, not left unknown"
    assert counts.max() == 1, "nothing was sent twice"
    assert len(counts) == len(df)


def test_a_crash_between_posting_a_job_and_its_result_short_jobs(tmp_path):
    crash_between_posting_and_result(tmp_path, rows=300, customers=250, delay=0.4)


@pytest.mark.slow
def test_a_crash_between_posting_a_job_and_its_result_is_settled_by_the_next_run(tmp_path):
    crash_between_posting_and_result(tmp_path, rows=2000, customers=1500, delay=1.5)


def test_jobs_are_capped_by_bytes_as_well_as_by_items():
    from gb_backfill._engine.chunks import Chunk, OutgoingRow
    from gb_backfill._engine.lanes.batch import _ReadyRows
    from gb_backfill._gameball import MAX_JOB_BYTES

    chunk = Chunk(pd.DataFrame(), 0)
    ready = _ReadyRows()
    for n in range(300):
        ready.add(OutgoingRow(chunk, n, f"c{n}", b"x" * 20_000, None, n), 0)
    sizes = []
    while len(ready):
        taken = ready.take(1000)
        sizes.append(len(taken))
        assert sum(len(row.body) + 1 for row in taken) <= MAX_JOB_BYTES
    assert sum(sizes) == 300
    assert max(sizes) == MAX_JOB_BYTES // 20_001
    huge = _ReadyRows()
    huge.add(OutgoingRow(chunk, 0, "big", b"x" * (2 * MAX_JOB_BYTES), None, 0), 0)
    assert len(huge.take(1000)) == 1, "a row bigger than the cap still goes, alone"


def test_a_job_refused_as_a_whole_is_split_until_the_bad_items_are_alone():
    df = history(400, 400, seed=2)
    df["note"] = "short"
    bad = [17, 230, 231]
    df.loc[bad, "note"] = "y" * 20_000  # Gameball refuses a job holding an item this large
    with Emulator(**lifted(delay=0.02, max_item_bytes=10_000)) as emu:
        report = batch_send(emu, df)
        counts = arrivals(emu)
        refused = emu.counters["bad_request"]
    assert report.sent == len(df) - len(bad), "the rest are sent"
    assert report.failed == len(bad)
    failures = report.failures
    assert sorted(failures["seq"]) == bad
    assert set(failures["gb_error_code"]) == {"http_400"}
    assert failures["gb_error_message"].str.contains("larger than 10,000 bytes").all()
    assert counts.max() == 1
    assert refused < 40, "halves, not one job per row"


def test_jobs_keep_the_batch_limits_and_customer_order_on_a_fake_clock():
    """A whole batch-mode run on a fake clock: job posts within both windows, each customer's
    rows in order, every row once, and no real time spent waiting."""
    import json as json_module

    import httpx

    from gb_backfill import asend
    from tests import fake_time

    posts, jobs, seen = [], {}, []

    async def gameball(request):
        if request.method == "POST":
            posts.append(fake_time.now())
            items = json_module.loads(request.content)["body"]
            jobs[len(jobs) + 1] = (fake_time.now(), items)
            return httpx.Response(200, json={"jobId": len(jobs)})
        job = int(request.url.path.rstrip("/").split("/")[-1])
        posted, items = jobs[job]
        if fake_time.now() < posted + 0.5:  # each job takes half a second
            return httpx.Response(200, json={"status": "running"})
        seen.extend(item["events"]["e"]["seq"] for item in items)
        done = [{"customerId": item["customerId"]} for item in items]
        return httpx.Response(200, json={"status": "completed", "response": {"successful": done}})

    df = pd.DataFrame(
        {"customerId": [f"c{n % 40}" for n in range(400)], "eventName": "e", "seq": range(400)}
    )
    limits = RateLimits(per_second=2, per_window=5, window=3.0)
    report = fake_time.run(
        asend(
            df, api_key="k", secret_key="s", mode="batch", batch_limits=limits, progress=False,
            client=httpx.AsyncClient(transport=httpx.MockTransport(gameball)), retry=FAST,
            batch_rows=100,
        )
    )  # fmt: skip
    assert report.sent == 400
    assert sorted(seen) == list(range(400)), "every row once"
    for start in posts:
        assert sum(start <= t < start + 1.0 for t in posts) <= 2
        assert (
            sum(
                start <= t < start + 3.0 + limits.slack(3.0, after_answers=True) - 0.01
                for t in posts
            )
            <= 5
        )
    order = {customer: [] for customer in df["customerId"].unique()}
    for seq in seen:
        order[f"c{seq % 40}"].append(seq)
    assert all(rows == sorted(rows) for rows in order.values()), "each customer's rows in order"


def test_failed_job_posts_are_in_the_timeline():
    """Every post is a request in the report's per-second timeline, refused ones too."""
    import httpx

    from gb_backfill import asend
    from tests import fake_time

    answers = iter([503, 503, 200])

    async def gameball(request):
        if request.method == "POST":
            status = next(answers)
            return httpx.Response(status, json={"jobId": 1} if status == 200 else {})
        done = [{"customerId": "a"}]
        return httpx.Response(200, json={"status": "completed", "response": {"successful": done}})

    df = pd.DataFrame({"customerId": ["a"], "eventName": "e"})
    report = fake_time.run(
        asend(
            df, api_key="k", secret_key="s", mode="batch", progress=False, retry=FAST,
            client=httpx.AsyncClient(transport=httpx.MockTransport(gameball)),
        )
    )  # fmt: skip
    assert report.sent == 1
    assert report.timeline["requests"].sum() == 3, "two refused posts and the accepted one"


def test_a_long_chains_events_row_does_not_wait_for_the_window_with_short_ones():
    """Batch mode, fake clock. Thirty one-row customers with an email (events lane) fill the
    events window at once; a busy customer's chain of job cycles reaches its own row with an
    email while that window is full. Places kept for long chains let that row go at once,
    where it would otherwise wait, with every cycle after it, for the window to slide."""
    import json as json_module

    import httpx

    from gb_backfill import asend
    from tests import fake_time

    events_at, jobs = {}, {}

    async def gameball(request):
        if request.url.path.endswith("/integrations/events"):
            body = json_module.loads(request.content)
            events_at[body["customerId"]] = fake_time.now()
            return httpx.Response(200, json={})
        if request.method == "POST":
            jobs[len(jobs) + 1] = (fake_time.now(), json_module.loads(request.content)["body"])
            return httpx.Response(200, json={"jobId": len(jobs)})
        posted, items = jobs[int(request.url.path.rstrip("/").split("/")[-1])]
        if fake_time.now() < posted + 0.2:
            return httpx.Response(200, json={"status": "running"})
        done = [{"customerId": item["customerId"]} for item in items]
        return httpx.Response(200, json={"status": "completed", "response": {"successful": done}})

    short = pd.DataFrame({"customerId": [f"s{n}" for n in range(30)], "email": "a@b.co"})
    busy = pd.DataFrame({"customerId": "busy", "email": [None] * 20 + ["c@d.co"] + [None] * 19})
    df = pd.concat([short, busy], ignore_index=True).assign(eventName="e")
    start = 1000.0  # the fake clock's start
    report = fake_time.run(
        asend(
            df, api_key="k", secret_key="s", mode="batch", progress=False, retry=FAST,
            limits=RateLimits(per_second=100, per_window=20, window=30.0),
            client=httpx.AsyncClient(transport=httpx.MockTransport(gameball)),
        )
    )  # fmt: skip
    assert report.sent == 70
    assert sum(at < start + 30 for at in events_at.values()) == 20, "the window was full"
    assert events_at["busy"] < start + 20, "the chain's row went while the window was full"
