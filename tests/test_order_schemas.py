"""The emulator's orders against Gameball's OpenAPI request schemas (``tests/openapi_orders.py``).

What the schema refuses, the emulator refuses; what it accepts, the emulator accepts, except
where Gameball's prose is stricter than its schema (an ``orderDate`` in UTC, ``extra`` values
that are strings, totals of at least 0, ids that are not blank): those cases are listed here,
so the difference is stated and tested, not hidden.
"""

import itertools
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gb_backfill import BatchSettings, Emulator, RateLimits
from gb_backfill import _gameball as gameball
from gb_backfill._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY
from gb_backfill._emulator.orders import order_problem
from tests.conftest import examples
from tests.openapi_orders import BATCH_ORDERS, ORDERS, SOURCE, schema, schema_problems

KEYS = {"APIKey": DEFAULT_API_KEY, "SecretKey": DEFAULT_SECRET_KEY}
ORDER = {
    "customerId": "c-1",
    "orderId": "A-1",
    "orderDate": "2024-10-16T08:13:29.290Z",
    "totalPaid": 250.75,
}
_ids = itertools.count()


def fresh(body):
    """``body`` with an order id never used before (the emulator refuses a reused one)."""
    if isinstance(body.get("orderId"), str) and body["orderId"].strip():
        return {**body, "orderId": f"{body['orderId']}-{next(_ids)}"}
    return body


@pytest.fixture(scope="module")
def emu():
    # Unlimited: the limits come before the payload rules, and this is not a test of them.
    unlimited = RateLimits.unlimited()
    with Emulator(batch=BatchSettings(delay=0), orders_limits=unlimited) as running:
        yield running


def ended(emu, job, seconds=10.0):
    """The job's status (the tutorial's shape) once it completed."""
    deadline = time.monotonic() + seconds
    path = f"{emu.base_url}/api/v4/integrations/batch/{job}"
    while (status := httpx.get(path, headers=KEYS).json()).get("status") != "completed":
        assert time.monotonic() < deadline, status
        time.sleep(0.01)
    return status


def send(emu, body):
    return httpx.post(emu.base_url + "/api/v4.0/integrations/orders", json=body, headers=KEYS)


def test_the_fixture_is_gameballs_schema_and_says_where_it_came_from():
    assert SOURCE["repository"] == "https://github.com/gameballers/gameball-docs"
    assert SOURCE["path"] == "api-reference/openapi.json"
    assert len(SOURCE["commit"]) == 40
    assert tuple(schema(ORDERS)["required"]) == gameball.ORDER_REQUIRED_FIELDS
    item = schema(BATCH_ORDERS)["properties"]["body"]["items"]
    assert tuple(item["required"]) == gameball.ORDER_REQUIRED_FIELDS


ACCEPTED = [
    ORDER,
    {**ORDER, "totalPaid": 0},
    {**ORDER, "totalPaid": 100, "orderDate": "2024-10-16T08:13:29+00:00"},
    {**ORDER, "email": "a@b.co", "mobile": "+20100", "guest": True, "channel": "callcenter",
     "cartId": "C1", "totalPrice": 300, "totalDiscount": 50, "totalShipping": 10, "totalTax": 15,
     "extra": {"paymentMethod": "CREDIT CARD"}},
    {**ORDER, "lineItems": [{"productId": "P", "quantity": 2, "price": 100, "sku": "S",
                             "tags": ["a"], "category": ["c"], "weight": 1, "vendor": "v",
                             "collection": ["x"], "title": "t", "taxes": 1, "discount": 5,
                             "extra": {"size": 42, "gift": True}}]},
    {**ORDER, "merchant": {"uniqueId": "M", "name": "n", "branch": {"uniqueId": "B"}},
     "redemption": {"couponCodes": ["D10"]}, "cashbackConfigurations": {"returnWindow": 0}},
    {**ORDER, "somethingNew": {"any": ["thing"]}},  # unknown fields: the schema allows them
]  # fmt: skip

REFUSED = [
    {k: v for k, v in ORDER.items() if k != "orderDate"},
    {**ORDER, "totalPaid": None},
    {**ORDER, "customerId": 7},
    {**ORDER, "orderId": 7},
    {**ORDER, "totalPaid": "250.75"},
    {**ORDER, "totalPaid": False},
    {**ORDER, "orderDate": "2024-10-16"},
    {**ORDER, "orderDate": "2024-02-30T08:13:29Z"},
    {**ORDER, "orderDate": "2024-10-16 08:13"},
    {**ORDER, "orderDate": 1729066409290},
    {**ORDER, "email": None},
    {**ORDER, "guest": "false"},
    {**ORDER, "channel": "shop"},
    {**ORDER, "extra": "paymentMethod=card"},
    {**ORDER, "lineItems": [{"quantity": "2"}]},
    {**ORDER, "lineItems": [{"tags": "a,b"}]},
    {**ORDER, "merchant": {"branch": "B"}},
    {**ORDER, "redemption": {"couponCodes": [10]}},
    {**ORDER, "cashbackConfigurations": {"returnWindow": 7301}},
    {**ORDER, "cashbackConfigurations": {"returnWindow": 1.5}},
    ["not", "an", "object"],
]  # fmt: skip

#: The schema takes these; Gameball's prose (and the emulator) does not.
STRICTER_BY_PROSE = [
    ({**ORDER, "orderDate": "2024-10-16T10:13:29.290+02:00"}, "orderDate"),  # "Must be in UTC"
    ({**ORDER, "extra": {"count": 3}}, "extra.count"),  # extra: string values
    ({**ORDER, "totalPaid": -10}, "totalPaid"),  # amounts: at least 0
    ({**ORDER, "totalPrice": -1}, "totalPrice"),
    ({**ORDER, "customerId": ""}, "customerId"),
    ({**ORDER, "orderId": "  "}, "orderId"),
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_what_the_schema_accepts_the_emulator_accepts(emu, body):
    assert schema_problems(body) == []
    answer = send(emu, fresh(body))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("body", REFUSED)
def test_what_the_schema_refuses_the_emulator_refuses(emu, body):
    assert schema_problems(body) != []
    before = len(emu.orders())
    answer = send(emu, fresh(body) if isinstance(body, dict) else body)
    assert answer.status_code in (400, 422), answer.text
    assert len(emu.orders()) == before


@pytest.mark.parametrize(("body", "named"), STRICTER_BY_PROSE)
def test_where_the_prose_is_stricter_than_the_schema_the_emulator_follows_the_prose(
    emu, body, named
):
    assert schema_problems(body) == []
    answer = send(emu, fresh(body))
    assert (answer.status_code, answer.json()["code"]) == (422, 3003)
    assert named in answer.json()["message"]


# Each field's values, each with whether the schema takes it and whether the prose does.
_ABSENT = object()
_POOLS = {
    "customerId": [("c-1", 1, 1), ("", 1, 0), (5, 0, 0), (None, 0, 0), (_ABSENT, 0, 0)],
    "orderId": [("A-1", 1, 1), (" ", 1, 0), (12, 0, 0), (_ABSENT, 0, 0)],
    "orderDate": [
        ("2024-10-16T08:13:29.290Z", 1, 1), ("2024-10-16T08:13:29+00:00", 1, 1),
        ("2024-10-16T10:13:29+02:00", 1, 0), ("2024-10-16", 0, 0),
        ("2024-02-30T00:00:00Z", 0, 0), (1729066409, 0, 0), (_ABSENT, 0, 0),
    ],
    "totalPaid": [(250.75, 1, 1), (0, 1, 1), (-1, 1, 0), ("5", 0, 0), (True, 0, 0),
                  (_ABSENT, 0, 0)],
    "totalTax": [(_ABSENT, 1, 1), (15, 1, 1), (-2, 1, 0), ("15", 0, 0)],
    "email": [(_ABSENT, 1, 1), ("a@b.co", 1, 1), (None, 0, 0), (3, 0, 0)],
    "guest": [(_ABSENT, 1, 1), (False, 1, 1), ("no", 0, 0)],
    "channel": [(_ABSENT, 1, 1), ("web", 1, 1), ("fax", 0, 0)],
    "extra": [(_ABSENT, 1, 1), ({"a": "b"}, 1, 1), ({"a": 1}, 1, 0), ("x", 0, 0)],
    "lineItems": [(_ABSENT, 1, 1), ([{"productId": "p", "quantity": 2, "tags": ["x"]}], 1, 1),
                  ([{"quantity": "2"}], 0, 0), ({"productId": "p"}, 0, 0)],
    "merchant": [(_ABSENT, 1, 1), ({"uniqueId": "m", "branch": {"name": "b"}}, 1, 1),
                 ({"branch": {"name": 3}}, 0, 0)],
    "cashbackConfigurations": [(_ABSENT, 1, 1), ({"returnWindow": 7}, 1, 1),
                               ({"returnWindow": 7301}, 0, 0), ({"returnWindow": 1.5}, 0, 0)],
}  # fmt: skip


@st.composite
def labelled_orders(draw):
    """An order drawn field by field, with whether the schema and the prose take it."""
    body, schema_ok, prose_ok = {}, True, True
    for name, pool in _POOLS.items():
        value, by_schema, by_prose = draw(st.sampled_from(pool))
        if value is not _ABSENT:
            body[name] = value
        schema_ok, prose_ok = schema_ok and by_schema, prose_ok and by_prose
    return body, schema_ok, prose_ok


@pytest.mark.property
@settings(max_examples=examples(600), deadline=None)
@given(labelled_orders())
def test_the_emulators_rules_are_the_schema_and_the_prose(labelled):
    """Two-sided: the labels are checked against the real schema, and the emulator accepts
    exactly the orders both the schema and the prose take."""
    body, schema_ok, prose_ok = labelled
    assert (schema_problems(body) == []) == bool(schema_ok)
    assert (order_problem(body) is None) == bool(schema_ok and prose_ok)


def test_batch_items_the_schema_refuses_are_listed_as_failed(emu):
    items = [fresh(ORDER), {**fresh(ORDER), "customerId": "c-2", "totalPaid": "9"},
             {"customerId": "c-3", "orderId": fresh(ORDER)["orderId"]}]  # fmt: skip
    body = {"body": items}
    problems = schema_problems(body, BATCH_ORDERS)
    assert {p.split(":")[0] for p in problems} == {"body/1/totalPaid", "body/2"}
    job = httpx.post(emu.base_url + gameball.ORDERS_BATCH_CREATE_PATH, json=body, headers=KEYS)
    assert job.status_code == 200
    status = ended(emu, job.json()["jobId"])
    assert [e["customerId"] for e in status["response"]["successful"]] == ["c-1"]
    assert [e["customerId"] for e in status["response"]["failed"]] == ["c-2", "c-3"]


@pytest.mark.parametrize("body", [{"body": "orders"}, {"body": [1, 2]}, {"body": {}}])
def test_a_batch_body_the_schema_refuses_is_refused_or_every_item_fails(emu, body):
    assert schema_problems(body, BATCH_ORDERS) != []
    job = httpx.post(emu.base_url + gameball.ORDERS_BATCH_CREATE_PATH, json=body, headers=KEYS)
    if job.status_code == 200:  # a list of non-objects: a job whose items all fail
        status = ended(emu, job.json()["jobId"])
        assert status["response"]["successful"] == []
        assert len(status["response"]["failed"]) == len(body["body"])
    else:
        assert job.status_code == 400
