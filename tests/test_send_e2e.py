"""End to end over a real socket: the sender against the emulator with faults on."""

import asyncio
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from gb_backfill import (
    AuthenticationError,
    Emulator,
    Faults,
    RateLimits,
    RetryPolicy,
    asend,
    send,
)
from gb_backfill._cli import main
from gb_backfill._emulator import DEFAULT_SECRET_KEY as SECRET
from gb_backfill._engine.plan import minimum_seconds

RETRY = RetryPolicy(attempts=10, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


def frame(rows, customers, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customerId": [f"cust-{n}" for n in rng.integers(0, customers, rows)],
            "eventName": rng.choice(["purchase", "review"], rows),
            "row_id": [f"r{n}" for n in range(rows)],
            "amount": rng.uniform(1, 100, rows).round(2),
        }
    )


def arrivals(emulator):
    events = emulator.events()
    return events["metadata"].map(lambda m: m["row_id"]).value_counts()


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_faults_every_row_accounted_for_and_sent_rows_arrive_once(tmp_path):
    df = frame(400, 60)
    df.loc[[5, 77], "customerId"] = None
    faults = Faults(
        latency=0.002,
        jitter=0.003,
        server_errors=0.10,
        dropped_connections=0.03,
        lost_responses=0.03,
        seed=11,
    )
    with Emulator(faults=faults, limits=RateLimits.unlimited()) as emu:
        report = send(
            df,
            base_url=emu.base_url,
            api_key=emu.api_key,
            limits=RateLimits.unlimited(),
            retry=RETRY,
            progress=False,
            failures_path=tmp_path / "f.parquet",
        )
        counts = arrivals(emu)
        counters = emu.counters
    assert sum(report.counts.values()) == 400
    assert report.invalid == 2
    assert report.failed == 0, "5xx faults were retried until sent"
    assert counters["server_error_500"] + counters["server_error_503"] > 0
    status = pd.Series("sent", index=df["row_id"])
    failures = pd.read_parquet(tmp_path / "f.parquet")
    status[failures["row_id"]] = failures["gb_status"].to_numpy()
    sent = status[status == "sent"].index
    assert (counts.reindex(sent) == 1).all(), "every sent row arrived exactly once"
    unknown = status[status == "unknown"].index
    assert len(unknown) == counters["lost_response"] + counters["dropped"]
    assert counts.reindex(unknown).fillna(0).max() <= 1, "unknown rows were not sent twice"
    lost_arrived = counts.reindex(unknown).fillna(0).sum()
    assert lost_arrived == counters["lost_response"], "processed-then-lost rows arrived once"
    assert counts.sum() == len(sent) + lost_arrived


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_slow_replies_end_unknown_and_are_not_resent():
    df = frame(30, 30, seed=2)
    faults = Faults(lost_responses=0.2, lost_mode="slow", slow_reply=3.0, seed=5)
    with Emulator(faults=faults, limits=RateLimits.unlimited()) as emu:
        report = send(
            df,
            base_url=emu.base_url,
            api_key=emu.api_key,
            timeout=0.5,
            retry=RETRY,
            progress=False,
        )
        counts = arrivals(emu)
    assert report.unknown == emu.counters["lost_response"] > 0
    assert report.sent + report.unknown == 30
    assert counts.max() == 1


def test_wrong_key_stops_the_run_at_once():
    df = frame(300, 100)
    with Emulator() as emu:
        with pytest.raises(AuthenticationError) as caught:
            send(df, base_url=emu.base_url, api_key="wrong", progress=False, concurrency=2)
        assert emu.counters["unauthorized"] <= 2
        assert emu.events().empty
    report = caught.value.report
    assert report.aborted >= 298
    assert sum(report.counts.values()) == 300


@pytest.mark.slow  # the fake-clock pacing tests cover it in the default run
def test_the_documented_windows_scaled_down_give_no_429():
    """Both windows at once, scaled to seconds: the client keeps them exactly."""
    df = frame(90, 40, seed=3)
    with Emulator(limits=RateLimits(per_second=20, per_window=40, window=1.5)) as emu:
        limits = RateLimits(per_second=20, per_window=40, window=1.5)
        report = send(df, base_url=emu.base_url, api_key=emu.api_key, limits=limits, progress=False)
        assert emu.counters["rate_limited"] == 0
    assert report.sent == 90
    assert report.elapsed >= 3.0, "90 requests at 40 per 1.5 s need two full windows"


def distinct_frame(rows, prefix, **columns):
    """``rows`` rows, one customer each, none shared with another prefix's frame."""
    return pd.DataFrame(
        {"customerId": [f"{prefix}-{n}" for n in range(rows)], "eventName": "e", **columns}
    )


@pytest.mark.slow
def test_back_to_back_runs_wait_for_the_window_then_keep_the_limits():
    """The documented limits with the window scaled to 15 s: run A sends 570 rows (6 s), run B
    starts at once with 600 others while A's requests fill the server's window. B waits for
    them to leave, then sends at the limits: within 1/0.9 of the least time for all 1,170
    requests from A's first, few 429s, and no lower limits advised."""
    limits = RateLimits(per_second=100, per_window=600, window=15.0)
    retry = RetryPolicy(wait_initial=0.05, wait_jitter=0.05)
    options = {"limits": limits, "retry": retry, "progress": False}
    with Emulator(limits=RateLimits(per_second=100, per_window=600, window=15.0)) as emu:
        where = {"base_url": emu.base_url, "api_key": emu.api_key}
        a = send(distinct_frame(570, "a"), **where, **options)
        b = send(distinct_frame(600, "b"), **where, **options)
        received = emu.events()["received_at"]
    assert a.sent == 570
    assert b.sent == 600
    took = (received.max() - received.min()).total_seconds()  # from A's first request
    least = minimum_seconds(1170, limits)
    assert took <= least / 0.9, (took, least)
    assert b.http_statuses.get(429, 0) <= 0.03 * sum(b.http_statuses.values())
    assert a.limits_found is None
    assert b.limits_found is None


@pytest.mark.slow
def test_a_batch_send_at_the_documented_limits_never_advises_lower_ones():
    """Emulator() defaults, batch mode, two sends back to back: the second starts while the
    events lane's window (rows with an email go that way) is full of the first send's. Its
    refusals are about that window: neither send advises lower limits."""
    with Emulator() as emu:
        where = {"base_url": emu.base_url, "api_key": emu.api_key, "secret_key": SECRET}
        options = {**where, "mode": "batch", "progress": False}
        first = pd.concat(
            [distinct_frame(1150, "a", email="a@example.com"), distinct_frame(300, "a-batch")]
        )
        a = send(first, **options)
        second = pd.concat(
            [distinct_frame(100, "b", email="b@example.com"), distinct_frame(300, "b-batch")]
        )
        b = send(second, **options)
        refused = emu.counters["rate_limited"]
    assert a.sent == 1450
    assert b.sent == 400
    assert refused > 0, "the second send did meet the full window"
    assert a.limits_found is None
    assert b.limits_found is None


class HeldBack(httpx.AsyncBaseTransport):
    """Holds every request sent in the first ``seconds`` of the run back until then, as a busy
    event loop or slow new connections do: the server counts them later than they left."""

    def __init__(self, seconds):
        self.inner, self.seconds, self.start = httpx.AsyncHTTPTransport(), seconds, None

    async def handle_async_request(self, request):
        now = time.monotonic()
        self.start = self.start or now
        await asyncio.sleep(max(0.0, self.start + self.seconds - now))
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


@pytest.mark.slow  # the fake-clock pacing tests cover it in the default run
def test_requests_held_back_at_the_start_do_not_overfill_the_next_window():
    """The first half second's requests reach the server late, together: a window later the
    limiter still holds their slots (until a window after their answers), so the server's
    window, which counted them late, never overfills."""
    limits = RateLimits(per_second=40, per_window=40, window=2.0)

    async def held_back_send(emu):
        async with httpx.AsyncClient(transport=HeldBack(0.5)) as client:
            return await asend(
                distinct_frame(100, "c"), base_url=emu.base_url, api_key=emu.api_key,
                limits=limits, progress=False, client=client,
            )  # fmt: skip

    with Emulator(limits=RateLimits(per_second=100, per_window=40, window=2.0)) as emu:
        report = asyncio.run(held_back_send(emu))
        refused = emu.counters["rate_limited"]
    assert report.sent == 100
    assert refused == 0


def test_2001_from_a_second_client_is_retried():
    """Another process writing to the same customer causes 2001; the row still gets sent."""
    import threading

    import httpx

    df = pd.DataFrame({"customerId": ["shared"] * 3, "eventName": ["e"] * 3, "n": [1, 2, 3]})
    with Emulator(faults=Faults(latency=0.3), limits=RateLimits.unlimited()) as emu:
        done = threading.Event()

        def other_client():
            # Back to back until the two clients met, so its requests overlap the send's
            # however long the send takes to start on a busy machine (bounded, to be safe).
            deadline = time.monotonic() + 30
            with httpx.Client(headers={"APIKey": emu.api_key}) as client:
                while not done.is_set() and not emu.counters["concurrent"]:
                    assert time.monotonic() < deadline
                    client.post(
                        emu.base_url + "/api/v4.0/integrations/events",
                        json={"customerId": "shared", "events": {"other": {}}},
                    )

        other = threading.Thread(target=other_client)
        other.start()
        try:
            report = send(
                df,
                base_url=emu.base_url,
                api_key=emu.api_key,
                progress=False,
                retry=RetryPolicy(attempts=10, wait_initial=0.1, wait_jitter=0.05),
            )
        finally:
            done.set()
        other.join()
        assert emu.counters["concurrent"] >= 1
        assert [m.get("n") for m in emu.events()["metadata"] if m] == [1, 2, 3]
    assert report.sent == 3


def test_cli_send_exit_codes(tmp_path, capsys):
    df = frame(20, 10)
    df.loc[3, "customerId"] = ""
    path = tmp_path / "in.parquet"
    df.to_parquet(path)
    failures = tmp_path / "f.parquet"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        args = ["send", str(path), "--base-url", emu.base_url, "--no-progress", "--rate", "0"]
        code = main([*args, "--api-key", emu.api_key, "--failures", str(failures)])
        assert code == 1
        assert "20 rows: 19 sent, 1 invalid," in capsys.readouterr().out
        assert pd.read_parquet(failures)["gb_row"].tolist() == [3]
        assert main([*args, "--api-key", "nope", "--failures", str(failures)]) == 2
        err = capsys.readouterr().err
        assert "rejected the keys" in err
        assert "20 rows: " in err, "the counts when the key was rejected"
        assert f"rows not sent are in {failures}" in err
        assert "nope" not in err.replace("rejected", "")
        clean = tmp_path / "clean.csv"
        df.drop(index=3).to_csv(clean, index=False)
        code = main(
            [
                "send",
                str(clean),
                "--base-url",
                emu.base_url,
                "--no-progress",
                "--api-key",
                emu.api_key,
                "--failures",
                str(tmp_path / "clean.failures.parquet"),  # another input's file is refused
            ]
        )
        assert code == 0


def test_cli_send_reads_keys_from_the_environment(tmp_path, monkeypatch, capsys):
    path = tmp_path / "in.csv"
    frame(5, 5).to_csv(path, index=False)
    with Emulator() as emu:
        monkeypatch.setenv("GAMEBALL_API_KEY", emu.api_key)
        code = main(
            [
                "send",
                str(path),
                "--base-url",
                emu.base_url,
                "--no-progress",
                "--failures",
                str(tmp_path / "f.parquet"),
            ]
        )
    assert code == 0
    assert emu.api_key not in capsys.readouterr().out


def test_cli_send_bad_usage(tmp_path, capsys):
    path = tmp_path / "in.csv"
    frame(5, 5).to_csv(path, index=False)
    assert main(["send", str(path), "--api-key", "k", "--customer-id", "nope"]) == 2
    assert main(["send", str(path)]) == 2
    assert "GAMEBALL_API_KEY" in capsys.readouterr().err


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_demo_slice_runs_end_to_end_fast_and_again(tmp_path):
    """The demo's path on the sample's first rows, limits lifted: the quick version of the
    README's first command, in the default run. Run twice, as users do: the second run writes
    the same failures file instead of refusing it as another input's."""
    demo = [sys.executable, "-m", "gb_backfill", "demo", "--fast", "--rows", "100", "--no-progress"]
    outputs = []
    for again in ([], ["--no-preview"]):
        result = subprocess.run(
            [*demo, *again], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr  # the sample's broken rows are not sent
        outputs.append(result.stdout)
    first, second = outputs
    assert "customers a send would create" in first
    assert first.index("preview of 100 rows ") < first.index("100 rows: ")
    assert "preview of" not in second
    assert "100 rows: " in second
    assert "exit code 1, as for any run that leaves rows unsent" in second
    failures = pd.read_parquet(tmp_path / "demo.failures.parquet")
    assert set(failures["gb_status"]) <= {"invalid", "unknown"}, "every other row was sent"
    assert (failures["gb_status"] == "invalid").sum() > 0


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    """The README's first command as it is, with its output not a terminal (a CI log): the
    emulator at the documented limits, the whole sample in batch mode, summary lines, the
    report, and the failures file in the working directory."""
    result = subprocess.run(
        [sys.executable, "-m", "gb_backfill", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # the sample's broken rows are not sent
    assert "exit code 1, as for any run that leaves rows unsent" in result.stdout
    assert "in batch mode" in result.stdout
    assert "\n25,000 rows: " in result.stdout
    assert "preview of 25,000 rows " in result.stdout
    assert "event names Gameball does not know: profile_completed" in result.stdout
    assert "the run stopped" not in result.stderr
    assert "gameball: " in result.stderr, "a summary line every few seconds"
    failures = pd.read_parquet(tmp_path / "demo.failures.parquet")
    assert (failures["gb_status"] == "invalid").sum() == 807
    assert set(failures["gb_status"]) <= {"invalid", "unknown"}, "every other row was sent"
    unknown = (failures["gb_status"] == "unknown").sum()
    if unknown:  # the demo's lost answers: it says why those rows are unknown
        assert "had their answer lost on the way back" in result.stdout


@pytest.mark.slow
def test_a_lower_per_second_limit_is_kept_end_to_end():
    """Against an emulator that allows 10/s while the client assumes 100/s, the run slows down
    to that pace on its own and sends every row without hammering. (Advice needs refusals over
    two windows after the first: tests/test_sender.py checks it on a fake clock, where a run
    can be long; here, with windows scaled to 2 s, any advice given must name about 10/s.)"""
    limits = RateLimits(per_second=100, per_window=1200, window=2.0)
    with Emulator(limits=RateLimits(per_second=10, per_window=0)) as emu:
        report = send(
            pd.DataFrame({"customerId": [f"c{n}" for n in range(120)], "eventName": "e"}),
            base_url=emu.base_url, api_key=emu.api_key, progress=False, limits=limits,
        )  # fmt: skip
    assert report.sent == 120
    assert report.http_statuses.get(429, 0) <= 15, "it slowed down instead of hammering"
    assert report.elapsed >= 120 / 10.5, "it kept under the server's pace"
    assert report.limits_found is None or 8 <= report.limits_found.per_second <= 11
