"""gb-backfill: validate, convert and send historical events from DataFrames to Gameball.

Importing the package registers the ``df.gameball`` accessor::

    import gb_backfill
    report = df.gameball.validate(event="purchase")
    plan = df.gameball.plan(event="purchase", ledger="backfill.ledger")  # sends nothing
    sent = df.gameball.send(event="purchase", ledger="backfill.ledger")

What sends and previews (httpx, asyncio, the ledger, the lanes) and the emulator (aiohttp) are
imported when one of their names is first used, so ``import gb_backfill`` costs little beyond
pandas (``bench/bench_startup.py`` measures it). aiohttp is the ``emulator`` extra: without it
everything but the emulator works.
"""

from __future__ import annotations

# First: pandas' imports take the CLI's first half second (see the module).
from . import _interrupt  # noqa: F401  isort: skip
import typing as _typing

from . import _accessor  # noqa: F401  (registers df.gameball)
from ._config import RateLimits, RetryPolicy
from ._errors import (
    ChangedRowsError,
    ColumnNotFoundError,
    ConfigError,
    GameballError,
    LedgerError,
)
from ._gameball import HISTORY_WARNING
from ._preview.estimates import Estimate
from ._preview.report import CampaignPreview, CustomerPreview, EventPreview, PreviewReport
from ._reports.ledger import LedgerReport, Settlement
from ._reports.plan import SendPlan
from ._reports.send import SendReport
from ._reports.validation import ValidationReport
from ._stops import AuthenticationError, Interrupted, RepeatedFailureError, RunStopped
from ._store.failures import FAILURE_STATUS_COLUMNS, read_failures
from ._store.stored_values import StoredObject
from ._validate import payloads, validate, validate_path
from ._vocabulary import STATUSES, FailureCode, SendErrorCode, Status, WarningCode

if _typing.TYPE_CHECKING:
    from ._emulator import (
        BatchSettings,
        Campaign,
        Campaigns,
        Condition,
        Coupon,
        Emulator,
        Faults,
        OrderSettings,
        Points,
        PointsPerUnit,
    )
    from ._preview.run import apreview, apreview_path, preview, preview_path
    from ._sender import (
        aplan,
        aplan_path,
        asend,
        asend_path,
        plan,
        plan_path,
        send,
        send_path,
    )
    from ._settle import ledger_status, settle

__all__ = [
    "FAILURE_STATUS_COLUMNS",
    "HISTORY_WARNING",
    "STATUSES",
    "AuthenticationError",
    "BatchSettings",
    "Campaign",
    "CampaignPreview",
    "Campaigns",
    "ChangedRowsError",
    "ColumnNotFoundError",
    "Condition",
    "ConfigError",
    "Coupon",
    "CustomerPreview",
    "Emulator",
    "Estimate",
    "EventPreview",
    "FailureCode",
    "Faults",
    "GameballError",
    "Interrupted",
    "LedgerError",
    "LedgerReport",
    "OrderSettings",
    "Points",
    "PointsPerUnit",
    "PreviewReport",
    "RateLimits",
    "RepeatedFailureError",
    "RetryPolicy",
    "RunStopped",
    "SendErrorCode",
    "SendPlan",
    "SendReport",
    "Settlement",
    "Status",
    "StoredObject",
    "ValidationReport",
    "WarningCode",
    "aplan",
    "aplan_path",
    "apreview",
    "apreview_path",
    "asend",
    "asend_path",
    "ledger_status",
    "payloads",
    "plan",
    "plan_path",
    "preview",
    "preview_path",
    "read_failures",
    "send",
    "send_path",
    "settle",
    "validate",
    "validate_path",
]

# A traceback names the public path: gb_backfill.ConfigError, not gb_backfill._errors....
for _error in (
    AuthenticationError, ChangedRowsError, ColumnNotFoundError, ConfigError, GameballError,
    Interrupted, LedgerError, RepeatedFailureError, RunStopped,
):  # fmt: skip
    _error.__module__ = __name__
del _error

#: Public names imported on first use, and the module each lives in.
_LAZY = {
    **dict.fromkeys(
        ("aplan", "aplan_path", "asend", "asend_path", "plan", "plan_path", "send", "send_path"),
        "_sender",
    ),
    **dict.fromkeys(("apreview", "apreview_path", "preview", "preview_path"), "_preview.run"),
    **dict.fromkeys(("ledger_status", "settle"), "_settle"),
    **dict.fromkeys(
        (
            "BatchSettings",
            "Campaign",
            "Campaigns",
            "Condition",
            "Coupon",
            "Emulator",
            "Faults",
            "OrderSettings",
            "Points",
            "PointsPerUnit",
        ),
        "_emulator",
    ),
}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # found by plain lookup from now on
        return value
    if name == "__version__":
        from importlib.metadata import version

        return version("gb-backfill")
    raise AttributeError(f"module 'gb_backfill' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names are public before their first use too (tab completion, help()).
    return sorted({*globals(), *__all__})
