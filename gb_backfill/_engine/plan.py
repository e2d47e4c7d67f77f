"""The dry run: what a send would do, with no network call.

``plan(...)``, the dry run of ``send``, reads and prepares every row exactly as a live run
would (see :mod:`gb_backfill._engine.prepare`; in batch mode after the same count of each
customer's rows and the same routing of the busiest to the events lane), judges each row by the
live run's own rule (:mod:`gb_backfill._engine.fate`, with the ledger opened read-only: what it
skips, holds, fails again or folds), and returns a :class:`~gb_backfill._reports.plan.SendPlan`:
counts, customers, event names (an order counts as the ``place_order`` event Gameball records
for it), requests and rows per lane, and the time each mode would take,
from the model of :mod:`gb_backfill._engine.makespan` that routes a live run. ``bodies_path=``
writes every body to JSONL, one line per request of the events lane or item of the batch lane
(how a live run groups items into jobs depends on timing; the items are the same). Each pass
over the input runs off the event loop.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

import pandas as pd

from .. import _gameball as gameball
from .._config import RateLimits, Settings
from .._errors import ConfigError
from .._reports.plan import SendPlan
from .._rows.loose import ChangedRows, rows_look_like
from .._rows.mapping import ColumnMapping
from .._rows.warnings import WarningTally
from .._store.companions import refuse_missing_ledger
from .._store.ledger import Ledger
from .._sync import offload
from .._vocabulary import Lane
from .chunks import OutgoingRow
from .fate import Fate, Judge, unchanged_invalid
from .makespan import (
    LaneCosts,
    Loads,
    assumed_costs,
    batch_seconds,
    events_seconds,
    route,
    routes,
)
from .makespan import minimum_seconds as minimum_seconds  # the benches' and tests' import
from .passes import find_folds, read_another_way, route_customers
from .prepare import Prepared, Preparer

__all__: list[str] = []


@dataclass(slots=True)
class _Tally:
    """What the dry run counts as it goes."""

    rows: int = 0
    invalid: int = 0
    skipped: int = 0
    folded: int = 0
    unknown: int = 0
    failed: int = 0
    changed: int = 0
    fixed_before: int = 0  #: invalid rows whose fixed copies an earlier run sent
    invalid_folded: int = 0  #: invalid rows with a copy elsewhere in the input (folded)
    invalid_held: int = 0  #: invalid rows whose fixed copy is held as unknown
    per_customer: Counter[str] = field(default_factory=Counter)
    batch_customer: Counter[str] = field(default_factory=Counter)
    events_customer: Counter[str] = field(default_factory=Counter)
    orders_customer: Counter[str] = field(default_factory=Counter)  #: orders, either lane
    #: events a batch job could carry, and those only the events lane can (an email, a mobile,
    #: a token), per customer: what an events-mode plan routes as a batch-mode run would
    batchable: Counter[str] = field(default_factory=Counter)
    unbatchable: Counter[str] = field(default_factory=Counter)
    names: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    lanes: Counter[Lane] = field(default_factory=Counter)

    def add(self, row: OutgoingRow) -> None:
        self.lanes[row.lane] += 1
        self.per_customer[row.customer] += 1
        if row.lane in (Lane.BATCH, Lane.BATCH_ORDERS):
            self.batch_customer[row.customer] += 1
        elif row.lane is Lane.EVENTS:
            self.events_customer[row.customer] += 1
        if row.lane.carries_orders:  # Gameball records each order as this event
            self.orders_customer[row.customer] += 1
            self.names[gameball.PLACE_ORDER_EVENT] += 1
        else:
            self.names.update(list(json.loads(row.body)["events"]))
            (self.batchable if row.plain else self.unbatchable)[row.customer] += 1


def _plan_chunk(
    prepared: Prepared, tally: _Tally, judge: Judge, out: IO[str] | None, api: str
) -> None:
    """Count one chunk as the live run would settle it (:mod:`gb_backfill._engine.fate`), and
    write its bodies."""
    chunk = prepared.chunk
    tally.rows += len(chunk.frame)
    verdicts = judge(prepared)
    if prepared.worst is not None:
        judged = [verdicts.invalid(n) for n in range(len(prepared.worst))]
        invalid = [fate is Fate.INVALID for fate in judged]
        tally.codes.update(prepared.worst["code"][invalid])
        # Invalid here, but their fixed copies were sent before: skipped, and not valid. An
        # invalid row with a copy in this input (fixed or not) is folded into that copy.
        tally.fixed_before += judged.count(Fate.SKIP)
        tally.invalid_folded += judged.count(Fate.FOLD)
        tally.invalid_held += judged.count(Fate.HOLD)
    for row, fate in zip(prepared.rows, verdicts.rows, strict=True):
        if fate is Fate.SEND:
            tally.add(row)
            if out is not None:
                out.write(_line(row, api))
        elif fate is Fate.INVALID:  # a failures file's invalid row, sent again as it was
            tally.codes[unchanged_invalid(chunk.frame, row.local)[0]] += 1
    fates = verdicts.counts()
    tally.invalid += fates[Fate.INVALID]
    tally.skipped += fates[Fate.SKIP] + fates[Fate.FOLD]
    tally.folded += fates[Fate.FOLD]
    tally.unknown += fates[Fate.HOLD]
    tally.failed += fates[Fate.FAILED]
    tally.changed += fates[Fate.CHANGED]


def _open_bodies(path: str | os.PathLike[str]) -> IO[str]:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return Path(path).open("w", encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            "cannot write the request bodies to {path} ({reason}); choose another path with "
            "{bodies_path=PATH}",
            option="bodies_path",
            path=path,
            reason=error.strerror or error,
        ) from None


async def plan_run(
    read: Callable[[], Iterator[pd.DataFrame]],
    *,
    settings: Settings,
    mapping: ColumnMapping,
    ledger_path: str | os.PathLike[str] | None,
    bodies_path: str | os.PathLike[str] | None,
    columns: Sequence[Hashable] = (),
) -> SendPlan:
    """Prepare every row as a live run would, judge it by the live run's rule (see
    :mod:`gb_backfill._engine.fate`), and plan; no network call, no write to the ledger. Each
    pass over the input runs off the event loop, a chunk at a time."""
    tally = _Tally()
    warnings = WarningTally(mapping)
    with contextlib.ExitStack() as stack:
        out: IO[str] | None = None
        if bodies_path is not None:  # before the input is read: a wrong path fails at once
            out = stack.enter_context(_open_bodies(bodies_path))
        ledger = None
        if ledger_path is not None and not settings.rebuild_ledger:
            refuse_missing_ledger(Path(ledger_path))  # as the live run would refuse it
        if ledger_path is not None and Path(ledger_path).exists():
            ledger = Ledger(ledger_path, read_only=True)
            stack.callback(ledger.close)
        costs = assumed_costs(settings)
        routed = routes(settings) and mapping.order is None  # as the live run routes
        routing = await route_customers(read, settings, mapping) if routed else None
        judge = Judge(settings, ledger, await find_folds(read, settings, columns),
                      check_changed=True)  # fmt: skip
        preparer = Preparer(
            settings, mapping, loose=ledger is not None, routing=routing, warnings=warnings,
            former=ledger is not None and ledger.keeps_names_as_written(),
        )  # fmt: skip
        stack.callback(preparer.close)
        offset = 0

        def plan_chunk(frame: pd.DataFrame) -> None:
            prepared = preparer.prepare(frame, offset)
            _plan_chunk(prepared, tally, judge, out, settings.api_version)

        chunks = read()
        while (frame := await offload(next, chunks, None)) is not None:
            await offload(plan_chunk, frame)
            offset += len(frame)
        before = read_another_way(ledger, settings)  # as the live refusal reads it
    plan = replace(_plan(tally, settings, costs, bodies_path), warnings=warnings.frame())
    if settings.resend_changed:
        return plan
    if tally.changed:  # the live run sends nothing: said so, and the dry run exits as it does
        refusal = ConfigError(
            "{rows} an earlier run sent (changed, above): nothing would be sent",
            option="resend_changed", rows=rows_look_like(tally.changed),
        )  # fmt: skip
        return replace(plan, read_before=before, live_refusal=refusal)
    if before is None or not plan.sending:
        return plan
    # Rows that look new only because they are read another way: the live run refuses them.
    template, values = ChangedRows().message(before, sending=plan.sending)
    return replace(plan, live_refusal=ConfigError(template, option="resend_changed", **values))


def _most(counts: Counter[str]) -> int:
    return counts.most_common(1)[0][1] if counts else 0


def _estimates(tally: _Tally, settings: Settings, costs: LaneCosts) -> dict[str, float]:
    """Each mode's time, by the model a live run is routed with
    (:mod:`gb_backfill._engine.makespan`)."""
    sendable = sum(tally.lanes.values())
    # Orders one per request in events mode (a batch-mode plan's job orders too): a lane of
    # their own at the orders limits, beside the events'.
    orders = replace(costs, events_limits=settings.order_limits)
    orders_rows = tally.lanes[Lane.ORDERS] + tally.lanes[Lane.BATCH_ORDERS]
    ordered = events_seconds(orders_rows, _most(tally.orders_customer), orders)
    events_rows = sendable - orders_rows
    events_mode = max(events_seconds(events_rows, _most(tally.per_customer), costs), ordered)
    if settings.mode == Lane.BATCH:  # the split the rows were prepared with
        jobs = tally.lanes[Lane.BATCH] + tally.lanes[Lane.BATCH_ORDERS]
        batch_mode = max(
            events_seconds(tally.lanes[Lane.EVENTS], _most(tally.events_customer), costs),
            batch_seconds(jobs, _chain(tally.batch_customer, settings), costs),
        )
    else:  # routed as a batch-mode run would route these rows
        unbatchable = sum(tally.unbatchable.values())
        busiest = dict(tally.batchable.most_common(_ROUTED_AT_MOST))
        loads = Loads(
            events_rows=unbatchable, events_chain=_most(tally.unbatchable),
            batch_rows=sendable - unbatchable, busiest=busiest,
        )  # fmt: skip
        batch_mode = route(loads, costs, keep_order=settings.keep_order).seconds
    return {Lane.EVENTS.value: events_mode, Lane.BATCH.value: batch_mode}


_ROUTED_AT_MOST = 10_000  # customers an events-mode plan considers moving, busiest first


def _chain(counts: Counter[str], settings: Settings) -> int:
    return _most(counts) if settings.keep_order else min(_most(counts), 1)


def _plan(
    tally: _Tally,
    settings: Settings,
    costs: LaneCosts,
    bodies_path: str | os.PathLike[str] | None,
) -> SendPlan:
    busiest = tally.per_customer.most_common(1)
    requests = {Lane.EVENTS.value: tally.lanes[Lane.EVENTS]}
    if tally.lanes[Lane.ORDERS]:
        requests[Lane.ORDERS.value] = tally.lanes[Lane.ORDERS]
    lane_rows: dict[str, int] = {}
    lane_seconds: dict[str, float] = {}
    if settings.mode == Lane.BATCH:
        # At least one job per 1,000 items, and one per row of the busiest customer.
        jobs = math.ceil(tally.lanes[Lane.BATCH] / gameball.MAX_ITEMS_PER_JOB)
        requests[Lane.BATCH.value] = max(jobs, _chain(tally.batch_customer, settings))
        if tally.lanes[Lane.BATCH_ORDERS]:
            jobs = math.ceil(tally.lanes[Lane.BATCH_ORDERS] / gameball.MAX_ORDERS_PER_JOB)
            requests[Lane.BATCH_ORDERS.value] = max(jobs, _chain(tally.orders_customer, settings))
        lane_rows = {lane.value: tally.lanes[lane] for lane in Lane
                     if tally.lanes[lane] or not lane.carries_orders}  # fmt: skip
        lane_seconds = _lane_seconds(tally, settings, costs)
    return SendPlan(
        mode=settings.mode,
        rows=tally.rows,
        valid=tally.rows
        - tally.invalid
        - tally.fixed_before
        - tally.invalid_folded
        - tally.invalid_held,
        invalid=tally.invalid,
        fixed_before=tally.fixed_before,
        invalid_folded=tally.invalid_folded,
        invalid_held=tally.invalid_held,
        events_only_rows=sum(tally.unbatchable.values()),
        skipped=tally.skipped,
        changed=tally.changed,
        unknown=tally.unknown,
        failed=tally.failed,
        folded=tally.folded,
        customers=len(tally.per_customer),
        busiest_customer=busiest[0][0] if busiest else None,
        busiest_rows=busiest[0][1] if busiest else 0,
        event_names=dict(tally.names.most_common()),
        failure_codes=dict(tally.codes.most_common()),
        requests=requests,
        estimated_seconds=_estimates(tally, settings, costs),
        lane_rows=lane_rows,
        lane_seconds=lane_seconds,
        events_lane_customers=len(tally.events_customer),
        round_trip=costs.round_trip,
        job_seconds=costs.job_seconds,
        pace=_pace(settings, orders=bool(tally.lanes[Lane.ORDERS])),
        warning=gameball.history_warning(
            events=any(tally.lanes[lane] for lane in Lane if not lane.carries_orders),
            orders=any(tally.lanes[lane] for lane in Lane if lane.carries_orders),
        ),
        reserve=settings.reserve,
        bodies_path=Path(bodies_path) if bodies_path is not None else None,
    )


def _lane_seconds(tally: _Tally, settings: Settings, costs: LaneCosts) -> dict[str, float]:
    """Batch mode's split: the time each lane's rows take at its limits."""
    seconds = {
        Lane.EVENTS.value: events_seconds(
            tally.lanes[Lane.EVENTS], _most(tally.events_customer), costs
        ),
        Lane.BATCH.value: batch_seconds(
            tally.lanes[Lane.BATCH], _chain(tally.batch_customer, settings), costs
        ),
    }
    if tally.lanes[Lane.BATCH_ORDERS]:
        seconds[Lane.BATCH_ORDERS.value] = batch_seconds(
            tally.lanes[Lane.BATCH_ORDERS], _chain(tally.orders_customer, settings), costs
        )
    if tally.lanes[Lane.ORDERS]:
        seconds[Lane.ORDERS.value] = events_seconds(
            tally.lanes[Lane.ORDERS], _most(tally.orders_customer),
            replace(costs, events_limits=settings.order_limits),
        )  # fmt: skip
    return seconds


def _pace(settings: Settings, *, orders: bool) -> dict[str, RateLimits]:
    """The limits each lane of the run's mode keeps to (less the reserve)."""
    pace = {Lane.EVENTS.value: settings.limits}
    if orders:
        pace[Lane.ORDERS.value] = settings.order_limits
    if settings.mode == Lane.BATCH:
        pace[Lane.BATCH.value] = settings.batch_limits
    return pace


def _line(row: OutgoingRow, api_version: str) -> str:
    if row.lane is Lane.EVENTS:
        version = gameball.TOKEN_API_VERSION if row.token else api_version
        path = gameball.EVENTS_PATH.format(version=version)
    elif row.lane is Lane.ORDERS:
        path = gameball.ORDERS_PATH.format(version=api_version)
    elif row.lane is Lane.BATCH_ORDERS:
        path = gameball.ORDERS_BATCH_CREATE_PATH
    else:
        path = gameball.BATCH_CREATE_PATH
    # The body goes in as the bytes a live run sends: parsed and dumped again, a decimal such as
    # 12345678901234567.89 would come out rounded to a float.
    lane = json.dumps(row.lane.value)
    return f'{{"lane": {lane}, "body": {row.body.decode()}, "path": {json.dumps(path)}}}\n'
