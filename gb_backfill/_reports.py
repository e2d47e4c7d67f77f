"""The reports gb-backfill returns, side by side: what validation, a send and a dry run found.

* :class:`ValidationReport` (``validate()``): valid rows, one failure row per broken rule, and
  warnings (about columns, and rows that repeat one another);
* :class:`SendReport` (``send()``): a count for every status, timings, the HTTP answers, the
  limits Gameball turned out to keep, and the rows that did not make it;
* :class:`SendPlan` (``send(..., dry_run=True)``): what a send would do;
* :class:`PreviewReport` (``preview()``): what a send would award, estimated from Gameball's
  quotes for a sample of the rows.

Each shows as a compact HTML table in a notebook and as aligned text from ``summary()``; counts
are plain attributes, so tab completion finds them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ._config import RateLimits
from ._failures import read_failures, write_parquet
from ._gameball import HISTORY_WARNING, PREVIEW_CAVEATS
from ._html import table
from ._sampling import Estimate
from ._vocabulary import STATUSES
from ._warnings import empty_warnings, warning_lines

__all__ = [
    "CampaignPreview", "CustomerPreview", "EventPreview", "LedgerReport", "PreviewReport",
    "SendPlan", "SendReport", "Settlement", "ValidationReport",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of :func:`validate`.

    ``valid`` holds the valid rows with their original index; ``failures`` has one row per
    broken rule with the columns ``row`` (the original index label), ``column``, ``code``,
    ``message`` and ``value`` (the offending value as text). Every input row is either in
    ``valid`` or named in ``failures``.

    One count per thing: a row that breaks two rules is one invalid row (``invalid_rows``) and
    two failures. Counts per code (:meth:`counts`, :meth:`summary`, ``gb-backfill validate``,
    ``failures.groupby("code")``) count broken rules, each under its own code, so they can add
    up to more than the invalid rows. A send names each invalid row once, by its first broken
    rule (``gb_error_code`` in the failures file, every rule in ``gb_error_message``), and its
    counts (``SendReport.error_codes``, the CLI) count rows that way.

    ``warnings`` are about columns and about rows that repeat one another (valid rows with a
    warning are still sent): ``column``, ``code`` (a :class:`WarningCode`), ``count`` (the
    values or rows it is about), ``example`` and ``message`` (the fix).
    """

    valid: pd.DataFrame
    failures: pd.DataFrame
    rows: int
    warnings: pd.DataFrame = field(default_factory=empty_warnings)

    @property
    def ok(self) -> bool:
        """True when every row is valid."""
        return self.failures.empty

    @property
    def invalid_rows(self) -> int:
        """How many rows have at least one failure."""
        return self.rows - len(self.valid)

    def counts(self) -> pd.Series:
        """Failures per code, most frequent first."""
        return self.failures["code"].value_counts()

    @property
    def valid_rows(self) -> int:
        """How many rows are valid."""
        return len(self.valid)

    def plot(self) -> Any:
        """A matplotlib figure of the failures by code and column. Needs
        ``pip install 'gb-backfill[plot]'``."""
        from ._plot import plot_validation

        return plot_validation(self.failures, self.rows)

    def __repr__(self) -> str:
        return (
            f"<ValidationReport rows={self.rows:,} valid={len(self.valid):,} "
            f"invalid={self.invalid_rows:,}>"
        )

    def _by_code(self) -> list[tuple[str, int]]:
        if self.failures.empty:
            return []
        grouped = self.failures.groupby(["code", "column"], sort=False).size()
        ordered = grouped.sort_values(ascending=False)
        return [
            (f"{code} ({where})", int(count))
            for (code, where), count in zip(ordered.index, ordered.to_numpy(), strict=True)
        ]

    def summary(self) -> str:
        """Aligned lines for a terminal: counts, failures per code and column, then the
        warnings about columns with their fixes."""
        lines = [repr(self)]
        by_code = self._by_code()
        width = max((len(label) for label, _ in by_code), default=0)
        lines += [f"  {label:<{width}}  {count:>9,}" for label, count in by_code]
        return "\n".join(lines + warning_lines(self.warnings))

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("rows", self.rows),
            ("valid", len(self.valid)),
            ("invalid", self.invalid_rows),
        ]
        rows += [(f"failure: {label}", count) for label, count in self._by_code()]
        rows += _warning_rows(self.warnings)
        notes = ["report.failures has one row per broken rule"] if not self.ok else []
        if len(self.warnings):
            notes.append("report.warnings: columns whose values are likely not what was meant")
        return table("Gameball validation", rows, note="; ".join(notes) or None)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendReport:
    """What happened to every row of a send.

    ``counts`` has every status in :data:`STATUSES` (``sent``; ``skipped``: sent by an earlier
    run, per the ledger; ``invalid``; ``failed``; ``unknown``: may or may not have been
    processed; ``aborted``: not attempted because the run stopped), and they add up to ``rows``.
    ``failures`` holds every row that is not ``sent`` or ``skipped``, with its original columns
    and the ``gb_`` status columns; when the run wrote them to ``failures_path`` they are read
    from that file on demand, so a report never holds millions of rows. ``error_codes`` counts
    the not-sent rows per ``gb_error_code``.
    """

    counts: dict[str, int]
    rows: int
    elapsed: float
    requests: int
    http_statuses: dict[int, int]
    error_codes: dict[str, int]
    failures_path: Path | None = None
    failures_in_memory: pd.DataFrame | None = None
    interrupted: bool = False
    #: the limits Gameball enforced on events, when the run found them lower than configured:
    #: pass ``limits=report.limits_found`` next time to start at the right pace
    limits_found: RateLimits | None = None
    #: the same for batch job creation: pass ``batch_limits=report.batch_limits_found``
    batch_limits_found: RateLimits | None = None
    #: the limits the run kept (the batch limits in batch mode), for plots
    limits: RateLimits | None = None
    #: per second of the run: requests, accepted, throttled (429) and the adaptive pace
    timeline: pd.DataFrame | None = None
    #: ``skipped`` rows that were copies of a row met elsewhere in the input (the same
    #: ``gb_key``: an export and its failures file together), each sent at most once
    folded: int = 0
    #: columns whose values are likely not what was meant, and rows that repeat one another
    #: (as ``ValidationReport.warnings``)
    warnings: pd.DataFrame = field(default_factory=empty_warnings)

    @property
    def failures(self) -> pd.DataFrame:
        """Every row not sent (read from ``failures_path`` when there is one)."""
        if self.failures_in_memory is not None:
            return self.failures_in_memory
        if self.failures_path is None:
            raise ValueError("this report has neither a failures file nor failures in memory")
        return read_failures(self.failures_path)

    # The counts as plain attributes, so tab completion finds them.
    @property
    def sent(self) -> int:
        return self.counts["sent"]

    @property
    def skipped(self) -> int:
        return self.counts["skipped"]

    @property
    def invalid(self) -> int:
        return self.counts["invalid"]

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def unknown(self) -> int:
        return self.counts["unknown"]

    @property
    def aborted(self) -> int:
        return self.counts["aborted"]

    @property
    def ok(self) -> bool:
        """True when every row was sent (now or by an earlier run)."""
        return self.counts["sent"] + self.counts["skipped"] == self.rows

    @property
    def rate(self) -> float:
        """Requests per second over the run (every attempt counts, retries too)."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def plot(self) -> Any:
        """A matplotlib figure: requests over time against the limits (and the adaptive pace),
        rows by status, rows not sent by code. Needs ``pip install 'gb-backfill[plot]'``."""
        from ._plot import plot_send

        return plot_send(self.timeline, self.counts, self.error_codes, self.limits)

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the failures to a Parquet file that can be fixed and sent again."""
        write_parquet(self.failures, path)

    def __repr__(self) -> str:
        shown = " ".join(
            f"{s}={self.counts[s]:,}" for s in STATUSES if self.counts[s] or s == "sent"
        )
        return (
            f"<SendReport rows={self.rows:,} {shown} in {self.elapsed:.1f}s "
            f"({self.rate:.1f} requests/s)>"
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            (status, self.counts[status]) for status in STATUSES if self.counts[status]
        ]
        rows += [
            ("requests", self.requests),
            ("requests/s", round(self.rate, 1)),
            ("HTTP answers", _answers(self.http_statuses)),
        ]
        rows += [(f"not sent: {code}", count) for code, count in self.error_codes.items()]
        if self.folded:
            rows.append(("skipped as copies of one gb_key (folded)", self.folded))
        if self.failures_path is not None and not self.ok:
            rows.append(("rows not sent are in", str(self.failures_path)))
        rows += [(f"{option} found", _pace(found)) for option, found in self._found()]
        rows += _warning_rows(self.warnings)
        title = f"Gameball send: {self.rows:,} rows in {self.elapsed:.1f} s"
        if self.interrupted:
            title += " (interrupted)"
        advice = [f"pass {option}=report.{option}_found next time" for option, _ in self._found()]
        return table(title, rows, note="; ".join(advice) or None)

    def _found(self) -> list[tuple[str, RateLimits]]:
        """(the option to pass, the limits found) for each lane Gameball held below its limits."""
        found = [("limits", self.limits_found), ("batch_limits", self.batch_limits_found)]
        return [(option, limits) for option, limits in found if limits is not None]

    def summary(self) -> str:
        """A few lines for people: counts, rate, HTTP answers."""
        lines = [repr(self)]
        if self.http_statuses:
            lines.append(f"  HTTP answers: {_answers(self.http_statuses)}")
        if self.error_codes:
            lines.append("  rows not sent, by gb_error_code (an invalid row by its first rule):")
        lines += [f"    {code}: {count:,}" for code, count in self.error_codes.items()]
        for option, found in self._found():
            what = "events" if option == "limits" else "batch job creation"
            flags = "--rate/--quota" if option == "limits" else "--batch-rate/--batch-quota"
            lines.append(
                f"  Gameball's limits for {what} on this account are lower than configured: it "
                f"settled at {_pace(found)}; pass {option}=report.{option}_found ({flags}) "
                "next time"
            )
        if self.folded:
            lines += _held_lines(0, 0, self.folded)
        if self.failures_path is not None and not self.ok:
            lines.append(f"  rows not sent are in {self.failures_path}")
        lines += [f"  {line}" for line in warning_lines(self.warnings)]
        return "\n".join(lines)


def _pace(limits: RateLimits) -> str:
    """The limits as a user writes them; 0 lifts a limit."""
    parts = [
        f"{limits.per_second}/s" if limits.per_second else "no limit per second",
        f"{limits.per_window:,} per {limits.window:g} s"
        if limits.per_window
        else f"no limit per {limits.window:g} s",
    ]
    return " and ".join(parts)


def _kept(limits: RateLimits | str, reserve: float) -> str:
    """The limits a run keeps to, and the share of each left for other clients of the key."""
    kept = _pace(limits) if isinstance(limits, RateLimits) else limits
    if not reserve:
        return f"{kept} (nothing left for other clients of the key)"
    return f"{kept} ({reserve:.0%} of each limit left for other clients of the key)"


def _answers(http_statuses: dict[int, int]) -> str:
    return ", ".join(f"{status}: {count:,}" for status, count in sorted(http_statuses.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class SendPlan:
    """What a send would do; made by ``send(..., dry_run=True)``. Nothing was sent.

    ``requests`` counts requests per lane for the chosen ``mode``; for the batch lane it is the
    least number of jobs (1,000 items each, one row per customer per job); a live run may post
    more, part-full, as rows become ready. ``estimated_seconds`` gives, for each mode, the time
    a run is expected to take: each lane's rows at its limits, and each customer's rows one at a
    time (one round trip each in the events lane, one job cycle each in the batch lane). In
    batch mode the busiest customers' rows take the events lane when that finishes sooner:
    ``lane_rows``, ``lane_seconds`` and ``events_lane_customers`` show the split a live run
    makes. The estimates assume a round trip (``round_trip``) and how long Gameball takes to
    process a job (``job_seconds``), neither documented. Each row is judged by the live run's
    own rule (:mod:`._fate`): ``skipped``, ``unknown``, ``failed``, ``changed`` and ``folded``
    count what a live run would settle without a request, and :attr:`sending` what it sends.
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
    #: batch mode: rows and expected seconds per lane, and the customers with rows in the
    #: events lane (empty and 0 in events mode)
    lane_rows: dict[str, int] = field(default_factory=dict)
    lane_seconds: dict[str, float] = field(default_factory=dict)
    events_lane_customers: int = 0
    round_trip: float = 0.0  #: seconds per events request assumed by the estimates
    job_seconds: float = 0.0  #: seconds Gameball is assumed to take to process a job
    #: the limits each lane of ``mode`` keeps to, by lane: the configured ones less ``reserve``
    pace: dict[str, RateLimits] = field(default_factory=dict)
    reserve: float = 0.0  #: the share of every limit left for other clients of the key
    bodies_path: Path | None = None
    warning: str = field(default=HISTORY_WARNING)
    #: columns whose values are likely not what was meant, and rows that repeat one another
    #: (as ``ValidationReport.warnings``)
    warnings: pd.DataFrame = field(default_factory=empty_warnings)
    #: rows a live run would hold as ``unknown`` (an earlier run may have sent them)
    unknown: int = 0
    #: rows a live run would report ``failed`` again without a request (failed for good before)
    failed: int = 0
    #: of ``skipped``, rows that are copies of a row met elsewhere in the input (one ``gb_key``)
    folded: int = 0

    @property
    def sending(self) -> int:
        """Rows a live run would send: every row but the invalid, skipped, unknown, failed and
        changed ones (``changed`` rows stop a live run unless ``resend_changed=True``)."""
        return sum(self.lane_rows.values()) if self.lane_rows else self.requests.get("events", 0)

    @property
    def ok(self) -> bool:
        """True when a live run would end with every row sent (now or before): what its exit
        code 0 says."""
        return not (self.invalid or self.changed or self.unknown or self.failed)

    def __repr__(self) -> str:
        lanes = " ".join(f"{lane}={count:,}" for lane, count in self.requests.items())
        held = "".join(
            f" {name}={count:,}"
            for name, count in (("unknown", self.unknown), ("failed", self.failed))
            if count
        )
        return (
            f"<SendPlan rows={self.rows:,} valid={self.valid:,} invalid={self.invalid:,} "
            f"skipped={self.skipped:,}{held} sending={self.sending:,} requests: {lanes} "
            f"(mode={self.mode})>"
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("rows", self.rows),
            ("valid", self.valid),
            ("invalid", self.invalid),
            ("skipped (sent before, or a copy in this input)", self.skipped),
            *([("of them folded (copies of one gb_key)", self.folded)] if self.folded else []),
            ("held as unknown (an earlier run may have sent them)", self.unknown),
            ("failed before, not sent again", self.failed),
            ("changed since sent (see resend_changed)", self.changed),
            ("rows it would send", self.sending),
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
        rows += [(f"{lane} lane", line) for lane, line in self._lanes().items()]
        if self.pace:
            rows.append(("pace", self._pace()))
        rows.append(("assumed", self._assumed()))
        rows += [(f"invalid: {code}", count) for code, count in self.failure_codes.items()]
        if self.bodies_path is not None:
            rows.append(("request bodies", str(self.bodies_path)))
        rows += _warning_rows(self.warnings)
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
        lines += _held_lines(self.unknown, self.failed, self.folded)
        if self.changed:
            lines.append(
                f"  changed: {self.changed:,} rows look like rows an earlier run sent, written "
                "differently; a live run stops before sending unless resend_changed=True "
                "(--resend-changed)"
            )
        for mode, seconds in self.estimated_seconds.items():
            lines.append(f"  estimated time in {mode} mode: {_duration(seconds)}")
        lines += [f"    {lane} lane: {line}" for lane, line in self._lanes().items()]
        if self.pace:
            lines.append(f"    pace: {self._pace()}")
        lines.append(f"    assumed: {self._assumed()}")
        if self.failure_codes:
            lines.append("  invalid rows, by their first broken rule (as gb_error_code):")
        lines += [f"    {code}: {count:,}" for code, count in self.failure_codes.items()]
        if self.bodies_path is not None:
            lines.append(f"  request bodies written to {self.bodies_path}")
        lines += [f"  {line}" for line in warning_lines(self.warnings)]
        lines.append(f"  note: {self.warning}")
        return "\n".join(lines)

    def _lanes(self) -> dict[str, str]:
        """Batch mode's split: each lane's rows and expected time."""
        lines = {}
        for lane, rows in self.lane_rows.items():
            seconds = self.lane_seconds.get(lane, 0.0)
            who = ""
            if lane == "events" and self.events_lane_customers:
                who = f" of {self.events_lane_customers:,} customers"
            lines[lane] = f"{rows:,} rows{who}, about {_duration(seconds)}"
        return lines

    def _pace(self) -> str:
        """The limits the run keeps to, and the share left for other clients of the key."""
        what = {"events": "events", "batch": "batch jobs"}
        kept = "; ".join(
            f"{what.get(lane, lane)} {_pace(limits)}" for lane, limits in self.pace.items()
        )
        return _kept(kept, self.reserve)

    def _assumed(self) -> str:
        return (
            f"a round trip of {self.round_trip * 1000:,.0f} ms per events request and "
            f"{self.job_seconds:g} s for Gameball to process a job"
        )


def _held_lines(unknown: int, failed: int, folded: int) -> list[str]:
    """What a send (or its plan) says of rows the ledger or the input settle without a request."""
    lines = []
    if unknown:
        lines.append(
            f"  unknown: {unknown:,} rows an earlier run may have sent are held, not sent: check "
            "them in Gameball (gb-backfill status --ledger PATH lists them), then gb-backfill "
            "settle marks them arrived or not"
        )
    if failed:
        lines.append(f"  failed before: {failed:,} rows failed for good in an earlier run")
    if folded:
        lines.append(
            f"  folded: {folded:,} rows were copies of a row met elsewhere in the input (the same "
            "gb_key: an export and its failures file together); each is sent at most once"
        )
    return lines


def _warning_rows(warnings: pd.DataFrame) -> list[tuple[str, object]]:
    """A table's rows for column warnings: the code and column, then the fix."""
    return [
        (f"warning: {code} ({column})", message)
        for column, code, message in zip(
            warnings["column"], warnings["code"], warnings["message"], strict=True
        )
    ]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


# --- the preview -------------------------------------------------------------------------------


def _plain(number: float) -> float | None:
    """A number JSON can hold: an unbounded end of an interval is None."""
    return number if math.isfinite(number) else None


def _interval(estimate: Estimate | None) -> dict[str, float | None]:
    if estimate is None:
        return {"estimate": None, "low": None, "high": None}
    ends = {"estimate": estimate.value, "low": estimate.low, "high": estimate.high}
    return {name: _plain(value) for name, value in ends.items()}


def _about(estimate: Estimate | None, unit: str = "") -> str:
    """``12,300 (95%: 10,100 to 14,800)``; "unknown" without one."""
    if estimate is None:
        return "unknown (nothing quoted)"
    value = f"{estimate.value:,.0f}{unit}"
    if estimate.low == estimate.high:
        return value  # no spread: every row quoted, or every quote alike
    return f"{value} ({estimate.confidence:.0%}: {estimate.low:,.0f} to {estimate.high:,.0f})"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventPreview:
    """One event name in a preview: its valid ``rows`` in the input, the rows ``sampled`` and
    ``quoted`` (answered), the count of each campaign ``reason`` and invalid event reason in
    its quotes, whether Gameball does not know the name (``not_found_event``), quotes whose
    customer does not exist, and its ``points`` estimated over its rows."""

    name: str
    rows: int
    sampled: int
    quoted: int
    reasons: dict[str, int]
    not_found_event: bool
    invalid_metadata: int
    customers_not_found: int
    points: Estimate | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignPreview:
    """A campaign that rewarded sampled rows: the rows it rewarded in the sample
    (``sampled_hits``), and the rows it would reward (``hits``) and the points it would award
    (``points``, 0 for a coupon) over the whole input."""

    id: Any
    name: str
    reward_type: str
    coupon_type: str | None
    sampled_hits: int
    hits: Estimate
    points: Estimate


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerPreview:
    """Customers in a preview: distinct customers quoted (``sampled``) and, of them, those
    Gameball does not know (``not_found``); the share of valid rows whose customer does not
    exist, and the customers a live send would create (``estimated_new``; None when the count
    of each sampled customer's rows did not finish)."""

    sampled: int
    not_found: int
    not_found_share: Estimate | None
    estimated_new: Estimate | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviewReport:
    """What sending the input would award, from Gameball's reward preview of a sample of its
    valid rows; made by :func:`preview`. Nothing was sent and nothing was awarded.

    ``rows`` were read, ``valid`` of them valid, ``skipped`` left out as an earlier run sent
    them (with ``ledger=``), ``sampled`` of the rest quoted (``quoted`` answered, in
    ``requests`` requests). ``points`` estimates the points of the whole input with its 95%
    interval (an :class:`Estimate`: ``value``, ``low``, ``high``); ``events``,
    ``campaigns``, ``coupons`` (estimated count by coupon type) and ``customers`` break it
    down. ``quotes`` holds the sampled rows with their original columns and each quote
    (``gb_quote``: quoted, customer_not_found, failed, not_asked; ``gb_points``,
    ``gb_reasons``, ``gb_answer`` as JSON, ``gb_body`` the request body its send would carry).
    Event names with no answered quote are not estimated: their rows are ``unquoted_rows``.
    What a quote cannot see is in ``caveats``.
    """

    rows: int
    valid: int
    skipped: int
    sampled: int
    quoted: int
    requests: int
    elapsed: float
    interrupted: bool
    points: Estimate | None
    events: dict[str, EventPreview]
    campaigns: list[CampaignPreview]
    coupons: dict[str, Estimate]
    customers: CustomerPreview
    unquoted_rows: int
    http_statuses: dict[int, int]
    quotes: pd.DataFrame
    caveats: str = PREVIEW_CAVEATS
    #: columns whose values are likely not what was meant (as ``ValidationReport.warnings``):
    #: amounts written as text are quoted as text, and a campaign on them awards nothing
    warnings: pd.DataFrame = field(default_factory=empty_warnings)
    #: the limits the quotes kept to: ``preview_limits`` less ``reserve``, the share of each
    #: limit left for other clients of the key
    pace: RateLimits | None = None
    reserve: float = 0.0

    @property
    def unknown_events(self) -> list[str]:
        """Event names Gameball does not know (``EventNotFound``): their rows award nothing."""
        return [name for name, event in self.events.items() if event.not_found_event]

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, strings and lists (what ``--json`` writes); no key is in it."""
        customers = self.customers
        return {
            "rows": self.rows,
            "valid": self.valid,
            "skipped": self.skipped,
            "sampled": self.sampled,
            "quoted": self.quoted,
            "requests": self.requests,
            "interrupted": self.interrupted,
            "unquoted_rows": self.unquoted_rows,
            "points": _interval(self.points),
            "customers": {
                "sampled": customers.sampled,
                "not_found": customers.not_found,
                "not_found_share": _interval(customers.not_found_share)["estimate"],
                "not_found_share_interval": _interval(customers.not_found_share),
                "estimated_new": _interval(customers.estimated_new)["estimate"],
                "estimated_new_interval": _interval(customers.estimated_new),
            },
            "events": {
                name: {
                    "rows": event.rows,
                    "sampled": event.sampled,
                    "quoted": event.quoted,
                    "reasons": dict(event.reasons),
                    "not_found_event": event.not_found_event,
                    "customers_not_found": event.customers_not_found,
                    "points": _interval(event.points),
                }
                for name, event in self.events.items()
            },
            "campaigns": [
                {
                    "id": campaign.id,
                    "name": campaign.name,
                    "reward_type": campaign.reward_type,
                    "coupon_type": campaign.coupon_type,
                    "sampled_hits": campaign.sampled_hits,
                    "estimated_hits": campaign.hits.value,
                    "estimated_points": campaign.points.value,
                }
                for campaign in self.campaigns
            ],
            "coupons": {kind: estimate.value for kind, estimate in self.coupons.items()},
            "warnings": [
                {**warning, "column": str(warning["column"]), "count": int(warning["count"])}
                for warning in self.warnings.to_dict("records")
            ],
            "pace": None
            if self.pace is None
            else {
                "per_second": self.pace.per_second,
                "per_window": self.pace.per_window,
                "window": self.pace.window,
                "reserve": self.reserve,
            },
            "caveats": self.caveats,
        }

    def plot(self) -> Any:
        """A matplotlib figure: points by event name with their intervals, and the reasons of
        each event name's quotes. Needs ``pip install 'gb-backfill[plot]'``."""
        from ._plot import plot_preview

        points = {
            name: (e.points.value, e.points.low, e.points.high)
            for name, e in self.events.items()
            if e.points is not None
        }
        return plot_preview(points, {name: e.reasons for name, e in self.events.items()})

    def __repr__(self) -> str:
        stopped = " (interrupted)" if self.interrupted else ""
        return (
            f"<PreviewReport rows={self.rows:,} valid={self.valid:,} sampled={self.sampled:,} "
            f"quoted={self.quoted:,} points~{_about(self.points)}{stopped}>"
        )

    def _lines(self) -> list[tuple[str, object]]:
        customers = self.customers
        rows: list[tuple[str, object]] = [
            ("points, whole input", _about(self.points)),
            ("rows", self.rows),
            ("valid rows", self.valid),
            *([("left out, sent by an earlier run", self.skipped)] if self.skipped else []),
            ("rows quoted", f"{self.quoted:,} of {self.sampled:,} sampled"),
        ]
        if self.unknown_events:
            rows.append(("event names Gameball does not know", ", ".join(self.unknown_events)))
        if customers.not_found_share is not None:
            share = customers.not_found_share
            rows.append(
                ("rows of customers who do not exist",
                 f"{share.value:.1%} ({share.low:.1%} to {share.high:.1%})")
            )  # fmt: skip
        if customers.estimated_new is not None:
            rows.append(("customers a send would create", _about(customers.estimated_new)))
        for name, event in self.events.items():
            rows.append((f"event {name}", f"{event.rows:,} rows, points {_about(event.points)}"))
        rows += [
            (f"campaign {c.name}",
             f"rewards ~{c.hits.value:,.0f} rows, {c.points.value:,.0f} points")
            for c in self.campaigns
        ]  # fmt: skip
        rows += [(f"coupons, {kind}", _about(count)) for kind, count in self.coupons.items()]
        if self.unquoted_rows:
            rows.append(("rows not estimated (no quote answered)", self.unquoted_rows))
        if self.pace is not None:
            rows.append(("pace of the quotes", _kept(self.pace, self.reserve)))
        return rows

    def _repr_html_(self) -> str:
        title = f"Gameball reward preview: {self.rows:,} rows, {self.quoted:,} quoted"
        if self.interrupted:
            title += " (interrupted)"
        return table(title, self._lines() + _warning_rows(self.warnings), note=self.caveats)

    def summary(self) -> str:
        """Aligned lines for a terminal: the estimate, unknown event names, customers to be
        created, the breakdown and the caveats."""
        lines = [repr(self)]
        lines += [f"  {label}: {value:,}" if isinstance(value, int) else f"  {label}: {value}"
                  for label, value in self._lines()]  # fmt: skip
        lines += [f"  {line}" for line in warning_lines(self.warnings)]
        lines.append(f"  note: {self.caveats}")
        return "\n".join(lines)


# --- the ledger, between runs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerReport:
    """What a ledger knows; made by :func:`ledger_status` (``gb-backfill status``).

    ``counts`` has every ledger status (``sent``, ``failed``, ``unknown``, ``aborted``,
    ``invalid``, and ``in_flight``: rows a crash left with their request out). ``unknown``
    holds the rows whose outcome is not known (``unknown`` and ``in_flight``), one each, with
    what was sent: ``gb_key``, ``customer_id``, ``event``, ``metadata`` (JSON text), ``email``,
    ``mobile``, ``sent_at`` (UTC), ``status``, ``error_code``, ``error_message``,
    ``input_row``; look them up in Gameball, then :func:`settle` them. ``settled`` counts the
    rows settled by hand so far, per verdict (``arrived``, ``not_arrived``).
    """

    path: Path
    counts: dict[str, int]
    unknown: pd.DataFrame
    settled: dict[str, int] = field(default_factory=dict)
    #: the database is missing and this is what its journal holds
    journal_only: bool = False

    @property
    def rows(self) -> int:
        """Rows the ledger records."""
        return sum(self.counts.values())

    def __repr__(self) -> str:
        shown = " ".join(f"{status}={count:,}" for status, count in self.counts.items() if count)
        return f"<LedgerReport {self.path} rows={self.rows:,} {shown}>".replace("  ", " ")

    def summary(self, *, limit: int | None = 20) -> str:
        """Lines for a terminal: the counts (every status), the settlements, and the unknown rows
        (the first ``limit``; None: every one)."""
        if self.journal_only:
            lines = [
                f"ledger {self.path}: the database is missing; its journal holds {self.rows:,} "
                "rows (send again with --rebuild-ledger to rebuild the ledger from them)"
            ]
        else:
            lines = [f"ledger {self.path}: {self.rows:,} rows recorded"]
        in_flight_last = sorted(self.counts, key=lambda status: status == "in_flight")
        lines += [f"  {status}: {self.counts[status]:,}" for status in in_flight_last]
        for verdict, count in sorted(self.settled.items()):
            lines.append(f"  (settled by hand as {verdict.replace('_', ' ')}: {count:,})")
        if len(self.unknown):
            lines.append(
                f"rows whose outcome is unknown ({len(self.unknown):,}): look each up in "
                "Gameball, then `gb-backfill settle --ledger PATH --arrived|--not-arrived "
                "--key GB_KEY` (or --keys-file, or --all)"
            )
            columns = ["gb_key", "customer_id", "event", "metadata", "sent_at", "status"]
            shown = self.unknown if limit is None else self.unknown.head(limit)
            lines.append(shown[columns].to_string(index=False))
            if len(shown) < len(self.unknown):
                lines.append(f"  ... {len(self.unknown) - len(shown):,} more (--all shows them)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, strings and lists (what ``gb-backfill status --json`` writes)."""
        unknown = self.unknown.astype(object).where(self.unknown.notna(), None)
        if "sent_at" in unknown.columns:
            unknown["sent_at"] = [
                None if at is None else pd.Timestamp(at).isoformat() for at in unknown["sent_at"]
            ]
        unknown = unknown.drop(columns=["updated_at"], errors="ignore")
        return {
            "ledger": str(self.path),
            "rows": self.rows,
            "counts": dict(self.counts),
            "settled": dict(self.settled),
            "journal_only": self.journal_only,
            "unknown": unknown.to_dict("records"),
        }

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [(status, n) for status, n in self.counts.items()]
        rows += [(f"settled by hand: {verdict}", n) for verdict, n in self.settled.items()]
        note = (
            f"{len(self.unknown):,} unknown rows in .unknown: look them up in Gameball, then "
            "gb_backfill.settle(...)"
            if len(self.unknown)
            else None
        )
        return table(f"Gameball ledger {self.path.name}: {self.rows:,} rows", rows, note=note)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """What :func:`settle` did: ``settled`` unknown rows marked ``arrived`` (or not), and the
    keys it was given of rows the ledger knows otherwise (sent, failed, ...), left as they are
    (``not_unknown``)."""

    arrived: bool
    settled: int
    not_unknown: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verdict = (
            "arrived: they are sent from now on, and runs skip them"
            if self.arrived
            else "not arrived: the next run with this ledger sends each of them once"
        )
        lines = [f"settled {self.settled:,} unknown rows as {verdict}"]
        if self.not_unknown:
            lines.append(
                f"  {len(self.not_unknown):,} of the keys are rows whose outcome is known (sent, "
                f"failed, ...), left as they are: {', '.join(self.not_unknown[:5])}"
            )
        return "\n".join(lines)
