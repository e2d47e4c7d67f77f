"""The demo: the sample export, a local Gameball that behaves like a real network, and the
options that send one to the other (``gb-backfill demo`` tells the story around them)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._config import BATCH_LIMITS, EVENTS_LIMITS, PREVIEW_LIMITS, RateLimits
from ._errors import ConfigError

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__: list[str] = []


def sample_data_path() -> Path:
    """The sample export: in the source tree, or the copy inside the installed package."""
    here = Path(__file__).resolve().parent
    for folder in (here.parent, here):
        candidate = folder / "sample_data" / "events.parquet"
        if candidate.exists():
            return candidate
    raise ConfigError("sample_data/events.parquet is missing; run sample_data/make_sample.py")


def sample_slice(sample: Path, rows: int) -> Path:
    """The first ``rows`` rows of the sample, as a file of their own, at the same path on every
    run (so a second demo continues the first's failures file and ledger)."""
    import pyarrow.parquet as pq

    folder = Path(tempfile.gettempdir()) / f"gb-backfill-demo-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    part = folder / f"events-first-{rows}.parquet"
    scratch = part.with_name(f"{part.name}.{os.getpid()}.tmp")
    pq.write_table(pq.read_table(sample).slice(0, rows), scratch)
    os.replace(scratch, part)
    return part


def demo_emulator(*, fast: bool) -> Emulator:
    """The demo's Gameball: a little of what real networks do (so the demo shows retries and an
    unknown or two), the sample shop's campaigns, most of its customers known already; at the
    documented limits, or with none (``fast``)."""
    from ._emulator import BatchSettings, Campaigns, Emulator, Faults

    faults = Faults(latency=0.03, jitter=0.02, server_errors=0.02, lost_responses=0.002, seed=7)
    lifted = RateLimits.unlimited()
    return Emulator(
        faults=faults,
        limits=lifted if fast else EVENTS_LIMITS,
        batch_limits=lifted if fast else BATCH_LIMITS,
        batch=BatchSettings(delay=0.02 if fast else BatchSettings().delay),
        campaigns=Campaigns.from_json(sample_data_path().parent / "campaigns.json"),
        existing_share=0.7,
        preview_limits=RateLimits.unlimited() if fast else PREVIEW_LIMITS,
    )


@dataclass(frozen=True, slots=True)
class Demo:
    """One demo's keywords: what the send and the preview of the sample take."""

    send: dict[str, Any]
    preview: dict[str, Any]


def demo_options(
    emulator: Emulator, *, mode: str, fast: bool, progress: bool | None, ledger: str | None
) -> Demo:
    """The keywords that send the sample to ``emulator`` (and preview it there first)."""
    from ._emulator import DEFAULT_SECRET_KEY

    unlimited = RateLimits.unlimited()
    send = {
        "base_url": emulator.base_url,
        "api_key": emulator.api_key,
        "secret_key": DEFAULT_SECRET_KEY,
        "mode": mode,
        "limits": unlimited if fast else EVENTS_LIMITS,
        "batch_limits": unlimited if fast else BATCH_LIMITS,
        "progress": progress,
        "ledger": ledger,
    }
    preview = {
        "base_url": emulator.base_url,
        "api_key": emulator.api_key,
        "progress": progress,
        "preview_limits": unlimited if fast else None,
    }
    return Demo(send=send, preview=preview)


def awarded(emulator: Emulator) -> tuple[int, int, int]:
    """What the demo's Gameball recorded: events accepted, points awarded, answers lost."""
    accepted = len(emulator.events())
    points = int(emulator.awards()["points"].sum())
    return accepted, points, emulator.counters.get("lost_response", 0)
