"""The events lane's pace against the emulator, each scenario next to its theoretical minimum.

Each scenario runs ``send`` with its defaults (the client assumes Gameball's documented limits,
100/s and 1,200 per 30 s) in a process of its own, timed from its start to its exit, against a
fresh emulator process whose real limits and network vary:

* the documented limits, 40-60 ms latency, 4,400 rows: target >= 97% of the minimum, no 429;
* the documented limits, 300 ms latency jittered +-50% (0.15-0.45 s), all of it before the
  server counts the request (so it counts arrivals the client cannot see), 4,400 rows:
  >= 95%, <= 0.5% of the answers 429;
* the server allows only 20/s and 240 per 30 s, 4,400 rows: >= 90% of the minimum for those
  real limits, <= 3% of the answers 429 (the client must find them); the same as a fresh run
  with its ledger (new: no run sent with it, so the server's window holds only this run's
  requests from its first second), 556 rows and 4,400: >= 90%, <= 3% 429s; and 556 rows
  without a ledger, printed beside (no target: that run cannot know whether its first full
  window holds earlier requests);
* the server allows 5/s: the send finishes, no row fails, >= 80% of the minimum;
* the server allows 5/s and answers every 429 with ``Retry-After: 120`` (as a gateway may),
  40 rows: under 100 s, and no quota per 30 s advised.

Legs that start a second run against a server whose window still holds the first run's
requests, at the documented limits (40-60 ms latency, no faults):

* back to back: run A sends 1,150 rows, run B starts at once with 1,000 other rows;
* interrupt then resume: run A is cancelled 8 s into 2,150 rows (Ctrl-C), then the same input
  is resumed with the same ledger;
* four more interrupts then resumes, cancelled 3, 6, 11 and 16 s in (a deep cut of the rate
  after a hold once made one second run in four take twice its time).

Target for each: all requests within 1/0.90 of the least time the limits allow for them,
counted from the first run's start; at most 3% of the second run's answers 429; no row left
``unknown``; no lower limits advised.

Two legs share the key with a live shop: the emulator runs a background client sending 8 events
requests a second (Poisson) on the same key while 2,500 rows are sent. With ``reserve=0.3``:
the background client's 429s <= 0.5% of its requests, and the send >= 90% of the least time
70% of the limits allow. The same with ``reserve=0`` is printed beside it (no target).

The minimum is the least time the server's real limits allow for the rows (both windows,
sliding), computed in the same run. Each leg also prints the dry-run plan's estimate next to
the measured time (target: within +-25%): the plan at the client's limits, and where the server
is really slower, the plan at the limits the report advises (what a user plans the re-run by).
``--baselines`` adds a naive sequential loop and an unthrottled ``asyncio.gather`` (100
connections, a 429 resent after 1 s) at the documented limits, measured over 60 s.

Run: python bench/bench_send.py [--only NAME] [--baselines]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

import aiohttp
import httpx
import pandas as pd

from gb_backfill import Interrupted, RateLimits, SendPlan, SendReport, asend, plan
from gb_backfill._config import leave_room
from gb_backfill._emulator import DEFAULT_API_KEY, RECORD_PATH
from gb_backfill._engine.plan import minimum_seconds

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
    def __init__(
        self,
        per_second: int,
        per_window: int,
        window: float = 30.0,
        latency: float = 0.04,
        jitter: float = 0.02,
        arrival: tuple[float, float] = (0.0, 0.0),
        retry_after: float | None = None,
        background: float = 0.0,
    ) -> None:
        command = [
            sys.executable, "-m", "gb_backfill", "emulator", "--port", "0",
            "--per-second", str(per_second), "--per-window", str(per_window),
            "--window", str(window), "--latency", str(latency), "--jitter", str(jitter),
            "--arrival-delay", str(arrival[0]), "--arrival-jitter", str(arrival[1]),
            "--background-rate", str(background),
        ]  # fmt: skip
        if retry_after is not None:
            command += ["--retry-after", str(retry_after)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().split()[3]

    def counters(self) -> dict[str, int]:
        """What the emulator answered so far, by kind."""
        seen = httpx.get(self.url + RECORD_PATH, headers={"APIKey": DEFAULT_API_KEY}, timeout=60)
        counters: dict[str, int] = seen.json()["counters"]
        return counters

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass(frozen=True)
class Scenario:
    name: str
    per_second: int  # the server's real limits
    per_window: int
    rows: int
    target: float  # share of the minimum time
    max_429: float | None  # share of the answers
    latency: float = 0.04  # after the server counted the request, plus up to 20 ms
    arrival: tuple[float, float] = (0.0, 0.0)  # before it counts it: seconds, plus up to
    ledger: bool = False  # the send keeps a ledger, new: no run sent with it
    retry_after: float | None = None  # the emulator's Retry-After on every 429, in seconds
    within: float | None = None  # seconds the send must take at most (process start to exit)
    window_advice: bool = True  # a lower quota per window may be advised


SCENARIOS = [
    Scenario("documented limits, 50 ms", 100, 1200, 4400, 0.97, 0.0),
    Scenario(
        "300 ms +-50% before counting", 100, 1200, 4400, 0.95, 0.005, 0.0, arrival=(0.15, 0.3)
    ),
    Scenario("real 20/s + 240/30 s", 20, 240, 4400, 0.90, 0.03),
    Scenario("fresh run, ledger, 20/s + 240/30 s", 20, 240, 556, 0.90, 0.03, ledger=True),
    Scenario("fresh run, ledger, 20/s + 240/30 s, 4,400", 20, 240, 4400, 0.90, 0.03, ledger=True),
    Scenario("fresh run, no ledger, 20/s + 240/30 s", 20, 240, 556, 0.0, None),
    Scenario("real 5/s", 5, 0, 300, 0.80, None),
    Scenario(
        "real 5/s, Retry-After: 120",
        5,
        0,
        40,
        0.0,
        None,
        retry_after=120,
        within=100,
        window_advice=False,
    ),
]


async def timed_send(url: str, df: pd.DataFrame):
    started = time.perf_counter()
    report = await asend(df, base_url=url, api_key=DEFAULT_API_KEY, progress=False)
    return report, time.perf_counter() - started


async def interrupted_send(url: str, df: pd.DataFrame, ledger: str, after: float) -> SendReport:
    """``asend`` cancelled after ``after`` seconds, as Ctrl-C does; returns its report."""
    task = asyncio.create_task(
        asend(df, base_url=url, api_key=DEFAULT_API_KEY, ledger=ledger, progress=False)
    )
    await asyncio.sleep(after)
    task.cancel()
    try:
        return await task
    except Interrupted as stopped:  # raised from the cancellation, with the run's report
        return cast(SendReport, stopped.report)


def second_run_met(name: str, first: SendReport, second: SendReport, elapsed: float) -> bool:
    """Print one second-run leg against the least time for all its requests; True if met."""
    requests = first.sent + second.sent
    least = minimum_seconds(requests, RateLimits())
    share = least / elapsed
    answers = sum(second.http_statuses.values())
    throttled = second.http_statuses.get(429, 0)
    share_429 = throttled / answers if answers else 0.0
    unknown = first.unknown + second.unknown
    found = first.limits_found or second.limits_found
    met = share >= 0.90 and share_429 <= 0.03 and unknown == 0 and found is None
    print(
        f"  {name:<28} {requests:,} requests in {elapsed:5.1f} s from the first run's start, "
        f"minimum {least:5.1f} s: {share:6.1%} (target 90%); second run's 429s {throttled:,} "
        f"of {answers:,} ({share_429:.1%}, target 3%); unknown {unknown}; "
        f"advised {found or 'nothing'}  {'met' if met else 'MISSED'}"
    )
    return met


def back_to_back() -> bool:
    server = Server(100, 1200)
    try:
        started = time.perf_counter()
        first, _ = asyncio.run(timed_send(server.url, rows(1150, prefix="a")))
        second, _ = asyncio.run(timed_send(server.url, rows(1000, prefix="b")))
        elapsed = time.perf_counter() - started
    finally:
        server.close()
    return second_run_met("back to back", first, second, elapsed)


def interrupt_then_resume(after: float = 8.0, name: str = "interrupt then resume") -> bool:
    server = Server(100, 1200)
    df = rows(2150)
    with tempfile.TemporaryDirectory() as folder:
        ledger = f"{folder}/resume.ledger"
        try:
            started = time.perf_counter()
            first = asyncio.run(interrupted_send(server.url, df, ledger, after=after))
            second = asyncio.run(
                asend(df, base_url=server.url, api_key=DEFAULT_API_KEY, ledger=ledger,
                      progress=False)
            )  # fmt: skip
            elapsed = time.perf_counter() - started
        finally:
            server.close()
    assert second.skipped == first.sent, "the ledger skips what the first run sent"
    return second_run_met(name, first, second, elapsed)


def resumes_in_a_row() -> bool:
    """Four more interrupts then resumes, at other points of the first run."""
    met = [interrupt_then_resume(after, f"  ... interrupted {after:g} s in") for after in _AFTER]
    return all(met)


_AFTER = (3.0, 6.0, 11.0, 16.0)
SECOND_RUNS = {
    "back to back": back_to_back,
    "interrupt then resume": interrupt_then_resume,
    "resumes in a row": resumes_in_a_row,
}


def shared_key(reserve: float) -> bool | None:
    """2,500 rows while a live shop's storefront sends 8 requests a second (Poisson) with the
    same key; the shop's 429s and the send's time against the least time its share allows."""
    count, background = 2500, 8.0
    server = Server(100, 1200, background=background)
    try:
        time.sleep(3.0)  # the shop was there before the backfill
        before = server.counters()
        started = time.perf_counter()
        report = asyncio.run(
            asend(rows(count), base_url=server.url, api_key=DEFAULT_API_KEY, reserve=reserve,
                  progress=False)
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        after = server.counters()
    finally:
        server.close()
    shop = after.get("background_sent", 0) - before.get("background_sent", 0)
    refused = after.get("background_rate_limited", 0) - before.get("background_rate_limited", 0)
    refused_share = refused / shop if shop else 0.0
    kept = leave_room(RateLimits(), reserve)
    least = minimum_seconds(count, kept)
    share = least / elapsed
    answers = sum(report.http_statuses.values())
    throttled = report.http_statuses.get(429, 0)
    met = report.sent == count and refused_share <= 0.005 and share >= 0.90
    verdict = ("met" if met else "MISSED") if reserve else "(beside)"
    print(
        f"  reserve={reserve:<4g} {report.sent:,}/{count:,} sent in {elapsed:5.1f} s, minimum at "
        f"{kept.per_second}/s and {kept.per_window:,} per 30 s {least:5.1f} s: {share:6.1%}"
        f"{' (target 90%)' if reserve else ''}; its 429s {throttled:,} of {answers:,}; the "
        f"shop's 429s {refused:,} of {shop:,} ({refused_share:.2%}"
        f"{', target 0.5%' if reserve else ''}); advised {report.limits_found or 'nothing'}  "
        f"{verdict}"
    )
    return met if reserve else None


SHARED_KEY = {"reserve=0.3": lambda: shared_key(0.3), "reserve=0": lambda: shared_key(0.0)}


def send_in_child(url: str, count: int, ledger: str | None) -> None:
    """The child process's work: send ``count`` rows, print the report's figures as JSON."""
    report = asyncio.run(
        asend(rows(count), base_url=url, api_key=DEFAULT_API_KEY, ledger=ledger, progress=False)
    )
    found = report.limits_found
    figures = {
        "elapsed": report.elapsed,
        "sent": report.sent,
        "statuses": report.http_statuses,
        "found": None if found is None else [found.per_second, found.per_window],
    }
    print(json.dumps(figures))


def run_scenario(scenario: Scenario) -> bool | None:
    """Run one scenario and print it; whether its targets were met (None: it has none)."""
    server = Server(
        scenario.per_second, scenario.per_window, latency=scenario.latency,
        jitter=0.02 if scenario.latency else 0.0, arrival=scenario.arrival,
        retry_after=scenario.retry_after,
    )  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as folder:
            child = [sys.executable, __file__, "--send", server.url, str(scenario.rows)]
            if scenario.ledger:
                child += ["--ledger", f"{folder}/fresh.ledger"]
            started = time.perf_counter()  # the sender's process, from its start to its exit
            output = subprocess.run(child, capture_output=True, text=True, check=True).stdout
            elapsed = time.perf_counter() - started
    finally:
        server.close()
    figures = json.loads(output)
    real = RateLimits(per_second=scenario.per_second, per_window=scenario.per_window)
    planned = planned_seconds(scenario.rows, None if real == RateLimits() else real)
    least = minimum_seconds(scenario.rows, real)
    share = least / elapsed
    answers = sum(figures["statuses"].values())
    throttled = figures["statuses"].get("429", 0)
    share_429 = throttled / answers if answers else 0.0
    met = share >= scenario.target and figures["sent"] == scenario.rows
    if scenario.max_429 is not None:
        met = met and share_429 <= scenario.max_429
    found = figures["found"]
    settled = f"; advised {found[0]}/s, {found[1]:,}/30 s" if found else "; advised nothing"
    if found and not scenario.window_advice:
        met = met and found[1] == RateLimits().per_window
    targets = f"target {scenario.target:.0%}" if scenario.target else "no target"
    if scenario.within is not None:
        met = met and elapsed < scenario.within
        targets = f"target under {scenario.within:g} s"
    verdict = ("met" if met else "MISSED") if targets != "no target" else "(beside)"
    print(
        f"  {scenario.name:<42} {figures['sent']:,}/{scenario.rows:,} sent in {elapsed:5.1f} s "
        f"(process start to exit; the send {figures['elapsed']:5.1f} s), minimum {least:5.1f} s: "
        f"{share:6.1%} ({targets}); 429s {throttled:,} of {answers:,} "
        f"({share_429:.2%}){settled}; "
        f"plan {planned:5.1f} s ({planned / elapsed - 1:+.0%})  {verdict}"
    )
    if verdict == "(beside)":
        return None
    return met and (scenario.within is not None or abs(planned / elapsed - 1) <= 0.25)


def planned_seconds(count: int, limits: RateLimits | None) -> float:
    """The dry-run plan's estimate for ``count`` rows in events mode, at ``limits`` (None: the
    client's defaults)."""
    planned = plan(rows(count), limits=limits, progress=False)
    assert isinstance(planned, SendPlan)
    return planned.estimated_seconds["events"]


def rows(count: int, prefix: str = "cust") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customerId": [f"{prefix}-{n % 5000}" for n in range(count)],
            "eventName": "purchase_completed",
            "amount": 9.5,
        }
    )


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


def baselines() -> None:
    per_second, per_window, window = 100, 1200, 30.0
    period, allowed = 2 * window, 2 * per_window
    count = allowed + per_window // 2
    print(f"baselines over {period:g} s at the documented limits ({allowed:,} allowed):")
    clients = {
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--send", nargs=2, metavar=("URL", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.send:
        send_in_child(args.send[0], int(args.send[1]), args.ledger)
        return
    chosen = [s for s in SCENARIOS if not args.only or args.only in s.name]
    if chosen:
        print("gb-backfill send (client at its defaults) against the emulator's real limits:")
        _tally([run_scenario(s) for s in chosen])
    second = [leg for name, leg in SECOND_RUNS.items() if not args.only or args.only in name]
    if second:
        print("a second run against the server's window still full of the first run's:")
        _tally([leg() for leg in second])
    shared = [leg for name, leg in SHARED_KEY.items() if not args.only or args.only in name]
    if shared:
        print("a live shop sending 8 requests a second with the same key:")
        _tally([leg() for leg in shared])
    if args.baselines:
        baselines()


def _tally(results: list[bool | None]) -> None:
    targets = [met for met in results if met is not None]
    print(f"  {sum(targets)} of {len(targets)} targets met")


if __name__ == "__main__":
    main()
