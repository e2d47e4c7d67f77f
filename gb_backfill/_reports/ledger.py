"""What a ledger knows between runs (:class:`LedgerReport`) and what settling unknown rows did
(:class:`Settlement`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import _gameball as gameball
from .._errors import Mention, Terms
from .html import table
from .words import WORTH_RETRYING

__all__ = ["LedgerReport", "Settlement"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerReport:
    """What a ledger knows; made by :func:`ledger_status` (``gb-backfill status``).

    ``counts`` has every ledger status (``sent``, ``failed``, ``unknown``, ``aborted``,
    ``invalid``, and ``in_flight``: rows a crash left with their request out). ``unknown``
    holds the rows whose outcome is not known (``unknown`` and ``in_flight``), one each, with
    what was sent: ``gb_key``, ``customer_id``, ``event``, ``metadata`` (JSON text), ``email``,
    ``mobile``, ``sent_at`` (UTC), ``status``, ``error_code``, ``error_message``,
    ``input_row``; look them up in Gameball, then :func:`settle` them. Rows in batch jobs a
    stopped run posted (``in_batch_jobs``) are not among them: the next run asks Gameball how
    each job ended. ``settled`` counts the rows settled by hand so far, per verdict
    (``arrived``, ``not_arrived``).
    """

    path: Path
    counts: dict[str, int]
    unknown: pd.DataFrame
    settled: dict[str, int] = field(default_factory=dict)
    #: the database is missing and this is what its journal holds
    journal_only: bool = False
    #: of ``counts["failed"]``, the rows failed for a reason worth retrying (a lost connection,
    #: an answer 5xx or 429) or settled by hand as not arrived: the next run sends them again
    retryable_failed: int = 0
    #: of ``counts["in_flight"]``, the rows in batch jobs a stopped run posted: the next run
    #: asks Gameball how each job ended, then skips what arrived and sends the rest
    in_batch_jobs: int = 0
    #: the rows of the last run's input it never reached, which the ledger has no record of
    #: (its report counted them ``aborted``): the next run with the same input sends them; 0
    #: when that run reached every row, or was killed, or kept no such count
    never_reached: int = 0
    #: the rows of the last run's input (None: not kept)
    last_run_rows: int | None = None

    @property
    def rows(self) -> int:
        """Rows the ledger records."""
        return sum(self.counts.values())

    @property
    def next_run(self) -> dict[str, int]:
        """What the next run with this ledger does with its rows, by what it does: ``sent``
        (skipped: Gameball has them), ``will_be_sent`` (aborted: never attempted),
        ``will_be_retried`` (failed, retryable), ``failed_for_good`` (reported failed again
        without a request, unless the row was fixed), ``held_as_unknown`` (unknown, or in flight
        at a crash: never sent on its own; settle them) and ``invalid`` (a fixed copy is
        sent)."""
        counts = self.counts
        orders = self.unknown_orders
        doubtful = counts.get("unknown", 0) + counts.get("in_flight", 0)
        return {
            "sent": counts.get("sent", 0),
            "will_be_sent": counts.get("aborted", 0) + self.never_reached,
            "will_be_retried": self.retryable_failed,
            "failed_for_good": counts.get("failed", 0) - self.retryable_failed,
            "orders_sent_again": orders,
            "asked_of_gameball": self.in_batch_jobs,
            "held_as_unknown": doubtful - orders - self.in_batch_jobs,
            "invalid": counts.get("invalid", 0),
        }

    @property
    def unknown_orders(self) -> int:
        """Of the unknown and in-flight rows, the orders: the next run sends them again, since
        Gameball refuses an ``orderId`` it has (they show as ``place_order``)."""
        if "event" not in self.unknown.columns:
            return 0
        return int((self.unknown["event"] == gameball.PLACE_ORDER_EVENT).sum())

    def __repr__(self) -> str:
        shown = {status: count for status, count in self.counts.items() if count}
        return f"<LedgerReport {self.path} rows={self.rows:,} counts={shown}>"

    def summary(self, *, limit: int | None = 20, terms: Terms = Mention.in_python) -> str:
        """Lines for a terminal: the counts (every status), the settlements, and the unknown rows
        (the first ``limit``; None: every one). What to do next is said in ``terms``: Python
        calls, or the command line's (``gb-backfill status``)."""
        python = terms is Mention.in_python
        if self.journal_only:
            rebuild = "rebuild_ledger=True" if python else "--rebuild-ledger"
            lines = [
                f"ledger {self.path}: the database is missing; its journal holds {self.rows:,} "
                f"rows (send again with {rebuild} to rebuild the ledger from them)"
            ]
        else:
            # Every run's, not the last one's: a row an earlier run failed and the last run never
            # reached (aborted in its report) is counted here as the earlier run left it.
            lines = [
                f"ledger {self.path}: {self.rows:,} rows recorded by the runs that used it, each "
                "as the last run to reach it left it"
            ]
            if self.never_reached:
                of = f" of its {self.last_run_rows:,}" if self.last_run_rows is not None else ""
                lines[0] += (
                    f", and {self.never_reached:,}{of} rows the last run never reached, "
                    "counted under will be sent"
                )
        lines += self._outlook_lines()
        for verdict, count in sorted(self.settled.items()):
            lines.append(f"  (settled by hand as {verdict.replace('_', ' ')}: {count:,})")
        if len(self.unknown) > self.unknown_orders:  # orders are sent again, not settled
            settle = (
                "gb_backfill.settle(ledger, keys=[...], arrived=True) (Gameball has it) or "
                "arrived=False (the next run sends it), with their gb_key values or keys='all'"
                if python
                else f"gb-backfill settle --ledger {self.path} --arrived (Gameball has it) or "
                "--not-arrived (the next run sends it), with --key GB_KEY, --keys-file PATH or "
                "--all"
            )
            lines.append(
                f"rows held as unknown ({len(self.unknown) - self.unknown_orders:,}): look each "
                f"up in Gameball, then {settle}"
            )
            columns = ["gb_key", "customer_id", "event", "metadata", "sent_at", "status"]
            shown = self.unknown if limit is None else self.unknown.head(limit)
            lines.append(_table(shown[columns]))
            if len(shown) < len(self.unknown):
                every = ".unknown holds every one" if python else "--all shows them"
                lines.append(f"  ... {len(self.unknown) - len(shown):,} more ({every})")
        return "\n".join(lines)

    def _will_be_sent(self) -> str:
        """What ``will be sent`` counts: rows a stopped run recorded as never attempted, and
        the rows of its input it never reached (counted in the headline)."""
        if not self.never_reached:
            return "never attempted: a run stopped first; the next run sends them"
        return (
            "never attempted: a run stopped before them; the next run with the same input "
            "sends them"
        )

    def _outlook_lines(self) -> list[str]:
        """Each status as what the next run with the ledger does with its rows."""
        will = self.next_run
        in_flight = self.counts.get("in_flight", 0)
        crash = f", {in_flight:,} of them in flight when a run was killed" if in_flight else ""
        said = {
            "sent": "Gameball has them; the next run skips them",
            "will_be_sent": self._will_be_sent(),
            "will_be_retried": f"failed in a way worth retrying ({WORTH_RETRYING}) or settled "
            "as not arrived; the next run sends them again",
            "failed_for_good": "Gameball refused them (the failures file's gb_error_message "
            "says why); the next run reports them again unless they were fixed",
            "orders_sent_again": "orders whose requests went out without an answer; the next "
            "run sends them again, and Gameball refuses an orderId it has, so none counts twice",
            "asked_of_gameball": "in batch jobs a stopped run posted; the next run asks "
            "Gameball how each job ended, then skips the rows that arrived and sends the rest",
            "held_as_unknown": "their requests went out without an answer, so Gameball may "
            f"have them{crash}; no run sends them on its own: settle them (below)",
            "invalid": "they break Gameball's rules: reported again by each run until their "
            "fixed copies (the failures file's rows, fixed) are sent",
        }
        # Without the last run's count (a ledger of an earlier version, a run killed), said
        # beside its 0, or it reads as if the aborted rows a stopped run printed were lost.
        unkept = self.last_run_rows is None
        said_of_zero = {"will_be_sent": "recorded (rows a stopped run never reached, aborted in "
                        "its report, are not recorded: the next run sends them too)"} if unkept \
            else {}  # fmt: skip
        return [
            f"  {name.replace('_', ' ')}: {count:,} ({said[name]})" if count
            else f"  {name.replace('_', ' ')}: 0 {said_of_zero.get(name, '')}".rstrip()
            for name, count in will.items()
            # a ledger of events, or of no batch jobs, has no such line
            if count or name not in ("orders_sent_again", "asked_of_gameball")
        ]  # fmt: skip

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
            "next_run": self.next_run,
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


def _table(frame: pd.DataFrame) -> str:
    """A table for a terminal: missing values as empty cells (never ``NaN`` or ``None``)."""
    shown = frame.astype(object).where(frame.notna(), "")
    return shown.to_string(index=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """What :func:`settle` did: ``settled`` unknown rows marked ``arrived`` (or not), and the
    keys it was given of rows the ledger knows otherwise (sent, failed, ...), left as they are
    (``not_unknown``)."""

    arrived: bool
    settled: int
    not_unknown: list[str] = field(default_factory=list)

    def summary(self) -> str:
        them = "it" if self.settled == 1 else "them"
        verdict = (
            f"arrived: the ledger counts {them} as sent, and runs skip {them}"
            if self.arrived
            else f"not arrived: the next run with this ledger sends {them} once"
        )
        rows = "row" if self.settled == 1 else "rows"
        lines = [f"settled {self.settled:,} unknown {rows} as {verdict}"]
        if self.not_unknown:
            lines.append(
                f"  {len(self.not_unknown):,} of the keys are rows whose outcome is known (sent, "
                f"failed, ...), left as they are: {', '.join(self.not_unknown[:5])}"
            )
        return "\n".join(lines)
