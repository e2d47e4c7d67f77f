"""The types of CSV columns: decided once for the whole input, each value converted exactly or
marked as its row's problem.

A first pass over the input sees every value of every column that is not read as text, and
decides its type (``dtype=`` decides it instead for the columns it names):

* whole numbers without leading zeros → ``int`` (``bigint``, exact Python ints, once one has
  more than 18 digits);
* numbers → ``float``; when one of them has more digits than a double holds (``0.1`` is fine,
  ``12345678901234567.89`` is not), the column is ``decimal`` instead and keeps every digit;
* ``true``/``false`` in any case → ``bool``;
* anything else → ``text``. Timestamps stay text unless asked for: ``datetime``.

``dtype=`` converts with the same rules, and a value it cannot convert is its row's
``dtype_unconvertible`` failure, never an exception. Timestamps asked as ``datetime`` follow one
rule, value by value: an ISO-8601 value with a UTC offset (``+02:00``, ``Z``) is converted to UTC
(so ``+02:00`` and ``+03:00`` on either side of a daylight-saving change are one column); a
value without one is a naive timestamp (sent without ``Z``). In a column that has both, the
values without an offset are ``metadata_mixed_timezones``: which zone they mean is a guess.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ConfigError
from .._rows.values import BoolArray
from .._vocabulary import FailureCode

__all__ = ["CSV_TYPES"]

#: The types ``dtype=`` may name for a CSV column, and the names each goes by.
CSV_TYPES = {
    "text": ("text", "str", "string"),
    "int": ("int", "integer", "int64"),
    "float": ("float", "float64", "double", "number"),
    "bool": ("bool", "boolean"),
    "datetime": ("datetime", "timestamp", "datetime64"),
}
_TYPE_NAMES = {alias: kind for kind, aliases in CSV_TYPES.items() for alias in aliases}

# What the first pass takes for a number (strict: "007" and "+5" stay text unless asked for).
_INT = r"^-?(0|[1-9][0-9]*)$"
_FLOAT = r"^-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]+)?$"
_INFINITY = r"(?i)^[-+]?(inf|infinity)$"
_BOOL = r"(?i)^(true|false)$"
# What dtype= accepts when asked: a sign and leading zeros too.
_ASKED_INT = r"^[-+]?[0-9]+$"
_ASKED_FLOAT = r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"
_INT64_DIGITS = 18  # beyond this many digits an integer may not fit int64
_DOUBLE_DIGITS = 15  # any decimal of at most this many significant digits survives a double
# An ISO-8601 time with a UTC offset at its end ("2024-01-01" ends in "-01", which is no offset).
_OFFSET = r"[T ][0-9]{2}(:?[0-9]{2}){0,2}([.,][0-9]+)?\s*([Zz]|[-+][0-9]{2}(:?[0-9]{2})?)$"

#: What each type expects, for the messages of values that are not one.
_EXPECTED = {
    "int": "a whole number such as 42",
    "bigint": "a whole number such as 42",
    "float": "a number such as 1234.5 (with separators only as --thousands and --decimal say)",
    "decimal": "a number such as 1234.5 (with separators only as --thousands and --decimal say)",
    "bool": "true or false",
    "datetime": "an ISO-8601 timestamp such as 2024-01-31T10:00:00+02:00",
}


def canonical_type(name: str) -> str:
    kind = _TYPE_NAMES.get(str(name).lower() if str(name) != "Int64" else "int")
    if kind is None:
        others = [alias for aliases in CSV_TYPES.values() for alias in aliases[1:]]
        raise ConfigError(
            f"unknown column type {name!r}; use one of {', '.join(CSV_TYPES)} (or another name "
            f"of one: {', '.join(others)})"
        )
    return kind


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _significant_digits(text: pa.Array) -> pa.Array:
    """The significant digits of numbers written as text (``-0.0120e5`` → ``12``)."""
    for pattern in (r"^[-+]", r"[eE].*$", r"\.", r"^0+", r"0+$"):
        text = pc.replace_substring_regex(text, pattern, "")
    return text


def _inexact_floats(numbers: pa.Array) -> bool:
    """Whether a double holds any of these numbers (finite, as text) only rounded."""
    # Text this short has no more digits than a double holds (the common case: one cheap pass).
    numbers = pc.filter(numbers, pc.greater(pc.utf8_length(numbers), _DOUBLE_DIGITS))
    digits = _significant_digits(numbers)
    long = pc.greater(pc.utf8_length(digits), _DOUBLE_DIGITS)
    if not pc.any(long).as_py():
        return False
    # A double holds the number exactly when its shortest text has the same digits.
    candidates = pc.filter(numbers, long)
    shortest = pc.cast(pc.cast(candidates, pa.float64()), pa.string())
    same = pc.equal(_significant_digits(shortest), pc.filter(digits, long))
    return not pc.all(same).as_py()


@dataclass(slots=True)
class ColumnScan:
    """What the first pass learned of one CSV column's values (one file's, or the input's)."""

    values: int = 0
    ints: int = 0
    floats: int = 0
    bools: int = 0
    big: bool = False
    inexact: bool = False
    offsets: bool = False  # a value with a UTC offset (asked datetime columns)

    def add(self, text: pa.Array, asked: str | None) -> None:
        present = pc.drop_null(text)
        if not len(present):
            return
        self.values += len(present)
        if asked == "datetime":
            self.offsets |= bool(pc.any(pc.match_substring_regex(present, _OFFSET)).as_py())
            return
        ints = pc.match_substring_regex(present, _ASKED_INT if asked else _INT)
        self.ints += _count(ints)
        lengths = pc.utf8_length(pc.replace_substring_regex(pc.filter(present, ints), "^[-+]", ""))
        self.big |= bool(len(lengths)) and (pc.max(lengths).as_py() or 0) > _INT64_DIGITS
        finite = pc.and_(
            pc.match_substring_regex(present, _ASKED_FLOAT if asked else _FLOAT),
            pc.match_substring_regex(present, r"[0-9]"),
        )
        self.floats += _count(pc.or_(finite, pc.match_substring_regex(present, _INFINITY)))
        self.inexact |= _inexact_floats(pc.filter(present, finite))
        self.bools += _count(pc.match_substring_regex(present, _BOOL))

    def merge(self, other: ColumnScan) -> None:
        for name in ("values", "ints", "floats", "bools"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("big", "inexact", "offsets"):
            setattr(self, name, getattr(self, name) or getattr(other, name))

    def decide(self, asked: str | None) -> str:
        """The column's type: ``asked`` refined to hold every value exactly, or the guess."""
        if asked is not None:
            refined = {"int": "bigint" if self.big else "int"}
            refined["float"] = "decimal" if self.inexact else "float"
            return refined.get(asked, asked)
        if not self.values:
            return "text"
        if self.ints == self.values:
            return "bigint" if self.big else "int"
        if self.floats == self.values:
            return "decimal" if self.inexact else "float"
        if self.bools == self.values:
            return "bool"
        return "text"


@dataclass(frozen=True, slots=True)
class BadValues:
    """Cells of a column that did not convert, for their rows' failures: the code, and the
    message with ``{value}`` where each cell's value goes."""

    mask: BoolArray
    code: FailureCode
    message: str


#: Converts a text column: the values (null where not converted) and which converted.
Converter = Callable[[pa.Array], tuple[pd.Series, pa.Array]]


def _mask(array: pa.Array) -> BoolArray:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _unsigned(text: pa.Array, valid: pa.Array) -> pa.Array:
    return pc.if_else(valid, pc.replace_substring_regex(text, r"^\+", ""), None)


def _cast(pattern: str, target: pa.DataType) -> Converter:
    def cast(text: pa.Array) -> tuple[pd.Series, pa.Array]:
        try:
            # Every value converts (what the first pass decided always does): one kernel.
            array, valid = pc.cast(text, target), pc.is_valid(text)
            # Arrow reads "nan" as a number; here it is text no number matches.
            if pa.types.is_floating(target) and pc.any(pc.is_nan(array)).as_py():
                raise pa.ArrowInvalid("nan")
        except pa.ArrowInvalid:
            valid = pc.match_substring_regex(text, pattern)
            array = pc.cast(_unsigned(text, valid), target)
        return pd.Series(pd.arrays.ArrowExtensionArray(array)), valid

    return cast


def _each(pattern: str, make: Callable[[str], object]) -> Converter:
    # Exact Python values, one at a time: only columns with ints beyond int64 or decimals beyond
    # a double come here.
    def convert(text: pa.Array) -> tuple[pd.Series, pa.Array]:
        valid = pc.match_substring_regex(text, pattern)
        values = _unsigned(text, valid).to_pylist()
        return pd.Series([None if v is None else make(v) for v in values], dtype=object), valid

    return convert


def _booleans(text: pa.Array) -> tuple[pd.Series, pa.Array]:
    lower = pc.utf8_lower(text)
    valid = pc.is_in(lower, pa.array(["true", "false"]))
    array = pc.if_else(valid, pc.equal(lower, "true"), None)
    return pd.Series(pd.arrays.ArrowExtensionArray(array)), valid


_NUMBER = r"(?i)^[-+]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[-+]?[0-9]+)?|inf|infinity)$"
_CONVERTERS: dict[str, Converter] = {
    "int": _cast(_ASKED_INT, pa.int64()),
    "float": _cast(_NUMBER, pa.float64()),
    "bigint": _each(_ASKED_INT, int),
    "decimal": _each(_NUMBER, decimal.Decimal),
    "bool": _booleans,
}


# A fraction of a second with a digit beyond the ninth that is not 0: finer than nanoseconds.
_BEYOND_NANOSECONDS = r"[T ][0-9:]+[.,][0-9]{9}[0-9]*[1-9]"
_NANOSECOND_RANGE = "1677-09-21 to 2262-04-11"


def _timestamps(series: pd.Series, *, utc: bool) -> tuple[pd.Series, BoolArray]:
    """ISO-8601 text as timestamps with every digit given: in nanoseconds, or in microseconds
    when a value lies outside the years nanoseconds reach (``0001-01-01``, ``9999-12-31``).
    Also the values that would lose digits (null in the result): finer than nanoseconds, or
    finer than microseconds in a column read in microseconds."""
    text = pa.array(series, pa.string(), from_pandas=True)
    finer = _mask(pc.match_substring_regex(text, _BEYOND_NANOSECONDS))
    stamps = pd.to_datetime(series.where(~finer), format="ISO8601", utc=utc, errors="coerce")
    missed = np.flatnonzero(series.notna().to_numpy() & stamps.isna().to_numpy() & ~finer)
    read = ((int(position), _far_timestamp(series.iloc[position], utc)) for position in missed)
    far = {position: stamp for position, stamp in read if stamp is not None}
    if not far:
        return stamps, finer
    # One column, one unit: microseconds, and values with digits below them cannot stay.
    lost = (stamps.notna() & (stamps.dt.nanosecond != 0)).to_numpy()
    # .copy(): pandas 2.2 takes what .dt gives for a view and warns at the assignments below.
    stamps = stamps.where(~lost).dt.as_unit("us").copy()
    for position, stamp in far.items():
        stamps.iloc[position] = stamp
    return stamps, finer | lost


def _far_timestamp(value: str, utc: bool) -> pd.Timestamp | None:
    """``value`` read in microseconds (None: not an ISO-8601 timestamp, or one with digits
    finer than microseconds, which no unit holds beyond the nanoseconds' years)."""
    try:
        stamp = pd.Timestamp(value)
    except ValueError:  # OutOfBoundsDatetime too: more than 6 fraction digits
        return None
    if stamp.unit == "ns" or (utc and stamp.tzinfo is None) or (not utc and stamp.tzinfo):
        return None
    return stamp.tz_convert("UTC") if utc else stamp


def _datetimes(
    series: pd.Series, text: pa.Array, scan: ColumnScan
) -> tuple[pd.Series, BoolArray, BoolArray]:
    """The UTC rule (see the module docstring): the converted column, the values without an
    offset in a column that has offsets (null in it), and those that would lose digits."""
    offset = _mask(pc.match_substring_regex(text, _OFFSET))
    if not scan.offsets:
        stamps, finer = _timestamps(series, utc=False)
        return stamps, np.zeros(len(series), dtype=bool), finer
    stamps, finer = _timestamps(series.where(offset), utc=True)
    naive = pd.to_datetime(series.where(~offset), format="ISO8601", errors="coerce")
    return stamps, naive.notna().to_numpy(), finer


def _beyond_double(text: pa.Array, valid: pa.Array, column: str) -> BadValues:
    """Numbers a double cannot hold: so small they read 0 (``1e-400``), or so large they read
    infinite (``1e400``); sent as 0 or not at all, they would be another number."""
    numbers = pc.cast(pc.if_else(valid, _unsigned(text, valid), "0"), pa.float64())
    mantissa = pc.replace_substring_regex(text, r"[eE].*$", "")
    underflow = pc.and_(pc.equal(numbers, 0.0), pc.match_substring_regex(mantissa, "[1-9]"))
    overflow = pc.and_(pc.is_inf(numbers), pc.invert(pc.match_substring_regex(text, _INFINITY)))
    return BadValues(
        _mask(pc.and_(valid, pc.or_(underflow, overflow))),
        FailureCode.METADATA_OUT_OF_RANGE,
        f"column {column!r} holds {{value}}, beyond what a JSON reader holding doubles reads "
        "as that number (about 5e-324 to 1.8e308, and 0): it would arrive as 0 or infinity; "
        "round it, or read the column as text (--dtype "
        f"{column}=text; in Python dtype={{{column!r}: 'text'}})",
    )


# Numbers written for people, as most of a column's values that did not convert are.
_DECIMAL_COMMA = r"^\s*[-+]?(\d{1,3}(\.\d{3})+|\d+),\d+\s*$"  # 1.299,50 or 99,5
_THOUSANDS_COMMA = r"^\s*[-+]?\d{1,3}(,\d{3})+(\.\d+)?\s*$"  # 1,299.50 or 1,299


_MOST = "most of the column's values that do not convert are numbers written for people:"


def _marks_hint(failed: pa.Array) -> str | None:
    """The flags that read values written for people, when most of those that did not convert
    are (None: they are not)."""
    if not len(failed):
        return None
    majority = len(failed) / 2
    if _count(pc.match_substring_regex(failed, _THOUSANDS_COMMA)) > majority:
        return f"{_MOST} --thousands , reads 1,299.50 (in Python thousands=',')"
    if _count(pc.match_substring_regex(failed, _DECIMAL_COMMA)) > majority:
        return (
            f"{_MOST} --decimal , reads 99,50, and with --thousands . 1.299,50 (in Python "
            "decimal=',', thousands='.')"
        )
    return None


def convert(
    series: pd.Series, kind: str, scan: ColumnScan, *, asked: bool
) -> tuple[pd.Series, list[BadValues]]:
    """A CSV text column as ``kind`` (from :meth:`ColumnScan.decide`), and the cells that did
    not convert (null in the result)."""
    if kind == "text":
        return series, []
    column = str(series.name)
    text = pa.array(series, pa.string(), from_pandas=True)
    present = _mask(text.is_valid())
    bad: list[BadValues] = []
    if kind == "datetime":
        converted, mixed, finer = _datetimes(series, text, scan)
        failed = present & converted.isna().to_numpy() & ~mixed & ~finer
        bad.append(
            BadValues(
                finer,
                FailureCode.TIMESTAMP_TOO_PRECISE,
                f"column {column!r} is read as datetime, and {{value}} has more fraction digits "
                "than a timestamp holds (nanoseconds; microseconds in a column with a date "
                f"outside {_NANOSECOND_RANGE}): it would be sent cut short. Round it, or read "
                f"the column as text to send it as written (--dtype {column}=text)",
            )
        )
        bad.append(
            BadValues(
                mixed,
                FailureCode.METADATA_MIXED_TIMEZONES,
                f"column {column!r} is read as datetime and has timestamps with a UTC offset, "
                "so {value}, without one, is a guess of its zone: give it an offset (Z for UTC)",
            )
        )
    else:
        converted, valid = _CONVERTERS[kind](text)
        failed = present & ~_mask(valid)
        if kind == "float":
            bad.append(_beyond_double(text, valid, column))
    # Asked for: by --dtype (dtype=), or by the note a failures file keeps of its columns' types.
    how = (
        "as --dtype asks, or the record a failures file keeps of how its columns were read"
        if asked
        else "as its values suggested"
    )
    name = {"bigint": "int", "decimal": "float"}.get(kind, kind)
    marks = _marks_hint(pc.filter(text, pa.array(failed))) if kind != "bool" else None
    fix = (
        f"{marks}; fix any other value"
        if marks
        else "fix the value, name it as missing (--na-values; in Python na_values=), or read "
        f"the column as text (--dtype {column}=text; in Python dtype={{{column!r}: 'text'}})"
    )
    bad.append(
        BadValues(
            failed,
            FailureCode.DTYPE_UNCONVERTIBLE,
            f"column {column!r} is read as {name} ({how}), and {{value}} is not "
            f"{_EXPECTED[kind]}: {fix}",
        )
    )
    converted.index = series.index
    return converted, [b for b in bad if b.mask.any()]
