"""The failures file: every row that was not sent, with its original columns and the reason.

The file is Parquet with the input's own columns plus a fixed set of ``gb_`` columns. Those are
never metadata, so the file can be fixed and sent again as it is, and ``gb_key`` lets the ledger
recognise each row (see :mod:`gb_backfill._rows.keys`).

Values round-trip, through plain pandas too: ``pd.read_parquet`` → edit → ``to_parquet`` → send
gives the values the user sees, and reading the file back with :func:`read_failures` (or
sending it with ``send_path``) gives the same values, the same verdict from ``validate``, the
same payload and the same key. Columns Arrow can store as they are are stored plainly, and so
are object columns of one kind Parquet types: Decimals (as Parquet decimals: plain pandas reads
``Decimal`` back), timestamps of one zone (with it), and lists of one kind of value. A value a
CSV reader could not convert (``dtype=``) is kept as the text it was: its column is stored as
text in that file (every value, as the reader would read it again), and the file notes the type
(the ``gb_backfill`` schema metadata, and pandas' ``attrs``, which plain pandas keeps), so a
send converts it again and a value still wrong fails again. An object column Arrow cannot store
as it is is stored as tagged text, restored by :func:`read_failures`. How each value is stored,
and what the file notes to restore it, is :mod:`gb_backfill._store.stored_values`.

While a run goes on, failures are written to complete Parquet parts in ``<path>.parts/``, so a
crash (even SIGKILL) leaves every failure found so far readable. When the run ends, normally, by
error or by Ctrl-C, the parts are merged into ``<path>`` as a stream (a part at a time), each part
in input order.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import ConfigError
from .._rows.mapping import READ_PROBLEMS, unconverted_texts
from .stored_values import (
    ATTRS_KEY,
    Notes,
    encode,
    file_notes,
    restore,
    to_table,
    typed_texts,
    with_notes,
)

__all__ = ["FAILURE_STATUS_COLUMNS", "read_failures"]

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
#: schema metadata naming the input a failures file was written for
_INPUT_KEY = b"gb_backfill_input"


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
    types: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The rows of ``df`` at ``positions`` with the ``gb_`` status columns filled in.

    ``row_offset`` is the position of ``df``'s first row in the whole input (for chunked input).
    Old ``gb_`` status columns (from a failures file sent again) are replaced, not duplicated,
    and a reader's :data:`READ_PROBLEMS` marks are left out; but a value it could not convert
    is kept as the text it was: its column becomes text, noted with its type from ``types``
    (the CSV types the reader used) in ``attrs`` (see the module docstring).
    """
    positions = np.asarray(positions, dtype=np.int64)
    dropped = [*FAILURE_STATUS_COLUMNS, READ_PROBLEMS]  # a reader's marks are in gb_error_*
    rows = df.iloc[positions].drop(columns=dropped, errors="ignore")
    rows = rows.reset_index(drop=True)
    rows.attrs = {}
    size = len(positions)
    if READ_PROBLEMS in df.columns and size:
        _keep_unconverted(rows, df[READ_PROBLEMS].iloc[positions].tolist(), types or {})

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


def _keep_unconverted(rows: pd.DataFrame, marks: list[object], types: dict[str, str]) -> None:
    """Put back, as text, the values a reader could not convert (see :func:`failure_rows`)."""
    as_text = {}
    names = {str(column): column for column in rows.columns}
    for name, cells in unconverted_texts(marks).items():
        if name not in names:
            continue
        texts = typed_texts(rows[names[name]])
        for at, text in cells.items():
            texts[at] = text
        rows[names[name]] = pd.Series(texts, index=rows.index, dtype=object)
        as_text[name] = types.get(name, "text")
    if as_text:
        rows.attrs[ATTRS_KEY] = {"as_text": as_text}


def _as_text_of(frames: Sequence[pd.DataFrame]) -> dict[str, str]:
    found: dict[str, str] = {}
    for frame in frames:
        found.update(frame.attrs.get(ATTRS_KEY, {}).get("as_text", {}))
    return found


def _texts_alike(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``frames`` as one, a column that is text in one of them (values a reader could not
    convert) text in every one."""
    as_text = _as_text_of(frames)
    if not as_text:
        return pd.concat(frames, ignore_index=True)
    alike = []
    for frame in frames:
        own = frame.attrs.get(ATTRS_KEY, {}).get("as_text", {})
        frame = frame.copy()
        for name in as_text:
            if name not in own and name in frame.columns:
                frame[name] = pd.Series(typed_texts(frame[name]), index=frame.index, dtype=object)
        alike.append(frame)
    joined = pd.concat(alike, ignore_index=True)
    joined.attrs = {ATTRS_KEY: {"as_text": as_text}}
    return joined


def read_failures(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a failures file back with every value as it was (see the module docstring)::

    failures = gb_backfill.read_failures("purchases.failures.parquet")
    fixed = failures[failures.gb_status == "invalid"].assign(customerId=...)
    """
    table = pq.read_table(path)
    # Integers with nulls stay Python ints (not floats): a 2**53 id must come back exact.
    frame = table.to_pandas(integer_object_nulls=True)
    return restore(frame, file_notes(table.schema))


def write_parquet(
    frame: pd.DataFrame, path: str | os.PathLike[str], *, input_name: str | None = None
) -> None:
    """Write ``frame`` to ``path`` atomically: a reader sees the old file or the new one.
    ``input_name`` is recorded as the input the file holds failures of."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot: readers of a parts directory skip a part a crash left half written.
    scratch = target.with_name(f".{target.name}.tmp")
    table = to_table(frame)
    if input_name is not None:
        metadata = {**(table.schema.metadata or {}), _INPUT_KEY: input_name.encode()}
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, scratch)
    os.replace(scratch, target)


def input_name(source: str | os.PathLike[str] | None) -> str:
    """How a failures file names its input: a file, directory or glob as an absolute path, an
    object store's URI as given (the caller has taken its credentials out), or
    ``"a DataFrame"``."""
    if source is None:
        return "a DataFrame"
    text = os.fspath(source)
    return text if "://" in text else os.path.abspath(text)


def failures_input(path: str | os.PathLike[str]) -> str | None:
    """The input a failures file was written for (None: not recorded, or not readable)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError):
        return None
    recorded = metadata.get(_INPUT_KEY)
    return recorded.decode("utf-8", "replace") if recorded else None


def _merged_types(
    schemas: Sequence[pa.Schema], notes: Notes
) -> tuple[dict[str, pa.DataType], set[str]]:
    """Each column's type in the merged file, and the columns it must tag (``encoded``)."""
    encoded = set(notes.encoded)
    types: dict[str, pa.DataType] = {}
    for schema in schemas:
        for column in schema:
            known = types.get(column.name, pa.null())
            if pa.types.is_null(column.type):
                types.setdefault(column.name, column.type)
            elif pa.types.is_null(known) or known == column.type:
                types[column.name] = column.type
            elif pa.types.is_decimal(known) and pa.types.is_decimal(column.type):
                types[column.name] = _wider_decimal(known, column.type)
            elif column.name not in notes.as_text:
                # Parts that stored a column as different types (text in one, ints in another):
                # promoting one to the other could change values, so the file tags them all.
                encoded.add(column.name)
    for name in notes.as_text:
        if name not in encoded and name in types:
            types[name] = pa.string()
    return types, encoded


def _wider_decimal(one: pa.DataType, other: pa.DataType) -> pa.DataType:
    """A decimal type that holds every value of both (decimal256 beyond 38 digits)."""
    scale = max(one.scale, other.scale)
    digits = max(one.precision - one.scale, other.precision - other.scale) + scale
    return pa.decimal128(digits, scale) if digits <= 38 else pa.decimal256(min(digits, 76), scale)


def _part_as_merged(
    table: pa.Table, own: Notes, notes: Notes, encoded: set[str], schema: pa.Schema
) -> pa.Table:
    """One part's table in the merged file's types."""
    for name in [*encoded, *notes.as_text]:
        if name not in table.column_names or name in own.encoded:
            continue
        if name not in encoded and name in own.as_text:
            continue
        values = table.column(name).to_pandas(integer_object_nulls=True).astype(object)
        if name in own.lists:
            values = values.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)
        if name in encoded:  # this part stored the column plainly; the file tags every row
            text = pa.array([encode(v) for v in values.where(values.notna(), None)], pa.string())
        else:  # typed here, text in another part: the text a reader converts back
            text = pa.array(typed_texts(values), pa.string())
        table = table.set_column(table.column_names.index(name), name, text)
    for absent in [f for f in schema if f.name not in table.column_names]:
        table = table.append_column(absent, pa.nulls(len(table), absent.type))
    return table.select(schema.names).cast(schema)


def _merge_parts(parts: Sequence[Path], target: Path, input_name: str | None) -> None:
    """Stream ``parts`` into one file, a part at a time, so memory does not grow with them."""
    # Parts cover overlapping stretches of the input; starting each where its first row is keeps
    # the file close to input order without holding more than one part.
    firsts = [pq.read_table(part, columns=["gb_row"]).column(0) for part in parts]
    parts = [part for _, part in sorted(zip((c[0].as_py() for c in firsts), parts, strict=True))]
    schemas = [pq.read_schema(part) for part in parts]
    own = [file_notes(schema) for schema in schemas]
    every = Notes(
        tuple(sorted({n for notes in own for n in notes.encoded})),
        tuple(sorted({n for notes in own for n in notes.lists})),
        {k: v for notes in own for k, v in notes.as_text.items()},
    )
    types, encoded = _merged_types(schemas, every)
    notes = Notes(
        tuple(sorted(encoded)),
        tuple(n for n in every.lists if n not in encoded),
        {k: v for k, v in every.as_text.items() if k not in encoded},
    )
    fields = [
        pa.field(name, pa.string() if name in encoded else kind) for name, kind in types.items()
    ]
    metadata = dict(schemas[0].metadata or {})
    if input_name is not None:
        metadata[_INPUT_KEY] = input_name.encode()
    schema = with_notes(pa.schema(fields, metadata=metadata).empty_table(), notes).schema
    scratch = target.with_name(f".{target.name}.tmp")
    with pq.ParquetWriter(scratch, schema) as writer:
        for part, part_notes in zip(parts, own, strict=True):
            table = pq.read_table(part)
            writer.write_table(_part_as_merged(table, part_notes, notes, encoded, schema))
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
                "{path} holds the failures of another input ({recorded}); choose another path "
                "with {failures_path=PATH}, or move that file away first",
                option="failures_path",
                path=self.path,
                recorded=recorded,
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
                "cannot write the failures file {path} ({reason}); choose another path with "
                "{failures_path=PATH}",
                option="failures_path",
                path=self.path,
                reason=error.strerror or error,
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
        rows = _texts_alike(self._buffer)
        ordered = rows.sort_values("gb_row", kind="stable", ignore_index=True)
        ordered.attrs = rows.attrs
        write_parquet(ordered, part)
        self._parts += 1
        self._buffer.clear()
        self._buffered = 0

    def close(self, columns: Sequence[object] = ()) -> pd.DataFrame | None:
        """Finish the file. Without a path, returns every failure row as one frame."""
        if self.path is None:
            if self._buffer:
                merged = _texts_alike(self._buffer)
                ordered = merged.sort_values("gb_row", kind="stable", ignore_index=True)
                ordered.attrs = merged.attrs
                return ordered
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
