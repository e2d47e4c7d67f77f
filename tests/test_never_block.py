"""The async faces never block the caller's event loop (issue 27, item 7): every pass over the
input (the CSV's first pass, the unique-key check, the routing count, the dry run itself) runs
in the worker thread, so a notebook's kernel (here, a 10 ms heartbeat) keeps its pace.

A behaviour bound, generous on purpose: before, ``aplan_path`` of the 25,000-row sample froze
the heartbeat for 1.2 s; a loop that is never blocked misses it by a few milliseconds, or by
tens on a busy machine.
"""

import asyncio
import time
from pathlib import Path

import pytest

import gb_backfill as gb

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "events.csv"
LARGEST_GAP = 0.25  # seconds


async def heartbeat(gaps: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def beating_while(work):
    gaps: list[float] = []
    stop = asyncio.Event()
    beats = asyncio.create_task(heartbeat(gaps, stop))
    await asyncio.sleep(0.05)  # the heartbeat is going
    try:
        result = await work
    finally:
        stop.set()
        await beats
    return result, gaps


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_the_dry_run_of_a_25k_row_csv_leaves_the_loop_free(tmp_path):
    keyed = tmp_path / "keyed.csv"
    keyed.write_text(
        "".join(
            line.rstrip("\n") + (",row\n" if n == 0 else f",{n}\n")
            for n, line in enumerate(SAMPLE.read_text().splitlines(keepends=True))
        )
    )

    async def plan():
        return await gb.aplan_path(
            keyed, customer_id="customer_id", event_name="event_name", mode="batch",
            row_key=["row"], batch_rows=5_000,
        )  # fmt: skip

    started = time.perf_counter()
    planned, gaps = asyncio.run(beating_while(plan()))
    took = time.perf_counter() - started
    assert planned.rows == 25_000
    assert took > 0.5, "enough work to see a stall"
    assert len(gaps) > 10
    assert max(gaps) < LARGEST_GAP, f"the loop stood still for {max(gaps):.2f} s of {took:.1f} s"


def test_a_csv_s_first_pass_and_its_key_check_leave_the_loop_free(tmp_path):
    """What every path face (send, plan, preview) does first: the CSV's types decided in a
    first pass, and ``row_key`` checked for repeats, here over 100,000 rows."""
    from gb_backfill._faces import open_input
    from gb_backfill._options import SendPathOptions

    lines = SAMPLE.read_text().splitlines(keepends=True)
    big = tmp_path / "big.csv"
    with big.open("w") as out:
        out.write(lines[0].rstrip("\n") + ",row\n")
        for copy in range(4):
            out.writelines(f"{line.rstrip()},{copy}-{n}\n" for n, line in enumerate(lines[1:]))
    options = SendPathOptions(customer_id="customer_id", event_name="event_name")

    started = time.perf_counter()
    (source, _), gaps = asyncio.run(beating_while(open_input(big, options, row_key=["row"])))
    took = time.perf_counter() - started
    assert source.rows == 100_000
    assert took > 0.5, "enough work to see a stall"
    assert max(gaps) < LARGEST_GAP, f"the loop stood still for {max(gaps):.2f} s of {took:.1f} s"
