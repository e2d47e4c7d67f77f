"""``df.gameball``: the notebook face of gb-backfill, registered when ``gb_backfill`` is imported.

The accessor keeps no state (pandas may build a new one on every attribute access); each method
forwards to the public function of the same name with ``df`` as its first argument, and takes
the same keywords (declared once, in :mod:`gb_backfill._options`: mypy and ``help()`` see them).
Sending and previewing are imported on first use (they bring httpx, asyncio and the ledger).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from importlib import import_module
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import pandas as pd

from ._options import MappingOptions, PlanOptions, PreviewOptions, SendOptions
from ._preview.report import PreviewReport
from ._reports.plan import SendPlan
from ._reports.send import SendReport
from ._reports.validation import ValidationReport

__all__ = ["GameballAccessor"]

P = ParamSpec("P")
R = TypeVar("R")


def _method(
    module: str, name: str, declaration: Callable[P, object], returns: type[R]
) -> Callable[Concatenate[GameballAccessor, P], R]:
    """``df.gameball.<name>(**keywords)``: ``gb_backfill.<name>(df, **keywords)``, imported
    from ``module`` on first use; its keywords are ``declaration``'s."""

    def method(self: GameballAccessor, **keywords: Any) -> Any:
        function = getattr(import_module(f"gb_backfill.{module}"), name)
        return function(self._df, **keywords)

    return cast("Callable[Concatenate[GameballAccessor, P], R]", _named(method, name, declaration))


def _async_method(
    module: str, name: str, declaration: Callable[P, object], returns: type[R]
) -> Callable[Concatenate[GameballAccessor, P], Coroutine[Any, Any, R]]:
    """:func:`_method` for an async function: ``await df.gameball.<name>(**keywords)``."""

    async def method(self: GameballAccessor, **keywords: Any) -> Any:
        function = getattr(import_module(f"gb_backfill.{module}"), name)
        return await function(self._df, **keywords)

    named = _named(method, name, declaration)
    return cast("Callable[Concatenate[GameballAccessor, P], Coroutine[Any, Any, R]]", named)


def _named(method: Callable[..., Any], name: str, declaration: Callable[..., Any]) -> Any:
    this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    keywords = inspect.signature(declaration).parameters.values()
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``gb_backfill.{name}(df, ...)`` for this DataFrame: see its help."
    cast(Any, method).__signature__ = inspect.Signature([this, *keywords])
    return method


@pd.api.extensions.register_dataframe_accessor("gameball")
class GameballAccessor:
    """``df.gameball.validate/payloads/plan/preview/send`` (and ``aplan``, ``apreview``,
    ``asend`` to ``await``): the functions of the same name, for this DataFrame."""

    def __init__(self, df: pd.DataFrame) -> None:
        if not isinstance(df, pd.DataFrame):  # pragma: no cover - pandas only passes frames
            raise AttributeError("df.gameball needs a DataFrame")
        self._df = df

    validate = _method("_validate", "validate", MappingOptions, ValidationReport)
    payloads = _method("_validate", "payloads", MappingOptions, pd.Series)
    plan = _method("_sender", "plan", PlanOptions, SendPlan)
    aplan = _async_method("_sender", "aplan", PlanOptions, SendPlan)
    preview = _method("_preview.run", "preview", PreviewOptions, PreviewReport)
    apreview = _async_method("_preview.run", "apreview", PreviewOptions, PreviewReport)
    send = _method("_sender", "send", SendOptions, SendReport)
    asend = _async_method("_sender", "asend", SendOptions, SendReport)
