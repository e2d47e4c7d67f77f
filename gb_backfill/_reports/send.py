"""What a send did: :class:`SendReport` (what it would do is :mod:`.plan`'s ``SendPlan``).

A count for every status, timings, the HTTP answers, the limits Gameball turned out to keep, and
the rows that did not make it; each shows as a compact HTML table in a notebook and as aligned
text from ``summary()``, and its counts are plain attributes, so tab completion finds them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .._config import RateLimits
from .._errors import Mention, Terms
from .._rows.warnings import empty_warnings, warning_lines
from .._store.failures import read_failures, write_parquet
from .._vocabulary import STATUSES, Status
from .html import table
from .words import (
    answers_text,
    duration_text,
    held_lines,
    pace_text,
    skipped_lines,
    warning_rows,
)

__all__ = ["SendReport"]


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
    #: the limits the run was given, by option (``limits``, ``batch_limits``): what the found
    #: ones are compared with
    configured_limits: dict[str, RateLimits] = field(default_factory=dict)
    #: the limits the run kept (the batch limits in batch mode), for plots
    limits: RateLimits | None = None
    #: per second of the run: requests, accepted, throttled (429) and the adaptive pace, in
    #: all and for each lane (``events_requests``, ``batch_requests``...)
    timeline: pd.DataFrame | None = None
    #: the limits each lane kept (``events``, ``batch``), for plots: each lane against its own
    lane_limits: dict[str, RateLimits] = field(default_factory=dict)
    mode: str = "events"  #: the run's mode: ``events`` or ``batch``
    #: the requests each lane made (``events``, ``batch`` job posts, ``orders``...), retries
    #: included, and the batch jobs' status reads (``job_status``): they add up to
    #: ``requests``; a kind that made none is left out
    lane_requests: dict[str, int] = field(default_factory=dict)
    #: ``skipped`` rows that were copies of a row met elsewhere in the input (the same
    #: ``gb_key``: an export and its failures file together), each sent at most once
    folded: int = 0
    #: columns whose values are likely not what was meant, and rows that repeat one another
    #: (as ``ValidationReport.warnings``)
    warnings: pd.DataFrame = field(default_factory=empty_warnings)
    #: ``sent`` orders that Gameball already had: it refused their ``orderId`` as a duplicate
    #: (an earlier run, or a retry after a lost answer, had sent them)
    already_there: int = 0
    #: invalid rows skipped as their fixed copies were sent by an earlier run (in ``skipped``)
    fixed_before: int = 0
    #: invalid rows folded into a copy elsewhere in the input (in ``skipped`` and ``folded``)
    invalid_folded: int = 0

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
        return self.counts[Status.SENT]

    @property
    def skipped(self) -> int:
        return self.counts[Status.SKIPPED]

    @property
    def invalid(self) -> int:
        return self.counts[Status.INVALID]

    @property
    def failed(self) -> int:
        return self.counts[Status.FAILED]

    @property
    def unknown(self) -> int:
        return self.counts[Status.UNKNOWN]

    @property
    def aborted(self) -> int:
        return self.counts[Status.ABORTED]

    @property
    def ok(self) -> bool:
        """True when every row was sent (now or by an earlier run)."""
        return self.counts[Status.SENT] + self.counts[Status.SKIPPED] == self.rows

    @property
    def rate(self) -> float:
        """Requests per second over the run (every attempt counts, retries too)."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def plot(self) -> Any:
        """A matplotlib figure: each lane's requests over time against its own limits (and the
        adaptive pace), rows by status, rows not sent by code (each bar labelled). Needs
        ``pip install 'gb-backfill[plot]'``."""
        from .plot import plot_send

        lanes = self.lane_limits or ({"": self.limits} if self.limits is not None else {})
        return plot_send(self.timeline, self.counts, self.error_codes, lanes)

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the failures to a Parquet file that can be fixed and sent again."""
        write_parquet(self.failures, path)

    def __repr__(self) -> str:
        shown = " ".join(
            f"{s}={self.counts[s]:,}" for s in STATUSES if self.counts[s] or s == Status.SENT
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
            ("HTTP answers", answers_text(self.http_statuses)),
        ]
        rows += [(f"not sent: {code}", count) for code, count in self.error_codes.items()]
        if self.folded:
            rows.append(("skipped as copies of one gb_key (folded)", self.folded))
        if self.with_a_copy:
            rows.append(("skipped: invalid rows whose copy was sent or reported", self.with_a_copy))
        if self.already_there:
            rows.append(("sent: orders already there", self.already_there))
        if self.failures_path is not None and not self.ok:
            rows.append(("rows not sent are in", str(self.failures_path)))
        rows += [(f"{option} found", pace_text(found)) for option, found in self._found()]
        rows += warning_rows(self.warnings)
        title = f"Gameball send: {self.rows:,} rows in {self.elapsed:.1f} s"
        if self.interrupted:
            title += " (interrupted)"
        advice = [f"pass {option}=report.{option}_found next time" for option, _ in self._found()]
        return table(title, rows, note="; ".join(advice) or None)

    def _found(self) -> list[tuple[str, RateLimits]]:
        """(the option to pass, the limits found) for each lane Gameball held below its limits."""
        found = [("limits", self.limits_found), ("batch_limits", self.batch_limits_found)]
        return [(option, limits) for option, limits in found if limits is not None]

    @property
    def with_a_copy(self) -> int:
        """Invalid rows skipped for a copy (the same ``gb_key``) an earlier run sent or this
        input holds: ``fixed_before + invalid_folded``."""
        return self.fixed_before + self.invalid_folded

    def counts_text(self) -> str:
        """The rows by status in words: ``30 rows: 8 sent, 22 aborted``."""
        shown = ", ".join(
            f"{self.counts[s]:,} {s}" for s in STATUSES if self.counts[s] or s == Status.SENT
        )
        return f"{self.rows:,} rows: {shown}"

    def headline(self) -> str:
        """One line in words: the rows by status, the time and the pace."""
        stopped = " (interrupted)" if self.interrupted else ""
        return (
            f"{self.counts_text()}, in {duration_text(self.elapsed)} ({self.requests:,} "
            f"requests, {self.rate:.1f} requests per second){stopped}"
        )

    def _batch_requests_line(self) -> str:
        """A batch-mode run's requests by kind, adding up to the headline's: jobs, their status
        reads (a trial could not tell what the rest of 138 requests were), and why rows went
        one request at a time (it reads as if the run did not use batch mode when every row
        has an email)."""
        made = self.lane_requests

        def count(key: str, what: str) -> str:
            return f"{made.get(key, 0):,} {what}{'' if made.get(key, 0) == 1 else 's'}"

        said = [count("batch", "batch job") + " posted", count("job_status", "job status read")]
        if made.get("events"):
            said.append(
                count("events", "single event request") + " (for rows with an email, mobile or "
                "session token, which no job carries, or of the busiest customers, when one "
                "request at a time ends sooner than a job each)"
            )
        return f"  batch mode: {', '.join(said)}"

    def summary(self, *, terms: Terms = Mention.in_python) -> str:
        """A few lines for people: counts, rate, HTTP answers (options named in ``terms``: the
        command line's flags, or the Python API's keywords)."""
        python = terms is Mention.in_python
        lines = [self.headline()]
        lines += skipped_lines(
            self.skipped, folded=self.folded, fixed_before=self.fixed_before,
            invalid_folded=self.invalid_folded, done=True,
        )  # fmt: skip
        if self.http_statuses:
            # Requests whose answer never came (lost, timed out) are counted too, or the
            # answers do not add up to the requests the headline gives.
            unanswered = self.requests - sum(self.http_statuses.values())
            none = f", no answer: {unanswered:,}" if unanswered > 0 else ""
            lines.append(f"  HTTP answers: {answers_text(self.http_statuses)}{none}")
        if self.error_codes:
            rows = "rows not sent or unknown" if self.unknown else "rows not sent"
            lines.append(f"  {rows}, by gb_error_code (an invalid row by its first rule):")
        lines += [f"    {code}: {count:,}" for code, count in self.error_codes.items()]
        lines += held_lines(self.unknown, 0, cli=terms is not Mention.in_python, this_run=True)
        for option, found in self._found():
            what = "events" if option == "limits" else "batch job creation"
            rate = "--rate" if option == "limits" else "--batch-rate"
            quota = rate.replace("rate", "quota")
            given = self.configured_limits.get(option)
            # Only what the run learned is said: a window quota it never reached stays as given.
            learned = [
                (f"{found.per_second:g}/s", f"{rate} {found.per_second:g}")
                if given is None or found.per_second != given.per_second else None,
                (f"{found.per_window:,} per {found.window:g} s",
                 f"{quota} {found.per_window} --quota-window {found.window:g}")
                if given is None or found.per_window != given.per_window else None,
            ]  # fmt: skip
            said = [pair for pair in learned if pair is not None]
            advice = (
                f"{option}=report.{option}_found"
                if python
                else " ".join(flags for _, flags in said)
            )
            lines.append(
                f"  Gameball's limits for {what} on this account are lower than configured: it "
                f"held the run to {' and '.join(text for text, _ in said)}; pass {advice} next "
                "time"
            )
        if self.mode == "batch" and self.lane_requests:
            lines.append(self._batch_requests_line())
        if self.already_there:
            lines.append(
                f"  {self.already_there:,} of the sent rows are orders Gameball already had (it "
                "refused their orderId as a duplicate): none was counted twice"
            )
        if self.failures_path is not None and not self.ok:
            rows = "rows not sent, and the unknown ones," if self.unknown else "rows not sent"
            lines.append(f"  {rows} are in {self.failures_path}")
        lines += [f"  {line}" for line in warning_lines(self.warnings)]
        return "\n".join(lines)
