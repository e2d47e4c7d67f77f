"""A ledger written on one version of the dependencies skips every row on another.

.ci/run's floor step runs ``write LEDGER`` on the floor (a send of the sample to the emulator,
which records every row in LEDGER), then ``check LEDGER`` on the newest versions (the same send
with the same ledger must send nothing and skip every row the first sent): a change in how
pandas, numpy or pyarrow render a value would make the second run send rows again, or refuse
them as changed.
"""

import json
import sys
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pyarrow

import gb_backfill
from gb_backfill import Emulator, RateLimits

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "events.parquet"
ROWS = 3_000


def send(ledger: Path) -> gb_backfill.SendReport:
    frame = pd.read_parquet(SAMPLE).head(ROWS)
    with Emulator(limits=RateLimits.unlimited(), batch_limits=RateLimits.unlimited()) as emu:
        return gb_backfill.send(
            frame, base_url=emu.base_url, api_key=emu.api_key, secret_key=emu.secret_key,
            mode="batch", limits=RateLimits.unlimited(), batch_limits=RateLimits.unlimited(),
            customer_id="customer_id", event_name="event_name", ledger=ledger, progress=False,
        )  # fmt: skip


def main() -> None:
    step, ledger = sys.argv[1], Path(sys.argv[2])
    versions = f"pandas {pd.__version__}, pyarrow {pyarrow.__version__}, numpy {version('numpy')}"
    report = send(ledger)
    counts = {"sent": report.sent, "skipped": report.skipped, "invalid": report.invalid}
    print(f"{step} on {versions}: {json.dumps(counts)}")
    record = ledger.with_name(ledger.name + ".counts.json")
    if step == "write":
        if report.sent < ROWS * 0.9 or report.skipped:
            sys.exit(f"the first send sent {report.sent} of {ROWS} rows")
        record.write_text(json.dumps(counts))
        return
    written = json.loads(record.read_text())
    if report.sent or report.skipped != written["sent"]:
        sys.exit(f"the ledger written with {written} did not skip every row: {counts}")


if __name__ == "__main__":
    main()
