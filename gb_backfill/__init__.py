"""gb-backfill: validate, convert and send historical events from DataFrames to Gameball.

Importing the package registers the ``df.gameball`` accessor::

    import gb_backfill
    report = df.gameball.validate(event="purchase")
"""

from __future__ import annotations

from . import _accessor  # noqa: F401  (registers df.gameball)
from ._errors import (
    AuthenticationError,
    ColumnNotFoundError,
    ConfigError,
    GameballError,
    LedgerError,
)
from ._failures import FAILURE_STATUS_COLUMNS
from ._payloads import payloads
from ._rules import FailureCode, ValidationReport, validate

__all__ = [
    "FAILURE_STATUS_COLUMNS",
    "AuthenticationError",
    "ColumnNotFoundError",
    "ConfigError",
    "FailureCode",
    "GameballError",
    "LedgerError",
    "ValidationReport",
    "payloads",
    "validate",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("gb-backfill")
    raise AttributeError(f"module 'gb_backfill' has no attribute {name!r}")
