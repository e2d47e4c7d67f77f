"""How many requests per second the emulator answers with limits lifted and no faults.

The emulator runs as its own process (``gb-backfill emulator``), as it does for the demo; the
load comes from this process over loopback, in the same run: first an aiohttp client (a lean
load generator), then an httpx client (what the sender uses). Target: >= 2,000 requests/s.
Run: python bench/bench_emulator.py [--seconds S] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import aiohttp
import httpx

from gb_backfill._emulator import DEFAULT_API_KEY

PATH = "/api/v4.0/integrations/events"
HEADERS = {"APIKey": DEFAULT_API_KEY, "Content-Type": "application/json"}


def body(n: int) -> bytes:
    payload = {"customerId": f"c{n}", "events": {"purchase": {"amount": 9.5, "sku": "P-1"}}}
    return json.dumps(payload).encode()


async def drive(post, seconds: float, concurrency: int) -> tuple[int, int]:
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds
    ok = failed = 0

    async def worker() -> None:
        nonlocal ok, failed
        while time.perf_counter() < deadline:
            if await post(body(next(counter))) == 200:
                ok += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, failed


async def with_aiohttp(url: str, seconds: float, concurrency: int) -> tuple[int, int]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector, headers=HEADERS) as session:

        async def post(data: bytes) -> int:
            async with session.post(PATH, data=data) as response:
                await response.read()
                return response.status

        return await drive(post, seconds, concurrency)


async def with_httpx(url: str, seconds: float, concurrency: int) -> tuple[int, int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits) as client:

        async def post(data: bytes) -> int:
            return (await client.post(PATH, content=data)).status_code

        return await drive(post, seconds, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    command = [sys.executable, "-m", "gb_backfill", "emulator", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--per-second", "0", "--per-window", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        url = server.stdout.readline().split()[3]
        print(f"emulator at {url}, limits lifted, no faults, {args.concurrency} connections")
        for name, client in (("aiohttp client", with_aiohttp), ("httpx client", with_httpx)):
            start = time.perf_counter()
            ok, failed = asyncio.run(client(url, args.seconds, args.concurrency))
            rate = ok / (time.perf_counter() - start)
            print(
                f"  {name:<15} {rate:>8,.0f} requests/s  ({ok:,} ok, {failed:,} not ok)"
                f"  = {rate / 2000:.2f}x the 2,000/s target"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
