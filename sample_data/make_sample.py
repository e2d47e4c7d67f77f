"""Make sample_data/events.csv: a realistic export of historical purchases, reviews and sign-ups.

About 3% of the rows are broken the ways real exports are: a missing or blank customer id, a
missing event name, an infinite amount, a malformed email or mobile. The output is the same on
every run (fixed seed). Run: python sample_data/make_sample.py
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

ROWS = 3_000
CUSTOMERS = 600
SEED = 20261126
OUT = Path(__file__).with_name("events.csv")
COLUMNS = [
    "customer_id",
    "event_name",
    "email",
    "mobile",
    "occurred_at",
    "order_id",
    "amount",
    "currency",
    "product_id",
    "rating",
    "channel",
    "first_order",
]
BREAKAGES = ["no_customer", "blank_customer", "no_event", "inf_amount", "bad_email", "bad_mobile"]


def main() -> None:
    rng = random.Random(SEED)
    start = datetime(2024, 1, 1, 8, 0, 0)
    customers = [f"cust-{n:05d}" for n in range(1, CUSTOMERS + 1)]
    signed_up: set[str] = set()
    rows = []
    for n in range(ROWS):
        customer = rng.choice(customers)
        when = start + timedelta(minutes=n * 173 + rng.randrange(170))
        row = dict.fromkeys(COLUMNS, "")
        row["customer_id"] = customer
        row["occurred_at"] = when.isoformat()
        if customer not in signed_up:
            signed_up.add(customer)
            row["event_name"] = "signed_up"
            row["channel"] = rng.choice(["web", "ios", "android", "store"])
            row["email"] = f"{customer.replace('-', '.')}@example.com"
            row["mobile"] = f"+2010{rng.randrange(10**7, 10**8)}"
        elif rng.random() < 0.7:
            row["event_name"] = "purchase_completed"
            row["order_id"] = f"ORD-{100000 + n}"
            row["amount"] = f"{rng.uniform(5, 500):.2f}"
            row["currency"] = rng.choice(["USD", "EGP", "SAR"])
            row["channel"] = rng.choice(["web", "ios", "android", "store"])
            row["first_order"] = rng.random() < 0.1
        else:
            row["event_name"] = "review_submitted"
            row["product_id"] = f"P-{rng.randrange(1, 400)}"
            row["rating"] = rng.choice([1, 2, 3, 4, 5, 5, 4])
        if rng.random() < 0.03:
            breakage = rng.choice(BREAKAGES)
            if breakage == "no_customer":
                row["customer_id"] = ""
            elif breakage == "blank_customer":
                row["customer_id"] = "   "
            elif breakage == "no_event":
                row["event_name"] = ""
            elif breakage == "inf_amount":
                row["event_name"], row["amount"] = "purchase_completed", "inf"
            elif breakage == "bad_email":
                row["email"] = f"{customer} at example dot com"
            else:
                row["mobile"] = "call me"
        rows.append(row)
    with OUT.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows):,} rows to {OUT}")


if __name__ == "__main__":
    main()
