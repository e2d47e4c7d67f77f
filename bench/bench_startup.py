"""What ``import gb_backfill`` costs, next to importing pandas alone, in the same run.

Each figure is the best of ``--runs`` fresh interpreters (the machine is shared; the best is the
least disturbed): the total that ``python -X importtime -c "import ..."`` reports for the top
module, and the wall time of the whole process, start to exit, as a user's first line feels it.
It also checks what must stay out of the import: the emulator's aiohttp, matplotlib, and what
sends (httpx, asyncio, sqlite3), each imported on first use.

Target: ``import gb_backfill`` under 0.6 s (pandas alone takes most of it).
Run: python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

TARGET = 0.6  # seconds
_LAZY = ("aiohttp", "matplotlib", "httpx", "asyncio", "sqlite3", "gb_backfill._sender")
_TOP = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$")


def import_seconds(module: str) -> float:
    """The cumulative import time ``-X importtime`` reports for ``module`` itself."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in done.stderr.splitlines():
        match = _TOP.match(line)
        if match and match.group(2) == module:
            return int(match.group(1)) / 1e6
    raise RuntimeError(f"no import time for {module}")


def process_seconds(module: str) -> float:
    """Wall time of ``python -c "import module"``, from process start to exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - started


def loaded_on_import() -> list[str]:
    """Which of the modules that must wait for first use ``import gb_backfill`` loaded."""
    code = f"import sys, gb_backfill; print(*[m for m in {_LAZY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    figures = {}
    for module in ("pandas", "gb_backfill"):
        figures[module] = (
            min(import_seconds(module) for _ in range(runs)),
            min(process_seconds(module) for _ in range(runs)),
        )
        print(
            f"import {module:<11}  {figures[module][0]:.3f} s (-X importtime)   "
            f"{figures[module][1]:.3f} s process start to exit   best of {runs}"
        )
    (ours, ours_process), (pandas, pandas_process) = figures["gb_backfill"], figures["pandas"]
    print(
        f"gb_backfill beyond pandas: {ours - pandas:+.3f} s import, "
        f"{ours_process - pandas_process:+.3f} s process; {ours / pandas:.2f}x pandas alone"
    )
    early = loaded_on_import()
    print(f"loaded by the import although needed only on first use: {', '.join(early) or 'none'}")
    verdict = "PASS" if ours < TARGET and not early else "FAIL"
    print(f"{verdict}: import gb_backfill {ours:.3f} s (target < {TARGET} s)")


if __name__ == "__main__":
    main()
