"""An order's values as Gameball takes them: its date in UTC to the millisecond, its totals.

**Dates.** ``orderDate`` "must be in UTC (ISO 8601 format), e.g. ``2024-10-16T08:13:29.290Z``":
every date is written so, with exactly three fraction digits, from any timestamp type (numpy,
pandas, Arrow, tz-aware or not, Python ``datetime`` and ``date``) or ISO-8601 text (``2024-10-16``,
``2024-10-16 08:13:29``, ``2024-10-16T08:13:29.29+02:00``, ``...Z``). The instant is kept
exactly: an aware value is converted to UTC; **a naive value (or text without an offset) is read
as UTC**, as the loose identity of :mod:`.loose` reads it; a value finer than the millisecond
cannot be written exactly and is refused, not rounded (``df[col].dt.floor("ms")`` says the
rounding is meant). Text in another layout (``10/16/2024``: which is the month?), numbers (epoch
in which unit?) and booleans are not dates. A date after the moment of the check is refused.

**Totals** (``totalPaid`` and the optional ``totalPrice``, ``totalDiscount``, ``totalShipping``,
``totalTax``) are numbers (integers, floats, decimals; never text or booleans), finite and not
negative, written as exact JSON numbers (:func:`~.values.json_values`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .values import BoolArray, json_values, metadata_problems, plain_column, to_arrow

__all__: list[str] = []

_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


@dataclass(frozen=True, slots=True)
class OrderDates:
    """A date column as ``orderDate`` texts (null where missing or refused), and why refused."""

    text: pa.Array
    missing: BoolArray
    not_a_date: BoolArray
    too_precise: BoolArray
    future: BoolArray


def _instant(value: Any) -> pd.Timestamp | None:
    """One value as a UTC instant (a naive one read as UTC); None when it is no date."""
    if isinstance(value, str):
        if not _ISO.fullmatch(value):
            return None
        try:
            value = pd.Timestamp(value.replace(",", "."))
        except (ValueError, OverflowError):
            return None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = pd.Timestamp(value.year, value.month, value.day)
    elif isinstance(value, np.datetime64 | dt.datetime):
        try:
            value = pd.Timestamp(value)
        except (ValueError, OverflowError):  # beyond what a Timestamp holds (years 1677-2262)
            return None
    if not isinstance(value, pd.Timestamp) or value is pd.NaT:
        return None
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def _text(stamp: pd.Timestamp) -> str:
    return f"{stamp.strftime('%Y-%m-%dT%H:%M:%S')}.{stamp.microsecond // 1000:03d}Z"


def _typed_dates(series: pd.Series, moment: pd.Timestamp) -> OrderDates:
    """A datetime64 column (naive: read as UTC), in its own unit, a column at a time."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        stamps = series.dt.tz_convert("UTC")
    else:
        stamps = series.dt.tz_localize("UTC")
    stamps = stamps.reset_index(drop=True)
    missing = np.asarray(stamps.isna(), dtype=bool)
    nanos = stamps.dt.microsecond.to_numpy(dtype=np.int64, na_value=0) * 1000
    nanos += stamps.dt.nanosecond.to_numpy(dtype=np.int64, na_value=0)
    too_precise = ~missing & (nanos % 10**6 != 0)
    future = ~missing & np.asarray((stamps > moment).fillna(False), dtype=bool)
    good = ~missing & ~too_precise & ~future
    text = np.full(len(stamps), None, dtype=object)
    if good.any():
        seconds = stamps[good].dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object)
        millis = nanos[good] // 10**6
        text[good] = [f"{s}.{m:03d}Z" for s, m in zip(seconds, millis.tolist(), strict=True)]
    nothing = np.zeros(len(stamps), dtype=bool)
    return OrderDates(pa.array(text, pa.string()), missing, nothing, too_precise, future)


def order_dates(series: pd.Series, *, now: pd.Timestamp | None = None) -> OrderDates:
    """``series`` as ``orderDate`` texts (see the module docstring); ``now`` (default: the
    wall clock) is when a date becomes a future one."""
    series = plain_column(series)
    moment = pd.Timestamp.now(tz="UTC") if now is None else now
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return _typed_dates(series, moment)
    size = len(series)
    missing = np.asarray(series.isna(), dtype=bool)
    text = np.full(size, None, dtype=object)
    not_a_date, too_precise, future = (np.zeros(size, dtype=bool) for _ in range(3))
    for at, value in enumerate(series.tolist()):
        if missing[at]:
            continue
        stamp = _instant(value)
        if stamp is None:
            not_a_date[at] = True
        elif (stamp.microsecond * 1000 + stamp.nanosecond) % 10**6:
            too_precise[at] = True
        elif stamp > moment:
            future[at] = True
        else:
            text[at] = _text(stamp)
    return OrderDates(pa.array(text, pa.string()), missing, not_a_date, too_precise, future)


@dataclass(frozen=True, slots=True)
class Amounts:
    """A totals column as JSON numbers (null where missing or refused), and why refused."""

    text: pa.Array
    missing: BoolArray
    wrong_type: BoolArray
    negative: BoolArray
    not_finite: BoolArray


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number | decimal.Decimal) and not isinstance(
        value, bool | np.bool_ | complex
    )


def _negative(value: Any) -> bool:
    try:
        return bool(value < 0)
    except (TypeError, decimal.InvalidOperation):
        return False


def amounts(series: pd.Series) -> Amounts:
    """``series`` as totals (see the module docstring)."""
    series = plain_column(series)
    size = len(series)
    array = to_arrow(series)
    if array is not None:
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        kind = array.type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        numeric = numeric or pa.types.is_decimal(kind)
        wrong_type = valid & (not numeric)
        negative = np.zeros(size, dtype=bool)
        if numeric:
            below = pc.less(array, 0).fill_null(False)
            negative = np.asarray(below.to_numpy(zero_copy_only=False), dtype=bool)
        missing = ~valid
    else:
        values = series.tolist()
        missing = np.asarray(series.isna(), dtype=bool)
        wrong_type = np.array([not _is_number(v) for v in values], dtype=bool) & ~missing
        negative = np.array([_is_number(v) and _negative(v) for v in values], dtype=bool)
        nan = np.array([isinstance(v, float) and math.isnan(v) for v in values], dtype=bool)
        missing = missing | nan
    problems = metadata_problems(series)
    not_finite = (problems.not_finite | problems.out_of_range) & ~wrong_type
    negative &= ~not_finite
    bad = wrong_type | negative | not_finite | missing
    text = pc.if_else(pa.array(bad), None, json_values(series))
    return Amounts(text, missing, wrong_type, negative, not_finite)
