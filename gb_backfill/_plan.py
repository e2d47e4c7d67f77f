"""The dry run: what a send would do, with no network call.

``send(..., dry_run=True)`` reads and prepares every row exactly as a live run would (see
:mod:`._prepare`), asks the ledger (read-only) what an earlier run already sent, and returns a
:class:`~._reports.SendPlan`: counts, customers, event names, requests per lane, and the time
each mode would take at the configured limits. ``bodies_path=`` writes every body to JSONL, one
line per request of the events lane or item of the batch lane (how a live run groups items into
jobs depends on timing; the items are the same).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pandas as pd

from . import _gameball as gameball
from ._config import RateLimits, Settings
from ._ledger import Ledger, refuse_missing_ledger
from ._mapping import ColumnMapping
from ._prepare import Prepared, Preparer
from ._reports import SendPlan
from ._rows import Job
from ._vocabulary import Lane, LedgerStatus

__all__: list[str] = []

_JOB_CYCLE = 1.0  # seconds a batch job is assumed to take from post to result, for estimates


def minimum_seconds(requests: int, limits: RateLimits) -> float:
    """The least time ``requests`` take within ``limits`` (both windows, sliding)."""
    if requests <= 0:
        return 0.0
    per_second = limits.per_second or math.inf
    if not limits.per_window:
        return (requests - 1) / per_second if per_second < math.inf else 0.0
    full, rest = divmod(requests - 1, limits.per_window)
    return full * limits.window + (rest / per_second if per_second < math.inf else 0.0)


@dataclass(slots=True)
class _Tally:
    """What the dry run counts as it goes."""

    rows: int = 0
    invalid: int = 0
    skipped: int = 0
    changed: int = 0
    per_customer: Counter[str] = field(default_factory=Counter)
    batch_customer: Counter[str] = field(default_factory=Counter)
    names: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    lanes: Counter[Lane] = field(default_factory=Counter)

    def add(self, job: Job) -> None:
        self.lanes[job.lane] += 1
        self.per_customer[job.customer] += 1
        if job.lane is Lane.BATCH:
            self.batch_customer[job.customer] += 1
        self.names.update(list(json.loads(job.body)["events"]))


def _plan_batch(
    prepared: Prepared, tally: _Tally, ledger: Ledger | None, out: IO[str] | None, api: str
) -> None:
    batch = prepared.batch
    tally.rows += len(batch.frame)
    if prepared.worst is not None:
        tally.invalid += len(prepared.worst)
        tally.codes.update(prepared.worst["code"])
    keys = batch.keys.keys if batch.keys is not None else []
    known = ledger.lookup(keys) if ledger is not None and keys else {}
    if ledger is not None and keys and batch.loose is not None:
        tally.changed += len(ledger.changed(keys, batch.loose[0]))
    for index, job in enumerate(prepared.jobs):
        entry = known.get(keys[index])
        if entry is not None and entry.status == LedgerStatus.SENT:
            tally.skipped += 1
            continue
        tally.add(job)
        if out is not None:
            out.write(_line(job, api))


def dry_run_plan(
    batches: Iterator[pd.DataFrame],
    *,
    settings: Settings,
    mapping: ColumnMapping,
    ledger_path: str | os.PathLike[str] | None,
    bodies_path: str | os.PathLike[str] | None,
) -> SendPlan:
    """Prepare every row as a live run would, and plan; no network call, no write to the
    ledger."""
    tally = _Tally()
    with contextlib.ExitStack() as stack:
        ledger = None
        if ledger_path is not None and Path(ledger_path).exists():
            ledger = Ledger(ledger_path, read_only=True)
            stack.callback(ledger.close)
        elif ledger_path is not None and not settings.rebuild_ledger:
            refuse_missing_ledger(Path(ledger_path))
        preparer = Preparer(settings, mapping, loose=ledger is not None)
        stack.callback(preparer.close)
        out: IO[str] | None = None
        if bodies_path is not None:
            Path(bodies_path).parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(Path(bodies_path).open("w", encoding="utf-8"))
        offset = 0
        for frame in batches:
            _plan_batch(preparer.prepare(frame, offset), tally, ledger, out, settings.api_version)
            offset += len(frame)
    return _plan(tally, settings, bodies_path)


def _plan(
    tally: _Tally, settings: Settings, bodies_path: str | os.PathLike[str] | None
) -> SendPlan:
    busiest = tally.per_customer.most_common(1)
    busiest_batch = tally.batch_customer.most_common(1)[0][1] if tally.batch_customer else 0
    requests = {Lane.EVENTS.value: tally.lanes[Lane.EVENTS]}
    if settings.mode == Lane.BATCH:
        # At least one job per 1,000 items, and one per row of the busiest customer.
        jobs = math.ceil(tally.lanes[Lane.BATCH] / gameball.MAX_ITEMS_PER_JOB)
        requests[Lane.BATCH.value] = max(jobs, busiest_batch)
    sendable = sum(tally.lanes.values())
    busiest_rows = busiest[0][1] if busiest else 0
    return SendPlan(
        mode=settings.mode,
        rows=tally.rows,
        valid=tally.rows - tally.invalid,
        invalid=tally.invalid,
        skipped=tally.skipped,
        changed=tally.changed,
        customers=len(tally.per_customer),
        busiest_customer=busiest[0][0] if busiest else None,
        busiest_rows=busiest_rows,
        event_names=dict(tally.names.most_common()),
        failure_codes=dict(tally.codes.most_common()),
        requests=requests,
        estimated_seconds={
            Lane.EVENTS.value: minimum_seconds(sendable, settings.limits),
            Lane.BATCH.value: max(
                minimum_seconds(
                    math.ceil(sendable / gameball.MAX_ITEMS_PER_JOB), settings.batch_limits
                ),
                busiest_rows * _JOB_CYCLE if settings.keep_order else _JOB_CYCLE,
            ),
        },
        bodies_path=Path(bodies_path) if bodies_path is not None else None,
    )


def _line(job: Job, api_version: str) -> str:
    if job.lane is Lane.EVENTS:
        version = gameball.TOKEN_API_VERSION if job.token else api_version
        path = gameball.EVENTS_PATH.format(version=version)
    else:
        path = gameball.BATCH_CREATE_PATH
    # The body goes in as the bytes a live run sends: parsed and dumped again, a decimal such as
    # 12345678901234567.89 would come out rounded to a float.
    lane = json.dumps(job.lane.value)
    return f'{{"lane": {lane}, "body": {job.body.decode()}, "path": {json.dumps(path)}}}\n'
