"""The sample's purchases as Gameball orders: each carries an order id, its purchase time and the
total paid, makes a body Gameball's schema and the emulator take, and earns from the sample's
``place_order`` campaigns what the order preview quotes."""

import math
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from gb_backfill import BatchSettings, Campaigns, Emulator, RateLimits
from gb_backfill import _gameball as gameball
from gb_backfill._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY
from gb_backfill._emulator.orders import order_problem
from tests.openapi_orders import BATCH_ORDERS, schema_problems

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
KEYS = {"APIKey": DEFAULT_API_KEY, "SecretKey": DEFAULT_SECRET_KEY}


@pytest.fixture(scope="module")
def purchases():
    history = pd.read_parquet(SAMPLE / "events.parquet")
    return history[history["event_name"] == "purchase_completed"]


def order_of(purchase):
    """A purchase row as an order body, the way a user would map it."""
    return {
        "customerId": purchase.customer_id.strip(),
        "orderId": purchase.order_id,
        "orderDate": purchase.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "totalPaid": purchase.amount,
        "extra": {"currency": purchase.currency, "channel": purchase.channel},
    }


def test_every_purchase_with_a_finite_total_carries_an_order(purchases):
    assert len(purchases) > 10_000
    assert str(purchases["occurred_at"].dt.tz) == "UTC"
    finite = purchases[np.isfinite(purchases["amount"])]
    assert finite["order_id"].notna().all()
    assert finite["order_id"].is_unique, "an order id is never reused"
    assert (finite["amount"] >= 0).all()
    assert finite["currency"].notna().all()
    # The broken ones stay broken the promised way: an infinite amount, and no order id.
    broken = purchases[~np.isfinite(purchases["amount"])]
    assert 0 < len(broken) < 0.01 * len(purchases)
    assert broken["order_id"].isna().any()


def test_the_sample_orders_satisfy_gameballs_schema_and_the_emulators_rules(purchases):
    usable = purchases[np.isfinite(purchases["amount"]) & purchases["customer_id"].notna()]
    usable = usable[usable["customer_id"].str.strip() != ""]
    orders = [order_of(row) for row in usable.itertuples(index=False)]
    assert all(order_problem(order) is None for order in orders)
    assert schema_problems({"body": orders[:1000]}, BATCH_ORDERS) == []


def test_sent_as_orders_they_keep_their_dates_and_earn_what_the_preview_quotes(purchases):
    head = purchases[np.isfinite(purchases["amount"])].head(300)
    head = head[head["customer_id"].notna() & (head["customer_id"].str.strip() != "")]
    orders = [order_of(row) for row in head.itertuples(index=False)]
    campaigns = Campaigns.from_json(SAMPLE / "campaigns.json")
    unlimited = RateLimits.unlimited()
    with Emulator(campaigns=campaigns, existing_share=1.0, orders_limits=unlimited,
                  preview_limits=unlimited, batch=BatchSettings(delay=0)) as emu:  # fmt: skip
        with httpx.Client(base_url=emu.base_url, headers=KEYS) as client:
            expected = 0
            for order in orders[:100]:  # one at a time: quote, then send
                body = {k: order[k] for k in ("customerId", "totalPaid", "extra")}
                quote = client.post(gameball.ORDERS_PREVIEW_PATH.format(version="4.0"), json=body)
                expected += quote.json()["totalPoints"]
                sent = client.post(gameball.ORDERS_PATH.format(version="4.0"), json=order)
                assert sent.status_code == 200
            job = client.post(gameball.ORDERS_BATCH_CREATE_PATH, json={"body": orders[100:]})
            assert job.status_code == 200
        deadline = time.monotonic() + 10
        while len(received := emu.orders()) < len(orders) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(received) == len(orders)
    assert received["order_id"].tolist() == [o["orderId"] for o in orders]
    dates = pd.to_datetime(received["order_date"], utc=True)
    assert (dates.to_numpy() == head["occurred_at"].to_numpy()).all(), "dates kept exactly"
    assert received["points"].head(100).sum() == expected > 0
    # 1 point per 10 paid, and 150 for an EGP order of 3,000 or more.
    big = sum(o["extra"]["currency"] == "EGP" and o["totalPaid"] >= 3000 for o in orders)
    assert received["points"].sum() == sum(math.floor(o["totalPaid"] / 10) for o in orders) + (
        150 * big
    )
