"""Looking at rows before sending: ``validate()`` (Gameball's event rules over a DataFrame, as a
report) and ``payloads()`` (the request bodies the valid rows would carry)."""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

import pandas as pd

from ._input.reader import retyped
from ._reports.validation import ValidationReport
from ._rows.mapping import resolve_mapping
from ._rows.payloads import encode_rows, exact_number
from ._rows.rules import check_frame
from ._rows.warnings import WarningTally

__all__ = ["payloads", "validate"]


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


def payloads(
    df: pd.DataFrame,
    *,
    customer_id: Hashable | None = None,
    event_name: Hashable | None = None,
    event: str | None = None,
    metadata: list[Hashable] | tuple[Hashable, ...] | None = None,
    email: Hashable | None = None,
    mobile: Hashable | None = None,
    session_token: Hashable | None = None,
) -> pd.Series:
    """The Gameball v4 payloads of the valid rows of ``df``, in input order.

    Returns a Series of dicts named ``payload`` whose index is the rows' original index, so each
    payload maps back to its row; invalid rows are left out (see :func:`validate` for why).
    Numbers are as sent: a decimal a float cannot hold exactly comes back as a ``Decimal``. The
    mapping keywords are those of :func:`validate`::

        df.gameball.payloads(event="purchase").iloc[0]
        {'customerId': 'c-1', 'events': {'purchase': {'amount': 9.5}}}
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
    encoded = encode_rows(df, check_frame(df, mapping))
    decoded: list[dict[str, Any]] = [
        json.loads(body, parse_float=exact_number) for body in encoded.bodies
    ]
    return pd.Series(decoded, index=df.index[encoded.positions], name="payload", dtype=object)
