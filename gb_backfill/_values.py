"""How column values become Gameball values: a column at a time, in Arrow, never row by row.

Every pandas column is first turned into one Arrow array (numpy, nullable extension, categorical
and pyarrow-backed columns all convert without a Python loop). Only object columns that mix
Python types fall back to per-type groups. The conversions, which the README documents too:

* missing (None, NaN, NA, NaT) → the key is left out of the payload;
* bool, integers, floats, Decimal → JSON numbers and booleans (inf and -inf are errors);
* str, categoricals, pyarrow strings → JSON strings;
* timestamps → ISO-8601 strings, with the shortest exact fraction; tz-aware ones in UTC with ``Z``;
* dates and times → ISO-8601 ``YYYY-MM-DD`` and ``HH:MM:SS[.ffffff]``;
* anything else (dict, list, bytes, timedelta, objects) → a ``metadata_type`` failure.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

BoolArray = npt.NDArray[np.bool_]

# Kinds of single Python values in mixed object columns.
_STRING, _BOOL, _INT, _FLOAT, _DECIMAL, _DATETIME, _DATE, _TIME, _BAD = range(9)


def _kind_of(kind: type) -> int:
    # Order matters: bool subclasses int, datetime subclasses date.
    for base, code in (
        ((str,), _STRING),
        ((bool, np.bool_), _BOOL),
        ((int, np.integer), _INT),
        ((float, np.floating), _FLOAT),
        ((decimal.Decimal,), _DECIMAL),
        ((dt.datetime, np.datetime64), _DATETIME),
        ((dt.date,), _DATE),
        ((dt.time,), _TIME),
    ):
        if issubclass(kind, base):
            return code
    return _BAD


def to_arrow(series: pd.Series) -> pa.Array | None:
    """The column as one Arrow array (missing values as nulls), or None if its types are mixed."""
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Mixed Python types; the caller handles the column a type at a time.
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _is_scalar_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
    )


def _mask(array: pa.Array) -> BoolArray:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _valid(array: pa.Array) -> BoolArray:
    return _mask(array.is_valid())


def _python_kinds(series: pd.Series) -> npt.NDArray[np.int8]:
    """The value kind of each cell of a mixed object column; -1 where the value is missing."""
    missing = series.isna().to_numpy()
    types = series.map(type)
    codes = {kind: _kind_of(kind) for kind in pd.unique(types)}
    kinds = types.map(codes).to_numpy(dtype=np.int8)
    kinds[missing] = -1
    return kinds


@dataclass(frozen=True, slots=True)
class ValueProblems:
    """Cells of one metadata column that cannot be sent."""

    wrong_type: BoolArray
    not_finite: BoolArray


def metadata_problems(series: pd.Series) -> ValueProblems:
    """Find the cells that are not a string, number or boolean, or are inf/-inf."""
    size = len(series)
    array = to_arrow(series)
    if array is not None:
        if not _is_scalar_type(array.type):
            return ValueProblems(_valid(array), np.zeros(size, dtype=bool))
        if pa.types.is_floating(array.type):
            return ValueProblems(np.zeros(size, dtype=bool), _mask(pc.is_inf(array)))
        return ValueProblems(np.zeros(size, dtype=bool), np.zeros(size, dtype=bool))
    kinds = _python_kinds(series)
    not_finite = np.zeros(size, dtype=bool)
    floats = np.flatnonzero(kinds == _FLOAT)
    not_finite[floats] = np.isinf(series.iloc[floats].to_numpy(dtype=float))
    decimals = np.flatnonzero(kinds == _DECIMAL)
    not_finite[decimals] = [not value.is_finite() for value in series.iloc[decimals]]
    return ValueProblems(kinds == _BAD, not_finite)


# --- identifiers: customer ids, event names, email, mobile, session tokens -------------------


@dataclass(frozen=True, slots=True)
class Identifiers:
    """A column turned into strings: ``text`` is null where the value is missing or unusable."""

    text: pa.Array
    wrong_type: BoolArray


def identifier_strings(series: pd.Series) -> Identifiers:
    """Turn an id-like column into strings.

    Strings stay as they are; integers, and floats that hold whole numbers (an integer column
    with gaps reads as float), become their decimal digits; other floats and Decimals their
    shortest text. Booleans, timestamps, non-finite numbers and containers are the wrong type.
    """
    size = len(series)
    array = to_arrow(series)
    if array is not None:
        kind = array.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return Identifiers(array.cast(pa.string()), np.zeros(size, dtype=bool))
        if pa.types.is_null(kind):
            return Identifiers(pa.nulls(size, pa.string()), np.zeros(size, dtype=bool))
        if pa.types.is_integer(kind) or pa.types.is_decimal(kind):
            return Identifiers(pc.cast(array, pa.string()), np.zeros(size, dtype=bool))
        if pa.types.is_floating(kind):
            finite = pc.is_finite(array)
            whole = pc.and_(finite, pc.equal(array, pc.floor(array)))
            safe = pc.and_(whole, pc.less(pc.abs(array), 2.0**63))
            as_int = pc.cast(pc.if_else(safe, array, 0.0), pa.int64()).cast(pa.string())
            text = pc.if_else(safe, as_int, pc.if_else(finite, pc.cast(array, pa.string()), None))
            return Identifiers(text, _mask(pc.invert(finite)))
        wrong = _valid(array)
        return Identifiers(pa.nulls(size, pa.string()), wrong)

    kinds = _python_kinds(series)
    usable = np.isin(kinds, (_STRING, _INT, _FLOAT, _DECIMAL))
    out: list[str | None] = [None] * size
    wrong = (kinds >= 0) & ~usable
    positions = np.flatnonzero(usable)
    for position, value in zip(positions, series.iloc[positions], strict=True):
        if kinds[position] == _FLOAT:
            if not np.isfinite(value):
                wrong[position] = True
                continue
            value = int(value) if float(value).is_integer() else value
        out[position] = str(value)
    return Identifiers(pa.array(out, pa.string()), wrong)


# --- JSON text, a column at a time ----------------------------------------------------------


def json_strings(text: pa.Array) -> pa.Array:
    """JSON string literals for a string array (nulls stay null)."""
    escaped = pc.replace_substring(text, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    control = _mask(pc.match_substring_regex(text, r"[\x00-\x1f]"))
    if control.any():
        # Control characters are rare; let the json module write their \u escapes.
        values = escaped.to_pylist()
        for position in np.flatnonzero(control):
            values[position] = json.dumps(text[position].as_py())[1:-1]
        escaped = pa.array(values, pa.string())
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _fraction_unit(nanoseconds: npt.NDArray[np.int64]) -> Literal["s", "ms", "us", "ns"]:
    units: tuple[tuple[Literal["s", "ms", "us"], int], ...] = (
        ("s", 10**9),
        ("ms", 10**6),
        ("us", 10**3),
    )
    for unit, step in units:
        if not (nanoseconds % step).any():
            return unit
    return "ns"


def _iso_timestamps(array: pa.Array) -> pa.Array:
    aware = array.type.tz is not None
    # Arrow stores tz-aware timestamps as UTC already; drop the zone and write UTC with "Z".
    naive = array.cast(pa.timestamp(array.type.unit))
    values = naive.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False)
    present = ~np.isnat(values)
    unit = _fraction_unit(values[present].astype(np.int64)) if present.any() else "s"
    text = np.datetime_as_string(values, unit=unit)
    strings = pa.array(np.char.add(text, "Z") if aware else text, pa.string())
    return pc.if_else(pa.array(present), strings, None)


def _arrow_json(array: pa.Array) -> pa.Array:
    """JSON text for each cell of a scalar Arrow array; null for missing and non-finite cells."""
    kind = array.type
    if pa.types.is_null(kind):
        return pa.nulls(len(array), pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(array, "true", "false")
    if pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return pc.cast(array, pa.string())
    if pa.types.is_floating(kind):
        return pc.if_else(pc.is_finite(array), pc.cast(array, pa.string()), None)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return json_strings(array.cast(pa.string()))
    if pa.types.is_timestamp(kind):
        return json_strings(_iso_timestamps(array))
    if pa.types.is_date(kind):
        return json_strings(pc.cast(array, pa.string()))
    if pa.types.is_time(kind):
        text = pc.replace_substring_regex(pc.cast(array, pa.string()), r"\.0+$", "")
        return json_strings(text)
    return pa.nulls(len(array), pa.string())


def _python_json(kind: int) -> Callable[[Any], str | None]:
    def number(value: Any) -> str | None:
        return json.dumps(value.item() if isinstance(value, np.generic) else value)

    def finite(value: Any) -> str | None:
        return number(value) if np.isfinite(value) else None

    def decimal_text(value: decimal.Decimal) -> str | None:
        return str(value) if value.is_finite() else None

    def timestamp(value: Any) -> str:
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            return json.dumps(stamp.tz_convert("UTC").tz_localize(None).isoformat() + "Z")
        return json.dumps(stamp.isoformat())

    def iso(value: dt.date | dt.time) -> str:
        return json.dumps(value.isoformat())

    encoders: dict[int, Callable[[Any], str | None]] = {
        _STRING: json.dumps,
        _BOOL: lambda value: "true" if value else "false",
        _INT: number,
        _FLOAT: finite,
        _DECIMAL: decimal_text,
        _DATETIME: timestamp,
        _DATE: iso,
        _TIME: iso,
    }
    return encoders.get(kind, lambda _value: None)


def json_values(series: pd.Series) -> pa.Array:
    """JSON text for each cell of a metadata column; null where the key must be left out.

    Cells that :func:`metadata_problems` reports come out null too; callers never send those rows.
    """
    array = to_arrow(series)
    if array is not None:
        if not _is_scalar_type(array.type):
            return pa.nulls(len(array), pa.string())
        return _arrow_json(array)
    kinds = _python_kinds(series)
    out: list[str | None] = [None] * len(series)
    for kind in np.unique(kinds[kinds >= 0]):
        where = np.flatnonzero(kinds == kind)
        encode = _python_json(int(kind))
        for position, value in zip(where, series.iloc[where], strict=True):
            out[position] = encode(value)
    return pa.array(out, pa.string())
