"""The Gameball emulator, over a real socket: auth, payload rules, limits, 2001, faults, records."""

import subprocess
import sys
import threading
import time

import httpx
import pytest

import gb_backfill
from gb_backfill import RateLimits
from gb_backfill._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Emulator, Faults

V40 = "/api/v4.0/integrations/events"
V41 = "/api/v4.1/integrations/events"
BODY = {"customerId": "c-1", "events": {"purchase": {"amount": 9.5}}}


def post(emu, body=BODY, path=V40, headers=None, **kw):
    sent = {"APIKey": DEFAULT_API_KEY} if headers is None else headers
    with httpx.Client(base_url=emu.base_url, timeout=kw.pop("timeout", 5)) as client:
        return client.post(path, json=body, headers=sent, **kw)


@pytest.fixture
def emu():
    with Emulator() as running:
        yield running


def test_accepts_an_event_and_records_it(emu):
    response = post(emu, {**BODY, "email": "a@b.co"})
    assert response.status_code == 200
    events = emu.events()
    assert events[["customer_id", "event_name", "email", "api_version"]].values.tolist() == [
        ["c-1", "purchase", "a@b.co", "4.0"]
    ]
    assert events["metadata"][0] == {"amount": 9.5}
    assert emu.counters["accepted"] == 1


def test_several_events_in_one_request_are_several_records(emu):
    body = {"customerId": "c", "events": {"a": {}, "b": {"x": 1}}}
    assert post(emu, body).status_code == 200
    assert emu.events()["event_name"].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("path", "headers", "code"),
    [
        (V40, {}, 1000),
        (V40, {"APIKey": "wrong"}, 1000),
        (V41, {"APIKey": DEFAULT_API_KEY}, 1001),
        (V41, {"APIKey": DEFAULT_API_KEY, "SecretKey": "wrong"}, 1000),
    ],
)
def test_auth_failures(emu, path, headers, code):
    response = post(emu, path=path, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert {"code", "type", "message", "documentationUrl", "requestId"} <= set(response.json())
    assert emu.events().empty


def test_v41_with_secret_or_session_token(emu):
    both = {"APIKey": DEFAULT_API_KEY, "SecretKey": DEFAULT_SECRET_KEY}
    assert post(emu, path=V41, headers=both).status_code == 200
    token = {"APIKey": DEFAULT_API_KEY, "X-GB-TOKEN": "jwe-token"}
    assert post(emu, path=V41, headers=token).status_code == 200
    tokens = emu.events()["session_token"]
    assert tokens.isna().tolist() == [True, False]
    assert tokens[1] == "jwe-token"
    assert emu.events()["api_version"].tolist() == ["4.1", "4.1"]


def test_high_security_needs_the_secret_on_v40():
    with Emulator(high_security=True) as emu:
        assert post(emu).json()["code"] == 1001
        both = {"APIKey": DEFAULT_API_KEY, "SecretKey": DEFAULT_SECRET_KEY}
        assert post(emu, headers=both).status_code == 200


def test_custom_keys():
    with Emulator(api_key="k1", secret_key="s1") as emu:
        assert post(emu).status_code == 401
        assert post(emu, headers={"APIKey": "k1"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"events": {"a": {}}}, 400, 3000),
        ({"customerId": "c", "events": {}}, 400, 3000),
        ({"customerId": "c"}, 400, 3000),
        ({"customerId": "", "events": {"a": {}}}, 422, 3003),
        ({"customerId": 5, "events": {"a": {}}}, 422, 3003),
        ({"customerId": "c", "events": {"a": {"n": {"x": 1}}}}, 422, 3003),
        ({"customerId": "c", "events": {"a": {"n": [1]}}}, 422, 3003),
        ({"customerId": "c", "events": {"a": 5}}, 422, 3003),
        ([1, 2], 400, 3016),
    ],
)
def test_payload_rules(emu, body, status, code):
    response = post(emu, body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert emu.events().empty


def test_non_json_content_type_and_malformed_json(emu):
    headers = {"APIKey": DEFAULT_API_KEY, "Content-Type": "text/plain"}
    response = post(emu, None, headers=headers, content=b"hello")
    assert (response.status_code, response.json()["code"]) == (415, 3013)
    headers = {"APIKey": DEFAULT_API_KEY, "Content-Type": "application/json"}
    response = post(emu, None, headers=headers, content=b"{not json")
    assert (response.status_code, response.json()["code"]) == (400, 3016)


def test_per_second_limit():
    # The premise is eight requests within one second: on a loaded machine a burst can take
    # longer, and then it proves nothing; it is tried again (a bounded number of times).
    for _ in range(5):
        with Emulator(limits=RateLimits(per_second=5, per_window=0), retry_after=True) as emu:
            started = time.monotonic()
            statuses = [post(emu).status_code for _ in range(7)]
            limited = post(emu)
            if time.monotonic() - started > 0.9:
                continue
            assert statuses == [200] * 5 + [429] * 2
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) >= 1
            time.sleep(1.05)
            assert post(emu).status_code == 200
            assert emu.counters["rate_limited"] == 3
            return
    pytest.fail("no burst of eight requests fit in a second in five tries")


def test_each_endpoint_keeps_its_own_rate_limits():
    """One RateLimits per endpoint: events, job creation, status reads and the reward preview
    each count against their own window (long windows, so the test does not race the clock)."""

    def quota(n):
        return RateLimits(per_second=0, per_window=n, window=600)

    keys = {"APIKey": DEFAULT_API_KEY, "SecretKey": DEFAULT_SECRET_KEY}
    job = {"body": [{"customerId": "c", "events": {"e": {}}}]}
    quote = {"customerId": "c", "events": {"e": {}}}
    with (
        Emulator(
            limits=quota(1), batch_limits=quota(2), status_limits=quota(3), preview_limits=quota(4),
            customers=["c"],
        ) as emu,
        httpx.Client(base_url=emu.base_url, headers=keys, timeout=5) as client,
    ):  # fmt: skip
        asked = {
            "events": lambda: client.post(V40, json=BODY),
            "jobs": lambda: client.post("/api/v4.0/integrations/batch/events", json=job),
            "status": lambda: client.get("/api/v4/integrations/batch/1"),
            "preview": lambda: client.post(V40 + "/reward-preview", json=quote),
        }
        refused = {
            name: [ask().status_code == 429 for _ in range(6)] for name, ask in asked.items()
        }
    assert refused == {
        "events": [False] + [True] * 5,
        "jobs": [False] * 2 + [True] * 4,
        "status": [False] * 3 + [True] * 3,
        "preview": [False] * 4 + [True] * 2,
    }
    assert emu.counters["rate_limited_status"] == 3


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_window_quota():
    """The 30-s quota, scaled down: 6 per 1.5 s while 100/s would allow more."""
    with Emulator(limits=RateLimits(per_second=100, per_window=6, window=1.5)) as emu:
        assert [post(emu).status_code for _ in range(8)] == [200] * 6 + [429] * 2
        assert "Retry-After" not in post(emu).headers
        time.sleep(1.6)
        assert post(emu).status_code == 200


def test_a_fixed_retry_after_is_sent_whatever_the_wait():
    """As a gateway in front of an API may: Retry-After: 120 on a refusal of a 5/s limit."""
    with Emulator(limits=RateLimits(per_second=5, per_window=0), retry_after=120) as emu:
        statuses = [post(emu) for _ in range(6)]
        assert [r.status_code for r in statuses] == [200] * 5 + [429]
        assert statuses[-1].headers["Retry-After"] == "120"


def test_a_background_client_shares_the_keys_limits_and_counts_its_refusals():
    """A live shop on the same key, at 40/s on average (Poisson): under a 50/s limit alone it
    is seldom refused; once another client takes the key's whole second, it is refused."""
    with Emulator(limits=RateLimits(per_second=50, per_window=0), background_rate=40.0) as emu:
        deadline = time.monotonic() + 10
        while emu.counters["background_sent"] < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        alone = emu.counters
        assert alone["background_sent"] >= 40
        with httpx.Client(base_url=emu.base_url) as client:
            for _ in range(60):  # the key's whole second, and more
                client.post(V40, json=BODY, headers={"APIKey": DEFAULT_API_KEY})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # its next requests meet the full second
            busy = emu.counters
            if busy["background_rate_limited"] > alone["background_rate_limited"]:
                break
            time.sleep(0.01)
        assert busy["background_rate_limited"] > alone["background_rate_limited"]
        assert busy["rate_limited"] > 0, "the background's requests count for the key too"
    assert emu.events().shape[0] == busy["accepted"], "the background records no event"


def test_the_cli_sets_a_fixed_retry_after_and_a_background_client():
    from gb_backfill._cli import build_parser
    from gb_backfill._cli.emulator import _emulator_from

    parse = build_parser().parse_args
    emulator = _emulator_from(parse(["emulator", "--retry-after", "120", "--background-rate", "8"]))
    assert (emulator.retry_after, emulator.background_rate) == (120.0, 8.0)
    assert _emulator_from(parse(["emulator", "--retry-after"])).retry_after is True
    plain = _emulator_from(parse(["emulator"]))
    assert (plain.retry_after, plain.background_rate) == (False, 0.0)


def test_limits_are_per_api_key():
    with Emulator(limits=RateLimits(per_second=1, per_window=0)) as emu:
        assert post(emu).status_code == 200
        assert post(emu, headers={"APIKey": "other"}).status_code == 401
        assert post(emu).status_code == 429


def test_concurrent_request_for_a_customer_gets_2001():
    with Emulator(faults=Faults(latency=0.4)) as emu:
        results = {}

        def send(name, customer):
            results[name] = post(emu, {"customerId": customer, "events": {"e": {}}})

        first = threading.Thread(target=send, args=("first", "same"))
        first.start()
        time.sleep(0.15)
        send("second", "same")
        send("other", "different")
        first.join()
        assert results["first"].status_code == 200
        assert (results["second"].status_code, results["second"].json()["code"]) == (422, 2001)
        assert results["other"].status_code == 200
        assert emu.counters["concurrent"] == 1


def test_latency_is_added():
    with Emulator(faults=Faults(latency=0.2, jitter=0.1)) as emu:
        start = time.perf_counter()
        post(emu)
        assert time.perf_counter() - start >= 0.2


def test_an_arrival_delay_comes_before_the_limits_count_the_request():
    """A one-way network delay: the request reaches the rate limits late, so a refused one
    waits for it too (``latency`` only delays answers to requests already counted)."""
    faults = Faults(arrival_delay=0.2, arrival_jitter=0.1, seed=3)
    with Emulator(limits=RateLimits(per_second=1, per_window=0), faults=faults) as emu:
        answers = []
        for _ in range(2):
            start = time.perf_counter()
            status = post(emu).status_code
            answers.append((status, time.perf_counter() - start))
    assert [status for status, _ in answers] == [200, 429]
    assert all(0.2 <= took < 0.6 for _, took in answers), answers
    with pytest.raises(ValueError, match="seconds"):
        Faults(arrival_delay=-0.1)


def test_server_errors_come_before_processing():
    with Emulator(faults=Faults(server_errors=1.0)) as emu:
        statuses = {post(emu).status_code for _ in range(20)}
        assert statuses == {500, 503}
        assert emu.events().empty


def test_dropped_connections_are_not_processed():
    with Emulator(faults=Faults(dropped_connections=1.0)) as emu:
        with pytest.raises(httpx.RemoteProtocolError):
            post(emu)
        assert emu.events().empty
        assert emu.counters["dropped"] == 1


def test_lost_responses_are_processed_then_dropped():
    with Emulator(faults=Faults(lost_responses=1.0)) as emu:
        with pytest.raises(httpx.RemoteProtocolError):
            post(emu)
        assert len(emu.events()) == 1
        assert emu.counters["lost_response"] == 1


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_lost_responses_slower_than_the_client():
    with Emulator(faults=Faults(lost_responses=1.0, lost_mode="slow", slow_reply=2.0)) as emu:
        with pytest.raises(httpx.ReadTimeout):
            post(emu, timeout=0.3)
        assert len(emu.events()) == 1
        # The customer is free once processed, though the reply has not gone out: no 2001.
        with pytest.raises(httpx.ReadTimeout):
            post(emu, timeout=0.3)
        assert len(emu.events()) == 2
        assert emu.counters["concurrent"] == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_faults_are_reproducible_with_a_seed(seed):
    faults = Faults(server_errors=0.3, dropped_connections=0.2, lost_responses=0.2, seed=seed)

    def outcomes():
        seen = []
        with Emulator(faults=faults) as emu, httpx.Client(base_url=emu.base_url) as client:
            for n in range(20):
                body = {"customerId": f"c{n}", "events": {"e": {}}}
                try:
                    answer = client.post(V40, json=body, headers={"APIKey": DEFAULT_API_KEY})
                    seen.append(answer.status_code)
                except httpx.TransportError as error:
                    seen.append(type(error).__name__)
            return seen, len(emu.events())

    first, second = outcomes(), outcomes()
    assert first == second
    assert len(set(first[0])) >= 3, "a mix of outcomes"


def test_reset_forgets_everything(emu):
    post(emu)
    emu.reset()
    assert emu.events().empty
    assert not emu.counters


def test_invalid_fault_shares():
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(server_errors=0.8, lost_responses=0.5)


def test_cli_prints_its_url_and_serves_until_stopped():
    process = subprocess.Popen(
        [sys.executable, "-m", "gb_backfill", "emulator", "--port", "0", "--per-second", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Gameball emulator on http://127.0.0.1:")
        url = line.split()[3]
        response = httpx.post(url + V40, json=BODY, headers={"APIKey": DEFAULT_API_KEY})
        assert response.status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_the_cli_emulators_record_is_readable_from_outside(tmp_path):
    """While it runs: GET /_emulator/events; on exit: --record writes a Parquet file."""
    import signal

    import pandas as pd

    from gb_backfill import send

    record = tmp_path / "received.parquet"
    process = subprocess.Popen(
        [sys.executable, "-m", "gb_backfill", "emulator", "--port", "0", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().split()[3]
        df = pd.DataFrame({"customerId": ["a", "b"], "eventName": "purchase", "amount": [1, 2]})
        report = send(df, base_url=url, api_key="emulator-api-key", progress=False)
        assert report.sent == 2
        seen = httpx.get(url + "/_emulator/events", headers={"APIKey": "emulator-api-key"})
        assert seen.status_code == 200
        # Two customers go concurrently: their arrival order is not fixed.
        assert sorted(e["customer_id"] for e in seen.json()["events"]) == ["a", "b"]
        assert seen.json()["counters"]["accepted"] == 2
        assert httpx.get(url + "/_emulator/events").status_code == 401, "keyed like the API"
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert "received 2 events" in out
    written = pd.read_parquet(record).sort_values("customer_id")
    assert written["customer_id"].tolist() == ["a", "b"]
    assert written["metadata"].tolist() == ['{"amount": 1}', '{"amount": 2}']


@pytest.mark.parametrize(
    "make",
    [
        lambda: Faults(server_errors=2.0),
        lambda: Faults(latency=-1),
        lambda: Emulator(limits=gb_backfill.RateLimits(per_second=-1)),
        lambda: Emulator(limits=100),
        lambda: Emulator(status_limits={"per_second": 10}),
        lambda: Emulator(retry_after=-5),
        lambda: Emulator(background_rate=-1.0),
        lambda: gb_backfill.BatchSettings(status_shape="xml"),
        lambda: gb_backfill.BatchSettings(delay=-1),
    ],
)
def test_the_emulators_errors_are_in_the_gameball_error_tree(make):
    with pytest.raises(gb_backfill.ConfigError) as raised:
        make()
    assert isinstance(raised.value, gb_backfill.GameballError)
