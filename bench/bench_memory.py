"""Peak memory of streaming a large Parquet file through the sender, and the ledger's cost.

Part 1, memory: in separate processes, the peak resident memory (ru_maxrss) of
``pandas.read_parquet`` of a file and of ``send_path`` over the same file, for 1M and 10M
rows. ``send_path`` runs the whole pipeline (read a batch, validate, build payloads, queue per
customer, classify each answer, account every row) with an HTTP client that answers 200 at
once and limits lifted, since 10M requests to any server would take hours.
Targets: under 500 MB for 10M rows; under 10% growth from 1M to 10M rows.

Part 2, failures at scale: peak memory of a 2M-row run whose rows all fail (every customer id
empty, so every row goes to the failures file, merged at the end) next to the same run with
every row valid. Target: within 10% of the all-valid run.

Part 3, ledger cost: rows/s sending to the emulator (a separate process, limits lifted) with
and without a ledger, in the same run. Target: under 5% slower with it.

Run: python bench/bench_memory.py [--rows-large N] [--failing-rows N] [--ledger-rows N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(tempfile.gettempdir()) / "gb-backfill-bench"


def make_parquet(rows: int, *, failing: bool = False) -> Path:
    path = DATA / f"events-{rows}{'-failing' if failing else ''}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows)
    step = 1_000_000
    schema = None
    with tempfile.NamedTemporaryFile(dir=DATA, suffix=".tmp", delete=False) as scratch:
        writer = None
        for start in range(0, rows, step):
            size = min(step, rows - start)
            table = pa.table(
                {
                    "customerId": pa.array(
                        np.full(size, "")
                        if failing
                        else np.char.add("cust-", rng.integers(0, 2_000_000, size).astype(str))
                    ),
                    "eventName": pa.array(rng.choice(["purchase_completed", "review"], size)),
                    "amount": rng.uniform(1, 500, size).round(2),
                    "quantity": rng.integers(1, 10, size),
                    "sku": pa.array(np.char.add("P-", rng.integers(0, 5000, size).astype(str))),
                    "ordered_at": pa.array(
                        np.datetime64("2024-01-01") + rng.integers(0, 10**8, size).astype("m8[s]")
                    ),
                }
            )
            schema = schema or table.schema
            writer = writer or pq.ParquetWriter(scratch.name, schema, compression="zstd")
            writer.write_table(table, row_group_size=100_000)
        writer.close()
    Path(scratch.name).rename(path)
    return path


CHILD = r"""
import json, resource, sys, time
mode, path, failures = sys.argv[1], sys.argv[2], sys.argv[3] or None
start = time.perf_counter()
if mode == "read_parquet":
    import pandas as pd
    rows = len(pd.read_parquet(path))
    result = {"rows": rows}
else:
    import httpx, gb_backfill as gb

    class Instant:
        async def post(self, url, content, headers):
            return httpx.Response(200)

    report = gb.send_path(path, api_key="k", client=Instant(), progress=False,
                          limits=gb.RateLimits.unlimited(), failures_path=failures)
    result = {"rows": report.rows, "sent": report.sent, "invalid": report.invalid}
result["seconds"] = time.perf_counter() - start
result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def child(mode: str, path: Path, failures: Path | None = None) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(failures or "")],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{mode} on {path} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(large: int) -> None:
    small = large // 10
    print(f"peak resident memory (MB), {small:,} and {large:,} rows:")
    peaks = {}
    for rows in (small, large):
        path = make_parquet(rows)
        size_mb = path.stat().st_size / 1e6
        for mode in ("read_parquet", "send_path"):
            result = child(mode, path)
            peaks[mode, rows] = result["peak_mb"]
            print(
                f"  {mode:<13} {rows:>11,} rows ({size_mb:,.0f} MB file): "
                f"{result['peak_mb']:8,.0f} MB peak, {result['seconds']:6.1f} s"
                f" ({rows / result['seconds']:,.0f} rows/s)"
            )
    growth = peaks["send_path", large] / peaks["send_path", small] - 1
    print(f"  send_path growth from {small:,} to {large:,} rows: {growth:+.1%} (target < 10%)")
    print(
        f"  send_path vs read_parquet at {large:,} rows: "
        f"{peaks['send_path', large] / peaks['read_parquet', large]:.2f}x the memory"
    )


def failing(rows: int) -> None:
    print(f"peak resident memory (MB), {rows:,} rows, all valid vs all failing:")
    peaks = {}
    for bad in (False, True):
        path = make_parquet(rows, failing=bad)
        with tempfile.TemporaryDirectory() as scratch:
            result = child("send_path", path, Path(scratch) / "failures.parquet")
        peaks[bad] = result["peak_mb"]
        print(
            f"  {'all failing' if bad else 'all valid':<12} {result['peak_mb']:8,.0f} MB peak, "
            f"{result['seconds']:6.1f} s (invalid: {result['invalid']:,})"
        )
    print(f"  all failing vs all valid: {peaks[True] / peaks[False] - 1:+.1%} (target within 10%)")


def ledger_cost(rows: int, repeats: int) -> None:
    import pandas as pd

    from gb_backfill import RateLimits, send

    server = subprocess.Popen(
        [sys.executable, "-m", "gb_backfill", "emulator", "--port", "0", "--per-second", "0",
         "--per-window", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        url = server.stdout.readline().split()[3]
        rng = np.random.default_rng(1)
        rates: dict[bool, list[float]] = {False: [], True: []}
        for run in range(repeats):
            df = pd.DataFrame(
                {
                    "customerId": [f"c{n}" for n in rng.integers(0, rows // 4, rows)],
                    "eventName": "purchase_completed",
                    "amount": rng.uniform(1, 100, rows),
                    "run": run,
                }
            )
            for with_ledger in (False, True):  # alternate, so drift hits both alike
                with tempfile.TemporaryDirectory() as scratch:
                    ledger = Path(scratch) / "bench.ledger" if with_ledger else None
                    start = time.perf_counter()
                    report = send(
                        df.assign(ledger=with_ledger),
                        base_url=url,
                        api_key="emulator-api-key",
                        limits=RateLimits.unlimited(),
                        progress=False,
                        ledger=ledger,
                    )
                    assert report.sent == rows, report
                    rates[with_ledger].append(rows / (time.perf_counter() - start))
        without, with_it = np.median(rates[False]), np.median(rates[True])
        print(f"ledger cost, {rows:,} rows to the emulator over loopback, median of {repeats}:")
        print(f"  without a ledger {without:8,.0f} rows/s")
        print(f"  with a ledger    {with_it:8,.0f} rows/s")
        print(f"  slowdown {1 - with_it / without:+.1%} (target < 5%)")
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-large", type=int, default=10_000_000)
    parser.add_argument("--ledger-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--failing-rows", type=int, default=2_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if not args.skip_memory:
        memory(args.rows_large)
        failing(args.failing_rows)
    ledger_cost(args.ledger_rows, args.repeats)
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB)")


if __name__ == "__main__":
    main()
