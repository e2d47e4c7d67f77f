"""How the failures file stores values, and what it notes to restore them.

Columns Arrow can store as they are are stored plainly, and so are object columns of one kind
Parquet types: Decimals (as Parquet decimals: plain pandas reads ``Decimal`` back), timestamps of
one zone (with it), and lists of one kind of value. An object column Arrow cannot store as it is
(mixed types such as ``"8"`` next to ``8``, ints beyond 64 bits, text with lone surrogates,
dicts) is stored as text, one tagged JSON value per cell (``["i", "8"]``, ``["s", "8"]``), and
named in the file's ``gb_backfill`` schema metadata (:class:`Notes`) so that :func:`restore`
brings it back. Objects with no faithful text form are restored as :class:`StoredObject`, which
``validate`` refuses just as it refused the original. A value a CSV reader could not convert is
kept as the text it was (:func:`typed_texts` writes its column's other values as that reader
would read them), noted with the type it is read as (:func:`as_text_columns`). See
:mod:`gb_backfill._store.failures`.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["StoredObject"]

_METADATA_KEY = b"gb_backfill"
#: What ``infer_dtype`` may say of an object column for Arrow to store it unchanged.
_STORABLE_OBJECTS = frozenset({"string", "integer", "floating", "boolean", "empty"})


def typed_texts(values: pd.Series) -> list[str | None]:
    """Typed values as the text a CSV reader converts back to them (missing: None): floats in
    their shortest exact form, ``true``/``false``, timestamps in ISO-8601."""
    out: list[str | None] = []
    for value in values.tolist():
        if value is None or value is pd.NA or value is pd.NaT:
            out.append(None)
        elif isinstance(value, str):
            out.append(value)
        elif isinstance(value, bool | np.bool_):
            out.append("true" if value else "false")
        elif isinstance(value, float | np.floating):
            out.append(None if math.isnan(value) else repr(float(value)))
        elif isinstance(value, dt.datetime | np.datetime64):
            out.append(pd.Timestamp(value).isoformat())
        else:
            out.append(str(value))
    return out


class StoredObject:
    """A value the failures file could keep only as its ``repr``; ``validate`` refuses it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredObject) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _json_faithful(value: object) -> bool:
    try:
        return bool(json.loads(json.dumps(value)) == value)
    except (TypeError, ValueError):
        return False


def _array_faithful(value: object) -> bool:
    """True for a flat numpy array whose values and dtype survive JSON."""
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind not in "biufUO":
        return False
    plain = (str, bool, int, float)
    if value.dtype.hasobject and not all(
        isinstance(item, plain) and not isinstance(item, np.generic) for item in value
    ):
        return False
    return _json_faithful(value.tolist())


def _array(stored: dict[str, Any]) -> np.ndarray:
    return np.array(stored["values"], dtype=np.dtype(stored["dtype"]))


def encode(value: Any) -> str | None:
    """One cell as tagged JSON text (ASCII, so lone surrogates survive); None when missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    tagged: tuple[str, object]
    if isinstance(value, str):
        tagged = ("s", value)
    elif isinstance(value, bool | np.bool_):
        tagged = ("b", bool(value))
    elif isinstance(value, int | np.integer):
        tagged = ("i", str(int(value)))
    elif isinstance(value, float | np.floating):
        tagged = ("f", repr(float(value)))
    elif isinstance(value, decimal.Decimal):
        tagged = ("d", str(value))
    elif isinstance(value, dt.datetime | np.datetime64):
        tagged = ("t", pd.Timestamp(value).isoformat())
    elif isinstance(value, dt.date):
        tagged = ("D", value.isoformat())
    elif isinstance(value, dt.time):
        tagged = ("T", value.isoformat())
    elif isinstance(value, dt.timedelta | np.timedelta64):
        tagged = ("td", str(pd.Timedelta(value).value))
    elif isinstance(value, bytes):
        tagged = ("B", base64.b64encode(value).decode("ascii"))
    elif isinstance(value, dict | list) and _json_faithful(value):
        tagged = ("j", value)
    elif _array_faithful(value):  # a Parquet list cell, as pandas reads it
        tagged = ("a", {"dtype": value.dtype.str, "values": value.tolist()})
    elif isinstance(value, StoredObject):
        tagged = ("o", value.text)
    else:
        tagged = ("o", repr(value))
    return json.dumps(tagged)


_DECODERS: dict[str, Callable[[Any], object]] = {
    "s": str,
    "b": bool,
    "i": int,
    "f": float,
    "d": decimal.Decimal,
    "t": pd.Timestamp,
    "D": dt.date.fromisoformat,
    "T": dt.time.fromisoformat,
    "td": lambda nanos: pd.Timedelta(int(nanos)),
    "B": base64.b64decode,
    "j": lambda value: value,
    "a": _array,
    "o": StoredObject,
}


def _decode(text: str | None) -> object:
    if text is None:
        return None
    tag, value = json.loads(text)
    return _DECODERS[tag](value)


def _storable(series: pd.Series) -> pd.Series | None:
    """``series`` as Parquet can store it exactly (maybe converted), or None: it must be
    encoded. Object columns of one kind Parquet types are stored typed."""
    if series.dtype != object:
        return series
    kind = pd.api.types.infer_dtype(series, skipna=True)
    present = series.dropna()
    if kind == "decimal":
        if not all(isinstance(v, decimal.Decimal) and v.is_finite() for v in present):
            return None  # Arrow would store NaN as null
    elif kind in ("datetime", "datetime64"):
        zones = {str(getattr(v, "tzinfo", None)) for v in present}
        if len(zones) > 1 or not all(isinstance(v, dt.datetime) for v in present):
            return None  # one zone per column in Parquet
        try:
            return pd.Series(pd.to_datetime(present), index=present.index).reindex(series.index)
        except (ValueError, TypeError, OverflowError):
            return None
    elif kind not in (*_STORABLE_OBJECTS, "mixed") or (
        kind == "mixed" and _list_kind(present) is None
    ):
        return None
    try:
        pa.array(series, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return series


def _list_kind(present: pd.Series) -> type | None:
    """The one kind of value every list in ``present`` holds (None: not lists of one kind)."""
    kinds: set[type] = set()
    for value in present:
        if type(value) is not list:
            return None
        kinds.update(type(item) for item in value)
    if len(kinds) > 1 or not kinds <= {str, int, float, bool}:
        return None
    return next(iter(kinds), str)


def _encode_column(series: pd.Series) -> pd.Series:
    return pd.Series([encode(v) for v in series], index=series.index, dtype=object)


#: schema metadata key pandas keeps ``DataFrame.attrs`` under (``to_parquet``/``read_parquet``)
_PANDAS_ATTRS = b"PANDAS_ATTRS"
#: the key of ``DataFrame.attrs`` that holds the file's notes (see :class:`Notes`)
ATTRS_KEY = "gb_backfill"


@dataclass(frozen=True, slots=True)
class Notes:
    """What a failures file notes of its columns: tagged text (``encoded``), Parquet lists that
    were Python lists (``lists``), and text of values a reader could not convert, by the type
    they are read as (``as_text``)."""

    encoded: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    as_text: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {"encoded": list(self.encoded), "lists": list(self.lists), "as_text": self.as_text}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Notes:
        return cls(
            tuple(data.get("encoded", ())), tuple(data.get("lists", ())),
            dict(data.get("as_text", {})),
        )  # fmt: skip


def to_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table that stores every value faithfully (see the module docstring).

    Column names become text (``0`` becomes ``"0"``), as they would as metadata keys.
    """
    safe = frame.copy()
    safe.columns = [str(c) for c in safe.columns]
    safe.attrs = {}
    encoded, lists = [], []
    for name in safe.columns:
        kind = safe[name].dtype
        if isinstance(kind, pd.SparseDtype):  # Arrow stores no sparse column
            safe[name] = safe[name].astype(kind.subtype)
        stored = _storable(safe[name])
        if stored is None:
            encoded.append(name)
            safe[name] = _encode_column(safe[name])
        else:
            safe[name] = stored
            if stored.dtype == object and _list_kind(stored.dropna()) is not None:
                lists.append(name)
    table = pa.Table.from_pandas(safe, preserve_index=False)
    as_text = {str(k): v for k, v in frame.attrs.get(ATTRS_KEY, {}).get("as_text", {}).items()}
    return with_notes(table, Notes(tuple(encoded), tuple(lists), as_text))


def with_notes(table: pa.Table, notes: Notes) -> pa.Table:
    ours = (_METADATA_KEY, _PANDAS_ATTRS)
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k not in ours}
    if notes.encoded or notes.lists or notes.as_text:
        metadata[_METADATA_KEY] = json.dumps(notes.json()).encode()
    if notes.as_text:
        # pandas keeps attrs through read_parquet, edits and to_parquet: a file fixed with plain
        # pandas still says which text columns to convert again.
        metadata[_PANDAS_ATTRS] = json.dumps({ATTRS_KEY: {"as_text": notes.as_text}}).encode()
    return table.replace_schema_metadata(metadata)


def file_notes(schema: pa.Schema) -> Notes:
    """What a failures file notes of its columns (pandas' attrs too, where plain pandas wrote
    the file again)."""
    metadata = schema.metadata or {}
    note = metadata.get(_METADATA_KEY)
    notes = Notes.of(json.loads(note)) if note else Notes()
    attrs = metadata.get(_PANDAS_ATTRS)
    if attrs and not notes.as_text:
        try:
            found = json.loads(attrs).get(ATTRS_KEY, {}).get("as_text", {})
        except (ValueError, AttributeError):
            found = {}
        if isinstance(found, dict) and found:
            notes = Notes(notes.encoded, notes.lists, {str(k): str(v) for k, v in found.items()})
    return notes


def encoded_columns(schema: pa.Schema) -> list[str]:
    """The columns a failures file stores as tagged text."""
    return list(file_notes(schema).encoded)


def restore(frame: pd.DataFrame, notes: Notes | Sequence[str]) -> pd.DataFrame:
    """Decode the tagged-text columns of a frame read from a failures file, make its lists
    lists again, and note its text columns in ``frame.attrs`` (see :func:`as_text_columns`)."""
    if not isinstance(notes, Notes):
        notes = Notes(tuple(notes))
    for name in notes.encoded:
        if name in frame.columns:
            frame[name] = pd.Series(
                [_decode(v) for v in frame[name].astype(object).where(frame[name].notna(), None)],
                index=frame.index,
                dtype=object,
            )
    for name in notes.lists:
        if name in frame.columns:
            frame[name] = pd.Series(
                [v.tolist() if isinstance(v, np.ndarray) else v for v in frame[name]],
                index=frame.index,
                dtype=object,
            )
    if notes.as_text:
        frame.attrs[ATTRS_KEY] = {"as_text": dict(notes.as_text)}
    return frame


def as_text_columns(frame: pd.DataFrame) -> dict[str, str]:
    """The columns of a frame read from a failures file that hold, as text, values a CSV reader
    could not convert, and the type each is read as (``frame.attrs``, which plain pandas keeps
    through ``read_parquet``, edits and ``to_parquet``)."""
    found = frame.attrs.get(ATTRS_KEY, {})
    as_text = found.get("as_text", {}) if isinstance(found, dict) else {}
    return {str(k): str(v) for k, v in as_text.items() if k in frame.columns}
