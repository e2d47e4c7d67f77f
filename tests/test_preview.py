"""The reward preview: what a backfill would award, estimated from Gameball's quotes of a sample.

End-to-end tests go over a real socket to the emulator, with campaigns written here; the truth
they compare with is the emulator's own quote of every row. Pacing is tested on a fake clock.
"""

import asyncio
import json
import re

import httpx
import numpy as np
import pandas as pd
import pytest

import gb_backfill as gb
from gb_backfill import (
    AuthenticationError,
    Campaign,
    Campaigns,
    Condition,
    ConfigError,
    Coupon,
    Emulator,
    Points,
    PointsPerUnit,
    RateLimits,
    RepeatedFailureError,
)
from gb_backfill._config import PREVIEW_LIMITS
from gb_backfill._emulator import DEFAULT_API_KEY
from tests import fake_time
from tests.conftest import API_KEY, FAST_RETRY, SECRET_KEY, MockGameball, sigint_as_in_a_terminal

MAPPING = {"customer_id": "customer", "event_name": "event"}
#: The test's own campaigns: points per unit, a bonus, a coupon, a capped review reward.
CAMPAIGNS = Campaigns(
    campaigns=(
        Campaign(
            id=11,
            name="2 points per 25 spent",
            event="order",
            conditions=(Condition("currency", "==", "USD"),),
            reward=PointsPerUnit(points=2, per=25, of="amount"),
        ),
        Campaign(
            id=12,
            name="Big basket",
            event="order",
            conditions=(Condition("amount", ">=", 250),),
            reward=Points(points=75),
        ),
        Campaign(
            id=13,
            name="Coupon for gifts",
            event="order",
            conditions=(Condition("gift", "==", True),),
            reward=Coupon(coupon_type="FreeShipping", value=0),
        ),
        Campaign(
            id=14,
            name="Stars",
            event="rating",
            conditions=(Condition("stars", ">=", 4),),
            reward=Points(points=15),
            max_times=2,
        ),
        Campaign(id=15, name="Hello", event="joined", reward=Points(points=40), max_times=1),
    ),
    known_events=frozenset({"newsletter"}),
)


def backfill(rows=3000, seed=5):
    """A backfill of a few thousand rows: orders, ratings, sign-ups, a name Gameball does not
    know, and a few broken rows."""
    rng = np.random.default_rng(seed)
    events = rng.choice(
        ["order", "rating", "joined", "newsletter", "mystery_event"],
        rows,
        p=[0.55, 0.2, 0.12, 0.1, 0.03],
    )
    customers = np.char.add("cust-", rng.integers(0, 900, rows).astype(str)).astype(object)
    customers[rng.random(rows) < 0.01] = ""  # invalid: no customer
    return pd.DataFrame(
        {
            "customer": customers,
            "event": events,
            "amount": np.where(events == "order", rng.lognormal(4.2, 0.9, rows).round(2), np.nan),
            "currency": np.where(rng.random(rows) < 0.8, "USD", "EUR"),
            "gift": rng.random(rows) < 0.1,
            "stars": np.where(events == "rating", rng.integers(1, 6, rows), 0),
        }
    )


def truth(emu, df):
    """The exact total points, and the share of valid rows whose customer does not exist."""
    bodies = gb.payloads(df, **MAPPING)
    points = missing = 0
    new = set()
    for body in bodies:
        if emu.customer_exists(body["customerId"]):
            points += emu.quote(body)["totalPoints"]
        else:
            missing += 1
            new.add(body["customerId"])
    return points, missing / len(bodies), len(new)


def emulator(**options):
    return Emulator(campaigns=CAMPAIGNS, existing_share=0.75, **options)


def lifted(emu, **options):
    return {
        "base_url": emu.base_url,
        "api_key": emu.api_key,
        "preview_limits": RateLimits.unlimited(),
        "progress": False,
        **MAPPING,
        **options,
    }


@pytest.fixture(scope="module")
def emu():
    with emulator(preview_limits=RateLimits.unlimited()) as server:
        yield server


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_the_estimate_is_within_a_quarter_of_the_exact_total(emu):
    df = backfill()
    exact, missing_share, new = truth(emu, df)
    report = gb.preview(df, **lifted(emu, sample=300, seed=3))
    assert report.rows == 3000
    assert report.valid == len(gb.payloads(df, **MAPPING))
    assert report.quoted == report.sampled >= 300
    assert abs(report.points.value - exact) <= 0.25 * exact, (report.points, exact)
    assert report.points.low < report.points.value < report.points.high
    # Rows of customers who do not exist count 0 and are reported apart.
    assert abs(report.customers.not_found_share.value - missing_share) <= 0.05
    assert abs(report.customers.estimated_new.value - new) <= 0.3 * new
    assert report.customers.not_found > 0
    assert (
        report.quotes.loc[report.quotes.gb_quote == "customer_not_found", "gb_points"] == 0
    ).all()


def test_an_unknown_event_name_is_reported_and_every_name_is_quoted(emu):
    df = backfill()
    report = gb.preview(df, **lifted(emu, sample=100))
    assert report.unknown_events == ["mystery_event"]
    mystery = report.events["mystery_event"]
    assert mystery.not_found_event
    assert mystery.reasons["EventNotFound"] > 0
    assert mystery.points.value == 0
    # Rare names are quoted too (at least 5 rows each), and the counts add up.
    assert all(event.sampled >= 5 for event in report.events.values())
    assert sum(event.rows for event in report.events.values()) == report.valid
    # In words: the names most rows first, and every interval says what it is.
    said = report.summary().splitlines()
    named = [line.split(":")[0].removeprefix("  event ") for line in said
             if line.startswith("  event ") and not line.startswith("  event names")]  # fmt: skip
    assert named == sorted(report.events, key=lambda name: -report.events[name].rows), named
    share = next(line for line in said if "rows of customers who do not exist" in line)
    assert re.search(r": [\d.]+% \(95%: [\d.]+% to [\d.]+%\)$", share), share
    assert {c.name for c in report.campaigns} >= {"2 points per 25 spent", "Stars", "Hello"}
    assert set(report.coupons) == {"FreeShipping"}


def test_a_preview_sends_nothing_and_awards_nothing(tmp_path):
    df = backfill(rows=400)
    with emulator(preview_limits=RateLimits.unlimited()) as server:
        before = list(tmp_path.iterdir())
        report = gb.preview(df, **lifted(server, sample=50))
        assert report.requests >= report.quoted == 50
        assert server.events().empty
        assert server.awards().empty
        assert not any(k.startswith(("accepted", "batch")) for k in server.counters)
        # It created no customer: a quote for a missing customer is still a 404.
        missing = report.quotes.loc[report.quotes.gb_quote == "customer_not_found", "customer"]
        assert not any(server.customer_exists(c) for c in missing)
    assert list(tmp_path.iterdir()) == before


def test_the_quoted_body_is_the_body_its_send_would_carry():
    """Every type a frame can hold, a filtered frame, optional columns and session tokens."""
    df = pd.DataFrame(
        {
            "customer": ["a", "b", "c", "d", "e", "f", ""],
            "event": ["order", "order", "order", "rating", "order", "joined", "order"],
            "amount": [1.1, 12345678901234.5, np.nan, 3.0, 0.1 + 0.2, 7.0, 1.0],
            "count": pd.array([1, None, 3, 4, 5, 6, 7], dtype="Int64"),
            "when": pd.to_datetime(["2024-01-01T10:00:00+02:00"] * 7),
            "flag": [True, False, None, True, False, True, True],
            "note": ["é ✓", "x", None, '"q"', "", "\n", "z"],
            "email": ["a@x.io", None, None, None, "e@x.io", None, None],
            "token": [None, None, "tok-c", None, None, None, None],
        },
        index=[10, 3, 99, 4, 5, 6, 7],
    ).iloc[::-1]
    options = {
        "api_key": API_KEY, "secret_key": SECRET_KEY, "base_url": "https://api.gameball.co",
        "progress": False, "retry": FAST_RETRY, "customer_id": "customer", "event_name": "event",
        "session_token": "token",
    }  # fmt: skip

    def answer(request, body, n):
        return httpx.Response(200, json={"customerId": body["customerId"], "totalPoints": 1,
                                         "events": []})  # fmt: skip

    quoted, live = MockGameball(answer), MockGameball()
    report = fake_time.run(
        gb.apreview(df, sample=100, client=quoted.client(), preview_limits=RateLimits.unlimited(),
                    **options)
    )  # fmt: skip
    fake_time.run(gb.asend(df, client=live.client(), limits=RateLimits.unlimited(), **options))

    def seen(mock, tail):
        return sorted(
            (r.url.path.replace(tail, ""), r.headers.get("X-GB-TOKEN"), r.content)
            for r, _ in mock.requests
        )

    assert report.sampled == 6  # the invalid row is never quoted
    assert seen(quoted, "/reward-preview") == seen(live, "")
    assert len(live.requests) == 6
    assert sorted(report.quotes.gb_body) == sorted(r.content.decode() for r, _ in live.requests)


def test_a_csv_is_quoted_with_the_bodies_send_path_would_send(tmp_path):
    df = backfill(rows=200)
    path = tmp_path / "export.csv"
    df.to_csv(path, index=False)
    bodies = tmp_path / "bodies.jsonl"
    options = {"api_key": API_KEY, "progress": False, **MAPPING}
    gb.plan_path(path, bodies_path=bodies, **options)
    # Each line holds the body as sent, byte for byte: {"lane": ..., "body": BODY, "path": ...}
    planned = {line[line.index('"body": ') + 8 : line.rindex(', "path"')]
               for line in bodies.read_text(encoding="utf-8").splitlines()}  # fmt: skip
    quoted = MockGameball(
        lambda request, body, n: httpx.Response(200, json={"totalPoints": 0, "events": []})
    )
    report = fake_time.run(gb.apreview_path(path, sample=40, client=quoted.client(), **options))
    sent = [r.content.decode() for r, _ in quoted.requests]
    assert len(sent) == report.sampled
    assert set(sent) <= planned


def test_quotes_keep_the_preview_limits_by_arrival():
    """The default limits, 30/s and 360 per 30 s, on a fake clock: 400 quotes need a second
    window, and no second or 30 s holds more than the limits allow."""
    arrivals = []

    def answer(request, body, n):
        arrivals.append(fake_time.now())
        return httpx.Response(200, json={"totalPoints": 5, "events": []})

    df = backfill(rows=2000)
    mock = MockGameball(answer)
    report = fake_time.run(gb.apreview(df, sample=400, api_key=API_KEY, client=mock.client(),
                                       progress=False, **MAPPING))  # fmt: skip
    assert report.quoted == report.sampled == len(arrivals) >= 400
    times = np.array(sorted(arrivals))
    per_second = max(np.searchsorted(times, t + 1.0, "left") - i for i, t in enumerate(times))
    per_window = max(np.searchsorted(times, t + 30.0, "left") - i for i, t in enumerate(times))
    assert per_second <= PREVIEW_LIMITS.per_second
    assert per_window <= PREVIEW_LIMITS.per_window
    assert times[-1] - times[0] >= 30.0  # the window, not only the rate, held it back


def test_a_reserve_slows_the_quotes_and_the_report_says_so():
    """reserve=0.3: the quotes keep to 70% of the preview's limits (21/s and 252 per 30 s),
    leaving the rest to the other clients of the key; the report shows that pace."""
    arrivals = []

    def answer(request, body, n):
        arrivals.append(fake_time.now())
        return httpx.Response(200, json={"totalPoints": 5, "events": []})

    mock = MockGameball(answer)
    report = fake_time.run(gb.apreview(backfill(rows=2000), sample=300, api_key=API_KEY,
                                       client=mock.client(), progress=False, reserve=0.3,
                                       **MAPPING))  # fmt: skip
    times = np.array(sorted(arrivals))
    per_window = max(np.searchsorted(times, t + 30.0, "left") - i for i, t in enumerate(times))
    assert per_window <= 252
    assert report.pace == RateLimits(per_second=21, per_window=252)
    assert "21/s and 252 per 30 s (30% of each limit left" in report.summary()
    assert report.to_dict()["pace"]["reserve"] == 0.3


def test_429s_are_waited_out_and_use_no_attempt():
    def answer(request, body, n):
        if n % 3 == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"code": 4290})
        return httpx.Response(200, json={"totalPoints": 1, "events": []})

    mock = MockGameball(answer)
    report = fake_time.run(
        gb.apreview(backfill(rows=100), sample=20, api_key=API_KEY, client=mock.client(),
                    retry=gb.RetryPolicy(attempts=1), progress=False, **MAPPING)
    )  # fmt: skip
    assert report.quoted == report.sampled
    assert report.requests > report.sampled


def test_a_timeout_is_asked_again_as_a_quote_changes_nothing():
    def answer(request, body, n):
        if n == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"totalPoints": 2, "events": []})

    mock = MockGameball(answer)
    report = fake_time.run(
        gb.apreview(backfill(rows=50), sample=10, api_key=API_KEY, client=mock.client(),
                    retry=FAST_RETRY, progress=False, **MAPPING)
    )  # fmt: skip
    assert report.quoted == report.sampled
    assert (report.quotes.gb_quote == "quoted").all()


def test_a_wrong_key_stops_after_the_first_401_with_the_report():
    mock = MockGameball(lambda request, body, n: httpx.Response(401, json={"code": 1000}))
    with pytest.raises(AuthenticationError, match="rejected the keys") as caught:
        fake_time.run(gb.apreview(backfill(rows=500), sample=100, api_key="wrong",
                                  client=mock.client(), progress=False, **MAPPING))  # fmt: skip
    assert len(mock.requests) <= 2
    assert caught.value.report.quoted == 0
    assert "wrong" not in str(caught.value)


def test_the_same_failure_on_every_quote_trips_the_breaker():
    mock = MockGameball(lambda request, body, n: httpx.Response(404, text="Not Found"))
    with pytest.raises(RepeatedFailureError, match="reward preview") as caught:
        fake_time.run(gb.apreview(backfill(rows=500), sample=100, api_key=API_KEY,
                                  client=mock.client(), progress=False, **MAPPING))  # fmt: skip
    assert len(mock.requests) < 20
    report = caught.value.report
    assert report.quoted == 0
    assert set(report.quotes.gb_quote) <= {"failed", "not_asked"}
    assert report.points is None


def test_ctrl_c_returns_what_was_quoted_so_far():
    def answer(request, body, n):
        return httpx.Response(200, json={"totalPoints": 3, "events": []})

    async def interrupted():
        mock = MockGameball(answer)
        task = asyncio.ensure_future(
            gb.apreview(backfill(rows=3000), sample=360, api_key=API_KEY, client=mock.client(),
                        progress=False, **MAPPING)
        )  # fmt: skip
        while len(mock.requests) < 40:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(gb.Interrupted) as caught:
            await task
        return caught.value.report, len(mock.requests)

    report, asked = fake_time.run(interrupted())
    assert report.interrupted
    assert 40 <= report.quoted == asked < report.sampled
    assert report.points is not None
    assert report.points.value > 0
    statuses = report.quotes.gb_quote.value_counts()
    assert statuses["quoted"] == report.quoted
    assert statuses["not_asked"] == report.sampled - report.quoted


def kept_files(folder):
    """Every file's bytes; SQLite's shared-memory index and empty WAL, which any reader of a
    ledger makes (the status command too), are not contents."""
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.is_file() and not p.name.endswith(("-shm", "-wal"))
    }


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_ledger_is_only_read_and_rows_it_sent_are_left_out(tmp_path):
    df = backfill(rows=300)
    ledger = tmp_path / "backfill.ledger"
    with emulator(preview_limits=RateLimits.unlimited(), limits=RateLimits.unlimited()) as server:
        first = df.iloc[:120]
        gb.send(first, base_url=server.base_url, api_key=server.api_key, ledger=ledger,
                limits=RateLimits.unlimited(), progress=False,
                failures_path=tmp_path / "f.parquet", **MAPPING)  # fmt: skip
        files = kept_files(tmp_path)
        report = gb.preview(df, ledger=ledger, **lifted(server, sample=100))
        assert kept_files(tmp_path) == files
    sent = len(gb.payloads(first, **MAPPING))
    assert report.skipped == sent
    assert sum(e.rows for e in report.events.values()) == report.valid - sent
    assert (report.quotes.gb_row >= 120).all()


def test_a_ledger_not_made_yet_leaves_nothing_out_and_is_not_created(emu, tmp_path):
    ledger = tmp_path / "first-run.ledger"
    report = gb.preview(backfill(rows=100), ledger=ledger, **lifted(emu, sample=10))
    assert report.skipped == 0
    assert report.quoted == report.sampled >= 10
    assert not list(tmp_path.iterdir())


def test_a_ledger_deleted_beside_what_it_left_is_refused(emu, tmp_path):
    """As a send would refuse it: the rows it knew would look unsent."""
    ledger = tmp_path / "run.ledger"
    (tmp_path / "run.ledger-wal").write_bytes(b"left by a crashed run")
    with pytest.raises(gb.LedgerError, match="rebuild"):
        gb.preview(backfill(rows=20), ledger=ledger, **lifted(emu))
    assert not ledger.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample": 0}, "sample= is a number of rows"),
        ({"sample": 2.5}, "sample= is a number of rows"),
        ({"seed": -1}, "seed= is a whole number"),
        ({"preview_limits": 30}, r"preview_limits= takes gb_backfill.RateLimits\(...\)"),
        ({"mode": "batch"}, "mode"),
    ],
)
def test_bad_arguments_are_one_line_errors_naming_the_fix(options, message):
    with pytest.raises(ConfigError, match=message):
        gb.preview(backfill(rows=10), api_key=API_KEY, **MAPPING, **options)


def test_the_report_shows_and_serializes_without_keys(emu, tmp_path):
    report = gb.preview(backfill(rows=500), **lifted(emu, sample=60))
    data = report.to_dict()
    assert {"rows", "valid", "sampled", "requests", "points", "customers", "events",
            "campaigns", "coupons"} <= set(data)  # fmt: skip
    assert set(data["points"]) == {"estimate", "low", "high"}
    assert {"sampled", "not_found", "not_found_share", "estimated_new"} <= set(data["customers"])
    for event in data["events"].values():
        assert {"rows", "sampled", "reasons", "not_found_event", "points"} <= set(event)
    for campaign in data["campaigns"]:
        assert {"id", "name", "reward_type", "sampled_hits", "estimated_hits",
                "estimated_points"} <= set(campaign)  # fmt: skip
    text = json.dumps(data, allow_nan=False)
    assert DEFAULT_API_KEY not in text
    for shown in (text, report.summary(), report._repr_html_(), repr(report),
                  report.quotes.to_csv()):  # fmt: skip
        assert emu.api_key not in shown
    figure = report.plot()
    assert [axes.get_title() for axes in figure.axes][:2] == [
        "points by event name (95% interval)",
        "reasons in the quotes, by event name",
    ]
    assert "upper bound" in report.summary()
    assert "<table" in report._repr_html_()


def test_the_cli_previews_a_file_and_writes_the_json(emu, tmp_path, capsys, monkeypatch):
    from gb_backfill._cli import main

    path = tmp_path / "export.parquet"
    backfill(rows=800).to_parquet(path)
    monkeypatch.setenv("GAMEBALL_API_KEY", emu.api_key)
    out = tmp_path / "preview.json"
    code = main(["preview", str(path), "--customer-id", "customer", "--event-name", "event",
                 "--base-url", emu.base_url, "--sample", "50", "--seed", "4", "--json", str(out),
                 "--preview-rate", "0", "--preview-quota", "0", "--no-progress"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 1  # the input has invalid rows, as a dry run would say
    assert "mystery_event" in printed.out
    assert "points, whole input" in printed.out
    data = json.loads(out.read_text())
    assert data["sampled"] >= 50
    assert data["events"]["mystery_event"]["not_found_event"]
    assert emu.api_key not in out.read_text()
    assert emu.events().empty


def test_the_cli_exits_2_on_a_rejected_key(emu, tmp_path, capsys, monkeypatch):
    from gb_backfill._cli import main

    path = tmp_path / "export.csv"
    backfill(rows=50).to_csv(path, index=False)
    monkeypatch.setenv("GAMEBALL_API_KEY", "not-the-key")
    code = main(["preview", str(path), "--customer-id", "customer", "--event-name", "event",
                 "--base-url", emu.base_url, "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "rejected the keys" in err
    assert "not-the-key" not in err


@pytest.mark.slow
def test_at_the_default_limits_the_emulator_never_refuses_a_quote():
    """Over a real socket at the real limits (30/s, 360 per 30 s): 400 quotes, none refused."""
    df = backfill(rows=5000)
    with emulator() as server:
        report = gb.preview(df, base_url=server.base_url, api_key=server.api_key, sample=400,
                            progress=False, **MAPPING)  # fmt: skip
        refused = server.counters.get("rate_limited_preview", 0)
    assert report.quoted == report.sampled >= 400
    assert refused == 0
    assert report.http_statuses.keys() <= {200, 404}


@pytest.mark.slow
@pytest.mark.parametrize(("signal_number", "code"), [(2, 130), (15, 143)])
def test_ctrl_c_and_sigterm_print_what_was_quoted_so_far(tmp_path, signal_number, code):
    """The CLI at the real limits, stopped mid-way: it prints the partial preview and exits as
    any stopped run does. SIGTERM works with SIGINT ignored (a background job)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "export.parquet"
    backfill(rows=3000).to_parquet(path)
    with emulator() as server:
        environment = {**os.environ, "GAMEBALL_API_KEY": server.api_key}
        process = subprocess.Popen(
            [sys.executable, "-m", "gb_backfill", "preview", str(path), "--customer-id",
             "customer", "--event-name", "event", "--base-url", server.base_url,
             "--no-progress", "--json", str(tmp_path / "partial.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
            if signal_number == 15 else sigint_as_in_a_terminal,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while (
            server.counters.get("preview_ok", 0) + server.counters.get("preview_not_found", 0) < 60
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        process.send_signal(signal_number)
        out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    last = err.splitlines()[-1]
    assert last.startswith("gb-backfill: "), err
    assert "the estimates above are from the " in last
    assert last.endswith("quotes answered so far; nothing was sent")
    assert "(interrupted)" in out
    partial = json.loads((tmp_path / "partial.json").read_text())
    assert partial["interrupted"]
    assert 60 <= partial["quoted"] < partial["sampled"]


def test_the_interval_holds_the_exact_total_in_at_least_90_of_100_trials():
    """The statistics alone, no network: this file's campaigns quote every row of a backfill
    in process (the emulator's own model), then 100 seeded samples of 300 go through the
    report's estimators. The 95% intervals of the points and of the share of rows whose
    customer does not exist hold the exact figures in at least 90 of them."""
    from datetime import UTC, datetime

    from gb_backfill._preview.forecast import Quote, SampledRow, forecast
    from gb_backfill._preview.sampling import StratifiedSampler
    from gb_backfill._vocabulary import QuoteOutcome

    df = backfill(rows=3000, seed=11)
    bodies = gb.payloads(df, **MAPPING)
    oracle = emulator()  # not started: only its campaigns and its customers are used
    now = datetime(2026, 11, 1, tzinfo=UTC)
    quotes, rows = [], []
    for position, body in enumerate(bodies):
        customer = body["customerId"]
        found = oracle.customer_exists(customer)
        quotes.append(
            Quote(QuoteOutcome.QUOTED, CAMPAIGNS.quote(body, {}, now=now))
            if found
            else Quote(QuoteOutcome.CUSTOMER_NOT_FOUND)
        )
        rows.append(SampledRow(position, customer, next(iter(body["events"])), b"", None, {}))
    exact = sum(q.answer["totalPoints"] for q in quotes if q.answer is not None)
    missing = np.mean([q.outcome == QuoteOutcome.CUSTOMER_NOT_FOUND for q in quotes])
    labels = pd.Series([row.event for row in rows])
    counts = pd.Series([row.customer for row in rows]).value_counts().to_dict()
    covered = shares = 0
    for seed in range(100):
        sampler = StratifiedSampler(size=300, seed=seed)
        sampler.offer(labels, lambda chosen: [rows[int(i)] for i in chosen])
        sample = sampler.sample()
        report = forecast(
            sample, [quotes[row.position] for s in sample.strata for row in s.items],
            rows=len(df), valid=len(rows), skipped=0, requests=sample.size, elapsed=0.0,
            interrupted=False, rows_per_customer=counts, columns=[], http_statuses={},
        )  # fmt: skip
        covered += report.points.low <= exact <= report.points.high
        share = report.customers.not_found_share
        shares += share.low <= missing <= share.high
    assert exact > 0
    assert covered >= 90, covered
    assert shares >= 90, shares
