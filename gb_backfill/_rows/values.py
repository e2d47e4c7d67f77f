"""How column values become Gameball values: a column at a time, in Arrow, never row by row.

Every pandas column is first turned into one Arrow array (numpy, nullable extension, categorical
and pyarrow-backed columns all convert without a Python loop). Object columns that mix Python
types, or hold values Arrow would coerce (``True`` next to ``1.5``, ints beyond 64 bits,
Decimals), are handled a value at a time, so a value converts the same way whatever its
neighbours are. The conversions, which the README documents too:

* missing (None, NaN, NA, NaT) → the key is left out of the payload;
* bool, integers, floats, Decimal → JSON numbers and booleans, exactly: decimals (Python or
  Arrow, any precision and scale) with exactly their digits, never through a float; inf and
  -inf, and numbers a JSON reader holding doubles would read as another number (beyond about
  1.8e308, or so small they read 0) are failures;
* str, categoricals, pyarrow strings → JSON strings; text that is not valid Unicode (a lone
  surrogate) is a failure;
* timestamps → ISO-8601 with the shortest of 0, 3, 6 or 9 fraction digits that is exact for
  *that value*; tz-aware ones in UTC with ``Z``; naive and aware in one column is a failure;
* dates and times → ISO-8601 ``YYYY-MM-DD`` and ``HH:MM:SS[.ffffff]``;
* anything else (dict, list, bytes, timedelta, objects) → a ``metadata_type`` failure.

Sparse columns are read densified (:func:`plain_column`); a dtype whose values no JSON reader
holds exactly (a long double) or whose rows pandas cannot take is a :class:`ConfigError`.

No rule here looks at more than one value, so a row's text never depends on its chunk.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ConfigError

BoolArray = npt.NDArray[np.bool_]

# Kinds of single Python values in mixed object columns.
_STRING, _BOOL, _INT, _FLOAT, _DECIMAL, _DATETIME, _DATE, _TIME, _BAD = range(9)

#: What ``infer_dtype`` may say of an object column for Arrow to convert it without coercion.
#: Decimals are left out on purpose: Arrow gives a column one scale, so ``2`` would read ``2.0``
#: next to ``1.5``. Datetimes too: naive and aware ones must not be merged silently. And dates:
#: ``infer_dtype`` says "date" for dates mixed with datetimes, which Arrow would cut to the day.
_ARROW_SAFE_OBJECTS = frozenset({"string", "integer", "floating", "boolean", "empty"})

#: The largest magnitude a JSON reader holds as a number (IEEE double).
_DOUBLE_MAX = float(np.finfo(np.float64).max)

#: Ids from a float column from this on may have been rounded before we ever saw them.
_EXACT_FLOAT_LIMIT = 2.0**53


def _kind_of(kind: type) -> int:
    if issubclass(kind, np.floating) and np.dtype(kind).itemsize > 8:
        return _BAD  # a long double: its digits would be rounded to a double's
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


def plain_column(series: pd.Series) -> pd.Series:
    """The column in a dtype the conversions read: sparse columns densified (exactly, every
    value as stored); :class:`ConfigError` naming the column and the fix for a dtype whose values
    no JSON reader holds exactly."""
    dtype = series.dtype
    if isinstance(dtype, pd.SparseDtype):
        return series.astype(dtype.subtype)
    name = series.name
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize > 8:
        raise ConfigError(
            f"column {name!r} is {dtype} (long double), whose digits no JSON reader holds: "
            f"convert it, e.g. df[{name!r}] = df[{name!r}].astype('float64') if rounding to a "
            "double is fine"
        )
    try:
        # Rows are taken by position for failures and chunks; some Arrow types cannot be.
        if isinstance(dtype, pd.ArrowDtype):
            series.iloc[np.zeros(min(len(series), 1), dtype=np.int64)]
    except (pa.ArrowException, NotImplementedError, TypeError):
        raise ConfigError(
            f"column {name!r} has dtype {dtype}, whose rows pandas cannot take: convert it, "
            f"e.g. df[{name!r}] = df[{name!r}].astype(object)"
        ) from None
    return series


#: Arrow types read as another that holds every value exactly, so one kernel serves both.
_WIDENED = {
    pa.large_string(): pa.string(),
    pa.float16(): pa.float64(),
}


def to_arrow(series: pd.Series) -> pa.Array | None:
    """The column as one Arrow array (missing values as nulls), or None if it must be handled a
    value at a time (mixed Python types, or values Arrow would change). ``series`` has been
    through :func:`plain_column`."""
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in (
        _ARROW_SAFE_OBJECTS
    ):
        return None
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Ints beyond 64 bits, text with lone surrogates: the caller goes a value at a time.
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.type in _WIDENED:
        array = array.cast(_WIDENED[array.type])
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


def _none(size: int) -> BoolArray:
    return np.zeros(size, dtype=bool)


def _python_kinds(series: pd.Series) -> npt.NDArray[np.int8]:
    """The value kind of each cell of a mixed object column; -1 where the value is missing."""
    missing = series.isna().to_numpy()
    types = series.map(type)
    codes = {kind: _kind_of(kind) for kind in pd.unique(types)}
    kinds = types.map(codes).to_numpy(dtype=np.int8)
    kinds[missing] = -1
    return kinds


def is_unicode(text: str) -> bool:
    """True when ``text`` can be written as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _beyond_double(value: Any) -> bool:
    """True when a JSON reader holding numbers as doubles would read another number: beyond
    about 1.8e308, or so close to zero that it reads 0."""
    try:
        number = float(value)
    except OverflowError:
        return True
    return abs(number) > _DOUBLE_MAX or (number == 0 and value != 0)


@dataclass(frozen=True, slots=True)
class ValueProblems:
    """Cells of one metadata column that cannot be sent, one mask per failure code."""

    wrong_type: BoolArray
    not_finite: BoolArray
    out_of_range: BoolArray
    not_unicode: BoolArray
    mixed_timezones: BoolArray


def metadata_problems(series: pd.Series) -> ValueProblems:
    """Find the cells that cannot be sent as they are (see the module docstring)."""
    series = plain_column(series)
    size = len(series)
    array = to_arrow(series)
    if array is not None:
        if not _is_scalar_type(array.type):
            return ValueProblems(_valid(array), *(_none(size) for _ in range(4)))
        not_finite = _none(size)
        out_of_range = _none(size)
        if pa.types.is_floating(array.type):
            not_finite = _mask(pc.is_inf(array))
        elif pa.types.is_decimal(array.type) and _decimal_may_leave_double(array.type):
            values = array.to_pylist()
            out_of_range = np.array([v is not None and _beyond_double(v) for v in values], bool)
        return ValueProblems(_none(size), not_finite, out_of_range, _none(size), _none(size))
    kinds = _python_kinds(series)
    not_finite = _none(size)
    out_of_range = _none(size)
    not_unicode = _none(size)
    mixed_timezones = _none(size)
    for position in np.flatnonzero(kinds == _FLOAT):
        not_finite[position] = not math.isfinite(float(series.iloc[position]))
    for position in np.flatnonzero(kinds == _DECIMAL):
        value = series.iloc[position]
        not_finite[position] = not value.is_finite()
        out_of_range[position] = value.is_finite() and _beyond_double(value)
    for position in np.flatnonzero(kinds == _INT):
        out_of_range[position] = _beyond_double(series.iloc[position])
    for position in np.flatnonzero(kinds == _STRING):
        not_unicode[position] = not is_unicode(series.iloc[position])
    stamps = np.flatnonzero(kinds == _DATETIME)
    if len(stamps):
        aware = np.array([_is_aware(v) for v in series.iloc[stamps]], dtype=bool)
        if aware.any() and not aware.all():
            # Which zone the naive ones meant is a guess; the user says it (tz_localize).
            mixed_timezones[stamps[~aware]] = True
    return ValueProblems(kinds == _BAD, not_finite, out_of_range, not_unicode, mixed_timezones)


def _decimal_may_leave_double(kind: pa.DataType) -> bool:
    """Whether a decimal type can hold values beyond a double's range (either way)."""
    return bool(kind.precision - kind.scale > 308 or kind.scale > 307)


def _is_aware(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.tzinfo is not None


# --- identifiers: customer ids, event names, email, mobile, session tokens -------------------


@dataclass(frozen=True, slots=True)
class Identifiers:
    """A column turned into strings: ``text`` is null where the value is missing or unusable.

    ``wrong_type`` marks values that are no id at all (booleans, timestamps, containers,
    non-finite numbers); ``inexact`` marks numbers whose digits cannot be trusted (non-whole
    floats, floats beyond 2**53, non-whole Decimals); ``not_unicode`` marks text that cannot be
    sent (a lone surrogate).
    """

    text: pa.Array
    wrong_type: BoolArray
    inexact: BoolArray
    not_unicode: BoolArray


def _float_ids(array: pa.Array) -> Identifiers:
    size = len(array)
    finite = pc.is_finite(array)
    exact = pc.and_(
        pc.and_(finite, pc.equal(array, pc.floor(array))),
        pc.less(pc.abs(array), _EXACT_FLOAT_LIMIT),
    )
    digits = pc.cast(pc.if_else(exact, array, 0.0), pa.int64()).cast(pa.string())
    text = pc.if_else(exact, digits, pa.nulls(size, pa.string()))
    inexact = _mask(pc.and_(finite, pc.invert(exact)))
    return Identifiers(text, _mask(pc.invert(finite)), inexact, _none(size))


def _decimal_id(value: decimal.Decimal) -> str | None:
    """The digits of a whole Decimal; None when it is not whole (or not finite)."""
    if not value.is_finite() or value != value.to_integral_value():
        return None
    return str(int(value))


def identifier_strings(series: pd.Series) -> Identifiers:
    """Turn an id-like column into strings, exactly or not at all.

    Strings stay as they are; integers and whole Decimals become their digits; floats become
    their digits only when they are whole and at most 2**53 (an integer column with gaps reads
    as float; beyond 2**53 a float has already lost digits). Booleans are never ids.
    """
    series = plain_column(series)
    size = len(series)
    array = to_arrow(series)
    if array is not None:
        kind = array.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return Identifiers(array.cast(pa.string()), _none(size), _none(size), _none(size))
        if pa.types.is_null(kind):
            return Identifiers(pa.nulls(size, pa.string()), _none(size), _none(size), _none(size))
        if pa.types.is_integer(kind):
            return Identifiers(pc.cast(array, pa.string()), _none(size), _none(size), _none(size))
        if pa.types.is_floating(kind):
            return _float_ids(array)
        if not pa.types.is_decimal(kind):
            return Identifiers(pa.nulls(size, pa.string()), _valid(array), _none(size), _none(size))
        # Decimal columns are rare: a value at a time.
        series = pd.Series(array.to_pylist(), dtype=object)

    kinds = _python_kinds(series)
    out: list[str | None] = [None] * size
    wrong = (kinds >= 0) & ~np.isin(kinds, (_STRING, _INT, _FLOAT, _DECIMAL))
    inexact = _none(size)
    not_unicode = _none(size)
    for position in np.flatnonzero(np.isin(kinds, (_STRING, _INT, _FLOAT, _DECIMAL))):
        value = series.iloc[position]
        kind = kinds[position]
        text: str | None
        if kind == _STRING:
            text = value if is_unicode(value) else None
            not_unicode[position] = text is None
        elif kind == _INT:
            text = str(int(value))
        elif kind == _FLOAT:
            number = float(value)
            if not math.isfinite(number):
                wrong[position] = True
                continue
            exact = number.is_integer() and abs(number) < _EXACT_FLOAT_LIMIT
            text = str(int(number)) if exact else None
            inexact[position] = not exact
        else:
            text = _decimal_id(value)
            wrong[position] = not value.is_finite()
            inexact[position] = value.is_finite() and text is None
        out[position] = text
    return Identifiers(pa.array(out, pa.string()), wrong, inexact, not_unicode)


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
            values[position] = json.dumps(text[position].as_py(), ensure_ascii=False)[1:-1]
        escaped = pa.array(values, pa.string())
    return pc.binary_join_element_wise('"', escaped, '"', "")


_Unit = Literal["s", "ms", "us", "ns"]
_TICKS_PER_SECOND: dict[_Unit, int] = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_FRACTION_UNITS: tuple[_Unit, ...] = ("s", "ms", "us", "ns")


def _iso_timestamps(array: pa.Array) -> pa.Array:
    """ISO-8601 text per value, in the value's own unit (so year 9999 is fine)."""
    unit: _Unit = array.type.unit
    ticks = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    stamps = ticks.astype(f"datetime64[{unit}]")
    per_second = _TICKS_PER_SECOND[unit]
    # The coarsest of s, ms, us, ns that shows this value exactly: one rule per value.
    units = [u for u in _FRACTION_UNITS if _TICKS_PER_SECOND[u] <= per_second]
    needed = np.full(len(ticks), len(units) - 1)
    for index in reversed(range(len(units) - 1)):
        needed[ticks % (per_second // _TICKS_PER_SECOND[units[index]]) == 0] = index
    # Only the units some value needs are formatted (usually one: whole seconds).
    text = np.empty(len(ticks), dtype=f"<U{30 + 3 * len(units)}")
    for index in np.unique(needed).tolist():
        where = needed == index
        text[where] = np.datetime_as_string(stamps[where], unit=units[index])
    if array.type.tz is not None:
        # Arrow stores tz-aware timestamps as UTC already.
        text = np.char.add(text.astype(str), "Z")
    return pc.if_else(array.is_valid(), pa.array(text, pa.string()), None)


def python_timestamp_text(value: Any) -> str:
    """The same text :func:`_iso_timestamps` gives, for one Python or numpy datetime."""
    stamp = value if isinstance(value, dt.datetime) else pd.Timestamp(value)
    suffix = ""
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        suffix = "Z"
    nanos = stamp.microsecond * 1000 + int(getattr(stamp, "nanosecond", 0))
    if nanos == 0:
        fraction = ""
    elif nanos % 10**6 == 0:
        fraction = f".{nanos // 10**6:03d}"
    elif nanos % 1000 == 0:
        fraction = f".{nanos // 1000:06d}"
    else:
        fraction = f".{nanos:09d}"
    return (
        f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T"
        f"{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}{fraction}{suffix}"
    )


def _arrow_json(array: pa.Array) -> pa.Array:
    """JSON text for each cell of a scalar Arrow array; null for missing and non-finite cells."""
    kind = array.type
    if pa.types.is_null(kind):
        return pa.nulls(len(array), pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(array, "true", "false")
    if pa.types.is_integer(kind):
        return pc.cast(array, pa.string())
    if pa.types.is_decimal(kind):
        return pa.array([_decimal_json(v) for v in array.to_pylist()], pa.string())
    if pa.types.is_floating(kind):
        return _float_json(array)
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


def _float_json(array: pa.Array) -> pa.Array:
    """Floats as JSON numbers: whole ones up to 2**53 as integer digits (``3.0`` and ``3`` read the
    same, so an integer column that gained a gap keeps its text), others in Arrow's shortest
    round-trip form. Non-finite values are null."""
    array = array.cast(pa.float64())
    finite = pc.is_finite(array)
    whole = pc.and_(
        pc.and_(finite, pc.equal(array, pc.floor(array))),
        pc.less(pc.abs(array), _EXACT_FLOAT_LIMIT),
    )
    digits = pc.cast(pc.if_else(whole, array, 0.0), pa.int64()).cast(pa.string())
    return pc.if_else(whole, digits, pc.if_else(finite, pc.cast(array, pa.string()), None))


def _decimal_json(value: decimal.Decimal | None) -> str | None:
    """A Decimal as a JSON number, the same text for the same value whatever its scale."""
    if value is None or not value.is_finite() or _beyond_double(value):
        return None
    if value == value.to_integral_value():
        return str(int(value))
    # Not normalize(): it rounds to the context's 28 digits. format(..., "f") is exact.
    return format(value, "f").rstrip("0")


def _python_json(kind: int) -> Callable[[Any], str | None]:
    def integer(value: Any) -> str | None:
        return None if _beyond_double(value) else str(int(value))

    def text(value: str) -> str | None:
        return json.dumps(value, ensure_ascii=False) if is_unicode(value) else None

    def iso(value: dt.date | dt.time) -> str:
        return json.dumps(value.isoformat())

    encoders: dict[int, Callable[[Any], str | None]] = {
        _STRING: text,
        _BOOL: lambda value: "true" if value else "false",
        _INT: integer,
        _DECIMAL: _decimal_json,
        _DATETIME: lambda value: json.dumps(python_timestamp_text(value)),
        _DATE: iso,
        _TIME: iso,
    }
    return encoders.get(kind, lambda _value: None)


def json_values(series: pd.Series) -> pa.Array:
    """JSON text for each cell of a metadata column; null where the key must be left out.

    Cells that :func:`metadata_problems` reports come out null too; callers never send those rows.
    """
    series = plain_column(series)
    array = to_arrow(series)
    if array is not None:
        if not _is_scalar_type(array.type):
            return pa.nulls(len(array), pa.string())
        return _arrow_json(array)
    kinds = _python_kinds(series)
    out: list[str | None] = [None] * len(series)
    for kind in np.unique(kinds[kinds >= 0]):
        where = np.flatnonzero(kinds == kind)
        if kind == _FLOAT:
            floats = np.asarray(series.iloc[where].to_numpy(), dtype=np.float64)
            for position, text in zip(
                where, _float_json(pa.array(floats)).to_pylist(), strict=True
            ):
                out[position] = text
            continue
        encode = _python_json(int(kind))
        for position, value in zip(where, series.iloc[where], strict=True):
            out[position] = encode(value)
    return pa.array(out, pa.string())
