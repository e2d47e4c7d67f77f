"""The bodies gb-backfill sends as orders satisfy Gameball's OpenAPI schemas for ``/orders`` and
``/batch/orders`` (the fixture part A copied from Gameball's docs, see tests/fixtures)."""

import datetime as dt
import json
from pathlib import Path

import httpx
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gb_backfill import RateLimits, payloads
from tests.conftest import examples, send_fast
from tests.openapi_orders import BATCH_ORDERS, ORDERS, schema_problems

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "events.parquet"
MAPPING = {
    "kind": "orders", "customer_id": "customer_id", "order_id": "order_id",
    "order_date": "occurred_at", "total_paid": "amount", "extra": ["currency"],
}  # fmt: skip


def plain(body):
    """A payload as the JSON Gameball reads (Decimals as numbers)."""
    return json.loads(json.dumps(body, default=float))


def test_every_sample_purchase_sent_as_an_order_satisfies_the_orders_schema():
    df = pd.read_parquet(SAMPLE)
    purchases = df[df["event_name"] == "purchase_completed"]
    bodies = payloads(purchases, **MAPPING)
    assert len(bodies) > 10_000
    problems = {i: schema_problems(plain(b)) for i, b in bodies.items()}
    assert {i: p for i, p in problems.items() if p} == {}


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_AMOUNT = st.one_of(st.integers(0, 10**9), st.floats(0, 1e9, allow_nan=False))


@settings(max_examples=examples(200), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "customerId": st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
                "orderId": st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True),
                "orderDate": st.datetimes(
                    dt.datetime(1990, 1, 1), dt.datetime(2024, 1, 1), timezones=st.just(dt.UTC)
                ),
                "totalPaid": _AMOUNT,
                "tax": st.one_of(st.none(), _AMOUNT),
                "channel": st.one_of(st.none(), st.sampled_from(["web", "pos", "mobile"])),
                "note": st.one_of(st.none(), _TEXT),
                "email": st.one_of(st.none(), st.just("a@b.co")),
            }
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_valid_order_body_satisfies_the_orders_schema(rows):
    df = pd.DataFrame(rows)
    df["orderDate"] = pd.to_datetime(df["orderDate"]).dt.floor("ms")
    fields = {"totalTax": "tax", "channel": "channel"}
    bodies = payloads(df, kind="orders", extra=["note"], order_fields=fields)
    assert len(bodies) == len(df)
    for body in bodies:
        assert schema_problems(plain(body), ORDERS) == []


def test_the_batch_jobs_of_orders_satisfy_the_batch_orders_schema():
    posted = []

    def answer(request):
        if request.method == "POST":
            posted.append(json.loads(request.content))
            return httpx.Response(200, json={"jobId": len(posted)})
        items = posted[int(request.url.path.rstrip("/").split("/")[-1]) - 1]["body"]
        good = [{"customerId": item["customerId"]} for item in items]
        return httpx.Response(200, json={"status": "completed", "response": {"successful": good}})

    df = pd.read_parquet(SAMPLE)
    purchases = df[df["event_name"] == "purchase_completed"].iloc[:3000]
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    unlimited = RateLimits.unlimited()
    report = send_fast(purchases, **MAPPING, mode="batch", api_key="k", secret_key="s",
                       batch_limits=unlimited, progress=False, client=client)  # fmt: skip
    assert report.sent > 2800
    assert len(posted) > 1
    for job in posted:
        assert schema_problems(job, BATCH_ORDERS) == []
