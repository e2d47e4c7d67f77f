"""Orders as a kind of row, without a socket: the mapping, the rules, the exact orderDate, the
bodies, and what the orders lanes make of Gameball's answers (httpx.MockTransport)."""

import asyncio
import datetime as dt
import decimal
import json

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gb_backfill import ConfigError, RateLimits, RetryPolicy, ledger_status, payloads, validate
from gb_backfill._cli import build_parser
from gb_backfill._cli.flags import keywords
from tests.conftest import API_KEY, FAST_RETRY, MockGameball, examples, send_fast

ORDERS = {"kind": "orders"}


def orders_frame(n=4):
    return pd.DataFrame(
        {
            "customerId": [f"c{i % 3}" for i in range(n)],
            "orderId": [f"o{i}" for i in range(n)],
            "orderDate": pd.date_range("2024-01-01 10:00:00.123", periods=n, freq="h", tz="UTC"),
            "totalPaid": [10.5 + i for i in range(n)],
        }
    )


def options(gameball, **more):
    return {
        "api_key": API_KEY, "secret_key": "s", "base_url": "https://api.gameball.co",
        "progress": False, "retry": FAST_RETRY, "order_limits": RateLimits.unlimited(),
        "limits": RateLimits.unlimited(), "client": gameball.client(), **ORDERS, **more,
    }  # fmt: skip


# --- the mapping and the options -------------------------------------------------------------


def test_the_order_columns_are_found_by_their_usual_names_and_bodies_carry_the_mapped_ones():
    df = orders_frame(2).assign(store=["Cairo", None], totalTax=[1, 2.5], channel=["web", None])
    fields = {"totalTax": "totalTax", "channel": "channel"}
    bodies = payloads(df, kind="orders", extra=["store"], order_fields=fields).tolist()
    assert bodies[0] == {
        "customerId": "c0", "orderId": "o0", "orderDate": "2024-01-01T10:00:00.123Z",
        "totalPaid": 10.5, "totalTax": 1, "channel": "web", "extra": {"store": "Cairo"},
    }  # fmt: skip
    assert bodies[1] == {
        "customerId": "c1", "orderId": "o1", "orderDate": "2024-01-01T11:00:00.123Z",
        "totalPaid": 11.5, "totalTax": 2.5,
    }  # fmt: skip
    # Optional fields go only where mapped: an export's "channel" is seldom Gameball's.
    assert set(payloads(df, kind="orders").iloc[0]) == {
        "customerId",
        "orderId",
        "orderDate",
        "totalPaid",
    }
    report = validate(df.assign(channel=["ios", "web"]), kind="orders", order_fields=fields)
    assert report.failures["code"].tolist() == ["order_field_type"]


@pytest.mark.parametrize(
    ("keywords", "option"),
    [
        ({"kind": "orders", "event": "purchase"}, "event"),
        ({"kind": "orders", "metadata": ["x"]}, "metadata"),
        ({"order_id": "orderId"}, "order_id"),
        ({"kind": "orders", "orders_from": "purchase"}, "orders_from"),
        ({"kind": "orders", "order_date": "nope"}, "order_date"),
        ({"kind": "order"}, "kind"),
        ({"kind": "orders", "order_fields": {"tax": "x"}}, "order_fields"),
        ({"kind": "orders", "order_fields": {"totalTax": "nope"}}, "order_fields"),
    ],
)
def test_keywords_that_do_not_go_with_orders_are_refused_naming_the_option(keywords, option):
    with pytest.raises(ConfigError) as caught:
        validate(orders_frame().assign(x=1), **keywords)
    assert caught.value.option == option


def test_the_command_line_flags_come_from_the_declaration():
    args = build_parser().parse_args(
        ["send", "x.csv", "--orders", "--order-id", "id", "--order-date", "at",
         "--total-paid", "paid", "--extra", "a,b", "--order-rate", "5",
         "--order-fields", "totalTax=tax", "--order-fields", "channel=ch"]
    )  # fmt: skip
    found = keywords(args, args.flags)
    assert found["kind"] == "orders"
    assert (found["order_id"], found["order_date"], found["total_paid"]) == ("id", "at", "paid")
    assert found["extra"] == ["a", "b"]
    assert found["order_limits"].per_second == 5
    assert found["order_fields"] == {"totalTax": "tax", "channel": "ch"}
    for command in ("validate", "preview"):
        args = build_parser().parse_args([command, "x.csv", "--orders", "--order-id", "id"])
        assert keywords(args, args.flags)["kind"] == "orders"


def test_a_send_of_orders_needs_the_secret_key_as_gameballs_orders_api_does():
    from gb_backfill import send

    for mapped in ({"kind": "orders"}, {"orders_from": "purchase", "event_name": "e"}):
        with pytest.raises(ConfigError) as caught:
            send(orders_frame().assign(e="purchase"), api_key="k", **mapped)
        assert caught.value.option == "secret_key"


# --- the rules -------------------------------------------------------------------------------


def test_each_broken_order_rule_has_its_stable_code():
    df = pd.DataFrame(
        {
            "customerId": ["c1"] * 9,
            "orderId": [None, "o2", "o3", "o4", "o5", "o6", "o7", "o8", " o9"],
            "orderDate": ["2024-01-01", "01/02/2024", "2999-01-01", "2024-01-01T00:00:00.0001Z",
                          None, "2024-01-01", "2024-01-01", "2024-01-01", "2024-01-01"],
            "totalPaid": [1, 1, 1, 1, 1, -1, float("inf"), "12", None],
            "note": ["a", "b", "c", "d", "e", "f", "g", 5, "i"],
        }
    )  # fmt: skip
    report = validate(df, kind="orders", extra=["note"])
    codes = report.failures.groupby("row")["code"].apply(list).to_dict()
    assert codes == {
        0: ["order_id_missing"], 1: ["order_date_invalid"], 2: ["order_date_future"],
        3: ["order_date_too_precise"], 4: ["order_date_missing"], 5: ["order_amount_negative"],
        6: ["order_amount_not_finite"], 7: ["order_amount_type", "extra_not_text"],
        8: ["order_id_whitespace", "total_paid_missing"],
    }  # fmt: skip
    assert report.valid.empty


# --- orderDate, exactly ----------------------------------------------------------------------


def test_every_timestamp_type_and_text_gives_the_same_utc_instant_to_the_millisecond():
    instant = "2024-10-16T08:13:29.290Z"
    cairo = dt.timezone(dt.timedelta(hours=2))
    values = [
        pd.Timestamp("2024-10-16 08:13:29.290", tz="UTC"),
        pd.Timestamp("2024-10-16 10:13:29.290", tz="Europe/Paris").tz_convert("Asia/Tokyo"),
        pd.Timestamp("2024-10-16 08:13:29.290"),  # naive: read as UTC
        dt.datetime(2024, 10, 16, 10, 13, 29, 290000, tzinfo=cairo),
        np.datetime64("2024-10-16T08:13:29.290"),
        "2024-10-16T08:13:29.29Z",
        "2024-10-16 10:13:29.290+02:00",
        "2024-10-16T08:13:29.290000000",
    ]
    for value in values:
        df = pd.DataFrame({"customerId": ["c"], "orderId": ["o"], "orderDate": pd.Series([value],
                          dtype=object), "totalPaid": [1]})  # fmt: skip
        assert payloads(df, **ORDERS).iloc[0]["orderDate"] == instant, value
    typed = [
        pd.Series(pd.to_datetime(["2024-10-16 08:13:29.290"])).astype("datetime64[ms]"),
        pd.Series(pd.to_datetime(["2024-10-16 17:13:29.290"])).dt.tz_localize("Asia/Tokyo"),
        pd.Series(pd.to_datetime(["2024-10-16 08:13:29.290"])).astype("datetime64[s]")
        + pd.Timedelta(0),
    ]
    for column in typed[:2]:
        df = pd.DataFrame({"customerId": ["c"], "orderId": ["o"], "orderDate": column,
                           "totalPaid": [1]})  # fmt: skip
        assert payloads(df, **ORDERS).iloc[0]["orderDate"] == instant
    dates = pd.DataFrame({"customerId": ["c"], "orderId": ["o"], "totalPaid": [1],
                          "orderDate": [dt.date(2024, 10, 16)]})  # fmt: skip
    assert payloads(dates, **ORDERS).iloc[0]["orderDate"] == "2024-10-16T00:00:00.000Z"


@settings(max_examples=examples(300), deadline=None)
@given(
    millis=st.integers(-2_000_000_000_000, 1_700_000_000_000),  # 1906 to 2023
    minutes=st.integers(-14 * 60, 14 * 60),
    how=st.sampled_from(["typed", "aware", "naive", "text", "python"]),
)
def test_the_order_date_is_the_source_instant_whatever_its_zone_and_type(millis, minutes, how):
    instant = pd.Timestamp(millis, unit="ms", tz="UTC")
    zone = dt.timezone(dt.timedelta(minutes=minutes))
    local = instant.tz_convert(zone)
    value = {
        "typed": pd.Series([instant]),
        "aware": pd.Series([local], dtype=object),
        "naive": pd.Series([instant.tz_localize(None)]),
        "text": pd.Series([local.isoformat()], dtype=object),
        "python": pd.Series([local.to_pydatetime()], dtype=object),
    }[how]
    df = pd.DataFrame({"customerId": ["c"], "orderId": ["o"], "totalPaid": [1]})
    df["orderDate"] = value.to_numpy()
    sent = payloads(df, **ORDERS).iloc[0]["orderDate"]
    assert sent.endswith("Z")
    assert len(sent) == len("2024-10-16T08:13:29.290Z")
    assert pd.Timestamp(sent) == instant


# --- the orders lane -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        {"code": 9004, "message": "Transaction ID Already Exists"},
        {"code": 9003, "message": "Transaction Time Already Exists"},
        {"code": 3003, "message": "Order o1 already exists"},
    ],
)
def test_a_duplicate_refusal_is_sent_already_there_never_a_failure(refusal):
    def answer(request, body, n):
        if body["orderId"] == "o1":
            return httpx.Response(422, json=refusal)
        return httpx.Response(200, json={})

    gameball = MockGameball(answer)
    report = send_fast(orders_frame(), **options(gameball))
    assert report.counts["sent"] == 4
    assert report.already_there == 1
    assert "1 of the sent rows are orders Gameball already had" in report.summary()
    assert "orders already there" in report._repr_html_()
    assert {request.url.path for request, _ in gameball.requests} == {
        "/api/v4.0/integrations/orders"
    }


def test_another_422_is_still_a_failure():
    def answer(request, body, n):
        if body["orderId"] == "o1":
            return httpx.Response(422, json={"code": 3003, "message": "customer does not exist"})
        return httpx.Response(200, json={})

    report = send_fast(orders_frame(), **options(MockGameball(answer)))
    assert (report.counts["sent"], report.counts["failed"], report.already_there) == (3, 1, 0)


def test_a_lost_answer_is_retried_until_answered_and_never_left_unknown():
    seen: dict[str, int] = {}

    def answer(request, body, n):
        tries = seen[body["orderId"]] = seen.get(body["orderId"], 0) + 1
        if tries == 1:  # processed, then the answer is lost
            raise httpx.ReadTimeout("lost", request=request)
        return httpx.Response(422, json={"code": 9004, "message": "Transaction ID Already Exists"})

    report = send_fast(orders_frame(), **options(MockGameball(answer)))
    assert report.counts["unknown"] == 0
    assert report.sent == 4
    assert report.already_there == 4
    assert seen == {f"o{i}": 2 for i in range(4)}


def test_lost_answers_are_retried_a_bounded_number_of_times_then_fail_retryable(tmp_path):
    gameball = MockGameball(lambda request, body, n: (_ for _ in ()).throw(
        httpx.ReadTimeout("lost", request=request)))  # fmt: skip
    retry = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.01, wait_jitter=0.001)
    report = send_fast(orders_frame(1), **options(gameball, retry=retry), ledger=tmp_path / "l")
    assert report.counts["failed"] == 1
    assert report.counts["unknown"] == 0
    assert len(gameball.requests) == 3
    assert "timeout" in report.failures["gb_error_code"].tolist()
    assert ledger_status(tmp_path / "l").counts["failed"] == 1
    again = send_fast(orders_frame(1), **options(MockGameball()), ledger=tmp_path / "l")
    assert again.sent == 1, "retryable: a re-run sends it, safely"


def test_the_ledger_knows_an_order_by_its_id_whatever_else_changed(tmp_path):
    gameball = MockGameball()
    first = send_fast(orders_frame(), **options(gameball), ledger=tmp_path / "l")
    assert first.sent == 4
    changed = orders_frame().assign(totalPaid=99.0, orderDate=pd.Timestamp("2023-05-05", tz="UTC"))
    again = send_fast(changed.iloc[::-1], **options(gameball), ledger=tmp_path / "l")
    assert again.counts["skipped"] == 4
    assert len(gameball.requests) == 4


def test_one_order_per_customer_in_flight_and_each_customers_orders_in_input_order():
    flight: dict[str, int] = {}
    worst = []
    arrived = []

    async def answer(request):
        body = json.loads(request.content)
        customer = body["customerId"]
        flight[customer] = flight.get(customer, 0) + 1
        worst.append(flight[customer])
        await asyncio.sleep(0.01)  # fake time
        arrived.append((customer, body["orderId"]))
        flight[customer] -= 1
        return httpx.Response(200, json={})

    df = orders_frame(30)
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    report = send_fast(df, **{**options(MockGameball()), "client": client, "concurrency": 8})
    assert report.sent == 30
    assert max(worst) == 1
    for customer, rows in df.groupby("customerId"):
        assert [o for c, o in arrived if c == customer] == rows["orderId"].tolist()


# --- the batch lane of orders ----------------------------------------------------------------


def test_batch_orders_duplicates_are_sent_and_unlisted_orders_go_in_a_later_job():
    jobs: dict[int, list] = {}
    posted = []

    def answer(request):
        if request.method == "POST":
            assert request.url.path == "/api/v4.0/integrations/batch/orders"
            items = json.loads(request.content)["body"]
            posted.append([item["orderId"] for item in items])
            jobs[len(jobs) + 1] = items
            return httpx.Response(200, json={"jobId": len(jobs)})
        items = jobs[int(request.url.path.rstrip("/").split("/")[-1])]
        good, bad = [], []
        for item in items:
            if item["orderId"] == "o0":
                bad.append({"customerId": item["customerId"], "code": 9004,
                            "message": "Transaction ID Already Exists"})  # fmt: skip
            elif item["orderId"] == "o1" and len(jobs) == 1:
                continue  # the first job forgets o1
            else:
                good.append({"customerId": item["customerId"]})
        response = {"successful": good, "failed": bad}
        return httpx.Response(200, json={"status": "completed", "response": response})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    report = send_fast(orders_frame(3), **{**options(MockGameball()), "client": client,
                                          "mode": "batch"})  # fmt: skip
    assert report.counts == {**report.counts, "sent": 3, "unknown": 0, "failed": 0}
    assert report.already_there == 1
    assert sorted(posted[0]) == ["o0", "o1", "o2"]
    assert posted[1:] == [["o1"]]


def test_a_job_refused_as_a_whole_for_a_duplicate_is_split_to_find_it():
    jobs = []

    def answer(request):
        if request.method == "POST":
            items = json.loads(request.content)["body"]
            if any(item["orderId"] == "o2" for item in items):
                return httpx.Response(422, json={"code": 9004, "message": "exists"})
            jobs.append(items)
            return httpx.Response(200, json={"jobId": len(jobs)})
        items = jobs[int(request.url.path.rstrip("/").split("/")[-1]) - 1]
        good = [{"customerId": item["customerId"]} for item in items]
        return httpx.Response(200, json={"status": "completed", "response": {"successful": good}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    df = orders_frame(3).assign(customerId=["a", "b", "c"])
    report = send_fast(df, **{**options(MockGameball()), "client": client, "mode": "batch"})
    assert (report.sent, report.already_there) == (3, 1)


# --- mixed exports ---------------------------------------------------------------------------


def test_a_mixed_export_sends_purchases_as_orders_and_the_rest_as_events_in_input_order():
    df = pd.DataFrame(
        {
            "customerId": ["c1", "c1", "c2", "c1", "c2"],
            "eventName": ["review", "purchase", "purchase", "signup", "bogus "],
            "rating": [5, None, None, None, None],
            "orderId": [None, "o1", "o2", None, None],
            "orderDate": pd.to_datetime([None, "2024-01-01 10:00", "2024-02-01 10:00", None,
                                         None]),
            "totalPaid": [None, 10.0, 20.0, None, None],
        }
    )  # fmt: skip
    gameball = MockGameball()
    report = send_fast(df, **options(gameball, kind="events", orders_from="purchase"))
    assert report.counts == {**report.counts, "sent": 4, "invalid": 1}
    assert sum(report.counts.values()) == 5
    paths = [(request.url.path.rsplit("/", 1)[-1], body.get("orderId")) for request, body in
             gameball.requests]  # fmt: skip
    c1 = [p for p, (_, body) in zip(paths, gameball.requests, strict=True)
          if body["customerId"] == "c1"]  # fmt: skip
    assert c1 == [("events", None), ("orders", "o1"), ("events", None)]
    orders = {body["orderId"]: body for _, body in gameball.requests if "orderId" in body}
    assert orders["o2"]["orderDate"] == "2024-02-01T10:00:00.000Z"
    assert report.failures["gb_error_code"].tolist() == ["event_name_whitespace"]


def test_decimal_totals_are_sent_with_their_exact_digits():
    df = orders_frame(1).astype({"totalPaid": object})
    df.loc[0, "totalPaid"] = decimal.Decimal("12345678901234567.89")
    body = payloads(df, **ORDERS).iloc[0]
    assert body["totalPaid"] == decimal.Decimal("12345678901234567.89")


def test_orders_a_crashed_run_left_in_flight_are_sent_again_and_found_there(tmp_path):
    from gb_backfill._rows.keys import CONTENT_SCHEME, as_keys, order_hashes
    from gb_backfill._store.ledger import Ledger

    df = orders_frame(4)
    keys = as_keys(order_hashes(df["orderId"].to_numpy(dtype=object)))
    ledger = Ledger(tmp_path / "l")
    ledger.use_keys(CONTENT_SCHEME)
    for row in (1, 2):  # their requests were out when the run was killed
        ledger.begin(keys[row], df["customerId"][row], row)
    ledger.close()

    def answer(request, body, n):
        if body["orderId"] in ("o1", "o2"):  # they had arrived
            return httpx.Response(422, json={"code": 9004, "message": "Transaction ID Exists"})
        return httpx.Response(200, json={})

    gameball = MockGameball(answer)
    report = send_fast(df, **options(gameball), ledger=tmp_path / "l")
    assert report.counts["unknown"] == 0
    assert (report.sent, report.already_there) == (4, 2)
    assert sorted(body["orderId"] for _, body in gameball.requests) == ["o0", "o1", "o2", "o3"]


# --- the dry run -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["events", "batch"])
def test_the_dry_run_plans_the_orders_a_live_run_sends(tmp_path, mode):
    from gb_backfill import plan

    df = pd.DataFrame(
        {
            "customerId": ["c1", "c1", "c2", "c3"],
            "eventName": ["review", "purchase", "purchase", "signup"],
            "orderId": [None, "o1", "o2", None],
            "orderDate": pd.to_datetime([None, "2024-01-01 10:00", "2024-02-01 10:00", None]),
            "totalPaid": [None, 10.0, 20.0, None],
        }
    )
    mapping = {
        "orders_from": "purchase",
        "mode": mode,
        "order_limits": RateLimits(per_second=30, per_window=360),
    }
    planned = plan(df, **mapping, bodies_path=tmp_path / "b.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    orders = [line for line in lines if "orderId" in line["body"]]
    assert [line["body"]["orderId"] for line in orders] == ["o1", "o2"]
    if mode == "events":
        assert {line["path"] for line in orders} == {"/api/v4.0/integrations/orders"}
        assert planned.requests == {"events": 2, "orders": 2}
        assert planned.sending == 4
        assert planned.pace["orders"] == RateLimits(per_second=30, per_window=360)
    else:
        assert {line["path"] for line in orders} == {"/api/v4.0/integrations/batch/orders"}
        assert planned.requests["batch_orders"] == 1
        assert planned.lane_rows["batch_orders"] == 2
    assert planned.event_names == {"place_order": 2, "review": 1, "signup": 1}
    assert orders[1]["body"]["orderDate"] == "2024-02-01T10:00:00.000Z"
    # Its words name each kind of request (orders are no batch jobs in events mode), and each
    # mode's estimate is the same whichever mode was planned.
    said = planned.headline()
    if mode == "events":
        assert said.endswith("in 2 event requests, 2 order requests (events mode)"), said
    else:
        assert "1 batch job of orders" in said, said
        assert "batch orders lane: 2 rows" in planned.summary()
        assert planned.lane_seconds["batch_orders"] > 0
    other = plan(df, **{**mapping, "mode": "batch" if mode == "events" else "events"})
    assert other.estimated_seconds["events"] == planned.estimated_seconds["events"]
    assert "(orders keep their orderDate)" in planned.warning, "events and orders: both said"


def test_an_orders_only_plan_warns_of_what_orders_do():
    from gb_backfill import plan

    planned = plan(orders_frame(), **ORDERS)
    assert planned.warning.startswith("Gameball records orders at their orderDate"), planned.warning
    assert "stamps events" not in planned.summary()


def test_a_csv_of_orders_keeps_ids_as_written_and_dates_to_the_millisecond(tmp_path):
    from gb_backfill import asend_path
    from tests import fake_time

    path = tmp_path / "orders.csv"
    path.write_text(
        "customer,order,at,paid\n"
        "0042,007,2024-03-01 10:00:00.5+02:00,19.90\n"
        "0042,008,2024-03-02T00:00:00Z,5\n"
        "17,009,03/04/2024,1\n",
        encoding="utf-8",
    )
    gameball = MockGameball()
    report = fake_time.run(
        asend_path(path, **options(gameball), customer_id="customer", order_id="order",
                   order_date="at", total_paid="paid", failures_path=tmp_path / "f.parquet")
    )  # fmt: skip
    assert (report.sent, report.invalid) == (2, 1)
    bodies = [body for _, body in gameball.requests]
    assert bodies == [
        {"customerId": "0042", "orderId": "007", "orderDate": "2024-03-01T08:00:00.500Z",
         "totalPaid": 19.9},
        {"customerId": "0042", "orderId": "008", "orderDate": "2024-03-02T00:00:00.000Z",
         "totalPaid": 5},
    ]  # fmt: skip
    assert report.failures["gb_error_code"].tolist() == ["order_date_invalid"]


def test_orders_of_one_customer_are_not_warned_of_as_repeated_rows():
    """Gameball refuses a repeated orderId, so no order is counted twice: a customer's many
    orders are not 'duplicate rows' (a trial saw 289 such warnings, one per repeated customer).
    The events of a mixed export still are."""
    orders = orders_frame(12)
    warned = validate(orders, kind="orders").warnings
    assert "duplicate_rows" not in set(warned["code"]), warned
    # Two sign-ups of c0, alike in every column, beside the orders (built whole: pandas 2.2
    # warns when concatenating all-missing columns).
    mixed = pd.DataFrame({
        "customerId": [*orders["customerId"], "c0", "c0"],
        "orderId": [*orders["orderId"], None, None],
        "orderDate": [*orders["orderDate"], pd.NaT, pd.NaT],
        "totalPaid": [*orders["totalPaid"], None, None],
        "event": ["purchase"] * len(orders) + ["signed_up", "signed_up"],
    })  # fmt: skip
    report = validate(mixed, orders_from="purchase", event_name="event", metadata=[])
    repeats = report.warnings[report.warnings["code"] == "duplicate_rows"]
    assert repeats["count"].tolist() == [1], report.warnings


def test_status_says_unknown_orders_are_sent_again_not_held_for_a_settle(tmp_path):
    """An order whose answer was lost in a crash is sent again by the next run (Gameball
    refuses an orderId it has): status must not tell the user to settle it by hand."""
    from gb_backfill import LedgerReport

    unknown = pd.DataFrame({"gb_key": ["a", "b", "c"], "customer_id": ["c1", "c2", "c3"],
                            "event": ["place_order", "place_order", "signed_up"],
                            "metadata": [{}, {}, {}], "sent_at": [None] * 3,
                            "status": ["in_flight", "unknown", "unknown"]})  # fmt: skip
    report = LedgerReport(path=tmp_path / "l", counts={"sent": 5, "unknown": 2, "in_flight": 1},
                          unknown=unknown)  # fmt: skip
    assert report.next_run["orders_sent_again"] == 2
    assert report.next_run["held_as_unknown"] == 1
    text = report.summary()
    assert "orders sent again: 2 (" in text, text
    assert "none counts twice" in text, text
    assert "rows held as unknown (1)" in text, text
