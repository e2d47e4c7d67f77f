"""Make ``sample_data/events.parquet`` and ``events.csv``: two years of a shop's event history.

The export is what a data team pulls from its warehouse before a backfill, one row per event:

* sign-ups, purchases (amounts in four currencies, items, coupons), reviews (ratings, photos),
  referrals, and two rarer events, from 2024-01-01 to 2025-12-31, oldest first;
* customers with a long tail: most have a handful of events, a few have a hundred or more;
* customer ids as text: the new platform's are plain numbers, the legacy store's are zero-padded
  (``0004217``), which a reader that guesses types turns into ``4217``, another customer;
* about 3% of rows broken the ways real exports break: a missing or blank customer id, an empty
  or missing event name, stray whitespace around an id or an event name, nested metadata, an
  infinite amount, a malformed email or mobile.

Each purchase carries what a Gameball order needs (``shared/docs/gameball-api.md`` §6c): its
``order_id`` (unique), the purchase time ``occurred_at`` (UTC, to the second: the order's
``orderDate``) and ``amount``, the total paid after any coupon (``totalPaid``), with its
``currency`` (a string, for an order's ``extra``). ``campaigns.json`` has campaigns on the
``place_order`` event Gameball makes of every order, on ``totalPaid``.

Both files hold the same rows. Parquet keeps the types (a timestamp, integers with gaps, the
nested values); CSV is text, so a nested value is written as its JSON, which is a valid string.

The output is the same on every run (a fixed seed, no clock): ``python sample_data/make_sample.py``
rewrites both files, and ``--out DIR`` writes them elsewhere.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20261127
CUSTOMERS = 4_000
LEGACY_SHARE = 0.15  # customers from the legacy store, with zero-padded ids
ROWS = 25_000
BROKEN_SHARE = 0.03
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
HERE = Path(__file__).resolve().parent

# What each follow-up event is, and how often (sign-ups come first, once per customer).
EVENT_SHARES = {
    "purchase_completed": 0.70,
    "review_submitted": 0.17,
    "referral_completed": 0.07,
    "newsletter_subscribed": 0.04,
    "profile_completed": 0.02,
}
CURRENCIES = {"EGP": (150, 8_000), "SAR": (20, 900), "AED": (20, 900), "USD": (5, 250)}
COUPONS = ["WELCOME10", "RAMADAN25", "BF2025"]
CHANNELS = ["web", "ios", "android", "store"]
PRODUCTS = [
    "Desk lamp",
    "Linen shirt",
    "Espresso beans 1kg",
    "Running shoes",
    "قميص كتان",  # the shop sells in Arabic too
    "مصباح مكتب",
    "Yoga mat",
    "Water bottle",
]

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("event_name", pa.string()),
        ("occurred_at", pa.timestamp("s", tz="UTC")),
        ("email", pa.string()),
        ("mobile", pa.string()),
        ("channel", pa.string()),
        ("order_id", pa.string()),
        ("amount", pa.float64()),
        ("currency", pa.string()),
        ("items", pa.int32()),
        ("coupon", pa.string()),
        ("first_order", pa.bool_()),
        ("product", pa.string()),
        ("rating", pa.int32()),
        ("has_photo", pa.bool_()),
        ("referred_customer_id", pa.string()),
        ("utm", pa.struct([("source", pa.string()), ("campaign", pa.string())])),
    ]
)


@dataclass(slots=True)
class Customer:
    id: str
    signed_up: datetime
    email: str | None
    mobile: str | None
    channel: str


def _customer(rng: random.Random, number: int) -> Customer:
    legacy = rng.random() < LEGACY_SHARE
    customer_id = f"{number:07d}" if legacy else str(100_000 + number)
    span = (END - START - timedelta(days=30)).total_seconds()
    signed_up = START + timedelta(seconds=int(rng.random() ** 1.4 * span))
    email = f"shopper{customer_id}@example.com" if rng.random() < 0.4 else None
    mobile = f"+2010{rng.randrange(10**7, 10**8)}" if rng.random() < 0.25 else None
    return Customer(customer_id, signed_up, email, mobile, rng.choice(CHANNELS))


def _heavy_tailed(rng: random.Random) -> float:
    """A Pareto draw, drawn again above a bound: a long tail without a shop-sized customer."""
    while (weight := rng.paretovariate(1.5)) > 60:
        pass
    return weight


def _follow_up_counts(rng: random.Random, customers: int, total: int) -> list[int]:
    """How many events after sign-up each customer has: a long (Pareto) tail summing to total."""
    weights = [_heavy_tailed(rng) for _ in range(customers)]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    for pick in rng.choices(range(customers), k=total - sum(counts)):  # what rounding left
        counts[pick] += 1
    return counts


def _event(
    rng: random.Random, name: str, customer: Customer, when: datetime, n: int, *, first: bool
) -> dict[str, Any]:
    """One event row; ``first`` when it is the customer's first of its kind."""
    row: dict[str, Any] = {
        "customer_id": customer.id,
        "event_name": name,
        "occurred_at": when,
        "channel": customer.channel if rng.random() < 0.8 else rng.choice(CHANNELS),
    }
    if name == "signed_up":  # the contact details the customer gave, if any
        row |= {"email": customer.email, "mobile": customer.mobile}
    elif name == "purchase_completed":
        currency = rng.choices(list(CURRENCIES), weights=[6, 2, 1, 1])[0]
        low, high = CURRENCIES[currency]
        row |= {
            "order_id": f"ORD-{2_000_000 + n}",
            "amount": round(low * (high / low) ** rng.random(), 2),
            "currency": currency,
            "items": rng.choices([1, 2, 3, 4, 6], weights=[50, 25, 12, 8, 5])[0],
            "coupon": rng.choice(COUPONS) if rng.random() < 0.15 else None,
            "first_order": first,
        }
    elif name == "review_submitted":
        row |= {
            "product": rng.choice(PRODUCTS),
            "rating": rng.choices([1, 2, 3, 4, 5], weights=[4, 3, 8, 25, 60])[0],
            "has_photo": rng.random() < 0.2,
        }
    elif name == "referral_completed":
        row["referred_customer_id"] = str(100_000 + CUSTOMERS + n)
    return row


def _break(rng: random.Random, row: dict[str, Any]) -> None:
    """Break one row the way a real export does."""
    how = rng.choice(
        [
            "no_customer",
            "blank_customer",
            "padded_customer",
            "no_event",
            "blank_event",
            "padded_event",
            "nested",
            "infinite",
            "bad_email",
            "bad_mobile",
        ]
    )
    if how == "no_customer":
        row["customer_id"] = None
    elif how == "blank_customer":
        row["customer_id"] = "  "
    elif how == "padded_customer":
        row["customer_id"] = f" {row['customer_id']}"
    elif how == "no_event":
        row["event_name"] = None
    elif how == "blank_event":
        row["event_name"] = " "
    elif how == "padded_event":
        row["event_name"] = f"{row['event_name']} "
    elif how == "nested":
        # The marketing tool's attribution, kept as a struct: Gameball takes flat values only.
        row["utm"] = {"source": rng.choice(["newsletter", "instagram"]), "campaign": "spring"}
    elif how == "infinite":
        row |= {"event_name": "purchase_completed", "amount": float(rng.choice(["inf", "-inf"]))}
        row.setdefault("currency", "EGP")
    elif how == "bad_email":
        row["email"] = rng.choice(["shopper at example dot com", "shopper@", "n/a"])
    else:
        row["mobile"] = rng.choice(["call me", "0100-CALL-NOW", "+20"])


def make_rows(seed: int = SEED) -> list[dict[str, Any]]:
    """The sample's rows, oldest first; the same for the same seed."""
    rng = random.Random(seed)
    customers = [_customer(rng, number) for number in range(1, CUSTOMERS + 1)]
    follow_ups = _follow_up_counts(rng, CUSTOMERS, ROWS - CUSTOMERS)
    names, shares = list(EVENT_SHARES), list(EVENT_SHARES.values())
    dated: list[tuple[datetime, Customer, str]] = []
    for customer, count in zip(customers, follow_ups, strict=True):
        dated.append((customer.signed_up, customer, "signed_up"))
        active = (END - customer.signed_up).total_seconds()
        for name in rng.choices(names, weights=shares, k=count):
            when = customer.signed_up + timedelta(seconds=rng.randrange(60, int(active)))
            dated.append((when, customer, name))
    dated.sort(key=lambda item: (item[0], item[1].id))
    seen: set[tuple[str, str]] = set()
    rows = []
    for n, (when, customer, name) in enumerate(dated):
        first = (customer.id, name) not in seen
        seen.add((customer.id, name))
        rows.append(_event(rng, name, customer, when, n, first=first))
    for row in rows:
        if rng.random() < BROKEN_SHARE:
            _break(rng, row)
    return rows


def _csv_text(value: Any) -> str:
    """A value as a warehouse export writes it; CSV has no nested values, so a struct is JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def write(rows: list[dict[str, Any]], out: Path) -> None:
    """Write the rows as ``events.parquet`` and ``events.csv`` in ``out``."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, out / "events.parquet", compression="zstd")
    with (out / "events.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCHEMA.names)
        writer.writerows([_csv_text(value) for value in row.values()] for row in table.to_pylist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="the directory to write to")
    out = parser.parse_args().out
    rows = make_rows()
    write(rows, out)
    print(f"wrote {len(rows):,} rows to {out / 'events.parquet'} and {out / 'events.csv'}")


if __name__ == "__main__":
    main()
