"""The exceptions gb-backfill raises.

Problems with single rows are never exceptions: they are data (see ``ValidationReport.failures``
and the failures Parquet file). Exceptions are for misuse and for runs that cannot go on::

    GameballError
    ├── ConfigError            a bad argument: names the fix
    │   └── ColumnNotFoundError  a mapping keyword names a column the DataFrame lacks
    ├── AuthenticationError    Gameball answered 401/403: the run stopped at once
    ├── RepeatedFailureError   every request failed the same way (wrong URL, nothing listening)
    └── LedgerError            the ledger cannot be used for this input, or cannot be written
        └── ChangedRowsError   rows look like rows an earlier run sent, written differently

The errors that stop a run carry ``report``: the run so far, every row with its status. Any
other exception that stops a run is raised as it is, with the same summary as a note.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AuthenticationError",
    "ChangedRowsError",
    "ColumnNotFoundError",
    "ConfigError",
    "GameballError",
    "LedgerError",
    "RepeatedFailureError",
]


class GameballError(Exception):
    """Root of every error gb-backfill raises."""


class ConfigError(GameballError, ValueError):
    """An argument is wrong; the message says how to fix it."""


class ColumnNotFoundError(ConfigError, KeyError):
    """A mapping keyword names a column that the DataFrame does not have."""

    def __init__(self, keyword: str, column: object, available: Iterable[object]) -> None:
        self.keyword = keyword
        self.column = column
        self.available = [str(c) for c in available]
        listed = ", ".join(self.available) or "(none)"
        super().__init__(f"{keyword}={column!r}: no such column; the columns are: {listed}")

    def __str__(self) -> str:
        # KeyError would repr() the message; show it as written.
        return str(self.args[0])


class AuthenticationError(GameballError):
    """Gameball rejected the keys (401 or 403), so the run stopped before burning more rows.

    ``report`` holds the run so far: the row that met the error is ``failed`` and every row not
    yet attempted is ``aborted``. The keys themselves never appear in the message.
    """

    def __init__(self, message: str, *, status_code: int, report: object | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.report = report


class RepeatedFailureError(GameballError):
    """The same failure ended several requests in a row with no success, so the run stopped.

    A wrong base URL, nothing listening, or a server that is down would fail every row alike.
    Rows failed by the run stay retryable in the ledger, and rows whose requests went out
    without an answer are ``unknown`` (the message says how many of each); ``report`` holds the
    run so far.
    """

    def __init__(self, message: str, *, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class LedgerError(GameballError):
    """The ledger cannot be used: it is corrupt, its row keys do not fit this input, or it
    could not be written during a run (then ``report`` holds the run so far, and the ledger's
    journal keeps every row it knew of for the next run)."""

    report: object | None = None


class ChangedRowsError(LedgerError):
    """Rows whose exact key is new but which look like rows an earlier run with the ledger
    sent: the same customer, event and values, written differently (text for numbers or
    timestamps, empty for missing). Nothing was sent. ``rows`` counts them and ``examples``
    (a DataFrame) shows a few with the columns that differ; ``resend_changed=True``
    (``--resend-changed``) sends them anyway."""

    def __init__(self, message: str, *, rows: int, examples: object) -> None:
        super().__init__(message)
        self.rows = rows
        self.examples = examples
