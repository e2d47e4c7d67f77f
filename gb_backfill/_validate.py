"""``validate()``: Gameball's event rules over a DataFrame, as a report."""

from __future__ import annotations

from collections.abc import Hashable

import pandas as pd

from ._input import retyped
from ._mapping import resolve_mapping
from ._reports import ValidationReport
from ._rules import check_frame
from ._warnings import WarningTally

__all__ = ["validate"]


def validate(
    df: pd.DataFrame,
    *,
    customer_id: Hashable | None = None,
    event_name: Hashable | None = None,
    event: str | None = None,
    metadata: list[Hashable] | tuple[Hashable, ...] | None = None,
    email: Hashable | None = None,
    mobile: Hashable | None = None,
    session_token: Hashable | None = None,
) -> ValidationReport:
    """Check every row of ``df`` against Gameball's event rules.

    The keywords say which column is which (see the README); without them the usual column
    names are found. Raises :class:`ConfigError` only for a bad mapping; bad rows are data::

        report = validate(df, event="purchase")
        report.failures.groupby("code").size()
    """
    mapping = resolve_mapping(
        df.columns,
        customer_id=customer_id,
        event_name=event_name,
        event=event,
        metadata=metadata,
        email=email,
        mobile=mobile,
        session_token=session_token,
    )
    df = retyped(df)  # a failures file's text of values a CSV reader could not convert
    checked = check_frame(df, mapping)
    warnings = WarningTally(mapping)
    warnings.add(df, checked.customer_ids, checked.invalid)
    return ValidationReport(
        valid=df[~checked.invalid],
        failures=checked.failures.drop(columns="position"),
        rows=len(df),
        warnings=warnings.frame(),
    )
