"""What ``validate()`` found: valid rows, one failure row per broken rule, and warnings (about
columns, and rows that repeat one another); what ``validate_path()`` found, as counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .._rows.warnings import empty_warnings, warning_lines
from .html import table
from .words import warning_rows

__all__ = ["ValidationReport"]


@dataclass(frozen=True, slots=True)
class Tally:
    """What ``validate_path()`` counted, as it keeps no rows: the invalid rows, and the broken
    rules per (code, column)."""

    invalid_rows: int
    rules: dict[tuple[str, object], int]
    examples: dict[str, str] = field(default_factory=dict)  #: the first message of each code


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

    :func:`validate_path` keeps no rows (a file may be larger than memory): ``valid`` and
    ``failures`` are empty, the counts are in ``tallied``, and the invalid rows in
    ``failures_path`` when it was asked to write them.
    """

    valid: pd.DataFrame
    failures: pd.DataFrame
    rows: int
    warnings: pd.DataFrame = field(default_factory=empty_warnings)
    #: validate_path(): the counts of the rows it did not keep (None: validate(), which keeps
    #: them in ``valid`` and ``failures``)
    tallied: Tally | None = None
    #: validate_path(): where the invalid rows were written (None: nowhere)
    failures_path: Path | None = None

    @property
    def ok(self) -> bool:
        """True when every row is valid."""
        return self.invalid_rows == 0

    @property
    def invalid_rows(self) -> int:
        """How many rows have at least one failure."""
        if self.tallied is not None:
            return self.tallied.invalid_rows
        return self.rows - len(self.valid)

    def counts(self) -> pd.Series:
        """Failures (broken rules) per code, most frequent first."""
        if self.tallied is None:
            return self.failures["code"].value_counts()
        per_code: dict[str, int] = {}
        for (code, _), count in self.tallied.rules.items():
            per_code[code] = per_code.get(code, 0) + count
        counted = pd.Series(per_code, dtype="int64", name="count")
        counted = counted.sort_values(ascending=False, kind="stable")
        return counted.rename_axis("code")

    def example(self, code: str) -> str | None:
        """The message of the first failure with ``code`` (None: there is none): what it
        looks like, and often the fix."""
        if self.tallied is not None:
            return self.tallied.examples.get(code)
        messages = self.failures.loc[self.failures["code"] == code, "message"]
        return str(messages.iloc[0]) if len(messages) else None

    @property
    def valid_rows(self) -> int:
        """How many rows are valid."""
        return self.rows - self.invalid_rows

    def plot(self) -> Any:
        """A matplotlib figure of the failures by code and column. Needs
        ``pip install 'gb-backfill[plot]'``."""
        from .plot import plot_validation

        return plot_validation(self.failures, self.rows)

    def __repr__(self) -> str:
        return (
            f"<ValidationReport rows={self.rows:,} valid_rows={self.valid_rows:,} "
            f"invalid_rows={self.invalid_rows:,}>"
        )

    def headline(self) -> str:
        """One line in words: the rows, valid and invalid."""
        return f"{self.rows:,} rows: {self.valid_rows:,} valid, {self.invalid_rows:,} invalid"

    def _by_code(self) -> list[tuple[str, int]]:
        if self.tallied is not None:
            if not self.tallied.rules:
                return []
            index = pd.MultiIndex.from_tuples(list(self.tallied.rules), names=["code", "column"])
            grouped = pd.Series(list(self.tallied.rules.values()), index=index, dtype="int64")
        elif self.failures.empty:
            return []
        else:
            grouped = self.failures.groupby(["code", "column"], sort=False).size()
        ordered = grouped.sort_values(ascending=False)
        return [
            (f"{code} ({where})", int(count))
            for (code, where), count in zip(ordered.index, ordered.to_numpy(), strict=True)
        ]

    def summary(self) -> str:
        """Aligned lines for a terminal: counts, failures per code and column, then the
        warnings about columns with their fixes."""
        lines = [self.headline()]
        by_code = self._by_code()
        width = max((len(label) for label, _ in by_code), default=0)
        lines += [f"  {label:<{width}}  {count:>9,}" for label, count in by_code]
        return "\n".join(lines + warning_lines(self.warnings))

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("rows", self.rows),
            ("valid", self.valid_rows),
            ("invalid", self.invalid_rows),
        ]
        rows += [(f"failure: {label}", count) for label, count in self._by_code()]
        rows += warning_rows(self.warnings)
        notes = ["report.failures has one row per broken rule"] if not self.ok else []
        if len(self.warnings):
            notes.append("report.warnings: columns whose values are likely not what was meant")
        return table("Gameball validation", rows, note="; ".join(notes) or None)
