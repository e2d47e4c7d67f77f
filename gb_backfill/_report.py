"""The outcome of a send: a count for every status, timings, and the rows that did not make it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

from ._config import RateLimits
from ._failures import read_failures, write_parquet
from ._html import table

__all__ = ["STATUSES", "SendReport", "Status"]


class Status(StrEnum):
    """How a row ended; every input row ends in exactly one of these."""

    SENT = "sent"  #: Gameball accepted it in this run
    SKIPPED = "skipped"  #: sent by an earlier run, per the ledger
    INVALID = "invalid"  #: broke Gameball's event rules; never sent
    FAILED = "failed"  #: Gameball refused it, or retries ran out (gb_error_code says which)
    UNKNOWN = "unknown"  #: may or may not have been processed; not resent unless asked
    ABORTED = "aborted"  #: not attempted, because the run stopped


#: The statuses, in the order reports list them.
STATUSES = tuple(status.value for status in Status)


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
    #: the limits Gameball enforced, when the run found them lower than configured: pass
    #: ``limits=report.limits_found`` next time to start at the right pace
    limits_found: RateLimits | None = None
    #: the limits the run kept (the batch limits in batch mode), for plots
    limits: RateLimits | None = None
    #: per second of the run: requests, accepted, throttled (429) and the adaptive pace
    timeline: pd.DataFrame | None = None

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

        return plot_send(self)

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
        if self.failures_path is not None and not self.ok:
            rows.append(("rows not sent are in", str(self.failures_path)))
        if self.limits_found is not None:
            found = self.limits_found
            rows.append(
                (
                    "limits found",
                    f"{found.per_second}/s, {found.per_window:,} per {found.window:g} s",
                )
            )
        title = f"Gameball send: {self.rows:,} rows in {self.elapsed:.1f} s"
        if self.interrupted:
            title += " (interrupted)"
        note = (
            "pass limits=report.limits_found next time" if self.limits_found is not None else None
        )
        return table(title, rows, note=note)

    def summary(self) -> str:
        """A few lines for people: counts, rate, HTTP answers."""
        lines = [repr(self)]
        if self.http_statuses:
            lines.append(f"  HTTP answers: {_answers(self.http_statuses)}")
        lines += [f"  {code}: {count:,}" for code, count in self.error_codes.items()]
        found = self.limits_found
        if found is not None:
            lines.append(
                f"  Gameball's limits for this account are lower than configured: it settled at "
                f"{found.per_second}/s and {found.per_window:,} per {found.window:g} s; pass "
                "limits=report.limits_found (--rate/--quota) next time"
            )
        if self.failures_path is not None and not self.ok:
            lines.append(f"  rows not sent are in {self.failures_path}")
        return "\n".join(lines)


def _answers(http_statuses: dict[int, int]) -> str:
    return ", ".join(f"{status}: {count:,}" for status, count in sorted(http_statuses.items()))
