"""Achieved send rate against Gameball's documented limits, with ~50 ms of latency, in one run.

Three clients, each against a fresh emulator process (100 requests/s and 1,200 per 30 s,
40-60 ms latency):

* gb-backfill (``send`` with its defaults);
* a naive sequential loop, one request after another (what the official SDK does);
* an unthrottled ``asyncio.gather`` of every request (100 connections), resending a 429
  after one second.

Each runs for one measuring period (two quota windows, 60 s by default). The share of the limit
is the number of requests accepted in that period over what the limits allow in it (2,400 in
60 s: 40/s sustained). Targets for gb-backfill: >= 95% of the limit, <= 0.5% 429 answers.
``--scale 0.2`` shrinks the quota and its window for a quick look (40/s sustained still).
Run: python bench/bench_send.py [--scale S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import httpx
import pandas as pd

from gb_backfill import RateLimits, asend
from gb_backfill._emulator import DEFAULT_API_KEY

PATH = "/api/v4.0/integrations/events"


@dataclass
class Tally:
    start: float = field(default_factory=time.monotonic)
    accepted: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def record(self, status: int) -> None:
        self.statuses[status] += 1
        if status == 200:
            self.accepted.append(time.monotonic() - self.start)


class Server:
    def __init__(self, per_second: int, per_window: int, window: float) -> None:
        command = [
            sys.executable, "-m", "gb_backfill", "emulator", "--port", "0",
            "--per-second", str(per_second), "--per-window", str(per_window),
            "--window", str(window), "--latency", "0.04", "--jitter", "0.02",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().split()[3]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def rows(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customerId": [f"cust-{n % 5000}" for n in range(count)],
            "eventName": "purchase_completed",
            "amount": 9.5,
        }
    )


async def gb_backfill(url: str, df: pd.DataFrame, tally: Tally, period: float, limits) -> None:
    async def hook(response: httpx.Response) -> None:
        tally.record(response.status_code)

    async with httpx.AsyncClient(event_hooks={"response": [hook]}) as client:
        sending = asend(
            df, base_url=url, api_key=DEFAULT_API_KEY, client=client, progress=False, limits=limits
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sending, period + 5)


def body(n: int) -> bytes:
    payload = {"customerId": f"cust-{n % 5000}", "events": {"purchase_completed": {"amount": 9.5}}}
    return json.dumps(payload).encode()


HEADERS = {"APIKey": DEFAULT_API_KEY, "Content-Type": "application/json"}


async def naive_loop(url: str, count: int, tally: Tally, period: float) -> None:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS) as client:
        for n in range(count):
            if time.monotonic() - tally.start > period:
                return
            tally.record((await client.post(PATH, content=body(n))).status_code)


async def unthrottled_gather(url: str, count: int, tally: Tally, period: float) -> None:
    # aiohttp here: httpx's pool takes tens of seconds to serve thousands of waiting requests,
    # which would measure the pool instead of the rate limits.
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(url, headers=HEADERS, connector=connector) as session:

        async def one(n: int) -> None:
            while time.monotonic() - tally.start < period:
                async with session.post(PATH, data=body(n)) as response:
                    await response.read()
                    tally.record(response.status)
                if response.status != 429:
                    return
                await asyncio.sleep(1.0)

        await asyncio.gather(*(one(n) for n in range(count)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="shrink windows and quotas")
    args = parser.parse_args()
    per_second = 100  # a one-second window does not scale; the quota window does
    per_window = max(1, round(1200 * args.scale))
    window = 30.0 * args.scale
    period = 2 * window
    allowed = 2 * per_window
    count = allowed + per_window // 2
    limits = RateLimits(per_second=per_second, per_window=per_window, window=window)
    print(
        f"limits: {per_second}/s and {per_window:,} per {window:g} s; latency 40-60 ms; "
        f"measured over {period:g} s, in which the limits allow {allowed:,} requests"
    )
    clients = {
        "gb-backfill": lambda url, t: gb_backfill(url, rows(count), t, period, limits),
        "naive sequential loop": lambda url, t: naive_loop(url, count, t, period),
        "unthrottled gather": lambda url, t: unthrottled_gather(url, count, t, period),
    }
    for name, client in clients.items():
        server = Server(per_second, per_window, window)
        try:
            tally = Tally()
            asyncio.run(client(server.url, tally))
        finally:
            server.close()
        accepted = sum(1 for t in tally.accepted if t < period)
        answers = sum(tally.statuses.values())
        share_429 = tally.statuses[429] / answers if answers else 0.0
        print(
            f"  {name:<22} {accepted / period:6.1f} requests/s = {accepted / allowed:6.1%} of the "
            f"limit; 429s: {tally.statuses[429]:,} of {answers:,} answers ({share_429:.2%})"
        )


if __name__ == "__main__":
    main()
