"""The emulator's orders, over a real socket: /orders, /batch/orders, /orders/reward-preview, the
duplicate refusal, the Orders limits, faults, the record, and campaigns on totalPaid."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from gb_backfill import (
    BatchSettings,
    Campaign,
    ConfigError,
    Coupon,
    Emulator,
    Faults,
    OrderSettings,
    Points,
    PointsPerUnit,
    RateLimits,
)
from gb_backfill import _gameball as gameball
from gb_backfill._config import ORDERS_LIMITS
from gb_backfill._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY
from gb_backfill._emulator.wire import RateWindows

ORDERS = "/api/v4.0/integrations/orders"
BATCH = "/api/v4.0/integrations/batch/orders"
PREVIEW = "/api/v4.0/integrations/orders/reward-preview"
KEYS = {"APIKey": DEFAULT_API_KEY, "SecretKey": DEFAULT_SECRET_KEY}
ORDER = {
    "customerId": "c-1",
    "orderId": "A-1",
    "orderDate": "2024-10-16T08:13:29.290Z",
    "totalPaid": 250.75,
}
#: 1 point per 10 of totalPaid, and 50 points for a customer's first order.
ON_TOTAL_PAID = [
    Campaign(id=1, name="Per 10", event="place_order",
             reward=PointsPerUnit(points=1, per=10, of="totalPaid")),
    Campaign(id=2, name="First order", event="place_order", reward=Points(points=50),
             max_times=1),
]  # fmt: skip


def post(emu, path, body, headers=KEYS, **kw):
    with httpx.Client(base_url=emu.base_url, timeout=kw.pop("timeout", 5)) as client:
        return client.post(path, json=body, headers=headers, **kw)


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


@pytest.fixture(scope="module")
def shared():
    with Emulator() as running:
        yield running


@pytest.fixture
def emu(shared):
    """A running emulator with the default settings, as new (one per module: fast)."""
    shared.reset()
    shared.set_campaigns(())
    return shared


# --- POST /orders -------------------------------------------------------------------------------


def test_an_order_is_accepted_recorded_and_makes_a_place_order_event(emu):
    order = {**ORDER, "email": "a@b.co", "extra": {"paymentMethod": "card"}, "channel": "web"}
    assert not emu.customer_exists("c-1")
    answer = post(emu, ORDERS, order)
    assert answer.status_code == 200
    assert answer.json() == {
        "customerId": "c-1", "redeemedPoints": 0, "rewardedPoints": 0, "lineItems": [],
    }  # fmt: skip
    orders = emu.orders()
    columns = ["customer_id", "order_id", "order_date", "total_paid", "email"]
    assert orders[columns].values.tolist() == [
        ["c-1", "A-1", "2024-10-16T08:13:29.290Z", 250.75, "a@b.co"]
    ]
    assert orders["order"][0] == order
    assert orders["extra"][0] == {"paymentMethod": "card"}
    assert orders["api_version"][0] == "4.0"
    events = emu.events()
    assert events[["customer_id", "event_name", "email"]].values.tolist() == [
        ["c-1", "place_order", "a@b.co"]
    ]
    assert events["metadata"][0] == {
        "paymentMethod": "card", "totalPaid": 250.75, "channel": "web", "order_id": "A-1",
    }  # fmt: skip
    assert emu.customer_exists("c-1"), "an unknown customer is created"
    assert emu.counters["orders_accepted"] == 1
    assert emu.counters["accepted"] == 0, "orders are counted apart from events"


def test_v41_takes_orders_too_and_both_keys_are_always_needed(emu):
    v41 = ORDERS.replace("v4.0", "v4.1")
    assert post(emu, v41, ORDER).status_code == 200
    assert emu.orders()["api_version"].tolist() == ["4.1"]
    for headers, code in [
        ({"APIKey": DEFAULT_API_KEY}, 1001),  # no SecretKey, even on v4.0
        ({"APIKey": DEFAULT_API_KEY, "X-GB-TOKEN": "t"}, 1001),
        ({**KEYS, "SecretKey": "wrong"}, 1000),
        ({**KEYS, "APIKey": "wrong"}, 1000),
    ]:
        for path in (ORDERS, v41):
            answer = post(emu, path, {**ORDER, "orderId": "B"}, headers=headers)
            assert (answer.status_code, answer.json()["code"]) == (401, code)
    assert len(emu.orders()) == 1


@pytest.mark.parametrize("missing", gameball.ORDER_REQUIRED_FIELDS)
def test_each_required_field_missing_or_null_is_400(emu, missing):
    for body in ({k: v for k, v in ORDER.items() if k != missing}, {**ORDER, missing: None}):
        answer = post(emu, ORDERS, body)
        assert (answer.status_code, answer.json()["code"]) == (400, 3000)
        assert missing in answer.json()["message"]
    assert emu.orders().empty
    assert emu.events().empty


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"orderDate": "2024-10-16T10:13:29.290+02:00"}, "orderDate"),  # not UTC
        ({"orderDate": "2024-10-16T08:13:29.290"}, "orderDate"),  # no zone
        ({"orderDate": "2024-10-16"}, "orderDate"),  # no time
        ({"orderDate": "2024-13-16T08:13:29Z"}, "orderDate"),  # month 13
        ({"orderDate": "16/10/2024 08:13"}, "orderDate"),
        ({"orderDate": 1729066409290}, "orderDate"),  # epoch milliseconds
        ({"totalPaid": "250.75"}, "totalPaid"),
        ({"totalPaid": True}, "totalPaid"),
        ({"totalPaid": -1}, "totalPaid"),
        ({"totalTax": -0.5}, "totalTax"),
        ({"customerId": 17}, "customerId"),
        ({"customerId": "  "}, "customerId"),
        ({"orderId": 17}, "orderId"),
        ({"orderId": ""}, "orderId"),
        ({"extra": {"count": 3}}, "extra.count"),
        ({"extra": ["a"]}, "extra"),
        ({"email": None}, "email"),
        ({"guest": "no"}, "guest"),
        ({"channel": "fax"}, "channel"),
        ({"lineItems": {"productId": "p"}}, "lineItems"),
        ({"lineItems": [{"productId": 5}]}, "lineItems[0].productId"),
        ({"lineItems": [{"tags": ["a", 1]}]}, "lineItems[0].tags[1]"),
        ({"merchant": {"branch": {"name": 3}}}, "merchant.branch.name"),
        ({"cashbackConfigurations": {"returnWindow": 7301}}, "returnWindow"),
    ],
)
def test_a_value_of_the_wrong_kind_is_422_naming_the_field(emu, change, named):
    answer = post(emu, ORDERS, {**ORDER, **change})
    assert (answer.status_code, answer.json()["code"]) == (422, 3003)
    assert named in answer.json()["message"]
    assert emu.orders().empty
    assert emu.counters["orders_bad_request"] == 1


@pytest.mark.parametrize(
    "date",
    ["2024-10-16T08:13:29.290Z", "2024-10-16T08:13:29Z", "2024-10-16T08:13:29.290+00:00",
     "2024-02-29T23:59:59.999999Z"],
)  # fmt: skip
def test_any_utc_iso_8601_date_time_is_taken_as_sent(emu, date):
    assert post(emu, ORDERS, {**ORDER, "orderDate": date}).status_code == 200
    assert emu.orders()["order_date"].tolist() == [date]


def test_every_documented_field_is_taken():
    full = {
        **ORDER, "email": "a@b.co", "mobile": "+201000000000", "totalPrice": 300,
        "totalDiscount": 50, "totalShipping": 10, "totalTax": 15, "guest": False,
        "channel": "pos", "cartId": "CART1", "extra": {"paymentMethod": "CREDIT CARD"},
        "lineItems": [{
            "productId": "P1", "quantity": 2, "price": 100, "sku": "S1", "tags": ["a"],
            "category": ["c"], "weight": 1.5, "vendor": "v", "collection": ["x"], "title": "t",
            "taxes": 5, "discount": 10, "extra": {"size": 42},
        }],
        "redemption": {"pointsHoldReference": "H", "couponsLockReference": "L",
                       "couponCodes": ["D10"]},
        "merchant": {"uniqueId": "M", "name": "Shop", "branch": {"uniqueId": "B", "name": "n"}},
        "cashbackConfigurations": {"returnWindow": 7},
    }  # fmt: skip
    with Emulator() as emu:
        assert post(emu, ORDERS, full).status_code == 200
        assert emu.orders()["order"][0] == full


# --- duplicates ---------------------------------------------------------------------------------


def test_a_reused_order_id_is_refused_with_9004_and_recorded_once(emu):
    assert post(emu, ORDERS, ORDER).status_code == 200
    again = post(emu, ORDERS, {**ORDER, "totalPaid": 1, "customerId": "someone-else"})
    assert again.status_code == 422
    body = again.json()
    assert (body["code"], body["message"]) == (9004, "Transaction ID Already Exists")
    assert gameball.is_duplicate_order(again.status_code, body["code"], body["message"])
    assert len(emu.orders()) == 1
    assert len(emu.events()) == 1
    assert emu.counters["orders_duplicate"] == 1
    # Order ids are case-sensitive: another case is another order.
    assert post(emu, ORDERS, {**ORDER, "orderId": "a-1"}).status_code == 200


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (9003, "Transaction Time Already Exists"),
        (3003, "Order 'A-1' already exists."),  # only the message says so
    ],
)
def test_the_duplicate_answer_can_be_either_documented_code_or_a_message(code, message):
    with Emulator(orders=OrderSettings(duplicate_code=code)) as emu:
        post(emu, ORDERS, ORDER)
        again = post(emu, ORDERS, ORDER)
        assert (again.status_code, again.json()["code"], again.json()["message"]) == (
            422, code, message,
        )  # fmt: skip
        assert gameball.is_duplicate_order(422, code, again.json()["message"])


def test_a_lost_answer_then_the_same_order_again_is_refused_as_already_there():
    with Emulator(faults=Faults(lost_responses=1.0)) as emu:
        with pytest.raises(httpx.RemoteProtocolError):
            post(emu, ORDERS, ORDER)
        assert len(emu.orders()) == 1, "processed, then its answer lost"
        again = post(emu, ORDERS, ORDER)
        assert (again.status_code, again.json()["code"]) == (422, 9004)
        assert len(emu.orders()) == 1
        assert emu.counters["orders_lost_response"] == 1


def test_a_slow_lost_answer_is_processed_too():
    with Emulator(faults=Faults(lost_responses=1.0, lost_mode="slow", slow_reply=0.6)) as emu:
        with pytest.raises(httpx.ReadTimeout):
            post(emu, ORDERS, ORDER, timeout=0.2)
        assert emu.orders()["order_id"].tolist() == ["A-1"]


def test_server_errors_and_dropped_connections_come_before_processing():
    with Emulator(faults=Faults(server_errors=1.0)) as emu:
        answer = post(emu, ORDERS, ORDER)
        assert answer.status_code in (500, 503)
        assert emu.orders().empty
        assert sum(emu.counters[f"orders_server_error_{s}"] for s in (500, 503)) == 1
    with Emulator(faults=Faults(dropped_connections=1.0)) as emu:
        with pytest.raises(httpx.RemoteProtocolError):
            post(emu, ORDERS, ORDER)
        assert emu.orders().empty
        assert emu.counters["orders_dropped"] == 1
        assert post(emu, ORDERS.replace("orders", "events"), {}).status_code == 400


def test_a_second_order_for_a_customer_in_progress_gets_2001():
    with Emulator(faults=Faults(latency=0.3)) as emu:
        answers = []
        slow = threading.Thread(target=lambda: answers.append(post(emu, ORDERS, ORDER)))
        slow.start()
        wait_for(lambda: emu._state.busy)
        second = post(emu, ORDERS, {**ORDER, "orderId": "A-2"})
        slow.join()
        assert (second.status_code, second.json()["code"]) == (422, 2001)
        assert answers[0].status_code == 200
        assert emu.orders()["order_id"].tolist() == ["A-1"]
        assert emu.counters["orders_concurrent"] == 1


def test_faults_on_orders_are_reproducible_with_a_seed():
    faults = Faults(server_errors=0.3, dropped_connections=0.2, lost_responses=0.2, seed=3)

    def outcomes():
        seen = []
        with Emulator(faults=faults) as emu:
            for n in range(12):
                try:
                    seen.append(post(emu, ORDERS, {**ORDER, "orderId": f"o{n}"}).status_code)
                except httpx.TransportError as error:
                    seen.append(type(error).__name__)
            return seen, emu.orders()["order_id"].tolist()

    first, second = outcomes(), outcomes()
    assert first == second
    assert len(set(first[0])) >= 3, "a mix of outcomes"


# --- the Orders limits --------------------------------------------------------------------------


def test_the_default_limits_are_the_documented_orders_limits():
    assert Emulator().orders_limits == ORDERS_LIMITS
    assert (ORDERS_LIMITS.per_second, ORDERS_LIMITS.per_window) == (30, 360)


def test_the_orders_windows_on_a_fake_clock():
    """30 in any second, 360 in any 30 s: counted at given instants, no sleeping."""
    windows = RateWindows()
    kind = ("key", "orders")
    assert [windows.admit(kind, ORDERS_LIMITS, 0.0) for _ in range(30)] == [0.0] * 30
    assert windows.admit(kind, ORDERS_LIMITS, 0.5) == pytest.approx(0.5)  # the 31st in 1 s
    # 30 a second for 11 more seconds: 360 in all by t = 11.x, then the long window binds.
    for second in range(1, 12):
        assert all(windows.admit(kind, ORDERS_LIMITS, second + n / 32) == 0 for n in range(30))
    assert windows.admit(kind, ORDERS_LIMITS, 12.0) == pytest.approx(18.0)
    assert windows.admit(kind, ORDERS_LIMITS, 29.99) == pytest.approx(0.01)
    assert windows.admit(kind, ORDERS_LIMITS, 30.0) == 0.0
    assert windows.admit(("key", "events"), ORDERS_LIMITS, 12.0) == 0.0, "a kind of its own"


def test_orders_have_their_own_limits_over_the_socket():
    """Long windows, so the test does not race the clock."""

    def quota(n):
        return RateLimits(per_second=0, per_window=n, window=600)

    with Emulator(orders_limits=quota(2), limits=quota(1), retry_after=True) as emu:
        codes = [post(emu, ORDERS, {**ORDER, "orderId": f"o{n}"}).status_code for n in range(4)]
        assert codes == [200, 200, 429, 429]
        refused = post(emu, ORDERS, {**ORDER, "orderId": "o9"})
        assert refused.json()["code"] == gameball.TOO_MANY_REQUESTS
        assert int(refused.headers["Retry-After"]) >= 1
        event = {"customerId": "c", "events": {"e": {}}}
        assert post(emu, ORDERS.replace("orders", "events"), event).status_code == 200
        assert emu.counters["rate_limited_orders"] == 3
        assert len(emu.orders()) == 2


def test_order_jobs_and_event_jobs_share_the_batch_limits():
    """Job creation is Gameball's "others" row whatever the job holds (undocumented)."""
    quota = RateLimits(per_second=0, per_window=1, window=600)
    with Emulator(batch_limits=quota, batch=BatchSettings(delay=0)) as emu:
        events_job = {"body": [{"customerId": "c", "events": {"e": {}}}]}
        assert post(emu, BATCH.replace("orders", "events"), events_job).status_code == 200
        assert post(emu, BATCH, {"body": [ORDER]}).status_code == 429
        assert emu.counters["rate_limited_batch"] == 1


def test_a_bad_orders_limits_or_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="orders_limits="):
        Emulator(orders_limits=30)
    with pytest.raises(ConfigError, match="cashback"):
        OrderSettings(cashback=10)
    with pytest.raises(ConfigError, match="duplicate_code"):
        OrderSettings(duplicate_code="9004")


# --- POST /batch/orders -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["tutorial", "openapi"])
def test_a_batch_of_orders_goes_through_the_jobs_in_both_status_shapes(shape):
    with Emulator(batch=BatchSettings(delay=0, status_shape=shape)) as emu:
        post(emu, ORDERS, ORDER)  # A-1 is already there
        items = [
            {**ORDER, "orderId": "A-2", "customerId": "c-2"},
            {**ORDER, "customerId": "c-3"},  # a duplicate of A-1
            {**ORDER, "orderId": "A-4", "customerId": "c-4", "orderDate": "yesterday"},
        ]
        job = post(emu, BATCH, {"body": items}).json()["jobId"]
        path = (
            f"/api/v4/integrations/batch/{job}"
            if shape == "tutorial"
            else f"/api/v4.0/integrations/batches/{job}/status"
        )
        with httpx.Client(base_url=emu.base_url, headers=KEYS) as client:
            wait_for(lambda: client.get(path).json()["status"] == "completed")
            status = client.get(path).json()
    if shape == "tutorial":
        assert status["operation"] == "orders"
        good, bad = status["response"]["successful"], status["response"]["failed"]
    else:
        good, bad = status["results"], status["errors"]
    assert good == [{"customerId": "c-2", "orderId": "A-2", "message": "Order processed"}]
    reasons = {entry["orderId"]: entry.get("error") or entry.get("message") for entry in bad}
    assert reasons["A-1"] == "9004: Transaction ID Already Exists"
    assert reasons["A-4"].startswith("3003: orderDate must be in UTC")
    assert [e["customerId"] for e in bad] == ["c-3", "c-4"]
    orders = emu.orders()
    assert orders[["order_id", "api_version"]].values.tolist() == [["A-1", "4.0"], ["A-2", "batch"]]
    assert emu.events()["event_name"].tolist() == ["place_order"] * 2


def test_a_batch_of_orders_holds_1000_at_most_and_needs_both_keys():
    with Emulator(batch=BatchSettings(delay=0)) as emu:
        items = [{**ORDER, "orderId": f"o{n}", "customerId": f"c{n}"} for n in range(1001)]
        too_many = post(emu, BATCH, {"body": items})
        assert (too_many.status_code, too_many.json()["code"]) == (400, 3000)
        assert "1000" in too_many.json()["message"]
        assert (
            post(emu, BATCH, {"body": items[:2]}, headers={"APIKey": DEFAULT_API_KEY}).status_code
            == 401
        )
        assert post(emu, BATCH, {"body": items[:1000]}).status_code == 200
        wait_for(lambda: len(emu.orders()) == 1000)


def test_batch_item_failures_and_lost_jobs_apply_to_orders_too():
    settings = BatchSettings(delay=0, item_failures=1.0, transient_share=1.0)
    with Emulator(batch=settings) as emu:
        job = post(emu, BATCH, {"body": [ORDER]}).json()["jobId"]
        with httpx.Client(base_url=emu.base_url, headers=KEYS) as client:
            path = f"/api/v4/integrations/batch/{job}"
            wait_for(lambda: client.get(path).json()["status"] == "completed")
            failed = client.get(path).json()["response"]["failed"]
        assert failed[0]["message"].startswith("2001:")
        assert emu.orders().empty


# --- POST /orders/reward-preview and campaigns on totalPaid ---------------------------------------


def test_campaigns_on_place_order_award_points_on_total_paid():
    cashback = OrderSettings(cashback=PointsPerUnit(points=1, per=100, of="totalPaid"))
    with Emulator(campaigns=ON_TOTAL_PAID, orders=cashback) as emu:
        first = post(emu, ORDERS, ORDER)  # 250.75: 25 + 50 first order, cashback 2
        post(emu, ORDERS, {**ORDER, "orderId": "A-2", "totalPaid": 99.99})  # 9, cashback 0
        assert first.json()["rewardedPoints"] == 2
        orders = emu.orders()
        assert orders["campaign_points"].tolist() == [75, 9]
        assert orders["cashback_points"].tolist() == [2, 0]
        assert orders["points"].tolist() == [77, 9]
        assert emu.awards()["points"].tolist() == [75, 9]


def test_the_preview_quotes_exactly_what_a_send_then_earns():
    cashback = OrderSettings(cashback=PointsPerUnit(points=1, per=100, of="totalPaid"))
    with Emulator(campaigns=ON_TOTAL_PAID, orders=cashback, customers=["c-1"]) as emu:
        for n, paid in enumerate([250.75, 99.99, 1000, 0.5]):
            quote_body = {"customerId": "c-1", "totalPaid": paid}
            quoted = post(emu, PREVIEW, quote_body)
            assert quoted.status_code == 200
            assert quoted.json() == emu.quote_order(quote_body), "the in-process oracle agrees"
            assert emu.orders().empty or len(emu.orders()) == n, "a preview records nothing"
            post(emu, ORDERS, {**ORDER, "orderId": f"o{n}", "totalPaid": paid})
            assert emu.orders()["points"].tolist()[-1] == quoted.json()["totalPoints"]
        assert emu.counters["order_preview_ok"] == 4


def test_the_preview_answers_every_documented_field():
    campaigns = [*ON_TOTAL_PAID,
                 Campaign(id=3, name="Gift", event="place_order",
                          reward=Coupon(coupon_type="Percentage", value=10)),
                 Campaign(id=4, name="Reviews", event="review",
                          reward=Points(points=5))]  # fmt: skip
    cashback = OrderSettings(cashback=PointsPerUnit(points=1, per=10, of="totalPaid"))
    with Emulator(campaigns=campaigns, orders=cashback, customers=["c-1"]) as emu:
        answer = post(emu, PREVIEW, {"customerId": "c-1", "totalPaid": 120}).json()
    assert answer["customerId"] == "c-1"
    assert answer["customerFound"] is True
    assert answer["cashback"] == {"totalPoints": 12, "totalScore": 12, "lineItems": []}
    rewards = answer["eventRewards"]
    assert (rewards["eventName"], rewards["valid"], rewards["totalPoints"]) == (
        "place_order", True, 62,
    )  # fmt: skip
    assert [c["campaignId"] for c in rewards["campaigns"]] == [1, 2, 3], "place_order only"
    assert answer["totalPoints"] == 12 + 62
    assert answer["totalCoupons"] == 1


def test_an_unknown_customer_gets_the_cashback_and_no_event_rewards(emu):
    emu.set_campaigns(ON_TOTAL_PAID)
    answer = post(emu, PREVIEW, {"customerId": "new", "totalPaid": 100})
    assert answer.status_code == 200
    assert answer.json()["customerFound"] is False
    assert answer.json()["eventRewards"] is None
    assert answer.json()["totalPoints"] == 0
    assert not emu.customer_exists("new"), "a preview never creates a customer"
    anonymous = post(emu, PREVIEW, {"totalPaid": 100}).json()
    assert (anonymous["customerId"], anonymous["customerFound"]) == (None, False)


def test_place_order_is_known_without_a_campaign(emu):
    post(emu, ORDERS, ORDER)
    rewards = post(emu, PREVIEW, {"customerId": "c-1", "totalPaid": 5}).json()["eventRewards"]
    assert (rewards["valid"], rewards["campaigns"], rewards["totalPoints"]) == (True, [], 0)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"customerId": "c"}, 3000),
        ({"totalPaid": -1}, 3003),
        ({"totalPaid": "5"}, 3003),
        ({"totalPaid": 5, "customerId": "c" * 101}, 3003),
        ({"totalPaid": 5, "lineItems": [{"price": 10, "quantity": 1, "discount": 11}]}, 3003),
        ({"totalPaid": 5, "lineItems": [{"price": -10}]}, 3003),
        ([], 3016),
    ],
)
def test_a_bad_preview_is_400(emu, body, code):
    answer = post(emu, PREVIEW, body)
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    with pytest.raises(ConfigError, match="400"):
        emu.quote_order(body)


def test_the_order_preview_shares_the_previews_limits_and_needs_no_secret_on_v40():
    quota = RateLimits(per_second=0, per_window=2, window=600)
    with Emulator(preview_limits=quota) as emu:
        api_key_only = {"APIKey": DEFAULT_API_KEY}
        assert post(emu, PREVIEW, {"totalPaid": 1}, headers=api_key_only).status_code == 200
        events_preview = {"customerId": "c", "events": {"e": {}}}
        assert post(emu, "/api/v4.0/integrations/events/reward-preview", events_preview,
                    headers=api_key_only).status_code == 404  # fmt: skip
        assert post(emu, PREVIEW, {"totalPaid": 1}, headers=api_key_only).status_code == 429
        v41 = PREVIEW.replace("v4.0", "v4.1")
        assert post(emu, v41, {"totalPaid": 1}, headers=api_key_only).json()["code"] == 1001


# --- the record ---------------------------------------------------------------------------------


def test_orders_are_written_to_parquet_and_shown_while_running(emu, tmp_path):
    post(emu, ORDERS, {**ORDER, "extra": {"k": "v"}})
    path = tmp_path / "orders.parquet"
    assert emu.write_orders(path) == 1
    written = pd.read_parquet(path)
    assert written["order_id"].tolist() == ["A-1"]
    assert written["extra"].tolist() == ['{"k": "v"}']
    assert written["points"].tolist() == [0]
    seen = httpx.get(emu.base_url + "/_emulator/events", headers={"APIKey": DEFAULT_API_KEY})
    assert [o["order_id"] for o in seen.json()["orders"]] == ["A-1"]
    assert [e["event_name"] for e in seen.json()["events"]] == ["place_order"]


def test_reset_forgets_orders_and_their_ids(emu):
    post(emu, ORDERS, ORDER)
    emu.reset()
    assert emu.orders().empty
    assert post(emu, ORDERS, ORDER).status_code == 200, "the id is free again"


def test_the_cli_flags_make_the_orders_settings():
    from gb_backfill._cli import build_parser
    from gb_backfill._cli.emulator import _emulator_from
    from gb_backfill._emulator.record import orders_beside

    argv = ["emulator", "--cashback-per", "10", "--duplicate-code", "9003",
            "--orders-per-second", "5", "--orders-per-window", "50", "--window", "10"]  # fmt: skip
    emulator = _emulator_from(build_parser().parse_args(argv))
    assert emulator.orders_limits == RateLimits(per_second=5, per_window=50, window=10)
    settings = emulator.order_settings
    assert settings.duplicate_code == 9003
    assert settings.cashback_points({"totalPaid": 250.75}) == 25
    assert orders_beside("out/got.parquet") == str(Path("out/got.orders.parquet"))
    assert orders_beside("got") == "got.orders.parquet"
    defaults = _emulator_from(build_parser().parse_args(["emulator"]))
    assert defaults.orders_limits == ORDERS_LIMITS
    assert defaults.order_settings == OrderSettings()


@pytest.mark.slow
def test_the_cli_records_orders_beside_the_events(tmp_path):
    record = tmp_path / "received.parquet"
    process = subprocess.Popen(
        [sys.executable, "-m", "gb_backfill", "emulator", "--port", "0", "--record", str(record),
         "--cashback-per", "10", "--orders-per-second", "1", "--orders-per-window", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        url = process.stdout.readline().split()[3]
        first = httpx.post(url + ORDERS, json=ORDER, headers=KEYS)
        assert first.json()["rewardedPoints"] == 25
        assert httpx.post(url + ORDERS, json=ORDER, headers=KEYS).status_code in (422, 429)
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert "received 1 orders" in out
    orders = pd.read_parquet(tmp_path / "received.orders.parquet")
    assert orders[["order_id", "order_date", "cashback_points"]].values.tolist() == [
        ["A-1", "2024-10-16T08:13:29.290Z", 25]
    ]
    assert pd.read_parquet(record)["event_name"].tolist() == ["place_order"]
