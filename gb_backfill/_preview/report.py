"""What a preview found (:class:`PreviewReport` and its parts): what a send would award,
estimated from Gameball's quotes for a sample of the rows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .._config import RateLimits
from .._gameball import PREVIEW_CAVEATS
from .._reports.html import table
from .._reports.words import (
    kept_text,
    warning_rows,
)
from .._rows.warnings import empty_warnings, warning_lines
from .estimates import Estimate

__all__ = ["CampaignPreview", "CustomerPreview", "EventPreview", "PreviewReport"]


def _plain(number: float) -> float | None:
    """A number JSON can hold: an unbounded end of an interval is None."""
    return number if math.isfinite(number) else None


def _event_dict(event: EventPreview) -> dict[str, Any]:
    return {
        "rows": event.rows,
        "sampled": event.sampled,
        "quoted": event.quoted,
        "reasons": dict(event.reasons),
        "not_found_event": event.not_found_event,
        "customers_not_found": event.customers_not_found,
        "invalid_reasons": dict(event.invalid_reasons),
        "points": _interval(event.points),
    }


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
    #: the invalid events' reasons in full, as Gameball wrote them (the most common three)
    invalid_reasons: dict[str, int] = field(default_factory=dict)


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
    #: orders: the cashback points of the whole input (part of ``points``), None without
    #: orders; coupons are in ``coupons`` and ``campaigns`` as for events
    cashback: Estimate | None = None
    caveats: str = PREVIEW_CAVEATS
    #: columns whose values are likely not what was meant (as ``ValidationReport.warnings``):
    #: amounts written as text are quoted as text, and a campaign on them awards nothing
    warnings: pd.DataFrame = field(default_factory=empty_warnings)
    #: the limits the quotes kept to: ``preview_limits`` less ``reserve``, the share of each
    #: limit left for other clients of the key
    pace: RateLimits | None = None
    reserve: float = 0.0
    #: every campaign met in the quotes, by name: how many quotes it was in for each reason
    #: (``Rewarded``, ``NonPointsReward``, ``ProgressOnly``, ``NoMatchingConditions``)
    campaign_reasons: dict[str, dict[str, int]] = field(default_factory=dict)

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
            **({"cashback": _interval(self.cashback)} if self.cashback is not None else {}),
            "customers": {
                "sampled": customers.sampled,
                "not_found": customers.not_found,
                "not_found_share": _interval(customers.not_found_share)["estimate"],
                "not_found_share_interval": _interval(customers.not_found_share),
                "estimated_new": _interval(customers.estimated_new)["estimate"],
                "estimated_new_interval": _interval(customers.estimated_new),
            },
            "events": {name: _event_dict(event) for name, event in self.events.items()},
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
            "campaign_reasons": {name: dict(r) for name, r in self.campaign_reasons.items()},
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
        from .._reports.plot import plot_preview

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

    def headline(self) -> str:
        """One line in words: the rows, the quotes and the points estimated."""
        stopped = " (interrupted)" if self.interrupted else ""
        return (
            f"preview of {self.rows:,} rows ({self.valid:,} valid): {self.quoted:,} of "
            f"{self.sampled:,} sampled rows quoted, about {_about(self.points)} points for the "
            f"whole input{stopped}; nothing was sent"
        )

    def _lines(self) -> list[tuple[str, object]]:
        customers = self.customers
        rows: list[tuple[str, object]] = [
            ("points, whole input", _about(self.points)),
            *([("of which cashback (orders)", _about(self.cashback))] if self.cashback else []),
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
                 f"{share.value:.1%} ({share.confidence:.0%}: {share.low:.1%} to "
                 f"{share.high:.1%})")
            )  # fmt: skip
        if customers.estimated_new is not None:
            rows.append(("customers a send would create", _about(customers.estimated_new)))
        # Most rows first (a trial could not tell what order the names came in).
        for name, event in sorted(self.events.items(), key=lambda item: -item[1].rows):
            text = f"{event.rows:,} rows, points {_about(event.points)}"
            rows.append((f"event {name}", text + less_because(event)))
        rewarding = {c.name for c in self.campaigns}
        for c in self.campaigns:
            text = f"rewards ~{c.hits.value:,.0f} rows, {c.points.value:,.0f} points"
            rows.append((f"campaign {c.name}", text + not_rewarded(self.campaign_reasons, c.name)))
        rows += [
            (f"campaign {name}", "rewards nothing in the sample" + not_rewarded(
                self.campaign_reasons, name))
            for name in self.campaign_reasons if name not in rewarding
        ]  # fmt: skip
        rows += [(f"coupons, {kind}", _about(count)) for kind, count in self.coupons.items()]
        if self.unquoted_rows:
            rows.append(("rows not estimated (no quote answered)", self.unquoted_rows))
        if self.pace is not None:
            rows.append(("pace of the quotes", kept_text(self.pace, self.reserve)))
        return rows

    def _repr_html_(self) -> str:
        title = f"Gameball reward preview: {self.rows:,} rows, {self.quoted:,} quoted"
        if self.interrupted:
            title += " (interrupted)"
        return table(title, self._lines() + warning_rows(self.warnings), note=self.caveats)

    def summary(self) -> str:
        """Aligned lines for a terminal: the estimate, unknown event names, customers to be
        created, the breakdown and the caveats."""
        lines = [self.headline()]
        lines += [f"  {label}: {value:,}" if isinstance(value, int) else f"  {label}: {value}"
                  for label, value in self._lines()]  # fmt: skip
        lines += [f"  {line}" for line in warning_lines(self.warnings)]
        lines.append(f"  note: {self.caveats}")
        return "\n".join(lines)


#: Gameball's reasons, in a person's words
_REASON_WORDS = {
    "InvalidMetadata": "invalid metadata",
    "EventNotFound": "an event name Gameball does not know",
    "ProgressOnly": "progress only (short of the campaign's target)",
    # A campaign with no condition says it too, of an amount short of its step ("1 point per
    # 100" of 50): a trial read "no matching conditions" of a campaign that had none.
    "NoMatchingConditions": "the campaign's rule not met (a condition, or an amount short of "
    "its step)",
}
_REWARDING = frozenset({"Rewarded", "NonPointsReward"})
#: Reasons given per campaign a quote was checked against, not once per quote
_PER_CAMPAIGN = frozenset({"ProgressOnly", "NoMatchingConditions"})


def less_because(event: EventPreview) -> str:
    """Why an event name awards less than its rows suggest, with counts (empty: nothing)."""
    parts: list[str] = []
    checks: list[str] = []
    for reason, count in event.reasons.items():
        if reason in _REWARDING:
            continue
        part = f"{_REASON_WORDS.get(reason, reason)} in {count:,}"
        if reason in _PER_CAMPAIGN:  # each count says what it counts
            part += f" check{'' if count == 1 else 's'}"
        if reason == "InvalidMetadata" and event.invalid_reasons:
            part += f" ({next(iter(event.invalid_reasons))})"
        # A row checked against three campaigns counts three: said apart from the rows.
        (checks if reason in _PER_CAMPAIGN else parts).append(part)
    if event.customers_not_found:
        parts.append(f"customer not found in {event.customers_not_found:,}")
    answered = event.quoted - event.customers_not_found
    if answered > 0 and not event.reasons:
        # Gameball knows the event and checked it, but no campaign of the account is about it.
        parts.append(f"no campaign is about this event in {answered:,}")
    if not event.quoted and event.sampled:
        return f"; less because: no quote answered of {event.sampled:,} asked"
    said = [", ".join(parts)] if parts else []
    if checks:
        said.append(f"{', '.join(checks)} (a row is checked against each campaign)")
    # The rows quoted first, so that every count is read against them.
    rows = "row" if event.quoted == 1 else "rows"
    return f"; less because (of {event.quoted:,} {rows} quoted): {'; '.join(said)}" if said else ""


def not_rewarded(campaign_reasons: dict[str, dict[str, int]], name: str) -> str:
    """The quotes a campaign was in without rewarding the row, by reason (empty: none)."""
    reasons = campaign_reasons.get(name, {})
    shown = [f"{_REASON_WORDS.get(r, r)} in {n:,}" for r, n in reasons.items()
             if r not in _REWARDING]  # fmt: skip
    if not shown:
        return ""
    quoted = sum(reasons.values())
    rows = "row" if quoted == 1 else "rows"
    return f"; not rewarded: {', '.join(shown)} (of {quoted:,} {rows} quoted against it)"
