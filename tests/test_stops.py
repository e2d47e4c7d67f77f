"""One rule for every row when a run stops, whatever stopped it (on a fake clock: no sleeping).

* no request made, or only refusals for the pace (429, 2001): ``aborted``, retryable;
* answered with a failure that was to be retried: ``failed``, retryable;
* a request out with no definite answer: ``unknown``, never resent on its own;
* answered: its verdict.

For each way a run ends, the report, the failures file and the ledger must tell the same story
row by row, and a re-run against a healthy server must send exactly the rows that are retryable.
"""

import asyncio
import json
import sqlite3

import httpx
import pandas as pd
import pytest

from gb_backfill import RateLimits, RunStopped, asend, read_failures
from tests import fake_time
from tests.conftest import FAST_RETRY

ROWS = 40


def frame():
    return pd.DataFrame(
        {"customerId": [f"c{n}" for n in range(ROWS)], "eventName": "e", "seq": range(ROWS)}
    )


def ledger_rows(path):
    with sqlite3.connect(path) as db:
        return {
            bytes(key).hex(): status for key, status in db.execute("SELECT key, status FROM rows")
        }


async def _run(handler, tmp_path, *, stop_after=None, **options):
    """Send ``frame()`` through ``handler``; cancel once ``stop_after`` requests were made."""
    made = []

    async def counting(request):
        made.append(request)
        return await handler(request, len(made))

    client = httpx.AsyncClient(transport=httpx.MockTransport(counting))
    task = asyncio.create_task(
        asend(
            frame(),
            api_key="k",
            secret_key="s",
            client=client,
            progress=False,
            retry=FAST_RETRY,
            concurrency=8,
            row_key=["seq"],
            limits=RateLimits.unlimited(),
            ledger=tmp_path / "ledger",
            failures_path=tmp_path / "failures.parquet",
            **options,
        )
    )
    if stop_after is not None:
        for _ in range(2000):
            if len(made) >= stop_after or task.done():
                break
            await asyncio.sleep(0.005)
        task.cancel()
    try:
        return await task
    except RunStopped as stopped:  # Interrupted when cancelled
        return stopped.report


async def answer_429(request, n):
    await asyncio.sleep(0.001)
    return httpx.Response(429, json={"code": 4290, "message": "Too many requests."})


async def answer_2001(request, n):
    return httpx.Response(422, json={"code": 2001, "message": "in progress"})


async def answer_503(request, n):
    return httpx.Response(503, json={"code": 5003, "message": "down"})


async def hang(request, n):
    await asyncio.sleep(30)
    return httpx.Response(200)


async def answer_404(request, n):
    return httpx.Response(404, json={"message": "no such path"})


async def answer_401(request, n):
    return httpx.Response(401, json={"code": 1000, "message": "unauthorized"})


async def explode_after_some(request, n):
    if n > 5:
        raise RuntimeError("a bug in a transport")
    await asyncio.sleep(0.01)
    return httpx.Response(200)


async def time_out(request, n):
    raise httpx.ReadTimeout("no answer", request=request)


# (handler, stop_after, the statuses every row may end in, the ledger status of each)
EXIT_PATHS = {
    "ctrl-c during 429s": (answer_429, 3, {"aborted"}, {}),
    "ctrl-c during 2001s": (answer_2001, 3, {"aborted"}, {}),
    "ctrl-c during 503 retries": (answer_503, 12, {"failed", "aborted"}, {}),
    # In-flight requests get ``timeout`` (+1 s) to finish after a stop; these never do.
    "ctrl-c with requests in flight": (hang, 1, {"unknown", "aborted"}, {"timeout": 0.2}),
    "breaker": (answer_404, None, {"failed", "aborted"}, {}),
    "rejected key": (answer_401, None, {"failed", "aborted"}, {}),
    "unexpected error": (explode_after_some, None, {"sent", "unknown", "aborted"}, {}),
    "timeouts": (time_out, None, {"unknown", "aborted"}, {}),
}
#: what the ledger may say of a row, by the status the run gave it (None: no record)
LEDGER_SAYS = {
    "sent": {"sent"},
    "failed": {"failed"},
    "unknown": {"unknown"},
    "aborted": {None, "aborted"},
}


def healthy():
    """Gameball answering every request well, batch jobs included."""
    jobs = {}

    async def ok(request, n):
        if request.method == "POST" and request.url.path.endswith("/batch/events"):
            jobs[n] = [item["customerId"] for item in json.loads(request.content)["body"]]
            return httpx.Response(200, json={"jobId": n})
        if request.method == "GET":
            job = int(request.url.path.rsplit("/", 1)[-1])
            done = [{"customerId": c} for c in jobs[job]]
            return httpx.Response(
                200, json={"status": "completed", "response": {"successful": done}}
            )
        return httpx.Response(200)

    return ok


@pytest.mark.parametrize("mode", ["events", "batch"])
@pytest.mark.parametrize("path", list(EXIT_PATHS))
def test_every_exit_path_follows_one_rule_in_report_failures_file_and_ledger(tmp_path, path, mode):
    handler, stop_after, allowed, options = EXIT_PATHS[path]
    if mode == "batch":
        options = {**options, "mode": "batch", "batch_limits": RateLimits.unlimited()}
        options.setdefault("job_timeout", 0.2)
    report = fake_time.run(_run(handler, tmp_path, stop_after=stop_after, **options))
    assert report.rows == ROWS
    assert {status for status, count in report.counts.items() if count} <= allowed
    failures = read_failures(tmp_path / "failures.parquet")
    assert len(failures) == ROWS - report.sent
    assert dict(failures["gb_status"].value_counts()) == {
        status: count for status, count in report.counts.items() if count and status != "sent"
    }
    ledger = ledger_rows(tmp_path / "ledger")
    assert "in_flight" not in set(ledger.values()), "a row the run settled is not left in flight"
    by_row = dict(zip(failures["gb_key"], failures["gb_status"], strict=True))
    for key, status in by_row.items():
        assert ledger.get(key) in LEDGER_SAYS[status], (key, status, ledger.get(key))
    assert sum(status == "sent" for status in ledger.values()) == report.sent

    # The re-run against a healthy server sends exactly the retryable rows, once.
    again = fake_time.run(_run(healthy(), tmp_path, mode=mode))
    resendable = report.counts["aborted"] + report.counts["failed"]
    assert again.sent == resendable
    assert again.skipped == report.sent
    assert again.unknown == report.unknown


@pytest.mark.parametrize("mode", ["events", "batch"])
def test_a_row_refused_for_the_pace_is_aborted_not_failed_and_says_why(tmp_path, mode):
    options = {"mode": mode, "batch_limits": RateLimits.unlimited()}
    report = fake_time.run(_run(answer_429, tmp_path, stop_after=3, **options))
    failures = read_failures(tmp_path / "failures.parquet")
    refused = failures[failures["gb_http_status"] == 429]
    assert len(refused) >= 1
    assert set(refused["gb_status"]) == {"aborted"}
    assert refused["gb_error_message"].str.contains("slow down").all()
    assert (refused["gb_attempts"] >= 1).all(), "the requests made are counted"
    assert report.failed == 0
