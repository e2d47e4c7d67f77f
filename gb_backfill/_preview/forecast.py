"""From a sample of quotes to what the whole backfill would award: the preview's estimates.

The preview (:mod:`gb_backfill._preview.run`) quotes a stratified sample of the valid rows (strata
are event names; see :mod:`gb_backfill._preview.sampling`). Each answered quote gives, for its row,
numbers such as its points (an order's cashback too), whether a campaign rewarded it, its coupons
of each type, whether its customer exists. Each such number is estimated for the whole input with
:func:`~gb_backfill._preview.estimates.estimate_total` (a share of rows with
:func:`~gb_backfill._preview.estimates.estimate_share`, the customers to be created with
:func:`~gb_backfill._preview.estimates.estimate_distinct`).

Rows with no answer (a quote that failed, or was not asked because the preview stopped) are
left out of their stratum's sample, as if never drawn: the estimate assumes they are like the
answered rows of their event name. An event name with no answered row at all cannot be
estimated; its rows are counted in ``unquoted_rows`` and left out of every total, which the
report says.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._vocabulary import QuoteOutcome
from .estimates import Estimate, estimate_distinct, estimate_share, estimate_total
from .report import CampaignPreview, CustomerPreview, EventPreview, PreviewReport
from .sampling import StratifiedSample

__all__: list[str] = []

#: Campaign reasons that mean the campaign rewards the row (points or a coupon).
_HITS = frozenset({"Rewarded", "NonPointsReward"})


@dataclass(frozen=True, slots=True)
class SampledRow:
    """One row of the sample: where it is in the input, what its live send would carry, and
    its original cells (for ``PreviewReport.quotes``)."""

    position: int  #: among all input rows, from 0
    customer: str
    event: str
    body: bytes
    token: str | None
    cells: dict[Hashable, Any]
    order: bool = False  #: quoted by the orders' reward preview


@dataclass(frozen=True, slots=True)
class Quote:
    """What the preview learned of one sampled row: ``outcome``; ``answer`` Gameball's 200
    answer; ``error`` why a quote failed."""

    outcome: QuoteOutcome
    answer: dict[str, Any] | None = None
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.outcome in (QuoteOutcome.QUOTED, QuoteOutcome.CUSTOMER_NOT_FOUND)


@dataclass(slots=True)
class _Measures:
    """The numbers one answered row contributes, by measure name (absent: 0)."""

    points: float = 0.0
    cashback: float = 0.0  #: an order's cashback points (in ``points`` too)
    not_found: bool = False
    campaign_hits: dict[Hashable, float] | None = None
    campaign_points: dict[Hashable, float] | None = None
    coupons: dict[str, float] | None = None


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _measure(quote: Quote, campaigns: dict[Hashable, dict[str, Any]]) -> _Measures:
    """The numbers of one answered row; ``campaigns`` collects each campaign's description."""
    if quote.outcome == QuoteOutcome.CUSTOMER_NOT_FOUND or quote.answer is None:
        return _Measures(not_found=True)
    hits: dict[Hashable, float] = defaultdict(float)
    points: dict[Hashable, float] = defaultdict(float)
    coupons: dict[str, float] = defaultdict(float)
    for event in _events(quote.answer):
        for campaign in event.get("campaigns") or ():
            if not isinstance(campaign, dict) or campaign.get("reason") not in _HITS:
                continue
            key = campaign.get("campaignId")
            campaigns.setdefault(key, campaign)
            hits[key] = 1.0
            points[key] += _number(campaign.get("points"))
            if campaign.get("rewardType") == "Coupon":
                coupons[str(campaign.get("couponType") or "Coupon")] += max(
                    1.0, _number(campaign.get("timesAchieved"))
                )
    return _Measures(
        points=_number(quote.answer.get("totalPoints")),
        cashback=_number(quote.answer.get("cashback")),
        campaign_hits=dict(hits),
        campaign_points=dict(points),
        coupons=dict(coupons),
    )


def _events(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = answer.get("events")
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []


def _reasons(quotes: Sequence[Quote]) -> Counter[str]:
    """Each campaign's reason, and each invalid event's reason (its code, before the colon)."""
    reasons: Counter[str] = Counter()
    for quote in quotes:
        for event in _events(quote.answer or {}):
            if not event.get("valid", True):
                reasons[str(event.get("invalidReason") or "Invalid").split(":")[0]] += 1
            for campaign in event.get("campaigns") or ():
                if isinstance(campaign, dict) and campaign.get("reason"):
                    reasons[str(campaign["reason"])] += 1
    return reasons


def _invalid_texts(quotes: Sequence[Quote]) -> Counter[str]:
    """Each invalid event's reason in full (``InvalidMetadata: 'amount' ...``)."""
    texts: Counter[str] = Counter()
    for quote in quotes:
        for event in _events(quote.answer or {}):
            if not event.get("valid", True):
                texts[str(event.get("invalidReason") or "Invalid")] += 1
    return texts


class Forecast:
    """Builds a :class:`PreviewReport` from the sample and its quotes. Strictly private."""

    def __init__(
        self, sample: StratifiedSample[SampledRow], quotes: Sequence[Quote], *, confidence: float
    ) -> None:
        self.sample, self.confidence = sample, confidence
        self.campaigns: dict[Hashable, dict[str, Any]] = {}
        # Per stratum: its population, and its answered rows' (row, quote, measures).
        self.strata: list[tuple[str, int, list[tuple[SampledRow, Quote, _Measures]]]] = []
        index = 0
        for stratum in sample.strata:
            answered = []
            for row in stratum.items:
                quote = quotes[index]
                index += 1
                if quote.answered:
                    answered.append((row, quote, _measure(quote, self.campaigns)))
            self.strata.append((str(stratum.label), stratum.population, answered))
        self.quotes = quotes

    @property
    def rows(self) -> list[SampledRow]:
        """Every sampled row."""
        return [row for stratum in self.sample.strata for row in stratum.items]

    @property
    def estimable(self) -> list[tuple[str, int, list[tuple[SampledRow, Quote, _Measures]]]]:
        return [stratum for stratum in self.strata if stratum[2]]

    def total(self, value: Any, *, per_row_max: float | None = None) -> Estimate | None:
        """The estimate over the input of ``value(measures)``, or None with nothing answered."""
        strata = [
            (population, [value(m) for _, _, m in rows]) for _, population, rows in self.estimable
        ]
        if not strata:
            return None
        return estimate_total(strata, per_row_max=per_row_max, confidence=self.confidence)

    def events(self) -> dict[str, EventPreview]:
        events = {}
        for name, population, rows in self.strata:
            sampled = next(s.sampled for s in self.sample.strata if str(s.label) == name)
            quotes = [quote for _, quote, _ in rows]
            reasons = _reasons(quotes)
            points = None
            if rows:
                values = [m.points for _, _, m in rows]
                points = estimate_total([(population, values)], confidence=self.confidence)
            events[name] = EventPreview(
                name=name,
                rows=population,
                sampled=sampled,
                quoted=len(rows),
                reasons=dict(reasons.most_common()),
                not_found_event=reasons["EventNotFound"] > 0,
                invalid_metadata=reasons["InvalidMetadata"],
                customers_not_found=sum(1 for _, _, m in rows if m.not_found),
                points=points,
                invalid_reasons=dict(_invalid_texts(quotes).most_common(3)),
            )
        return events

    def campaign_reasons(self) -> dict[str, dict[str, int]]:
        """Each campaign met in an answered quote, by name: the reasons it was there for."""
        found: dict[str, Counter[str]] = {}
        for _, _, rows in self.strata:
            for _, quote, _ in rows:
                for event in _events(quote.answer or {}):
                    for campaign in event.get("campaigns") or ():
                        if isinstance(campaign, dict) and campaign.get("reason"):
                            name = str(campaign.get("campaignName") or campaign.get("campaignId"))
                            found.setdefault(name, Counter())[str(campaign["reason"])] += 1
        return {name: dict(reasons.most_common()) for name, reasons in found.items()}

    def campaign_previews(self) -> list[CampaignPreview]:
        previews = []
        for key, campaign in self.campaigns.items():
            hits = self.total(lambda m, k=key: (m.campaign_hits or {}).get(k, 0.0), per_row_max=1)
            points = self.total(lambda m, k=key: (m.campaign_points or {}).get(k, 0.0))
            assert hits is not None  # a campaign seen was answered
            assert points is not None
            previews.append(
                CampaignPreview(
                    id=key,
                    name=str(campaign.get("campaignName") or key),
                    reward_type=str(campaign.get("rewardType") or "Points"),
                    coupon_type=campaign.get("couponType"),
                    sampled_hits=int(hits.observed),
                    hits=hits,
                    points=points,
                )
            )
        return sorted(previews, key=lambda c: -c.points.value - c.hits.value)

    def coupons(self) -> dict[str, Estimate]:
        measures = [m for _, _, rows in self.estimable for _, _, m in rows]
        types = sorted({kind for m in measures for kind in m.coupons or ()})
        found = {t: self.total(lambda m, t=t: (m.coupons or {}).get(t, 0.0)) for t in types}
        return {t: e for t, e in found.items() if e is not None}

    def customers(self, rows_per_customer: Mapping[Hashable, int] | None) -> CustomerPreview:
        answered = [(row, m) for _, _, rows in self.estimable for row, _, m in rows]
        missing = {row.customer for row, m in answered if m.not_found}
        share = distinct = None
        if answered:
            share = estimate_share(
                [(p, [m.not_found for _, _, m in rows]) for _, p, rows in self.estimable],
                confidence=self.confidence,
            )
        if answered and rows_per_customer is not None:
            # A customer's existence is the same on all its rows (see estimate_distinct).
            customers = [(p, [r.customer for r, _, _ in rows]) for _, p, rows in self.estimable]
            distinct = estimate_distinct(
                [(p, ids, [c in missing for c in ids]) for p, ids in customers],
                rows_per_customer=rows_per_customer,
                confidence=self.confidence,
            )
        return CustomerPreview(
            sampled=len({row.customer for row, _ in answered}),
            not_found=len(missing),
            not_found_share=share,
            estimated_new=distinct,
        )

    def quotes_frame(self, columns: Sequence[Hashable]) -> pd.DataFrame:
        """The sampled rows, in input order, with their original cells and their quotes."""
        records = []
        index = 0
        for stratum in self.sample.strata:
            for row in stratum.items:
                quote = self.quotes[index]
                index += 1
                answer = quote.answer
                records.append(
                    {
                        **row.cells,
                        "gb_row": row.position,
                        "gb_event": row.event,
                        "gb_quote": quote.outcome.value,
                        "gb_points": _number(answer.get("totalPoints"))
                        if answer is not None
                        else (
                            0.0
                            if quote.outcome == QuoteOutcome.CUSTOMER_NOT_FOUND
                            else float("nan")
                        ),
                        "gb_reasons": ", ".join(sorted(_reasons([quote]))) or None,
                        "gb_answer": None if answer is None else json.dumps(answer),
                        "gb_error": quote.error,
                        "gb_body": row.body.decode(),
                    }
                )
        ours = ["gb_row", "gb_event", "gb_quote", "gb_points", "gb_reasons", "gb_answer",
                "gb_error", "gb_body"]  # fmt: skip
        # A failures file previewed has a gb_row of its own: the quote's (this input's) wins.
        names = [*(c for c in columns if c not in ours), *ours]
        frame = pd.DataFrame.from_records(records, columns=names)
        return frame.sort_values("gb_row", kind="stable").reset_index(drop=True)


def forecast(
    sample: StratifiedSample[SampledRow],
    quotes: Sequence[Quote],
    *,
    rows: int,
    valid: int,
    skipped: int,
    requests: int,
    elapsed: float,
    interrupted: bool,
    rows_per_customer: Mapping[Hashable, int] | None,
    columns: Sequence[Hashable],
    http_statuses: Mapping[int, int],
    confidence: float = 0.95,
) -> PreviewReport:
    """The report of a preview: ``quotes`` holds one :class:`Quote` per sampled row, in the
    sample's order (stratum by stratum); ``rows_per_customer`` counts every sampled customer's
    valid rows in the whole input (None when that count did not finish)."""
    made = Forecast(sample, quotes, confidence=confidence)
    return PreviewReport(
        rows=rows,
        valid=valid,
        skipped=skipped,
        sampled=sample.size,
        quoted=sum(quote.answered for quote in quotes),
        requests=requests,
        elapsed=elapsed,
        interrupted=interrupted,
        points=made.total(lambda m: m.points),
        cashback=made.total(lambda m: m.cashback) if any(r.order for r in made.rows) else None,
        events=made.events(),
        campaigns=made.campaign_previews(),
        campaign_reasons=made.campaign_reasons(),
        coupons=made.coupons(),
        customers=made.customers(rows_per_customer),
        unquoted_rows=sum(population for _, population, answered in made.strata if not answered),
        http_statuses=dict(http_statuses),
        quotes=made.quotes_frame(columns),
    )
