"""A million events in batch mode against the emulator, next to the least time its limits allow.

The emulator runs in its own process (``gb-backfill emulator``) with Gameball's batch limits as
the client assumes them (30 job creations per second, 360 per 30 s; status reads at 100/s and
1,200 per 30 s) and jobs that take ``--delay`` seconds to process. The input: 1,000,000 events
of 250,000 customers with a long tail (the busiest with about 50 events), rows shuffled.

Baseline, in the same run: the theoretical minimum for 1,000 jobs at those limits (about 69 s),
and what the events lane would need for the same events at the events limits (about 25,000 s).
Targets: within 1.5 times the minimum, under 2 minutes, and the client's peak memory bounded.

Run: python bench/bench_batch.py [--events N] [--customers N] [--delay SECONDS]
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd


def history(events: int, customers: int, busiest: int, seed: int = 7) -> pd.DataFrame:
    """``events`` rows over ``customers`` with a long tail: counts ~ c / sqrt(rank), capped."""
    rank = np.arange(1, customers + 1)
    low, high = 0.0, float(events)
    for _ in range(60):  # find c so that the capped counts add up to `events`
        scale = (low + high) / 2
        total = np.clip(np.floor(scale / np.sqrt(rank)), 1, busiest).sum()
        low, high = (scale, high) if total < events else (low, scale)
    counts = np.clip(np.floor(high / np.sqrt(rank)), 1, busiest).astype(np.int64)
    who = np.repeat(rank, counts)[:events]
    rng = np.random.default_rng(seed)
    who = rng.permutation(who)
    return pd.DataFrame(
        {
            "customerId": np.char.add("cust-", who.astype(str)),
            "eventName": rng.choice(["purchase_completed", "review_submitted"], len(who)),
            "amount": rng.uniform(1, 500, len(who)).round(2),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=250_000)
    parser.add_argument("--busiest", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.5, help="job processing time, seconds")
    args = parser.parse_args()

    import gb_backfill as gb
    from gb_backfill._config import BATCH_LIMITS
    from gb_backfill._plan import minimum_seconds

    df = history(args.events, args.customers, args.busiest)
    counts = df["customerId"].value_counts()
    print(
        f"{len(df):,} events, {len(counts):,} customers, busiest {counts.iloc[0]} events, "
        f"median {int(counts.median())}"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gb_backfill", "emulator", "--port", "0",
         "--batch-delay", str(args.delay), "--per-second", "0", "--per-window", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        url = server.stdout.readline().split()[3]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        report = gb.send(
            df,
            base_url=url,
            api_key="emulator-api-key",
            secret_key="emulator-secret-key",
            mode="batch",
            progress=False,
        )
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        server.terminate()
        server.wait(timeout=30)
    jobs = math.ceil(len(df) / 1000)
    least = minimum_seconds(jobs, BATCH_LIMITS)
    one_by_one = minimum_seconds(len(df), gb.RateLimits())
    print(report)
    print(f"  requests: {report.requests:,} ({report.http_statuses})")
    print(f"  batch mode: {elapsed:,.1f} s for {report.sent:,} events")
    print(f"  theoretical minimum at 30/s and 360 per 30 s ({jobs:,} jobs): {least:,.1f} s")
    print(f"  ratio to the minimum: {elapsed / least:.2f} (target <= 1.5), under 2 minutes: "
          f"{'yes' if elapsed < 120 else 'NO'}")  # fmt: skip
    print(f"  the events lane at 100/s and 1,200 per 30 s would need {one_by_one:,.0f} s "
          f"({one_by_one / elapsed:,.0f}x longer)")  # fmt: skip
    print(f"  client peak memory: {peak:,.0f} MB ({before:,.0f} MB before sending, with the frame)")


if __name__ == "__main__":
    main()
