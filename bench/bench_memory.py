"""Peak memory of streaming a large Parquet file through the sender, and the ledger's cost.

Part 1, memory and rate: in separate processes, the peak resident memory (``VmHWM`` of the
child itself: ``ru_maxrss`` of a vfork+exec'd child also counts its parent's peak) and rows/s
of ``pandas.read_parquet`` of a file, of the dry run over it (read, check, encode and key every
row, send nothing: the floor each pipeline is measured against) and of ``send_path`` over it in
batch mode and in events mode, for 1M and 10M rows. ``send_path`` runs the whole pipeline
(read a batch, validate, build payloads, queue per customer, post, read job status, classify
each answer, account every row) with an in-process client that answers at once (200, a job
id, a job ended with every item successful) and limits lifted, since 10M requests to any
server would take hours. Targets: the batch pipeline at >= 60,000 rows/s; peak memory under
400 MB for 10M rows and under 10% growth from 1M to 10M rows.

Part 2, failures at scale: peak memory of a 2M-row run whose rows all fail (every customer id
empty, so every row goes to the failures file, merged at the end) next to the same run with
every row valid. Target: within 10% of the all-valid run.

Part 3, ledger cost: rows/s sending to the emulator (a separate process, limits lifted) with
and without a ledger, in the same run. Target: under 5% slower with it.

Part 4, an object store: the peak memory and rows/s of ``send_path`` (batch mode, the instant
client of part 1) of one Parquet file read from a local S3-compatible server (moto's server
mode, a test dependency, in a process of its own on loopback, found through
``AWS_ENDPOINT_URL``) next to the same file read from the local disk, in the same run.
Target: the S3 run's peak within 10% of the local run's.

Run: python bench/bench_memory.py [--rows-large N] [--failing-rows N] [--ledger-rows N]
     python bench/bench_memory.py --only-pipelines [--pipelines batch events]  (part 1 alone)
     python bench/bench_memory.py --only-store [--store-rows N]  (part 4 alone)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
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
import json, re, sys, time
mode, path, failures = sys.argv[1], sys.argv[2], sys.argv[3] or None
start = time.perf_counter()
if mode == "read_parquet":
    import pandas as pd
    rows = len(pd.read_parquet(path))
    result = {"rows": rows}
else:
    import httpx, gb_backfill as gb

    class Instant:
        # A server that answers at once: 200 to an event, a job id to a batch job, and the job
        # ended with every item successful on its first status read.
        customers = re.compile(rb'"customerId":("(?:[^"\\]|\\.)*")')

        def __init__(self):
            self.jobs, self.posted = {}, 0

        async def post(self, url, content, headers):
            if url.endswith("/batch/events"):
                job = self.posted = self.posted + 1
                self.jobs[job] = self.customers.findall(content)
                return httpx.Response(200, content=b'{"jobId":%d}' % job)
            return httpx.Response(200)

        async def get(self, url, headers):
            ids = self.jobs.pop(int(url.rstrip("/").rsplit("/", 1)[1]))
            items = b",".join(b'{"customerId":' + c + b"}" for c in ids)
            body = b'{"status":"completed","response":{"successful":[' + items + b'],"failed":[]}}'
            return httpx.Response(200, content=body)

    options = dict(api_key="k", secret_key="s", progress=False,
                   limits=gb.RateLimits.unlimited(), batch_limits=gb.RateLimits.unlimited(),
                   failures_path=failures)
    if mode == "dry_run":
        plan = gb.plan_path(path, **options)
        result = {"rows": plan.rows, "sent": 0, "invalid": plan.invalid}
    else:
        report = gb.send_path(path, client=Instant(), mode=mode, **options)
        result = {"rows": report.rows, "sent": report.sent, "invalid": report.invalid}
result["seconds"] = time.perf_counter() - start
# The child's own high-water mark: ru_maxrss of a vfork+exec'd child counts its parent's peak.
status = open("/proc/self/status").read()
result["peak_mb"] = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
print(json.dumps(result))
"""


def child(mode: str, path: Path | str, failures: Path | None = None) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(failures or "")],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{mode} on {path} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


PIPELINES = ("batch", "events")
RATE_TARGET = 60_000  # rows/s: 5x the batch lane's ceiling of 12,000 events/s


def memory(large: int, pipelines: Sequence[str] = PIPELINES) -> None:
    """Peak memory and rows/s of each pipeline at ``large // 10`` and ``large`` rows, next to
    ``read_parquet`` of the same file and the dry run (read, check, encode and key every row,
    send nothing): the floor a pipeline's rate is measured against."""
    small = large // 10
    print(f"peak resident memory (VmHWM, MB) and rows/s, {small:,} and {large:,} rows:")
    peaks, rates = {}, {}
    for rows in (small, large):
        path = make_parquet(rows)
        size_mb = path.stat().st_size / 1e6
        for mode in ("read_parquet", "dry_run", *pipelines):
            result = child(mode, path)
            if mode not in ("read_parquet", "dry_run"):
                assert result["sent"] == rows, result
            peaks[mode, rows] = result["peak_mb"]
            rates[mode, rows] = rows / result["seconds"]
            print(
                f"  {mode:<13} {rows:>11,} rows ({size_mb:,.0f} MB file): "
                f"{result['peak_mb']:8,.0f} MB peak, {result['seconds']:6.1f} s"
                f" ({rates[mode, rows]:,.0f} rows/s)"
            )
    for mode in pipelines:
        growth = peaks[mode, large] / peaks[mode, small] - 1
        rate, floor = rates[mode, large], rates["dry_run", large]
        print(
            f"  {mode} pipeline: {rate:,.0f} rows/s at {large:,} rows ({rate / floor:.2f}x the "
            f"dry run's {floor:,.0f}; target >= {RATE_TARGET:,}); peak memory "
            f"{peaks[mode, small]:,.0f} -> {peaks[mode, large]:,.0f} MB, ratio 10M/1M "
            f"{peaks[mode, large] / peaks[mode, small]:.3f} ({growth:+.1%}; target < 10%, "
            "under 400 MB)"
        )
        print(
            f"    vs read_parquet at {large:,} rows: "
            f"{peaks[mode, large] / peaks['read_parquet', large]:.2f}x the memory"
        )


def failing(rows: int) -> None:
    print(f"peak resident memory (MB), {rows:,} rows, all valid vs all failing:")
    peaks = {}
    for bad in (False, True):
        path = make_parquet(rows, failing=bad)
        with tempfile.TemporaryDirectory() as scratch:
            result = child("events", path, Path(scratch) / "failures.parquet")
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


STORE_SERVER = r"""
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("http://%s:%d" % server.get_host_and_port(), flush=True)
sys.stdin.read()  # until the bench closes its end (or exits): the server stops by itself
server.stop()
"""


def object_store(rows: int, mode: str = "batch") -> None:
    """Part 4: ``send_path`` of one file from a local S3 server vs from the local disk."""
    import os

    import pyarrow.fs as pafs

    path = make_parquet(rows)
    server = subprocess.Popen(
        [sys.executable, "-c", STORE_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    assert server.stdin is not None
    endpoint = server.stdout.readline().strip()
    saved = dict(os.environ)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    try:
        store = pafs.S3FileSystem(
            endpoint_override=endpoint, access_key="bench", secret_key="bench",
            region="us-east-1", allow_bucket_creation=True,
        )  # fmt: skip
        store.create_dir("bench")
        start = time.perf_counter()
        pafs.copy_files(str(path), f"bench/{path.name}", destination_filesystem=store)
        uploaded = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        print(f"an object store, {rows:,} rows ({size_mb:,.0f} MB file, uploaded in "
              f"{uploaded:.1f} s), send_path in {mode} mode:")  # fmt: skip
        peaks = {}
        for where, source in (("local disk", str(path)), ("S3 (moto)", f"s3://bench/{path.name}")):
            result = child(mode, source)
            assert result["sent"] == rows, result
            peaks[where] = result["peak_mb"]
            print(
                f"  {where:<11} {result['peak_mb']:8,.0f} MB peak, {result['seconds']:6.1f} s"
                f" ({rows / result['seconds']:,.0f} rows/s)"
            )
        ratio = peaks["S3 (moto)"] / peaks["local disk"]
        print(f"  S3 peak / local peak: {ratio:.3f} ({ratio - 1:+.1%}; target within 10%)")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stdin.close()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-large", type=int, default=10_000_000)
    parser.add_argument("--ledger-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--failing-rows", type=int, default=2_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only-pipelines", action="store_true", help="part 1 alone")
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES)
    parser.add_argument("--store-rows", type=int, default=10_000_000)
    parser.add_argument("--only-store", action="store_true", help="part 4 alone")
    args = parser.parse_args()
    if args.only_store:
        object_store(args.store_rows)
        return
    if not args.skip_memory:
        memory(args.rows_large, args.pipelines)
        if args.only_pipelines:
            return
        failing(args.failing_rows)
    ledger_cost(args.ledger_rows, args.repeats)
    object_store(args.store_rows)
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB)")


if __name__ == "__main__":
    main()
