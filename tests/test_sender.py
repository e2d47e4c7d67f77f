"""The sender against httpx.MockTransport: outcomes, retries, limits, ordering, safety."""

import asyncio
import json
import logging
import re
import threading
import time
from collections import defaultdict
from dataclasses import replace

import httpx
import numpy as np
import pandas as pd
import pytest

import gb_backfill
from gb_backfill import (
    AuthenticationError,
    ConfigError,
    Emulator,
    RateLimits,
    RetryPolicy,
    asend,
    send,
)
from gb_backfill._engine.plan import minimum_seconds
from tests.conftest import (
    API_KEY,
    FAST_RETRY,
    SECRET_KEY,
    LimitedGameball,
    MockGameball,
    send_fast,
    send_options,
)
from tests.fake_time import now


def test_sends_every_valid_row_once_and_accounts_for_all(events):
    gameball = MockGameball()
    report = send(events, **send_options(gameball))
    assert report.counts == {
        "sent": 5,
        "skipped": 0,
        "invalid": 1,
        "failed": 0,
        "unknown": 0,
        "aborted": 0,
    }
    assert sorted(gameball.seqs) == [0, 1, 2, 3, 5]
    assert report.requests == 5
    assert report.http_statuses == {200: 5}
    assert report.failures["gb_status"].tolist() == ["invalid"]
    assert report.failures["gb_row"].tolist() == [4]
    assert "sent=5" in repr(report)
    request, body = gameball.requests[0]
    assert request.url.path == "/api/v4.0/integrations/events"
    assert request.headers["APIKey"] == API_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert body == gb_backfill.payloads(events).iloc[0]


def test_retries_5xx_then_sends():
    answers = iter([503, 500, 200])
    gameball = MockGameball(lambda r, b, n: httpx.Response(next(answers)))
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    report = send(df, **send_options(gameball))
    assert report.sent == 1
    assert report.requests == 3
    assert report.http_statuses == {503: 1, 500: 1, 200: 1}


def test_gives_up_after_capped_attempts():
    gameball = MockGameball(
        lambda r, b, n: httpx.Response(503, json={"code": 5003, "message": "down"})
    )
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    report = send(
        df,
        **send_options(gameball, retry=RetryPolicy(attempts=3, wait_initial=0.001, wait_jitter=0)),
    )
    assert report.failed == 1
    assert len(gameball.requests) == 3
    failure = report.failures.iloc[0]
    assert (failure["gb_error_code"], failure["gb_http_status"], failure["gb_attempts"]) == (
        "http_503",
        503,
        3,
    )
    assert "gave up after 3 attempts" in failure["gb_error_message"]
    assert "down (Gameball code 5003)" in failure["gb_error_message"]


def test_429_waits_for_retry_after():
    """Honours Retry-After on 429, for every worker."""
    times = []

    def handler(request, body, n):
        times.append(now())
        if n == 1:
            return httpx.Response(429, headers={"Retry-After": "0.4"})
        return httpx.Response(200)

    gameball = MockGameball(handler)
    df = pd.DataFrame({"customerId": ["a", "b"], "eventName": ["e", "e"]})
    patient = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=1.0, wait_jitter=0.0)
    report = send_fast(df, **send_options(gameball, concurrency=1, retry=patient))
    assert report.sent == 2
    assert times[1] - times[0] >= 0.4 - 1e-9, "it waited the 0.4 s Gameball asked for"


@pytest.mark.parametrize("header", ["120", "inf", "nan", "soon"])
def test_retry_after_is_capped_by_wait_max_and_nonsense_is_ignored(header):
    """A Retry-After of two minutes, infinity or gibberish never stalls the run."""
    times = []

    def handler(request, body, n):
        times.append(now())
        if n == 1:
            return httpx.Response(429, headers={"Retry-After": header})
        return httpx.Response(200)

    brief = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.2, wait_jitter=0.0)
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    report = send_fast(df, **send_options(MockGameball(handler), retry=brief))
    assert report.sent == 1
    assert times[1] - times[0] < 1.0


def test_2001_is_retried_but_other_422_fails():
    def handler(request, body, n):
        if body["customerId"] == "busy" and n == 1:
            return httpx.Response(422, json={"code": 2001, "message": "in progress"})
        if body["customerId"] == "bad":
            return httpx.Response(422, json={"code": 3003, "message": "invalid value"})
        return httpx.Response(200)

    gameball = MockGameball(handler)
    df = pd.DataFrame({"customerId": ["busy", "bad"], "eventName": ["e", "e"]})
    report = send_fast(df, **send_options(gameball, concurrency=1))
    assert (report.sent, report.failed) == (1, 1)
    failed = report.failures.iloc[0]
    assert (failed["gb_error_code"], failed["gb_attempts"]) == ("http_422", 1)


@pytest.mark.parametrize("status", [400, 404, 412, 415])
def test_other_4xx_is_final(status):
    gameball = MockGameball(
        lambda r, b, n: httpx.Response(status, json={"code": 3000, "message": "nope"})
    )
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    report = send(df, **send_options(gameball))
    assert report.failed == 1
    assert len(gameball.requests) == 1


def test_connect_errors_are_retried():
    def handler(request, body, n):
        if n < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    gameball = MockGameball(handler)
    report = send(pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}), **send_options(gameball))
    assert report.sent == 1
    assert len(gameball.requests) == 3


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
def test_ambiguous_failures_are_unknown_and_not_retried(error):
    def handler(request, body, n):
        raise error("lost", request=request)

    gameball = MockGameball(handler)
    report = send(pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}), **send_options(gameball))
    assert report.unknown == 1
    assert len(gameball.requests) == 1
    assert report.failures["gb_status"].tolist() == ["unknown"]


def test_retry_unknown_opt_in_resends():
    def handler(request, body, n):
        if n == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200)

    gameball = MockGameball(handler)
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    report = send(df, **send_options(gameball, retry_unknown=True))
    assert report.sent == 1
    assert len(gameball.requests) == 2


def test_401_stops_the_run_at_once():
    gameball = MockGameball(
        lambda r, b, n: httpx.Response(401, json={"code": 1000, "message": "Unauthorized"})
    )
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(500)], "eventName": ["e"] * 500})
    with pytest.raises(AuthenticationError) as caught:
        send(df, **send_options(gameball, concurrency=1))
    assert len(gameball.requests) == 1
    report = caught.value.report
    assert (report.failed, report.aborted, report.rows) == (1, 499, 500)
    assert caught.value.status_code == 401
    assert "rejected the keys" in str(caught.value)


def test_keys_never_leak(tmp_path, caplog):
    """Keys stay out of exceptions, reprs, logs and files."""
    caplog.set_level(logging.DEBUG)
    gameball = MockGameball(
        lambda r, b, n: httpx.Response(403, json={"code": 1002, "message": "Forbidden"})
    )
    df = pd.DataFrame({"customerId": ["a", "b"], "eventName": ["e", "e"]})
    failures = tmp_path / "f.parquet"
    ledger = tmp_path / "l.sqlite"
    with pytest.raises(AuthenticationError) as caught:
        send(
            df,
            **send_options(gameball, secret_key=SECRET_KEY, concurrency=1),
            failures_path=failures,
            ledger=ledger,
        )
    texts = [str(caught.value), repr(caught.value), repr(caught.value.report), caplog.text]
    texts.append(caught.value.report.failures.to_string())
    blobs = [failures.read_bytes(), *(p.read_bytes() for p in tmp_path.glob("l.sqlite*"))]
    for secret in (API_KEY, SECRET_KEY):
        assert all(secret not in text for text in texts)
        assert all(secret.encode() not in blob for blob in blobs)
    assert gameball.requests[0][0].headers["SecretKey"] == SECRET_KEY


def test_config_repr_masks_keys():
    from gb_backfill._config import ApiKeys

    keys = ApiKeys(API_KEY, SECRET_KEY)
    assert API_KEY not in repr(keys)
    assert SECRET_KEY not in repr(keys)


def test_customers_one_at_a_time_in_input_order():
    in_flight = defaultdict(int)
    seen = defaultdict(list)
    peak = {"customer": 0, "total": 0}
    total = {"now": 0}

    async def handler(request):
        body = __import__("json").loads(request.content)
        customer = body["customerId"]
        in_flight[customer] += 1
        total["now"] += 1
        peak["customer"] = max(peak["customer"], in_flight[customer])
        peak["total"] = max(peak["total"], total["now"])
        await asyncio.sleep(0.002)
        seen[customer].append(body["events"]["e"]["seq"])
        in_flight[customer] -= 1
        total["now"] -= 1
        return httpx.Response(200)

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"customerId": rng.choice(["a", "b", "c", "d", "e"], 200), "eventName": "e"})
    df["seq"] = range(200)
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    report = send(
        df, api_key=API_KEY, progress=False, client=client, concurrency=4,
        limits=RateLimits.unlimited(),  # requests are spaced at the limits: lift them here
    )  # fmt: skip
    assert report.sent == 200
    assert peak["customer"] == 1, "one request in flight per customer"
    assert 1 < peak["total"] <= 4, "concurrency is used and capped"
    for customer, seqs in seen.items():
        assert seqs == df.loc[df.customerId == customer, "seq"].tolist()


def test_rate_limits_are_kept():
    times = []
    gameball = MockGameball(lambda r, b, n: times.append(now()) or httpx.Response(200))
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(14)], "eventName": "e"})
    limits = RateLimits(per_second=6, per_window=10, window=1.5)
    send_fast(df, **send_options(gameball, limits=limits, concurrency=4))
    times = np.array(times)
    for start in times:
        assert ((times >= start) & (times < start + 1.0)).sum() <= 6
        assert ((times >= start) & (times < start + 1.5)).sum() <= 10
    assert times[-1] - times[0] >= 1.5, "the 14th request waited for the window"


def test_session_token_rows_use_v41_with_the_token():
    gameball = MockGameball()
    df = pd.DataFrame(
        {"customerId": ["a", "b"], "eventName": ["e", "e"], "sessionToken": ["tok", None]}
    )
    send(df, **send_options(gameball, concurrency=1))
    paths = {
        b["customerId"]: (r.url.path, r.headers.get("X-GB-TOKEN")) for r, b in gameball.requests
    }
    assert paths == {
        "a": ("/api/v4.1/integrations/events", "tok"),
        "b": ("/api/v4.0/integrations/events", None),
    }
    assert all("sessionToken" not in b for _, b in gameball.requests), "tokens are not metadata"


def test_api_version_41_needs_the_secret_key():
    with pytest.raises(ConfigError, match="GAMEBALL_SECRET_KEY"):
        send(
            pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}), api_key="k", api_version="4.1"
        )


def test_keys_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAMEBALL_API_KEY", "env-key")
    gameball = MockGameball()
    options = send_options(gameball)
    del options["api_key"]
    send(pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}), **options)
    assert gameball.requests[0][0].headers["APIKey"] == "env-key"


def test_missing_key_is_a_config_error():
    with pytest.raises(ConfigError, match="GAMEBALL_API_KEY"):
        send(pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}))


def test_plain_http_to_a_remote_host_is_refused():
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    with pytest.raises(ConfigError, match="allow_insecure_http"):
        send(df, api_key="k", base_url="http://api.example.com")
    gameball = MockGameball()
    report = send(
        df, **send_options(gameball, base_url="http://api.example.com", allow_insecure_http=True)
    )
    assert report.sent == 1
    report = send(df, **send_options(MockGameball(), base_url="http://localhost:8000"))
    assert report.sent == 1


@pytest.mark.parametrize(
    "switch",
    ["retry_unknown", "resend_changed", "keep_order", "rebuild_ledger", "allow_insecure_http"],
)
def test_a_switch_given_as_text_is_a_config_error(switch):
    """bool("false") is True: retry_unknown="false" from a config file would resend rows."""
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    with pytest.raises(ConfigError, match=f"^{switch}= must be True or False, not 'false'$"):
        send(df, **send_options(MockGameball(), **{switch: "false"}))
    assert send(df, **send_options(MockGameball(), retry_unknown=np.bool_(False))).sent == 1


@pytest.mark.parametrize("face", ["send", "preview"])
def test_progress_given_as_text_is_a_config_error(face, tmp_path):
    """progress="no" drew a bar: any text was truthy."""
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    path = tmp_path / "in.parquet"
    df.to_parquet(path)
    calls = {
        "send": [lambda **o: send(df, **o), lambda **o: gb_backfill.send_path(path, **o)],
        "preview": [lambda **o: gb_backfill.preview(df, **o),
                    lambda **o: gb_backfill.preview_path(path, **o)],
    }[face]  # fmt: skip
    for call in calls:
        with pytest.raises(ConfigError, match=r"^progress= must be True, False or None"):
            call(api_key="k", base_url="http://127.0.0.1:9", progress="no")


@pytest.mark.parametrize("reserve", [1, 1.5, -0.1, float("nan"), "0.3", True])
def test_reserve_is_a_share_below_one(reserve):
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    with pytest.raises(ConfigError, match=r"^reserve= must be a share from 0 to below 1"):
        send(df, **send_options(MockGameball(), reserve=reserve))


def test_reserve_keeps_every_limit_to_the_share_left_and_reports_the_accounts_limits():
    from gb_backfill._config import account_limits, leave_room
    from gb_backfill._options import SendOptions, make_settings

    settings = make_settings(SendOptions(api_key="k", secret_key="s", reserve=0.3, mode="batch"))
    assert (settings.limits.per_second, settings.limits.per_window) == (70, 840)
    assert (settings.batch_limits.per_second, settings.batch_limits.per_window) == (21, 252)
    assert (settings.status_limits.per_second, settings.status_limits.per_window) == (70, 840)
    lifted = leave_room(RateLimits(per_second=0, per_window=3), 0.9)
    assert (lifted.per_second, lifted.per_window) == (0, 1), "lifted stays lifted; at least 1"
    for limits in (RateLimits(), RateLimits(per_second=30, per_window=360)):
        for reserve in (0.1, 0.25, 0.3, 0.5):
            kept = leave_room(limits, reserve)
            assert account_limits(kept, reserve) == limits, (limits, reserve)
            assert leave_room(account_limits(kept, reserve), reserve) == kept


def test_unknown_keyword_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown keyword"):
        send(pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}), api_key="k", evnt="x")


def test_sync_send_works_inside_a_running_loop(events):
    """The notebook case: a cell calls send() while the kernel's loop runs."""

    async def cell():
        return send(events, **send_options(MockGameball()))

    assert asyncio.run(cell()).sent == 5


def test_every_batch_is_read_and_prepared_on_one_worker_thread(monkeypatch):
    """pyarrow's allocator keeps a heap per thread: work spread over the default executor's
    threads let a long run's memory creep up (bench_memory), so all of it goes to one."""
    from gb_backfill._engine import prepare as _prepare

    threads: set[int] = set()
    prepare = _prepare.Preparer.prepare

    def spy(self, *args, **kwargs):
        threads.add(threading.get_ident())
        return prepare(self, *args, **kwargs)

    monkeypatch.setattr(_prepare.Preparer, "prepare", spy)
    df = pd.DataFrame({"customerId": [f"c{n % 50}" for n in range(300)], "eventName": "e"})
    for _ in range(2):  # two runs, two event loops: one thread
        assert send(df, **send_options(MockGameball(), batch_rows=10)).sent == 300
    assert len(threads) == 1
    assert threading.get_ident() not in threads


def test_asend_on_the_callers_loop(events):
    async def cell():
        return await events.gameball.asend(**send_options(MockGameball()))

    assert asyncio.run(cell()).sent == 5


def test_accessor_send(events):
    assert events.gameball.send(**send_options(MockGameball())).sent == 5


def test_cancel_finishes_in_flight_and_accounts_for_every_row(tmp_path):
    started = asyncio.Event()

    async def handler(request):
        started.set()
        await asyncio.sleep(0.05)
        return httpx.Response(200)

    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(300)], "eventName": "e"})
    failures = tmp_path / "f.parquet"

    async def main():
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        task = asyncio.create_task(
            asend(
                df,
                api_key="k",
                client=client,
                progress=False,
                concurrency=4,
                failures_path=failures,
                batch_rows=50,
            )
        )
        await started.wait()
        await asyncio.sleep(0.12)
        task.cancel()
        with pytest.raises(gb_backfill.Interrupted):
            await task

    asyncio.run(main())
    written = pd.read_parquet(failures)
    assert set(written["gb_status"]) == {"aborted"}
    assert 0 < len(written) < 300
    assert sorted(written["gb_row"]) == sorted(set(written["gb_row"]))
    sent_rows = 300 - len(written)
    assert sent_rows >= 4, "requests in flight at the interrupt were allowed to finish"


def test_failures_file_can_be_sent_again_unchanged(tmp_path, events):
    failing = MockGameball(lambda r, b, n: httpx.Response(400, json={"message": "no"}))
    path = tmp_path / "failures.parquet"
    report = send(events, **send_options(failing), failures_path=path)
    assert (report.failed, report.invalid) == (5, 1)
    again = pd.read_parquet(path)
    assert {
        "gb_status",
        "gb_error_code",
        "gb_error_message",
        "gb_http_status",
        "gb_attempts",
        "gb_row",
    } <= set(again.columns)
    assert str(again["gb_http_status"].dtype) == "Int64"
    fixed = again.assign(customerId=again["customerId"].replace("", "c9"))
    ok = MockGameball()
    second = send(fixed, **send_options(ok))
    assert second.sent == 6
    assert all(set(b["events"][next(iter(b["events"]))]) == {"seq"} for _, b in ok.requests)


def test_progress_bar_counts_every_row(events, capsys, monkeypatch):
    # A wide screen: tqdm 4.66 cut this line at 80 columns under xdist; the test reads all of it.
    monkeypatch.setenv("COLUMNS", "200")
    send(events, **send_options(MockGameball(), progress=True))
    err = capsys.readouterr().err
    assert "6/6" in err, "one bar over all rows, invalid ones included"
    final = err.strip().splitlines()[-1].split("\r")[-1]
    assert "sent=5, failed=0, invalid=1, unknown=0" in final, "it ends on the report's counts"
    assert "retrying=" not in final, "shown only while rows are retrying"


def test_progress_is_off_when_not_interactive(events, capsys):
    send(events, **send_options(MockGameball(), progress=None))
    assert capsys.readouterr().err == ""


def test_the_summary_line_shows_the_pace_found_once_throttled(monkeypatch, capsys):
    """Without a terminal, the periodic line carries the pace as text next to the counts."""
    from gb_backfill._engine import progress as _progress

    monkeypatch.setattr(_progress, "interactive", lambda: False)
    monkeypatch.setattr(_progress.Progress, "LINE_EVERY", 0.0)
    progress = _progress.Progress(1_200, enabled=None, clock=time.monotonic)
    progress.pace = lambda: "17/s, 201/30s"
    progress.advance(1_000, {"sent": 990, "failed": 10}, retrying=3)
    line = capsys.readouterr().err.strip()
    assert line == (
        "gameball: 1,000 of 1,200 rows (83%): sent=990, failed=10, invalid=0, unknown=0, "
        "retrying=3, pace=17/s, 201/30s"
    )
    progress.advance(200, {"sent": 990, "skipped": 150, "aborted": 40, "failed": 20}, 0)
    assert capsys.readouterr().err.strip() == (
        "gameball: 1,160 of 1,200 rows (97%): sent=990, skipped=150, aborted=40, failed=20, "
        "invalid=0, unknown=0, pace=17/s, 201/30s"
    ), "a re-run's skipped rows are not shown as sent; rows never attempted do not count as done"


def test_a_slow_customer_does_not_let_batches_pile_up():
    """Memory stays bounded: reading waits while three batches still hold pending rows."""
    from gb_backfill._engine.run import run_send
    from gb_backfill._options import SendOptions, make_settings
    from gb_backfill._rows.mapping import resolve_mapping

    pulled = []
    seen_while_slow = []

    def batches():
        for n in range(12):
            pulled.append(n)
            yield pd.DataFrame(
                {
                    "customerId": ["slow"] + [f"c{n}-{i}" for i in range(9)],
                    "eventName": "e",
                    "b": n,
                },
                index=range(10 * n, 10 * n + 10),
            )

    async def handler(request):
        body = __import__("json").loads(request.content)
        if body["customerId"] == "slow":
            seen_while_slow.append((body["events"]["e"]["b"], len(pulled)))
            await asyncio.sleep(0.05)
        return httpx.Response(200)

    async def main():
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        options = SendOptions(api_key="k", limits=RateLimits.unlimited(), batch_rows=10)
        settings = make_settings(options)
        return await run_send(
            batches, total=120, settings=settings, client=client,
            mapping=resolve_mapping(["customerId", "eventName", "b"]),
            columns=["customerId", "eventName", "b"],
            ledger_path=None, failures_path=None, progress=False,
        )  # fmt: skip

    report, stop = asyncio.run(main())
    assert stop is None
    assert report.sent == 120
    assert max(read - batch for batch, read in seen_while_slow) <= 3


def test_429s_use_up_no_attempt_a_long_episode_does_not_fail_rows():
    """429s in a row are the account's pace, not the row's fault: with 2 attempts the row is
    still sent once the episode ends (the pace slows meanwhile, so keep the episode short)."""

    def handler(request, body, n):
        return httpx.Response(429) if n <= 3 else httpx.Response(200, json={})

    gameball = MockGameball(handler)
    retry = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    report = send_fast(df, **send_options(gameball, retry=retry))
    assert report.sent == 1
    assert report.http_statuses == {429: 3, 200: 1}


def test_429s_fail_a_row_only_after_throttled_max():
    gameball = MockGameball(lambda request, body, n: httpx.Response(429))
    retry = RetryPolicy(attempts=1, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    report = send_fast(
        pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}),
        **send_options(gameball, retry=replace(retry, throttled_max=0.5)),
    )
    assert report.failed == 1
    assert len(gameball.requests) > retry.attempts, "429s did not count as attempts"
    assert "throttled_max" in report.failures["gb_error_message"].iloc[0]


def test_a_lower_per_second_limit_is_found_and_reported():
    """Against a Gameball that allows 10/s while the client assumes 100/s, the run slows down
    on its own, sends every row, and, refused at that pace over two windows after the first,
    the report names the limit it settled on (fake time; windows scaled to 2 s). It meets the
    limit about once in 30 s once it found it: 400 rows take about 40 s."""
    gameball = LimitedGameball(per_second=10)
    limits = RateLimits(per_second=100, per_window=1200, window=2.0)
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(400)], "eventName": "e"})
    report = send_fast(df, **send_options(gameball, limits=limits))
    assert report.sent == 400
    assert report.http_statuses.get(429, 0) <= 15, "it slowed down instead of hammering"
    assert report.limits_found is not None
    assert 8 <= report.limits_found.per_second <= 11
    assert report.limits_found.per_window == 1200
    # The words say what was learned, and only that: the window quota was never met.
    found = report.limits_found.per_second
    cli = report.summary(terms=lambda mention: mention.option)  # any terms but Python's
    assert f"it held the run to {found:g}/s; pass --rate {found:g} next time" in cli, cli
    assert "--quota" not in cli
    assert "1,200" not in cli


def test_with_a_fresh_ledger_a_lower_quota_is_learned_in_the_first_window(tmp_path):
    """Its ledger never sent, so the server's window can hold no earlier request of it: the
    run learns the quota of 240 per 30 s from its first full window (fake time), instead of
    waiting that window out probing and meeting the quota again a window later. A ledger that
    sent a second ago says the opposite: the first window may hold that run's requests."""
    gameball = LimitedGameball(per_second=20, per_window=240)
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(556)], "eventName": "e"})
    fresh = send_fast(df, **send_options(gameball, limits=RateLimits(), ledger=tmp_path / "a"))
    assert fresh.sent == 556
    assert fresh.http_statuses.get(429, 0) <= 0.03 * sum(fresh.http_statuses.values())
    gameball = LimitedGameball(per_second=20, per_window=240)
    df["customerId"] = "other-" + df["customerId"]
    recent = send_fast(df, **send_options(gameball, limits=RateLimits(), ledger=tmp_path / "a"))
    assert recent.http_statuses[429] > 0.03 * sum(recent.http_statuses.values())


class SharedKey:
    """Gameball's events limits for one key (arrivals in a sliding second and window, on the
    running loop's clock) shared by the run and a live shop's storefront: a Poisson stream of
    ``rate`` requests a second that are refused, never retried, when the key is over a limit."""

    def __init__(self, rate, *, per_second=100, per_window=1200, window=30.0):
        from collections import deque

        self.rate, self.window = rate, window
        self.limits = ((deque(), per_second, 1.0), (deque(), per_window, window))
        self.shop = {"sent": 0, "refused": 0}
        self.statuses = defaultdict(int)

    def admit(self):
        at = now()
        for times, _, period in self.limits:
            while times and times[0] <= at - period:
                times.popleft()
        if any(len(times) >= limit for times, limit, _ in self.limits):
            return False
        for times, _, _ in self.limits:
            times.append(at)
        return True

    async def storefront(self, seed=0):
        import random

        draw = random.Random(seed)
        while True:
            await asyncio.sleep(draw.expovariate(self.rate))
            self.shop["sent"] += 1
            self.shop["refused"] += not self.admit()

    async def __call__(self, request):
        await asyncio.sleep(0.02)  # one way
        status = 200 if self.admit() else 429
        self.statuses[status] += 1
        await asyncio.sleep(0.02)
        return httpx.Response(status, json={})

    async def send(self, df, **options):
        shop = asyncio.create_task(self.storefront())
        await asyncio.sleep(10)  # the shop was there before the backfill
        client = httpx.AsyncClient(transport=httpx.MockTransport(self))
        started = now()
        try:
            report = await gb_backfill.asend(
                df, api_key=API_KEY, progress=False, retry=FAST_RETRY, client=client, **options
            )
        finally:
            shop.cancel()
        return report, now() - started


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize("reserve", [0.3, 0.0])
def test_reserve_leaves_room_for_a_live_shop_on_the_same_key(reserve, tmp_path):
    """The merchant's storefront sends 8 events a second with the same key while the backfill
    runs (fake time). With reserve=0.3 the backfill keeps to 70% of the limits: the shop's
    requests are not refused, and the backfill takes about the least time 70% of the limits
    allow. With reserve=0 the backfill fills the key's window and the shop meets refusals."""
    from tests import fake_time

    rows = 2500
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(rows)], "eventName": "e"})
    key = SharedKey(8.0)
    report, elapsed = fake_time.run(
        key.send(df, limits=RateLimits(), reserve=reserve, ledger=tmp_path / "l")
    )
    assert report.sent == rows
    refused = key.shop["refused"] / key.shop["sent"]
    if reserve:
        assert refused <= 0.005, key.shop
        share = RateLimits(per_second=70, per_window=840)
        assert elapsed <= minimum_seconds(rows, share) / 0.9
        assert report.limits_found is None, "its share was never refused: nothing to advise"
    else:
        assert refused > 0.05, key.shop


def test_a_gateways_long_retry_after_on_a_per_second_limit_is_waited_not_read_as_a_quota():
    """A gateway answers every refusal of a 5/s limit with Retry-After: 120 (fake time). The
    run waits wait_max (30 s) once, goes on at 5/s, and advises no quota per 30 s: it took
    211 s and advised "5 per 30 s" when the wait was read as a full window."""

    class Gateway(LimitedGameball):
        def _answer(self, request, body, n):
            answer = super()._answer(request, body, n)
            if answer.status_code == 429:
                answer.headers["Retry-After"] = "120"
            return answer

    gameball = Gateway(per_second=5)
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(40)], "eventName": "e"})
    started = []

    async def timed():
        started.append(now())
        report = await asend(df, **send_options(gameball, limits=RateLimits(), retry=RetryPolicy()))
        return report, now() - started[0]

    from tests import fake_time

    report, elapsed = fake_time.run(timed())
    assert report.sent == 40
    assert elapsed < 100
    assert report.limits_found is None or report.limits_found.per_window == 1200


@pytest.mark.slow
def test_a_lower_real_limit_is_found_and_reported():
    """Windows scaled to 2 s: against an emulator that takes 20 per window while the client
    assumes 200, the run learns the quota on its own once the window holds only its own
    requests, sends every row, and, refused at that quota in two windows, the report names
    the limits it settled on."""
    limits = RateLimits(per_second=100, per_window=200, window=2.0)
    retry = RetryPolicy(wait_initial=0.05, wait_jitter=0.05)
    with Emulator(limits=RateLimits(per_second=100, per_window=20, window=2.0)) as emu:
        report = send(
            pd.DataFrame({"customerId": [f"c{n}" for n in range(130)], "eventName": "e"}),
            base_url=emu.base_url, api_key=emu.api_key, limits=limits, retry=retry,
            progress=False,
        )  # fmt: skip
    assert report.sent == 130
    assert report.http_statuses.get(429, 0) <= 30, "it waited instead of hammering"
    assert report.limits_found is not None
    assert report.limits_found.per_window == 20
    assert "limits=report.limits_found" in report.summary()
    assert report.batch_limits_found is None, "events were throttled, not batch job creation"


def test_throttled_batch_job_creation_is_reported_for_the_batch_lane():
    """limits_found names the lane Gameball held back: batch job creation here, so the advice
    is batch_limits=..., not limits=... (fake time; windows scaled to 4 s so that refusals span
    the two windows beyond the first that advice needs)."""
    jobs, created = {}, []

    async def handler(request):
        at = now()
        if request.method == "POST":
            if sum(1 for t in created if t > at - 1.0) >= 2:  # 2 jobs a second
                return httpx.Response(429, json={"message": "Too many requests."})
            created.append(at)
            customers = [i["customerId"] for i in __import__("json").loads(request.content)["body"]]
            jobs[len(jobs) + 1] = customers
            return httpx.Response(200, json={"jobId": len(jobs)})
        job = int(request.url.path.rstrip("/").split("/")[-1])
        done = [{"customerId": c} for c in jobs[job]]
        return httpx.Response(200, json={"status": "completed", "response": {"successful": done}})

    df = pd.DataFrame({"customerId": ["a"] * 80, "eventName": "e"})  # one customer: 80 jobs
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    report = send_fast(
        df, api_key="k", secret_key="s", mode="batch", client=client, progress=False,
        retry=FAST_RETRY, batch_limits=RateLimits(per_second=30, per_window=120, window=4.0),
        limits=RateLimits.unlimited(),  # in force, the events lane would take the busy customer
    )  # fmt: skip
    assert report.sent == 80
    assert report.batch_limits_found is not None
    assert report.batch_limits_found.per_second <= 3
    assert report.limits_found is None
    assert "batch_limits=report.batch_limits_found" in report.summary()


def test_requests_in_flight_follow_the_rate_times_the_round_trip():
    """Little's law: at 100/s and a 50 ms round trip about 5-9 requests need to be in flight;
    concurrency (32) is only the upper bound."""
    state = {"now": 0, "peak": 0}

    async def handler(request):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.05)
        state["now"] -= 1
        return httpx.Response(200, json={})

    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(150)], "eventName": "e"})
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    limits = RateLimits(per_second=100, per_window=0)
    report = send_fast(df, api_key=API_KEY, progress=False, client=client, limits=limits)
    assert report.sent == 150
    assert 3 <= state["peak"] <= 12, state["peak"]


def test_a_row_waiting_to_be_retried_goes_before_rows_not_yet_sent():
    """A trial's 19 rows refused with a 429 showed 'retrying=19' for 40 s, and were sent at the
    end of the run: the worker that freed a place in flight took it for a fresh row each time,
    and the workers waiting with the retried rows never got one."""
    order = []

    async def handler(request):
        (metadata,) = json.loads(request.content)["events"].values()
        order.append(metadata["n"])
        await asyncio.sleep(0.01)
        refused = metadata["n"] == 0 and order.count(0) == 1
        return httpx.Response(503 if refused else 200, json={})

    df = pd.DataFrame(
        {"customerId": [f"c{n}" for n in range(300)], "eventName": "e", "n": range(300)}
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    limits = RateLimits(per_second=100, per_window=0)  # 100/s x 10 ms: 3 in flight, of 16
    report = send_fast(df, api_key=API_KEY, progress=False, client=client, limits=limits,
                       retry=FAST_RETRY, concurrency=16)  # fmt: skip
    assert report.sent == 300
    again = [at for at, n in enumerate(order) if n == 0][1]
    assert again <= 20, f"retried as request {again} of {len(order)}"


def test_the_pace_shown_once_throttled_names_the_window_quota_the_run_keeps(monkeypatch, capsys):
    """A trial's lines said 'pace=87/s' of a run the 1,200 per 30 s window held to 36/s: the
    quota is shown with the rate, the configured one until a lower one is learned."""
    from gb_backfill._engine import progress as _progress

    monkeypatch.setattr(_progress, "interactive", lambda: False)
    monkeypatch.setattr(_progress.Progress, "LINE_EVERY", 0.0)
    limits = RateLimits(per_second=100, per_window=1200, window=2.0)
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(200)], "eventName": "e"})
    report = send_fast(df, **send_options(LimitedGameball(per_second=10), limits=limits,
                                          progress=None))  # fmt: skip
    assert report.sent == 200
    paces = set(re.findall(r"pace=\d+/s(?:, [\d,]+/[\d.]+s)?", capsys.readouterr().err))
    assert paces, "the run was throttled, and said its pace"
    assert all(pace.endswith(", 1,200/2s") for pace in paces), paces
