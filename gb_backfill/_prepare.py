"""Turning a slice of the input into rows ready to send: checked, encoded, keyed, and laned.

This is the CPU-heavy part of a run, and it touches no run state, so the run does it off the
event loop (requests keep their pace meanwhile). The dry run and the changed-rows check prepare
rows the same way, so what they count is what a live run would send.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ._config import Settings
from ._dispatch import CustomerCounts
from ._gameball import lane_for
from ._loose import loose_keys
from ._mapping import ColumnMapping
from ._payloads import encode_rows
from ._row_keys import ContentKeys, keys_for
from ._rows import Batch, Job
from ._rules import check_frame, first_failures

__all__: list[str] = []


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch checked, encoded and keyed, ready to be admitted."""

    batch: Batch
    jobs: list[Job]  #: one per valid row
    busy: list[int]  #: each job's customer's rows so far (batch mode), else 0
    worst: pd.DataFrame | None  #: the invalid rows' first failures


class Preparer:
    """Checks, encodes and keys batches and makes their jobs: the CPU-heavy part, which touches
    no run state, so it runs off the event loop. Strictly private."""

    def __init__(self, settings: Settings, mapping: ColumnMapping, *, loose: bool) -> None:
        self.settings, self.mapping, self.loose = settings, mapping, loose
        self.content_keys = ContentKeys()
        self.customer_counts = CustomerCounts()

    def close(self) -> None:
        self.content_keys.close()

    def prepare(self, frame: pd.DataFrame, offset: int) -> Prepared:
        checked = check_frame(frame, self.mapping)
        encoded = encode_rows(frame, checked)
        keyed = keys_for(
            frame,
            encoded.positions,
            encoded.bodies,
            row_key=self.settings.row_key,
            counter=self.content_keys,
        )
        loose = loose_keys(frame, checked, encoded, self.content_keys) if self.loose else None
        batch = Batch(frame, offset, keyed, bool(self.settings.row_key), loose)
        batched = self.settings.mode == "batch"
        # How busy each row's customer is: batch mode sends the busiest first.
        busy = (
            self.customer_counts.add(encoded.customer_ids).tolist()
            if batched
            else [0] * len(encoded)
        )
        tokens = encoded.session_tokens or [None] * len(encoded)
        rows = zip(
            encoded.positions.tolist(),
            encoded.customer_ids,
            encoded.bodies,
            tokens,
            encoded.plain.tolist(),
            strict=True,
        )
        jobs = [
            Job(
                batch,
                local,
                customer,
                body,
                token,
                index,
                lane_for(batch_mode=batched, plain=plain),
            )
            for index, (local, customer, body, token, plain) in enumerate(rows)
        ]
        worst = first_failures(checked.failures) if checked.invalid.any() else None
        return Prepared(batch, jobs, busy, worst)
