"""Frames that speak Arrow, read a batch at a time: a Polars DataFrame or LazyFrame, a pyarrow
Table, RecordBatchReader or Dataset, a DuckDB relation, anything with ``__arrow_c_stream__``.

Nothing here imports Polars or DuckDB: an object is read through the Arrow C stream interface
(``pa.RecordBatchReader.from_stream``), which every one of them speaks. Each pass over the input
(a send reads it more than once: the changed-rows check, batch mode's routing, the preview's
sample) asks the object for a new stream, so the whole input is never held at once. A Polars
frame, a Table or a DuckDB relation gives the same rows each time it is asked; a
``RecordBatchReader`` can be read only once, so it is first copied, a batch at a time, to a
temporary Arrow file that every pass maps. A Dataset is scanned anew on each pass, and a Polars
LazyFrame (which has no stream of its own) collected a batch at a time (``collect_batches``).

Columns become pandas as a Parquet file's do (``to_pandas(integer_object_nulls=True)``), once
view types (``string_view``, ``binary_view``, list views: Polars' way to send text) and large
types (``large_string``, ``large_list``, ...) are cast to their plain forms, at any depth. So a
Polars frame and the same rows in pandas or Parquet give the same bodies and the same row keys:
a ledger written from one skips the other.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import pandas as pd
import pyarrow as pa

from .._errors import ConfigError
from .._store.stored_values import file_notes, restore
from .problems import retyped
from .reader import frame_chunks

__all__ = [
    "ArrowInput", "ArrowStream", "Frame", "FrameInput", "is_arrow_frame", "open_frame",
    "whole_frame",
]  # fmt: skip


class ArrowStream(Protocol):
    """Anything that speaks the Arrow C stream interface (a Polars DataFrame, a pyarrow Table or
    RecordBatchReader, a DuckDB relation)."""

    def __arrow_c_stream__(self, requested_schema: Any = None) -> object: ...


#: What the DataFrame functions take (a pyarrow Dataset and a Polars LazyFrame are read too).
Frame: TypeAlias = "pd.DataFrame | ArrowStream"


def _is_dataset(data: object) -> bool:
    module = type(data).__module__
    if not module.startswith("pyarrow"):
        return False
    import pyarrow.dataset as ds  # not at ``import gb_backfill``: it is slow to import

    return isinstance(data, ds.Dataset)


def _is_lazy_polars(data: object) -> bool:
    # A LazyFrame has no __arrow_c_stream__; its batches (Polars DataFrames) do.
    return type(data).__module__.startswith("polars") and hasattr(data, "collect_batches")


def is_arrow_frame(data: object) -> bool:
    """Whether ``data`` is read through Arrow (see the module docstring)."""
    return hasattr(type(data), "__arrow_c_stream__") or _is_dataset(data) or _is_lazy_polars(data)


def plain_type(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every view or large type in it, at any depth, made plain."""
    types = pa.types
    if types.is_string_view(kind) or types.is_large_string(kind):
        return pa.string()
    if types.is_binary_view(kind) or types.is_large_binary(kind):
        return pa.binary()
    if (
        types.is_list_view(kind)
        or types.is_large_list_view(kind)
        or types.is_large_list(kind)
        or types.is_list(kind)
    ):
        return pa.list_(_plain_field(kind.value_field))
    if types.is_fixed_size_list(kind):
        return pa.list_(_plain_field(kind.value_field), kind.list_size)
    if types.is_struct(kind):
        return pa.struct([_plain_field(kind.field(i)) for i in range(kind.num_fields)])
    if types.is_map(kind):
        return pa.map_(_plain_field(kind.key_field), _plain_field(kind.item_field))
    if types.is_dictionary(kind):
        return pa.dictionary(kind.index_type, plain_type(kind.value_type), kind.ordered)
    return kind


def _plain_field(field: pa.Field) -> pa.Field:
    return field.with_type(plain_type(field.type))


def _plain_column(column: pa.Array, kind: pa.DataType) -> pa.Array:
    if column.type == kind:
        return column
    try:
        return column.cast(kind)
    except pa.ArrowNotImplementedError:
        # pyarrow before 18 cannot cast string_view; its values as Python objects, exactly.
        return pa.array(column.to_pylist(), type=kind)


def plain_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with its view and large types cast to their plain forms."""
    schema = pa.schema([_plain_field(f) for f in batch.schema], metadata=batch.schema.metadata)
    if schema.equals(batch.schema):
        return batch
    columns = [_plain_column(batch.column(i), f.type) for i, f in enumerate(schema)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _rows_of(data: object) -> int | None:
    """The input's rows where the object knows them without reading them (a Table, a Polars
    frame); None otherwise (the progress bar then counts without a total)."""
    if isinstance(data, pa.Table):
        return int(data.num_rows)
    if _is_dataset(data):
        return int(data.count_rows())  # type: ignore[attr-defined]
    if _is_lazy_polars(data) or isinstance(data, pa.RecordBatchReader):
        return None
    try:
        return len(data)  # type: ignore[arg-type]
    except (TypeError, ValueError, NotImplementedError):
        return None


class ArrowInput:
    """An Arrow-speaking object as an input, read a batch at a time (see the module docstring).

    Constructing it reads the schema (and copies a ``RecordBatchReader``); an object whose
    stream cannot be read fails here with a :class:`ConfigError` naming ``function``.
    """

    def __init__(self, data: object, *, function: str) -> None:
        self._data = data
        self._spool: tempfile.TemporaryDirectory[str] | None = None
        self._spooled: Path | None = None
        self._function = function
        if isinstance(data, pa.RecordBatchReader):
            self.rows: int | None = self._copy(data)
        else:
            self.rows = _rows_of(data)
        schema = self._schema()
        names = [n for n in schema.names if not n.startswith("__index_level_")]
        self.columns = pd.Index(names)

    def _copy(self, reader: pa.RecordBatchReader) -> int:
        """Copy a reader (it can be read once) to a temporary Arrow file; its rows."""
        self._spool = tempfile.TemporaryDirectory(prefix="gb-backfill-stream-")
        self._spooled = Path(self._spool.name) / "input.arrow"
        rows = 0
        with pa.OSFile(str(self._spooled), "wb") as sink:
            schema = pa.schema([_plain_field(f) for f in reader.schema], reader.schema.metadata)
            with pa.ipc.new_file(sink, schema) as writer:
                for batch in reader:
                    writer.write_batch(plain_batch(batch))
                    rows += batch.num_rows
        return rows

    def close(self) -> None:
        """Remove the temporary copy of a ``RecordBatchReader``, if any."""
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None

    def _batches(self) -> Iterator[pa.RecordBatch]:
        """A new pass over the object's batches."""
        if self._spooled is not None:
            with pa.memory_map(str(self._spooled)) as source:
                reader = pa.ipc.open_file(source)
                for index in range(reader.num_record_batches):
                    yield reader.get_batch(index)
            return
        for stream in self._streams():
            yield from stream

    def _streams(self) -> Iterator[pa.RecordBatchReader]:
        data = self._data
        if _is_dataset(data):
            yield data.scanner().to_reader()  # type: ignore[attr-defined]
        elif _is_lazy_polars(data):
            for frame in data.collect_batches():  # type: ignore[attr-defined]
                yield self._stream_of(frame)
        else:
            yield self._stream_of(data)

    def _stream_of(self, data: object) -> pa.RecordBatchReader:
        try:
            return pa.RecordBatchReader.from_stream(data)
        except (pa.ArrowException, TypeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else "no reason given"
            raise ConfigError(
                f"{self._function}() could not read {type(data).__name__} as an Arrow stream: "
                f"{first}"
            ) from None

    def _schema(self) -> pa.Schema:
        if self._spooled is not None:
            with pa.memory_map(str(self._spooled)) as source:
                return pa.ipc.open_file(source).schema
        data = self._data
        if isinstance(data, pa.Table) or _is_dataset(data):
            return data.schema  # type: ignore[attr-defined]
        if _is_lazy_polars(data):
            return self._stream_of(data.head(0).collect()).schema  # type: ignore[attr-defined]
        return self._stream_of(data).schema

    def frames(self, *, batch_rows: int) -> Iterator[pd.DataFrame]:
        """The input as DataFrames of at most ``batch_rows`` rows; index labels are positions.
        An empty input is one empty frame, so its columns are still seen."""
        start = 0
        plain = (plain_batch(batch) for batch in self._batches())
        for table in _sized(plain, batch_rows):
            frame = _as_pandas(table)
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
        if start == 0:
            yield pd.DataFrame(columns=self.columns)

    def whole(self) -> pd.DataFrame:
        """The whole input as one DataFrame (for the functions that return its rows), made by
        one conversion: pandas 2.2 warns when it concatenates frames with all-missing columns."""
        batches = [plain_batch(batch) for batch in self._batches()]
        if not batches:
            return pd.DataFrame(columns=self.columns)
        frame = _as_pandas(pa.Table.from_batches(batches))
        frame.index = pd.RangeIndex(len(frame))
        return frame


def _sized(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The batches regrouped as tables of ``rows`` rows (the last may have fewer): a big batch
    is sliced (slices share its memory), small ones are gathered."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        start = 0
        while start < batch.num_rows:
            take = min(rows - count, batch.num_rows - start)
            held.append(batch.slice(start, take))
            count, start = count + take, start + take
            if count == rows:
                yield pa.Table.from_batches(held)
                held, count = [], 0
    if held:
        yield pa.Table.from_batches(held)


def _as_pandas(table: pa.Table) -> pd.DataFrame:
    """A chunk as pandas, as a Parquet file's batch is (:mod:`gb_backfill._input.reader`)."""
    # Integers with nulls stay exact Python ints rather than become floats.
    frame = table.to_pandas(integer_object_nulls=True)
    return retyped(restore(frame, file_notes(table.schema)))


class FrameInput:
    """A pandas DataFrame as an input, with :class:`ArrowInput`'s reading methods."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df, self.rows, self.columns = df, len(df), df.columns

    def frames(self, *, batch_rows: int) -> Iterator[pd.DataFrame]:
        return frame_chunks(self.df, batch_rows)

    def close(self) -> None:
        pass


def open_frame(data: object, function: str) -> FrameInput | ArrowInput:
    """``data``, a pandas DataFrame or an Arrow-speaking frame, as an input; a one-line
    :class:`ConfigError` naming ``function`` for anything else."""
    if isinstance(data, pd.DataFrame):
        return FrameInput(data)
    if not is_arrow_frame(data):
        raise ConfigError(
            f"{function}() takes a pandas DataFrame or a frame that speaks Arrow (a Polars or "
            f"DuckDB frame, a pyarrow Table), not {type(data).__name__}"
        )
    return ArrowInput(data, function=function)


def whole_frame(data: object, function: str) -> pd.DataFrame:
    """``data`` as one pandas DataFrame (for the functions that return its rows)."""
    if isinstance(data, pd.DataFrame):
        return data
    source = open_frame(data, function)
    assert isinstance(source, ArrowInput)
    try:
        return source.whole()
    finally:
        source.close()
