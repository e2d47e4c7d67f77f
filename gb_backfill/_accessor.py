"""``df.gameball``: the notebook face of gb-backfill, registered when ``gb_backfill`` is imported.

The accessor keeps no state (pandas may build a new one on every attribute access); each method
forwards to the public function of the same name with ``df`` as its first argument. Sending and
previewing are imported on first use (they bring httpx, asyncio and the ledger), so registering
the accessor costs ``import gb_backfill`` nothing beyond pandas.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._validate import payloads, validate

if TYPE_CHECKING:
    from ._preview.report import PreviewReport
    from ._reports.send import SendPlan, SendReport
    from ._reports.validation import ValidationReport

__all__ = ["GameballAccessor"]


@pd.api.extensions.register_dataframe_accessor("gameball")
class GameballAccessor:
    """``df.gameball.validate/payloads/preview/apreview/send/asend(...)``: the functions of the
    same name."""

    def __init__(self, df: pd.DataFrame) -> None:
        if not isinstance(df, pd.DataFrame):  # pragma: no cover - pandas only passes frames
            raise AttributeError("df.gameball needs a DataFrame")
        self._df = df
        _show_real_keywords()

    def validate(self, **mapping: Any) -> ValidationReport:
        """Check the rows against Gameball's event rules (see :func:`gb_backfill.validate`)."""
        return validate(self._df, **mapping)

    def payloads(self, **mapping: Any) -> pd.Series:
        """The v4 payloads of the valid rows (see :func:`gb_backfill.payloads`)."""
        return payloads(self._df, **mapping)

    def preview(self, **options: Any) -> PreviewReport:
        """Estimate what sending the rows would award (see :func:`gb_backfill.preview`)."""
        from ._preview.run import preview

        return preview(self._df, **options)

    async def apreview(self, **options: Any) -> PreviewReport:
        """Estimate what sending the rows would award; ``await`` it (see
        :func:`gb_backfill.apreview`)."""
        from ._preview.run import apreview

        return await apreview(self._df, **options)

    def send(self, **options: Any) -> SendReport | SendPlan:
        """Send the rows to Gameball and wait (see :func:`gb_backfill.send`)."""
        from ._sender import send

        report: SendReport | SendPlan = send(self._df, **options)
        return report

    async def asend(self, **options: Any) -> SendReport | SendPlan:
        """Send the rows to Gameball; ``await`` it in a notebook (see :func:`gb_backfill.asend`)."""
        from ._sender import asend

        report: SendReport | SendPlan = await asend(self._df, **options)
        return report


def _without_df(function: Any) -> inspect.Signature:
    """``function``'s signature with ``self`` for its frame: what ``df.gameball.<name>`` takes."""
    signature = inspect.signature(function)
    this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return signature.replace(parameters=[this, *list(signature.parameters.values())[1:]])


def _show_real_keywords() -> None:
    """help() and tab completion show the real keywords, written once in asend and apreview.
    Done when the first ``df.gameball`` is made, since that imports what sends."""
    if "__signature__" in vars(GameballAccessor.send):
        return
    from ._preview.run import apreview
    from ._sender import asend

    faces = {"send": asend, "asend": asend, "validate": validate, "payloads": payloads}
    faces |= {"preview": apreview, "apreview": apreview}
    for name, function in faces.items():
        getattr(GameballAccessor, name).__signature__ = _without_df(function)
