"""Reading the input a bounded chunk at a time: a DataFrame, or CSV and Parquet files, never
the whole file.

An input is one file, a directory of ``.parquet`` or ``.csv`` files, or a glob
(``exports/2024-*.csv``); several files must have the same columns and are read as one input.

CSV is read without guessing per chunk, which is how ``00123`` became ``123`` in one chunk and
stayed ``00123`` in another:

* the mapped id, event name, email, mobile, session token and row-key columns are text, exactly
  as written;
* only an empty field is missing (``na_values=`` adds more: ``NA`` is Namibia until you say so);
* every other column's type is decided once for the whole input, by a first pass over it (see
  :mod:`gb_backfill._input.csv_types`); ``dtype={"col": "text" | "int" | "float" | "bool" |
  "datetime"}`` overrides any column. The same pass finds bad bytes before anything is sent;
* a value never moves to another column. The header says how many fields a line has: a line
  with more is read by the header when every extra field is empty (a trailing separator), and is
  otherwise its row's ``csv_extra_fields`` failure; a line with fewer is ``csv_missing_fields``
  (which of its values belongs to which column is a guess). pandas cannot tell a missing field
  from an empty one, so when some line may be short, Python's ``csv`` module counts each line's
  fields in a second pass (only then).

Problems found while reading reach the checks as data: the reader marks the row in the reserved
:data:`~gb_backfill._rows.rules.READ_PROBLEMS` column, which
:func:`~gb_backfill._rows.rules.check_frame` turns into failures.

Parquet keeps its own types; a failures file's stored values are restored (see
:mod:`gb_backfill._store.failures`). The read options that convert text apply to its text
columns as to a CSV's: the columns ``dtype=`` names get the same first pass (over only those
columns) and the same conversions (:func:`~gb_backfill._input.problems.retyped`), and
``na_values=`` makes its texts missing. How CSV lines are read is
:mod:`gb_backfill._input.csv_lines`, and the problems marked on rows
:mod:`gb_backfill._input.problems`.
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import ConfigError, Written
from .._rows.mapping import ColumnMapping, resolve_mapping
from .._store.stored_values import file_notes, restore
from .csv_lines import CsvOptions as CsvOptions  # the faces read CSV options here
from .csv_lines import (
    Shape,
    TooWide,
    check_asked_columns,
    count_fields,
    csv_chunks,
    csv_columns,
    mark_shapes,
    separator,
)
from .csv_types import CSV_TYPES, ColumnScan, convert
from .problems import Asked, ReadMarks, mark_values
from .problems import retyped as retyped  # (the faces read a DataFrame through it too)
from .stores import SourceFile, is_uri, random_access, shown_uri, store_files

__all__ = ["CSV_TYPES", "InputFile"]

_PARQUET = {".parquet", ".pq", ".parq"}
_CSV = {".csv", ".txt", ".tsv"}
_SCAN_ROWS = 100_000

# The characters a one-column header most likely holds when the separator was wrong.
_SEPARATORS = (";", "\t", "|")


def frame_chunks(df: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """A DataFrame input, ``rows`` at a time, each chunk :func:`retyped` (a failures file read
    with pandas keeps, as text, values a CSV reader could not convert). An empty frame is one
    empty chunk, as a file with a header and no rows is: its columns are still seen."""
    for start in range(0, max(len(df), 1), rows):
        yield retyped(df.iloc[start : start + rows])


def _kind(path: SourceFile) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if any(s in _PARQUET for s in suffixes):
        return "parquet"
    if any(s in _CSV for s in suffixes):
        return "csv"
    raise ConfigError(f"{path}: unknown input format; use .csv or .parquet files")


def _files(path: str | os.PathLike[str], filesystem: Any = None) -> list[SourceFile]:
    text = os.fspath(path)
    if filesystem is not None or is_uri(text):
        return list(store_files(text, filesystem, frozenset(_PARQUET | _CSV)))
    return list(_local_files(text))


def _local_files(text: str) -> list[Path]:
    if glob.has_magic(text):
        found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not found:
            raise ConfigError(f"{text}: no file matches")
        return found
    given = Path(text)
    if given.is_dir():
        found = sorted(p for p in given.iterdir() if p.is_file() and not p.name.startswith("."))
        found = [p for p in found if {s.lower() for s in p.suffixes} & (_PARQUET | _CSV)]
        if not found:
            raise ConfigError(f"{given}: a directory with no .csv or .parquet file")
        return found
    if not given.exists():
        raise ConfigError(f"{given}: no such file")
    return [given]


def _parquet_columns(files: Sequence[SourceFile]) -> tuple[pd.Index, int, pa.Schema]:
    """The columns the Parquet files share, their rows and the first file's schema;
    :class:`ConfigError` if they differ."""
    first: list[str] | None = None
    first_schema = pa.schema([])
    rows = 0
    for file in files:
        try:
            with random_access(file) as source, pq.ParquetFile(source) as parquet:
                metadata, schema = parquet.metadata, parquet.schema_arrow
        except (pa.ArrowException, OSError) as error:
            raise ConfigError(f"{file}: not a readable Parquet file ({error})") from None
        names = [n for n in schema.names if not n.startswith("__index_level_")]
        if first is None:
            first, first_schema = names, schema
        elif names != first:
            raise ConfigError(
                f"{file}: its columns differ from {files[0].name}'s; files read as one input "
                "need the same columns"
            )
        rows += metadata.num_rows
    return pd.Index(first or []), rows, first_schema


def _number(stored: pa.DataType) -> bool:
    kinds = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    return any(is_kind(stored) for is_kind in kinds)


# What each type dtype= may ask a Parquet column that is not text is already (a number is sent
# as the number it is, whole or not, as a CSV's would be).
_STORED_AS = {
    "int": _number,
    "float": _number,
    "bool": pa.types.is_boolean,
    "datetime": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
}


def _check_parquet_reading(schema: pa.Schema, csv: CsvOptions) -> None:
    """:class:`ConfigError` for options a Parquet input would ignore: a CSV file's separator
    and encoding, and ``dtype=`` asking a column stored as another type than text (it converts
    text; a stored number stays the number it is, and a timestamp the time it is)."""
    if csv.sep is not None or csv.encoding_given:
        option = "sep" if csv.sep is not None else "encoding"
        given = {option: csv.sep if option == "sep" else csv.encoding}
        raise ConfigError("{" + option + "=*} is for CSV files; a Parquet file has no "
                          "separator or encoding to give (drop it)", option=option,
                          **given)  # fmt: skip
    for name, kind in csv.dtype.items():
        stored = schema.field(name).type if name in schema.names else pa.string()
        textual = pa.types.is_string(stored) or pa.types.is_large_string(stored)
        if textual or pa.types.is_null(stored) or _STORED_AS.get(kind, _never)(stored):
            continue
        raise ConfigError(
            "{dtype=} asks column {column} as {kind}, but the Parquet file stores it as "
            "{stored}; only text columns are converted (drop {column} from {dtype=})",
            option="dtype",
            column=name,
            kind=kind,
            stored=_in_words(stored),
        )


def _in_words(stored: pa.DataType) -> str:
    """A Parquet column's type as a person says it."""
    if pa.types.is_integer(stored):
        return f"whole numbers ({stored})"
    if _number(stored):
        return f"numbers ({stored})"
    if pa.types.is_boolean(stored):
        return "true/false"
    if pa.types.is_timestamp(stored) or pa.types.is_date(stored):
        return f"timestamps ({stored})"
    return str(stored)


def _never(_: pa.DataType) -> bool:
    return False


# --- the shape of CSV lines ------------------------------------------------------------------


class InputFile:
    """One input (a file, a directory or a glob), read a chunk at a time.

    ``text_columns`` are read as text exactly as written (CSV only); see the module docstring.
    Constructing it reads the schema (Parquet) or makes the first pass (CSV), so a bad file
    fails here, before anything is sent, with a :class:`ConfigError` naming the place.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        text_columns: Iterable[Hashable] = (),
        csv: CsvOptions | None = None,
        filesystem: Any = None,
    ) -> None:
        self.files = _files(path, filesystem)
        kinds = {_kind(f) for f in self.files}
        if len(kinds) > 1:
            shown = shown_uri(os.fspath(path)) if is_uri(os.fspath(path)) else path
            raise ConfigError(f"{shown}: mixes CSV and Parquet files; give one kind at a time")
        self.kind = kinds.pop()
        self.csv = csv or CsvOptions()
        self.types: dict[str, str] = {}
        self._scans: dict[str, ColumnScan] = {}
        self._shapes: dict[SourceFile, Shape] = {}
        self._asked: dict[str, Asked] = {}
        if self.kind == "parquet":
            self.columns, self.rows, schema = _parquet_columns(self.files)
            check_asked_columns(self.columns, self.csv)
            _check_parquet_reading(schema, self.csv)
            self._parquet_scan()
        else:
            self.columns = csv_columns(self.files, self.csv)
            self.rows = self._csv_scan({str(c) for c in text_columns})

    # --- Parquet -------------------------------------------------------------------------

    def _parquet_batches(
        self, batch_rows: int, columns: list[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        for file in self.files:
            # pre_buffer would keep every column chunk read so far: memory grows with the file.
            with random_access(file) as source, pq.ParquetFile(source, pre_buffer=False) as parquet:
                notes = file_notes(parquet.schema_arrow)
                for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                    # Integers with nulls stay exact Python ints rather than become floats.
                    yield restore(batch.to_pandas(integer_object_nulls=True), notes)

    def _parquet_frames(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for frame in self._parquet_batches(batch_rows):
            yield retyped(self._missing_text(frame), self._asked)

    def _parquet_scan(self) -> None:
        """``dtype=`` on Parquet: the first pass a CSV's columns get, over the text of the
        columns it names (only those are read), so that each is converted as a CSV's column
        with the same values would be (:func:`~gb_backfill._input.problems.retyped`)."""
        named = [str(c) for c in self.columns if self.csv.dtype.get(str(c), "text") != "text"]
        if not named:
            return
        scans = {name: ColumnScan() for name in named}
        for frame in self._parquet_batches(_SCAN_ROWS, named):
            for name, scan in scans.items():
                values = frame[name]
                text = values[[isinstance(v, str) for v in values.tolist()]]
                if len(text):
                    scan.add(self._reread(name, pa.array(text, pa.string())), self.csv.dtype[name])
        for name, scan in scans.items():
            reread = functools.partial(self._reread, name)
            self._asked[name] = Asked(scan.decide(self.csv.dtype[name]), scan, reread)
            # The failures file notes it, so that its text is read as this type again.
            self.types[name] = self._asked[name].kind

    def _reread(self, name: str, text: pa.Array) -> pa.Array:
        return self.csv.plain_numbers(name, self.csv.missing(text))

    def _missing_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``na_values=`` on Parquet: the texts it names (beyond the empty one, which a
        Parquet column tells from a missing value) are missing in every text column."""
        more = {v for v in self.csv.na_values if v}
        if not more:
            return frame
        for column in frame.columns:
            values = frame[column]
            if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
                missing = np.array([isinstance(v, str) and v in more for v in values.tolist()])
                if missing.any():
                    frame[column] = values.astype(object).where(~missing, None)
        return frame

    # --- CSV -----------------------------------------------------------------------------

    def _scan_file(
        self, file: SourceFile, shape: Shape, scanned: list[str]
    ) -> tuple[int, dict[str, ColumnScan], bool]:
        """One file's first pass: its rows, what its values are, and whether a line may be
        short (its last named field is missing)."""
        scans = {name: ColumnScan() for name in scanned}
        positions = {str(c): n for n, c in enumerate(self.columns)}
        rows, maybe_short = 0, False
        for chunk in csv_chunks(file, self.csv, shape, _SCAN_ROWS):
            for name, scan in scans.items():
                text = pa.array(chunk.iloc[:, positions[name]], pa.string(), from_pandas=True)
                scan.add(self.csv.plain_numbers(name, text), self.csv.dtype.get(name))
            if shape.named:
                maybe_short |= bool(chunk.iloc[:, shape.named - 1].isna().any())
            rows += len(chunk)
        return rows, scans, maybe_short

    def _scan_shaped(
        self, file: SourceFile, scanned: list[str]
    ) -> tuple[Shape, int, dict[str, ColumnScan]]:
        """:meth:`_scan_file` with as many fields per line as the file's widest line has.

        Lines are read by the header's width first: most files fit it, and each field more
        costs time. A wider line (a trailing separator on every line) is read again wider; a
        third width, or a line that may be short, has every line's fields counted.
        """
        shape = Shape.of(self.columns)
        try:
            found, scans, maybe_short = self._scan_file(file, shape, scanned)
        except TooWide as wide:
            shape = Shape.of(self.columns, wide.fields + 1)
            try:
                found, scans, maybe_short = self._scan_file(file, shape, scanned)
            except TooWide:
                shape = count_fields(file, self.csv, shape)
                found, scans, maybe_short = self._scan_file(file, shape, scanned)
        if maybe_short and shape.records is None:
            shape = count_fields(file, self.csv, shape)
        return shape, found, scans

    def _csv_scan(self, text_columns: set[str]) -> int:
        """The first pass: decide each column's type, count rows, fit lines to the header."""
        asked = self.csv.dtype
        names = [str(c) for c in self.columns]
        scanned = [
            n for n in names if asked.get(n, "text" if n in text_columns else None) != "text"
        ]
        self._scans = {name: ColumnScan() for name in scanned}
        rows = 0
        for file in self.files:
            shape, found, scans = self._scan_shaped(file, scanned)
            if shape.records is not None and shape.records != found:
                raise ConfigError(
                    f"{file}: pandas reads {found:,} rows and Python's csv module "
                    f"{shape.records:,}, so its lines cannot be matched to rows; check its quoting"
                )
            for name, scan in scans.items():
                self._scans[name].merge(scan)
            self._shapes[file] = shape
            rows += found
        for name in names:
            found_scan = self._scans.get(name)
            kind = None if found_scan is None else found_scan.decide(asked.get(name))
            self.types[name] = kind or "text"
        return rows

    def _csv_frames(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for file in self.files:
            shape = self._shapes[file]
            start = 0
            for chunk in csv_chunks(file, self.csv, shape, batch_rows):
                yield self._read_chunk(chunk, file, shape, start)
                start += len(chunk)

    def _read_chunk(
        self, chunk: pd.DataFrame, file: SourceFile, shape: Shape, start: int
    ) -> pd.DataFrame:
        """A chunk as the input's columns, typed, with its rows' problems marked."""
        marks = ReadMarks()
        mark_shapes(chunk, shape, start, file, separator(file, self.csv), marks)
        # The extra fields' columns go; a slice of the chunk would be a view that pandas 2.2
        # warns about (SettingWithCopyWarning) when the typed columns are set below.
        frame = chunk.iloc[:, : shape.width].copy() if shape.fields > shape.width else chunk
        frame.columns = self.columns
        frame.index = pd.RangeIndex(len(frame))
        for name in frame.columns:
            kind = self.types[str(name)]
            if kind == "text":
                continue
            text = frame[name]
            read = text
            if self.csv.marks_numbers(str(name)):  # 1,299.50 read as 1299.50
                plain = self.csv.plain_numbers(
                    str(name), pa.array(text, pa.string(), from_pandas=True)
                )
                read = pd.Series(plain.to_pandas(), index=text.index, name=name)
            frame[name], bad = convert(
                read, kind, self._scans[str(name)], asked=str(name) in self.csv.dtype
            )
            mark_values(text, bad, marks)
        return marks.attach(frame)

    # --- both ----------------------------------------------------------------------------

    def frames(self, *, batch_rows: int) -> Iterator[pd.DataFrame]:
        """The input as DataFrames of at most ``batch_rows`` rows; index labels are positions."""
        start = 0
        source = (
            self._parquet_frames(batch_rows)
            if self.kind == "parquet"
            else self._csv_frames(batch_rows)
        )
        for frame in source:
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame


def columns_of(
    path: str | os.PathLike[str], csv: CsvOptions | None = None, filesystem: Any = None
) -> pd.Index:
    """The input's column names, reading no rows (for resolving the column mapping)."""
    files = _files(path, filesystem)
    if _kind(files[0]) == "parquet":
        return _parquet_columns(files)[0]
    return csv_columns(files, csv or CsvOptions())


def separator_hint(columns: pd.Index, csv: CsvOptions) -> tuple[str, dict[str, Any]] | None:
    """A hint naming the separator when the header is one column that holds a likelier one
    (a template naming ``sep=``, and its values)."""
    if len(columns) != 1:
        return None
    name = str(columns[0])
    found = [s for s in _SEPARATORS if s in name and s != csv.sep]
    if not found:
        return None
    shown = "\\t" if found[0] == "\t" else found[0]
    said = "a tab" if found[0] == "\t" else f"'{shown}'"
    hint = "the header is one column, {header!r}: is the separator {separator}? pass {sep=*}"
    return hint, {"header": name, "separator": said, "sep": Written(f"'{shown}'", f"'{shown}'")}


def input_mapping(
    path: str | os.PathLike[str], csv: CsvOptions, filesystem: Any = None, **keywords: Any
) -> ColumnMapping:
    """The column mapping for an input (see :func:`~gb_backfill._rows.mapping.resolve_mapping`);
    when it cannot be resolved and a wrong separator is the likely cause, the error says so."""
    columns = columns_of(path, csv, filesystem)
    try:
        return resolve_mapping(columns, **keywords)
    except ConfigError as error:
        hint = separator_hint(columns, csv)
        if hint is not None:  # the separator is the fix: said first, what it caused after
            error.put_first(hint[0], **hint[1])
        raise


def key_frames(
    frames: Iterator[pd.DataFrame], columns: Sequence[Hashable]
) -> Iterator[pd.DataFrame]:
    """Only the ``row_key`` columns of each frame (for the uniqueness check)."""
    for frame in frames:
        yield frame[list(columns)]
