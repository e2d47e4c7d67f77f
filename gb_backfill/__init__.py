"""gb-backfill: validate, convert and send historical events from DataFrames to Gameball.

Importing the package registers the ``df.gameball`` accessor::

    import gb_backfill
    report = df.gameball.validate(event="purchase")
    sent = df.gameball.send(event="purchase", ledger="backfill.ledger")
"""

from __future__ import annotations

from . import _accessor  # noqa: F401  (registers df.gameball)
from ._config import RateLimits, RetryPolicy
from ._emulator import BatchSettings, Emulator, Faults
from ._errors import (
    AuthenticationError,
    ChangedRowsError,
    ColumnNotFoundError,
    ConfigError,
    GameballError,
    LedgerError,
    RepeatedFailureError,
)
from ._failures import FAILURE_STATUS_COLUMNS, StoredObject, read_failures
from ._outcomes import SendErrorCode
from ._payloads import payloads
from ._plan import HISTORY_WARNING, SendPlan
from ._report import STATUSES, SendReport, Status
from ._rules import FailureCode, ValidationReport, validate
from ._sender import asend, asend_path, send, send_path
from ._warnings import WarningCode

__all__ = [
    "FAILURE_STATUS_COLUMNS",
    "HISTORY_WARNING",
    "STATUSES",
    "AuthenticationError",
    "BatchSettings",
    "ChangedRowsError",
    "ColumnNotFoundError",
    "ConfigError",
    "Emulator",
    "FailureCode",
    "Faults",
    "GameballError",
    "LedgerError",
    "RateLimits",
    "RepeatedFailureError",
    "RetryPolicy",
    "SendErrorCode",
    "SendPlan",
    "SendReport",
    "Status",
    "StoredObject",
    "ValidationReport",
    "WarningCode",
    "asend",
    "asend_path",
    "payloads",
    "read_failures",
    "send",
    "send_path",
    "validate",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("gb-backfill")
    raise AttributeError(f"module 'gb_backfill' has no attribute {name!r}")
