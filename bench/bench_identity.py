"""The cost of the loose identity (the changed-rows check's keys) in the preparing of chunks.

Each run prepares synthetic rows (check, encode, exact keys) four ways, in one run: without
loose keys (the baseline); with loose keys of event names already folded (``purchase``: one
loose key a row); with names that folding changes (``Purchase``) for a ledger created since
names are folded (one key a row, as folded ones); and for a ledger created before (a second,
former key a row, looked up too). It prints rows/s and each ratio to the baseline. No target
of its own: it says what the loose identity costs.

Run: python bench/bench_identity.py [--rows N] [--repeats N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from gb_backfill._engine.prepare import Preparer
from gb_backfill._options import SendOptions, make_settings
from gb_backfill._rows.mapping import resolve_mapping

CHUNK = 50_000


def synthetic(rows: int, names: list[str], seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"cust-{n:06d}" for n in rng.integers(0, rows // 10 + 1, rows)],
            "event_name": rng.choice(names, rows),
            "amount": rng.uniform(1, 500, rows).round(2),
            "coupon": rng.choice(["", "SPRING", "WELCOME10"], rows),
            "occurred_at": pd.date_range("2024-01-01", periods=rows, freq="min", tz="UTC"),
        }
    )


def prepare_all(df: pd.DataFrame, *, loose: bool, former: bool) -> float:
    settings = make_settings(SendOptions(), dry_run=True)
    preparer = Preparer(settings, resolve_mapping(df.columns), loose=loose, former=former)
    start = time.perf_counter()
    try:
        for offset in range(0, len(df), CHUNK):
            preparer.prepare(df.iloc[offset : offset + CHUNK].reset_index(drop=True), offset)
    finally:
        preparer.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folded = synthetic(args.rows, ["purchase", "review"])
    unfolded = synthetic(args.rows, ["Purchase", "Review"])
    legs = {
        "no loose keys (baseline)": (folded, False, False),
        "loose keys, folded names": (folded, True, True),
        "unfolded names, a new ledger": (unfolded, True, False),
        "unfolded names, an older ledger": (unfolded, True, True),
    }
    best = {name: float("inf") for name in legs}
    for _ in range(args.repeats):  # alternate the legs, so drift hits them alike
        for name, (df, loose, former) in legs.items():
            best[name] = min(best[name], prepare_all(df, loose=loose, former=former))
    base = best["no loose keys (baseline)"]
    print(f"preparing {args.rows:,} rows in chunks of {CHUNK:,}, best of {args.repeats}:")
    for name, seconds in best.items():
        print(f"  {name:36} {args.rows / seconds:10,.0f} rows/s  x{seconds / base:.2f} the time")


if __name__ == "__main__":
    main()
