"""What a ledger knows between runs (:class:`LedgerReport`) and what settling unknown rows did
(:class:`Settlement`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .html import table

__all__ = ["LedgerReport", "Settlement"]


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
