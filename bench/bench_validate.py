"""Validation and payload speed on 1,000,000 synthetic rows, against the naive way, in one run.

The naive way is what a user writes by hand: ``iterrows``, a dict per row, ``json.dumps``. It is
timed on a slice (it would take minutes on all rows) and compared as rows per second.

Targets: validate >= 1M rows/s; validate + payload bytes >= 250k rows/s and >= 10x naive.
Run: python bench/bench_validate.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import pandas as pd

from gb_backfill import validate
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.payloads import encode_rows
from gb_backfill._rows.rules import check_frame


def synthetic(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    customers = np.array([f"cust-{n:06d}" for n in range(rows // 10 + 1)], dtype=object)
    amount = rng.uniform(1, 500, rows).round(2)
    amount[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "customerId": customers[rng.integers(0, len(customers), rows)],
            "eventName": rng.choice(["purchase_completed", "review_submitted", "signed_up"], rows),
            "email": np.where(rng.random(rows) < 0.5, "someone@example.com", None),
            "order_id": [f"ORD-{n}" for n in range(rows)],
            "amount": amount,
            "quantity": rng.integers(1, 10, rows),
            "paid": rng.random(rows) < 0.9,
            "currency": pd.Categorical(rng.choice(["USD", "EGP", "SAR"], rows)),
            "ordered_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 10**8, rows), unit="s"),
        }
    )


def naive(df: pd.DataFrame) -> list[bytes]:
    """What a user writes without a toolkit."""
    bodies = []
    metadata = ["order_id", "amount", "quantity", "paid", "currency", "ordered_at"]
    for _, row in df.iterrows():
        customer = row["customerId"]
        if customer is None or not str(customer).strip() or not row["eventName"]:
            continue
        meta = {}
        for key in metadata:
            value = row[key]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if isinstance(value, pd.Timestamp):
                value = value.isoformat()
            elif isinstance(value, np.generic):
                value = value.item()
            meta[key] = value
        payload = {"customerId": str(customer), "events": {row["eventName"]: meta}}
        if row["email"]:
            payload["email"] = row["email"]
        bodies.append(json.dumps(payload).encode())
    return bodies


def best_of(repeat: int, fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=50_000)
    args = parser.parse_args()
    df = synthetic(args.rows)
    mapping = resolve_mapping(df.columns)

    validate_s, report = best_of(3, lambda: validate(df))

    def with_bytes():
        checked = check_frame(df, mapping)
        return encode_rows(df, checked)

    bytes_s, encoded = best_of(3, with_bytes)
    sample = df.iloc[: args.naive_rows]
    naive_s, _ = best_of(1, lambda: naive(sample))

    assert len(encoded) == len(report.valid)
    assert json.loads(encoded.bodies[0]) == json.loads(naive(df.iloc[:1])[0])

    rates = {
        "validate": args.rows / validate_s,
        "validate+payload bytes": args.rows / bytes_s,
        f"naive iterrows+json.dumps ({args.naive_rows:,} rows)": len(sample) / naive_s,
    }
    print(f"rows: {args.rows:,}  metadata columns: {len(mapping.metadata)}")
    for name, rate in rates.items():
        print(f"  {name:<45} {rate:>12,.0f} rows/s")
    naive_rate = len(sample) / naive_s
    full = rates["validate+payload bytes"]
    print(f"  validate / 1M rows/s target:            {rates['validate'] / 1e6:.2f}x")
    print(f"  validate+bytes / 250k rows/s target:    {full / 250e3:.2f}x")
    print(f"  validate+bytes / naive:                 {full / naive_rate:.1f}x")


if __name__ == "__main__":
    main()
