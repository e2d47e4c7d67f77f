"""The dry run: what a send would do, with no network call.

``send(..., dry_run=True)`` reads and checks every row, builds exactly the request bodies a live
run would send, asks the ledger (read-only) what an earlier run already sent, and returns a
:class:`SendPlan`: counts, customers, event names, requests per lane, and the time each mode
would take at the configured limits. ``bodies_path=`` writes every body to JSONL, one line per
request of the events lane or item of the batch lane (how a live run groups items into jobs
depends on timing; the items are the same).
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
from typing import IO, TYPE_CHECKING

import pandas as pd

from ._config import RateLimits
from ._html import table
from ._ledger import Ledger, refuse_missing_ledger
from ._loose import loose_keys
from ._mapping import ColumnMapping
from ._payloads import encode_rows
from ._row_keys import ContentKeys, keys_for
from ._rules import check_frame, first_failures

if TYPE_CHECKING:
    from ._sender import Settings

__all__ = ["HISTORY_WARNING", "SendPlan"]

#: Said by the plan, by the CLI before a live send to the real API, and by the README.
HISTORY_WARNING = (
    "Gameball stamps events when it receives them and evaluates them against live campaigns: "
    "a backfill can award real points and send real notifications, and an unknown customerId "
    "creates a customer. Try it with a test API key first."
)
_EVENTS_PATH = "/api/v{version}/integrations/events"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class SendPlan:
    """What a send would do; made by ``send(..., dry_run=True)``. Nothing was sent.

    ``requests`` counts requests per lane for the chosen ``mode``; for the batch lane it is the
    least number of jobs (1,000 items each, one row per customer per job); a live run may post
    more, part-full, as rows become ready. ``estimated_seconds`` gives, for each mode, the
    least time at the configured limits; in batch mode the busiest customer
    (``busiest_customer``, ``busiest_rows``) is the critical path when order is kept, one job
    cycle per row.
    """

    mode: str
    rows: int
    valid: int
    invalid: int
    skipped: int
    #: rows that look like rows an earlier run sent, written differently: a live run stops
    #: before sending anything unless ``resend_changed=True``
    changed: int
    customers: int
    busiest_customer: str | None
    busiest_rows: int
    event_names: dict[str, int]
    failure_codes: dict[str, int]
    requests: dict[str, int]
    estimated_seconds: dict[str, float]
    bodies_path: Path | None = None
    warning: str = field(default=HISTORY_WARNING)

    def __repr__(self) -> str:
        lanes = " ".join(f"{lane}={count:,}" for lane, count in self.requests.items())
        return (
            f"<SendPlan rows={self.rows:,} valid={self.valid:,} invalid={self.invalid:,} "
            f"skipped={self.skipped:,} requests: {lanes} (mode={self.mode})>"
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("rows", self.rows),
            ("valid", self.valid),
            ("invalid", self.invalid),
            ("skipped (sent before)", self.skipped),
            ("changed since sent (see resend_changed)", self.changed),
            ("customers", self.customers),
        ]
        if self.busiest_customer is not None:
            rows.append(
                ("busiest customer", f"{self.busiest_customer} ({self.busiest_rows:,} rows)")
            )
        rows += [(f"event: {name}", count) for name, count in self.event_names.items()]
        rows += [(f"requests, {lane} lane", count) for lane, count in self.requests.items()]
        rows += [
            (f"estimated time, {mode} mode", _duration(seconds))
            for mode, seconds in self.estimated_seconds.items()
        ]
        rows += [(f"invalid: {code}", count) for code, count in self.failure_codes.items()]
        if self.bodies_path is not None:
            rows.append(("request bodies", str(self.bodies_path)))
        return table(
            f"Gameball dry run ({self.mode} mode): nothing was sent", rows, note=self.warning
        )

    def summary(self) -> str:
        """Aligned lines for a terminal."""
        lines = [
            repr(self),
            f"  customers: {self.customers:,} (busiest: {self.busiest_customer!r} with "
            f"{self.busiest_rows:,} rows)",
        ]
        names = ", ".join(f"{name}: {count:,}" for name, count in self.event_names.items())
        lines.append(f"  event names: {names or '(none)'}")
        if self.changed:
            lines.append(
                f"  changed: {self.changed:,} rows look like rows an earlier run sent, written "
                "differently; a live run stops before sending unless resend_changed=True "
                "(--resend-changed)"
            )
        for mode, seconds in self.estimated_seconds.items():
            lines.append(f"  estimated time in {mode} mode: {_duration(seconds)}")
        lines += [f"  invalid, {code}: {count:,}" for code, count in self.failure_codes.items()]
        if self.bodies_path is not None:
            lines.append(f"  request bodies written to {self.bodies_path}")
        lines.append(f"  note: {self.warning}")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def dry_run(
    batches: Iterator[pd.DataFrame],
    *,
    settings: Settings,
    mapping: ColumnMapping,
    ledger_path: str | os.PathLike[str] | None,
    bodies_path: str | os.PathLike[str] | None,
) -> SendPlan:
    """Check and encode every row as a live run would, and plan; no network call."""
    rows = invalid = skipped = changed = 0
    per_customer: Counter[str] = Counter()
    batch_customer: Counter[str] = Counter()
    names: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    lanes: Counter[str] = Counter()
    with contextlib.ExitStack() as stack:
        ledger = None
        if ledger_path is not None and Path(ledger_path).exists():
            ledger = Ledger(ledger_path, read_only=True)
            stack.callback(ledger.close)
        elif ledger_path is not None and not settings.rebuild_ledger:
            refuse_missing_ledger(Path(ledger_path))
        keys = ContentKeys()
        stack.callback(keys.close)
        out: IO[str] | None = None
        if bodies_path is not None:
            Path(bodies_path).parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(Path(bodies_path).open("w", encoding="utf-8"))
        for frame in batches:
            rows += len(frame)
            checked = check_frame(frame, mapping)
            if checked.invalid.any():
                worst = first_failures(checked.failures)
                invalid += len(worst)
                codes.update(worst["code"])
            encoded = encode_rows(frame, checked)
            row_keys = keys_for(
                frame,
                encoded.positions,
                encoded.bodies,
                row_key=settings.row_key,
                counter=keys,
            ).keys
            known = ledger.lookup(row_keys) if ledger is not None and row_keys else {}
            if ledger is not None and row_keys:
                looses, _ = loose_keys(frame, checked, encoded, keys)
                changed += len(ledger.changed(row_keys, looses))
            plain = encoded.plain.tolist()
            tokens = encoded.session_tokens or [None] * len(encoded)
            for index, (customer, body, token) in enumerate(
                zip(encoded.customer_ids, encoded.bodies, tokens, strict=True)
            ):
                entry = known.get(row_keys[index])
                if entry is not None and entry.status == "sent":
                    skipped += 1
                    continue
                lane = "batch" if settings.mode == "batch" and plain[index] else "events"
                lanes[lane] += 1
                per_customer[customer] += 1
                if lane == "batch":
                    batch_customer[customer] += 1
                names.update(list(json.loads(body)["events"]))
                if out is not None:
                    out.write(_line(lane, body, token, settings))
    valid = rows - invalid
    busiest = per_customer.most_common(1)
    batch_items = lanes["batch"]
    busiest_batch = batch_customer.most_common(1)[0][1] if batch_customer else 0
    requests = {"events": lanes["events"]}
    if settings.mode == "batch":
        # At least one job per 1,000 items, and one per row of the busiest customer.
        requests["batch"] = max(math.ceil(batch_items / 1000), busiest_batch)
    sendable = sum(lanes.values())
    busiest_rows = busiest[0][1] if busiest else 0
    return SendPlan(
        mode=settings.mode,
        rows=rows,
        valid=valid,
        invalid=invalid,
        skipped=skipped,
        changed=changed,
        customers=len(per_customer),
        busiest_customer=busiest[0][0] if busiest else None,
        busiest_rows=busiest_rows,
        event_names=dict(names.most_common()),
        failure_codes=dict(codes.most_common()),
        requests=requests,
        estimated_seconds={
            "events": minimum_seconds(sendable, settings.limits),
            "batch": max(
                minimum_seconds(math.ceil(sendable / 1000), settings.batch_limits),
                busiest_rows * _JOB_CYCLE if settings.keep_order else _JOB_CYCLE,
            ),
        },
        bodies_path=Path(bodies_path) if bodies_path is not None else None,
    )


def _line(lane: str, body: bytes, token: str | None, settings: Settings) -> str:
    if lane == "events":
        version = "4.1" if token else settings.api_version
        path = _EVENTS_PATH.format(version=version)
    else:
        path = "/api/v4.0/integrations/batch/events"
    # The body goes in as the bytes a live run sends: parsed and dumped again, a decimal such as
    # 12345678901234567.89 would come out rounded to a float.
    return f'{{"lane": {json.dumps(lane)}, "body": {body.decode()}, "path": {json.dumps(path)}}}\n'
