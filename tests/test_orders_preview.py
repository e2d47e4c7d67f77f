"""The reward preview of orders: each sampled order quoted by ``/orders/reward-preview``, its
points (cashback and campaigns), cashback and coupons estimated with the events' sampling and
intervals; the truth is the emulator's own quote of every order."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

import gb_backfill as gb
from gb_backfill import (
    Campaign,
    Campaigns,
    Condition,
    Coupon,
    Emulator,
    OrderSettings,
    Points,
    PointsPerUnit,
    RateLimits,
)
from tests.conftest import examples

CAMPAIGNS = Campaigns(
    campaigns=(
        Campaign(id=21, name="1 point per 10 paid", event="place_order",
                 reward=PointsPerUnit(points=1, per=10, of="totalPaid")),
        Campaign(id=22, name="Big basket", event="place_order",
                 conditions=(Condition("totalPaid", ">=", 300),), reward=Points(points=75)),
        Campaign(id=23, name="Free shipping", event="place_order",
                 conditions=(Condition("totalPaid", ">=", 500),),
                 reward=Coupon(coupon_type="FreeShipping", value=0)),
        Campaign(id=24, name="Stars", event="rating", reward=Points(points=15)),
    ),
)  # fmt: skip
CASHBACK = OrderSettings(cashback=PointsPerUnit(points=2, per=25, of="totalPaid"))
AS_ORDERS = {"order_id": "order", "order_date": "at", "total_paid": "paid", "customer_id": "who"}


def history(rows=2000, seed=3):
    """Orders, with a few ratings to make a mixed export of it."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "who": np.char.add("cust-", rng.integers(0, 700, rows).astype(str)),
            "event": np.where(rng.random(rows) < 0.85, "purchase", "rating"),
            "order": [f"o-{n}" for n in range(rows)],
            "at": pd.Timestamp("2023-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**7, rows), unit="s"),
            "paid": rng.lognormal(4.5, 0.9, rows).round(2),
        }
    )


def emulator(**options):
    return Emulator(campaigns=CAMPAIGNS, orders=CASHBACK, existing_share=0.8, **options)


def order_truth(oracle, bodies):
    """What the emulator quotes for each order (its preview's own answer), and its total."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    quotes = []
    for body in bodies:
        asked = {k: v for k, v in body.items() if k not in ("orderId", "orderDate")}
        quotes.append(oracle.quote_order(asked, now=now))
    exact = sum(q["totalPoints"] for q in quotes if q["customerFound"])
    return quotes, exact


def test_the_orders_preview_quotes_points_cashback_and_coupons_within_their_intervals():
    df = history().query("event == 'purchase'")
    with emulator(preview_limits=RateLimits.unlimited()) as emu:
        report = gb.preview(df, base_url=emu.base_url, api_key=emu.api_key, kind="orders",
                            preview_limits=RateLimits.unlimited(), progress=False,
                            sample=300, concurrency=8, **AS_ORDERS)  # fmt: skip
        quotes, exact = order_truth(emu, gb.payloads(df, kind="orders", **AS_ORDERS))
        asked = emu.counters["order_preview_ok"]
        assert emu.orders().empty, "a preview sends no order"
    assert asked == report.requests == 300
    assert report.points.low <= exact <= report.points.high
    cashback = sum(q["cashback"]["totalPoints"] for q in quotes if q["customerFound"])
    assert report.cashback.low <= cashback <= report.cashback.high
    assert set(report.events) == {"place_order"}
    coupons = sum(q["totalCoupons"] for q in quotes if q["customerFound"])
    assert report.coupons["FreeShipping"].low <= coupons <= report.coupons["FreeShipping"].high
    assert {c.name for c in report.campaigns} >= {"1 point per 10 paid", "Big basket"}
    sent = report.quotes["gb_body"].map(lambda b: "orderDate" in b)
    assert sent.all(), "gb_body is the order a send would carry"
    assert "cashback" in report.to_dict()


def test_a_mixed_export_previews_its_orders_and_its_events():
    df = history(600)
    with emulator(preview_limits=RateLimits.unlimited()) as emu:
        report = gb.preview(df, base_url=emu.base_url, api_key=emu.api_key, event_name="event",
                            orders_from="purchase", preview_limits=RateLimits.unlimited(),
                            progress=False, sample=150, concurrency=8, **AS_ORDERS)  # fmt: skip
        orders, events = emu.counters["order_preview_ok"], emu.counters.get("preview_ok", 0)
    assert set(report.events) == {"purchase", "rating"}
    quotes = report.quotes
    purchases = quotes["gb_event"] == "purchase"
    assert quotes.loc[purchases, "gb_body"].str.contains('"orderId"').all()
    assert not quotes.loc[~purchases, "gb_body"].str.contains('"orderId"').any()
    assert orders == purchases.sum(), "each order quoted by the orders' preview"
    assert events == (~purchases & (quotes["gb_quote"] == "quoted")).sum()
    missing = purchases & (quotes["gb_quote"] == "customer_not_found")
    assert missing.any(), "customerFound: false reads as the events' 404"
    assert report.events["rating"].points.value > 0


@pytest.mark.property
def test_the_orders_interval_holds_the_exact_total_in_at_least_90_of_100_trials():
    """The statistics alone, as the events' twin in test_preview: the emulator quotes every
    order in process, the quotes read as the quote lane reads them, then 100 seeded samples of
    300 go through the report's estimators."""
    from gb_backfill._engine.lanes.quotes import as_event_quote
    from gb_backfill._preview.forecast import Quote, SampledRow, forecast
    from gb_backfill._preview.sampling import StratifiedSampler
    from gb_backfill._vocabulary import QuoteOutcome

    df = history(3000, seed=11).query("event == 'purchase'")
    bodies = gb.payloads(df, kind="orders", **AS_ORDERS)
    answers, exact = order_truth(emulator(), bodies)
    quotes = [
        Quote(QuoteOutcome.QUOTED, as_event_quote(a))
        if a["customerFound"]
        else Quote(QuoteOutcome.CUSTOMER_NOT_FOUND)
        for a in answers
    ]
    rows = [SampledRow(n, b["customerId"], "place_order", b"", None, {}, True)
            for n, b in enumerate(bodies)]  # fmt: skip
    labels = pd.Series([row.event for row in rows])
    counts = pd.Series([row.customer for row in rows]).value_counts().to_dict()
    trials = 100 if examples(100) == 100 else 30
    covered = 0
    for seed in range(trials):
        sampler = StratifiedSampler(size=300, seed=seed)
        sampler.offer(labels, lambda chosen: [rows[int(i)] for i in chosen])
        sample = sampler.sample()
        report = forecast(
            sample, [quotes[row.position] for s in sample.strata for row in s.items],
            rows=len(df), valid=len(rows), skipped=0, requests=sample.size, elapsed=0.0,
            interrupted=False, rows_per_customer=counts, columns=[], http_statuses={},
        )  # fmt: skip
        covered += report.points.low <= exact <= report.points.high
    assert exact > 0
    print(f"the interval held the exact total in {covered} of {trials} trials")
    assert covered >= 0.9 * trials, covered
