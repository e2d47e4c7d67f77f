"""The failures file: every row that was not sent, with its original columns and the reason.

The file is Parquet with the input's own columns plus a fixed set of ``gb_`` columns. Those are
never metadata, so the file can be fixed and sent again as it is, and ``gb_key`` lets the ledger
recognise each row (see :mod:`._row_keys`).

Values round-trip: reading the file back with :func:`read_failures` (or sending it with
``send_path``) gives the same values, the same verdict from ``validate``, the same payload and
the same key. Columns Arrow can store as they are are stored plainly. An object column Arrow
cannot store as it is (mixed types such as ``"8"`` next to ``8``, ints beyond 64 bits, text with
lone surrogates, dicts, the arrays pandas reads Parquet lists as) is stored as text, one
tagged JSON value per cell (``["i", "8"]``, ``["s", "8"]``), and named in the file's
``gb_backfill`` schema metadata so that gb-backfill restores it. Objects with no faithful
text form are restored as :class:`StoredObject`, which ``validate`` refuses just as it refused
the original.

While a run goes on, failures are written to complete Parquet parts in ``<path>.parts/``, so a
crash (even SIGKILL) leaves every failure found so far readable. When the run ends, normally, by
error or by Ctrl-C, the parts are merged into ``<path>`` as a stream (a part at a time), each part
in input order.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ._errors import ConfigError
from ._mapping import READ_PROBLEMS

__all__ = ["FAILURE_STATUS_COLUMNS", "StoredObject", "read_failures"]

#: The columns gb-backfill adds to every failure row.
FAILURE_STATUS_COLUMNS = (
    "gb_status",
    "gb_error_code",
    "gb_error_message",
    "gb_http_status",
    "gb_attempts",
    "gb_row",
    "gb_key",
)

_PART_ROWS = 10_000
_METADATA_KEY = b"gb_backfill"
#: schema metadata naming the input a failures file was written for
_INPUT_KEY = b"gb_backfill_input"
#: What ``infer_dtype`` may say of an object column for Arrow to store it unchanged.
_STORABLE_OBJECTS = frozenset({"string", "integer", "floating", "boolean", "empty"})


def failure_rows(
    df: pd.DataFrame,
    positions: npt.NDArray[np.int64] | Sequence[int],
    *,
    status: Sequence[str] | str,
    code: Sequence[str | None] | str | None,
    message: Sequence[str | None] | str | None,
    http_status: Sequence[int | None] | None = None,
    attempts: Sequence[int] | int = 0,
    keys: Sequence[str | None] | None = None,
    row_offset: int = 0,
) -> pd.DataFrame:
    """The rows of ``df`` at ``positions`` with the ``gb_`` status columns filled in.

    ``row_offset`` is the position of ``df``'s first row in the whole input (for chunked input).
    Old ``gb_`` status columns (from a failures file sent again) are replaced, not duplicated,
    and a reader's :data:`READ_PROBLEMS` marks are left out.
    """
    positions = np.asarray(positions, dtype=np.int64)
    dropped = [*FAILURE_STATUS_COLUMNS, READ_PROBLEMS]  # a reader's marks are in gb_error_*
    rows = df.iloc[positions].drop(columns=dropped, errors="ignore")
    rows = rows.reset_index(drop=True)
    size = len(positions)

    def column(values: object, dtype: str) -> pd.Series:
        if isinstance(values, str) or values is None or np.isscalar(values):
            values = [values] * size
        return pd.Series(values, dtype=dtype)

    rows["gb_status"] = column(status, "string")
    rows["gb_error_code"] = column(code, "string")
    rows["gb_error_message"] = column(message, "string")
    rows["gb_http_status"] = column(
        http_status if http_status is not None else [None] * size, "Int64"
    )
    rows["gb_attempts"] = column(attempts, "Int64")
    rows["gb_row"] = pd.Series(positions + row_offset, dtype="Int64")
    rows["gb_key"] = column(keys if keys is not None else [None] * size, "string")
    return rows


# --- values Arrow cannot store as they are ---------------------------------------------------


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


def _encode(value: Any) -> str | None:
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


def _needs_encoding(series: pd.Series) -> bool:
    if series.dtype != object:
        return False
    if pd.api.types.infer_dtype(series, skipna=True) not in _STORABLE_OBJECTS:
        return True
    try:
        pa.array(series, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return True
    return False


def _encode_column(series: pd.Series) -> pd.Series:
    return pd.Series([_encode(v) for v in series], index=series.index, dtype=object)


def _to_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table that stores every value faithfully (see the module docstring).

    Column names become text (``0`` becomes ``"0"``), as they would as metadata keys.
    """
    safe = frame.copy()
    safe.columns = [str(c) for c in safe.columns]
    for name in safe.columns:
        kind = safe[name].dtype
        if isinstance(kind, pd.SparseDtype):  # Arrow stores no sparse column
            safe[name] = safe[name].astype(kind.subtype)
    encoded = [name for name in safe.columns if _needs_encoding(safe[name])]
    for name in encoded:
        safe[name] = _encode_column(safe[name])
    table = pa.Table.from_pandas(safe, preserve_index=False)
    if encoded:
        note = json.dumps({"encoded": encoded}).encode()
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _METADATA_KEY: note}
        )
    return table


def encoded_columns(schema: pa.Schema) -> list[str]:
    """The columns a failures file stores as tagged text."""
    note = (schema.metadata or {}).get(_METADATA_KEY)
    return list(json.loads(note)["encoded"]) if note else []


def restore(frame: pd.DataFrame, encoded: Sequence[str]) -> pd.DataFrame:
    """Decode the tagged-text columns of a frame read from a failures file."""
    for name in encoded:
        if name in frame.columns:
            frame[name] = pd.Series(
                [_decode(v) for v in frame[name].astype(object).where(frame[name].notna(), None)],
                index=frame.index,
                dtype=object,
            )
    return frame


def read_failures(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a failures file back with every value as it was (see the module docstring)::

    failures = gb_backfill.read_failures("purchases.failures.parquet")
    fixed = failures[failures.gb_status == "invalid"].assign(customerId=...)
    """
    table = pq.read_table(path)
    # Integers with nulls stay Python ints (not floats): a 2**53 id must come back exact.
    frame = table.to_pandas(integer_object_nulls=True)
    return restore(frame, encoded_columns(table.schema))


def write_parquet(
    frame: pd.DataFrame, path: str | os.PathLike[str], *, input_name: str | None = None
) -> None:
    """Write ``frame`` to ``path`` atomically: a reader sees the old file or the new one.
    ``input_name`` is recorded as the input the file holds failures of."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot: readers of a parts directory skip a part a crash left half written.
    scratch = target.with_name(f".{target.name}.tmp")
    table = _to_table(frame)
    if input_name is not None:
        metadata = {**(table.schema.metadata or {}), _INPUT_KEY: input_name.encode()}
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, scratch)
    os.replace(scratch, target)


def input_name(source: str | os.PathLike[str] | None) -> str:
    """How a failures file names its input: a file, directory or glob as an absolute path, or
    ``"a DataFrame"``."""
    return "a DataFrame" if source is None else os.path.abspath(os.fspath(source))


def failures_input(path: str | os.PathLike[str]) -> str | None:
    """The input a failures file was written for (None: not recorded, or not readable)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError):
        return None
    recorded = metadata.get(_INPUT_KEY)
    return recorded.decode("utf-8", "replace") if recorded else None


def _merge_parts(parts: Sequence[Path], target: Path, input_name: str | None) -> None:
    """Stream ``parts`` into one file, a part at a time, so memory does not grow with them."""
    # Parts cover overlapping stretches of the input; starting each where its first row is keeps
    # the file close to input order without holding more than one part.
    firsts = [pq.read_table(part, columns=["gb_row"]).column(0) for part in parts]
    parts = [part for _, part in sorted(zip((c[0].as_py() for c in firsts), parts, strict=True))]
    schemas = [pq.read_schema(part) for part in parts]
    encoded = {name for schema in schemas for name in encoded_columns(schema)}
    types: dict[str, pa.DataType] = {}
    for schema in schemas:
        for field in schema:
            if pa.types.is_null(field.type):
                types.setdefault(field.name, field.type)
            elif pa.types.is_null(types.get(field.name, pa.null())):
                types[field.name] = field.type
            elif types[field.name] != field.type:
                # Parts that stored a column as different types (text in one, ints in another):
                # promoting one to the other could change values, so the file tags them all.
                encoded.add(field.name)
    fields = [
        pa.field(name, pa.string() if name in encoded else kind) for name, kind in types.items()
    ]
    metadata = dict(schemas[0].metadata or {})
    if encoded:
        metadata[_METADATA_KEY] = json.dumps({"encoded": sorted(encoded)}).encode()
    else:
        metadata.pop(_METADATA_KEY, None)
    if input_name is not None:
        metadata[_INPUT_KEY] = input_name.encode()
    schema = pa.schema(fields, metadata=metadata)
    scratch = target.with_name(f".{target.name}.tmp")
    with pq.ParquetWriter(scratch, schema) as writer:
        for part, part_schema in zip(parts, schemas, strict=True):
            table = pq.read_table(part)
            own = set(encoded_columns(part_schema))
            for name in encoded:
                if name in own or name not in table.column_names:
                    continue
                # This part stored the column plainly; the file stores it tagged in every row.
                values = table.column(name).to_pandas(integer_object_nulls=True).astype(object)
                text = pa.array(
                    [_encode(v) for v in values.where(values.notna(), None)], pa.string()
                )
                table = table.set_column(table.column_names.index(name), name, text)
            missing = [f for f in fields if f.name not in table.column_names]
            for field in missing:
                table = table.append_column(field, pa.nulls(len(table), field.type))
            writer.write_table(table.select(schema.names).cast(schema))
    os.replace(scratch, target)


class FailureWriter:
    """Collects failure rows and keeps them on disk as the run goes.

    ``add`` buffers rows and writes a complete Parquet part every few thousand rows (and on
    ``flush``); ``close`` merges the parts into the final file. Without a path, the rows are
    only kept in memory.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        input_name: str | None = None,
        types: dict[str, str] | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        #: the CSV types the input's columns were read as (see :func:`failure_rows`)
        self.types = dict(types or {})
        #: the input whose failures these are (recorded in the file; see :meth:`check`)
        self.input_name = input_name
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._parts = 0
        self.finished = False
        if self.path is not None:
            self._parts_dir = self.path.with_name(self.path.name + ".parts")

    def check(self) -> None:
        """Fail now, with :class:`ConfigError`, if the file cannot be written where asked, or
        if it holds the failures of another input (they are never overwritten)."""
        if self.path is None:
            return
        recorded = failures_input(self.path) if self.path.exists() else None
        if None not in (recorded, self.input_name) and recorded != self.input_name:
            raise ConfigError(
                f"{self.path} holds the failures of another input ({recorded}); choose another "
                "path with failures_path=PATH (--failures PATH), or move that file away first"
            )
        # Parts left by a run that was killed belong to that run; this run accounts anew.
        shutil.rmtree(self._parts_dir, ignore_errors=True)
        probe = self._parts_dir / ".probe"
        try:
            self._parts_dir.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise ConfigError(
                f"cannot write the failures file {self.path} ({error.strerror or error}); "
                "choose another path with failures_path=PATH (--failures PATH)"
            ) from None

    def discard(self) -> None:
        """Forget a run that never started: nothing is written, the parts folder goes."""
        if self.path is not None and not self._parts:
            shutil.rmtree(self._parts_dir, ignore_errors=True)

    def in_memory(self) -> pd.DataFrame | None:
        """The rows not yet in a part, when the file could not be finished."""
        return pd.concat(self._buffer, ignore_index=True) if self._buffer else None

    def add(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self._buffer.append(frame)
        self._buffered += len(frame)
        if self.path is not None and self._buffered >= _PART_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as one complete part file, in input order."""
        if self.path is None or not self._buffer:
            return
        self._parts_dir.mkdir(parents=True, exist_ok=True)
        part = self._parts_dir / f"part-{self._parts:06d}.parquet"
        rows = pd.concat(self._buffer, ignore_index=True)
        write_parquet(rows.sort_values("gb_row", kind="stable", ignore_index=True), part)
        self._parts += 1
        self._buffer.clear()
        self._buffered = 0

    def close(self, columns: Sequence[object] = ()) -> pd.DataFrame | None:
        """Finish the file. Without a path, returns every failure row as one frame."""
        if self.path is None:
            if self._buffer:
                merged = pd.concat(self._buffer, ignore_index=True)
                return merged.sort_values("gb_row", kind="stable", ignore_index=True)
            return empty_failures(columns)
        self.flush()
        parts = sorted(self._parts_dir.glob("part-*.parquet")) if self._parts else []
        if parts:
            _merge_parts(parts, self.path, self.input_name)
        else:
            write_parquet(empty_failures(columns), self.path, input_name=self.input_name)
        shutil.rmtree(self._parts_dir, ignore_errors=True)
        self.finished = True
        return None


def empty_failures(columns: Sequence[object]) -> pd.DataFrame:
    """A failures frame with no rows: the input's columns and the ``gb_`` ones."""
    return failure_rows(
        pd.DataFrame(columns=list(columns)), [], status=[], code=[], message=[], attempts=[]
    )
