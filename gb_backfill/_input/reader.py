"""Reading CSV and Parquet input a bounded batch at a time, never the whole file.

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
:mod:`gb_backfill._store.failures`).
"""

from __future__ import annotations

import csv as csv_module
import glob
import io
import os
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import ConfigError, Written
from .._rows.mapping import READ_PROBLEMS, ColumnMapping, read_problems_text, resolve_mapping
from .._store.failures import as_text_columns, file_notes, restore
from .._vocabulary import FailureCode
from .csv_types import CSV_TYPES, BadValues, ColumnScan, canonical_type, convert

__all__ = ["CSV_TYPES", "InputFile"]

_PARQUET = {".parquet", ".pq", ".parq"}
_CSV = {".csv", ".txt", ".tsv"}
_SCAN_ROWS = 100_000

# The characters a one-column header most likely holds when the separator was wrong.
_SEPARATORS = (";", "\t", "|")
# pandas' words when a line has more fields than the names it reads with.
_TOO_WIDE = re.compile(r"Expected \d+ fields in line \d+, saw (\d+)")
# Names for fields beyond the header while a chunk is read; never kept.
_EXTRA = "\x00extra-field-"


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if any(s in _PARQUET for s in suffixes):
        return "parquet"
    if any(s in _CSV for s in suffixes):
        return "csv"
    raise ConfigError(f"{path}: unknown input format; use .csv or .parquet files")


def _files(path: str | os.PathLike[str]) -> list[Path]:
    text = os.fspath(path)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvOptions:
    """How CSV files are read (the keywords of ``send_path`` and the CLI's flags)."""

    sep: str | None = None
    encoding: str = "utf-8"
    na_values: tuple[str, ...] = ("",)
    dtype: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def make(
        cls,
        *,
        sep: str | None = None,
        encoding: str | None = None,
        na_values: Iterable[str] | None = None,
        dtype: Mapping[Hashable, str] | None = None,
    ) -> CsvOptions:
        if isinstance(na_values, str):
            raise ConfigError("{na_values=} takes a list of strings, e.g. {na_values=*}",
                              option="na_values", na_values=[na_values])  # fmt: skip
        sep = "\t" if sep == "\\t" else sep  # --sep '\t' from a shell
        if sep is not None and len(sep) != 1:
            raise ConfigError("{sep=} takes one character, e.g. {sep=';'|';'}, not {value!r}",
                              option="sep", value=sep)  # fmt: skip
        if encoding is not None:
            import codecs

            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ConfigError("unknown encoding {value!r}, e.g. utf-8 or latin-1",
                                  option="encoding", value=encoding) from None  # fmt: skip
        types = {str(column): canonical_type(kind) for column, kind in (dtype or {}).items()}
        missing = ("", *na_values) if na_values is not None else ("",)
        return cls(
            sep=sep,
            encoding=encoding or "utf-8",
            na_values=tuple(dict.fromkeys(missing)),
            dtype=types,
        )


def _parquet_columns(files: Sequence[Path]) -> tuple[pd.Index, int]:
    """The columns the Parquet files share, and their rows; :class:`ConfigError` if they differ."""
    first: list[str] | None = None
    rows = 0
    for file in files:
        try:
            metadata = pq.read_metadata(file)
            schema = pq.read_schema(file)
        except (pa.ArrowException, OSError) as error:
            raise ConfigError(f"{file}: not a readable Parquet file ({error})") from None
        names = [n for n in schema.names if not n.startswith("__index_level_")]
        if first is None:
            first = names
        elif names != first:
            raise ConfigError(
                f"{file}: its columns differ from {files[0].name}'s; files read as one input "
                "need the same columns"
            )
        rows += metadata.num_rows
    return pd.Index(first or []), rows


def _separator(file: Path, csv: CsvOptions) -> str:
    return csv.sep if csv.sep is not None else ("\t" if file.suffix.lower() == ".tsv" else ",")


def _read_csv(file: Path, csv: CsvOptions, **options: Any) -> Any:
    """``pd.read_csv`` with every field as text and only ``csv.na_values`` missing."""
    return pd.read_csv(
        file,
        sep=_separator(file, csv),
        encoding=csv.encoding,
        dtype=str,
        keep_default_na=False,
        na_values=list(csv.na_values),
        **options,
    )


def _csv_error(file: Path, csv: CsvOptions, error: Exception) -> ConfigError:
    if isinstance(error, UnicodeDecodeError):
        line = _undecodable_line(file, csv.encoding)
        return ConfigError(
            "{file}, line {line}: not valid {codec} text ({reason}); pass the file's "
            "encoding ({encoding=...|ENCODING}), e.g. latin-1",
            option="encoding", file=file, line=line, codec=csv.encoding, reason=error.reason,
        )  # fmt: skip
    if isinstance(error, pd.errors.EmptyDataError):
        return ConfigError(f"{file}: empty file; a CSV input needs at least a header line")
    return ConfigError(f"{file}: cannot be read as CSV ({error})".replace("\n", " "))


def _csv_columns(files: Sequence[Path], csv: CsvOptions) -> pd.Index:
    """The header the CSV files share; :class:`ConfigError` if they differ or cannot be read."""
    first: pd.Index | None = None
    for file in files:
        try:
            columns: pd.Index = _read_csv(file, csv, nrows=0).columns
            # pandas renames a name given twice (amount, amount.1): read the names as written.
            written = _read_csv(file, csv, header=None, nrows=1).iloc[0].tolist()
        except (ValueError, pd.errors.ParserError) as error:
            raise _csv_error(file, csv, error) from None
        repeated = [
            n for i, n in enumerate(written) if n in written[:i] and n not in written[i + 1 :]
        ]
        if repeated:
            raise ConfigError(
                f"{file}: the header names {', '.join(map(repr, repeated))} more than once, so "
                "its columns cannot be told apart; give each column its own name"
            )
        if first is None:
            first = columns
        elif list(columns) != list(first):
            raise ConfigError(
                f"{file}: its columns differ from {files[0].name}'s; files read as one input "
                "need the same columns"
            )
    assert first is not None
    unknown = [c for c in csv.dtype if c not in set(first)]
    if unknown:
        raise ConfigError(
            "{dtype=} names missing column(s) {missing}; the columns are: {columns}",
            option="dtype",
            missing=", ".join(unknown),
            columns=", ".join(map(str, first)),
        )
    return first


# --- the shape of CSV lines ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
    """How one CSV file's lines fit its header, as the first pass found it."""

    width: int  #: the header's fields
    named: int  #: up to its last named one: a trailing separator after it names no column
    fields: int  #: fields read per line: the widest line's, at least the header's
    short_rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    short_fields: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    records: int | None = None  #: data lines the count found (None: not counted)

    @classmethod
    def of(cls, columns: pd.Index, fields: int = 0) -> _Shape:
        names = [str(c) for c in columns]
        named = len(names)
        while named and names[named - 1] == f"Unnamed: {named - 1}":
            named -= 1
        return cls(width=len(names), named=named, fields=max(fields, len(names)))


class _TooWide(Exception):
    """A line has more fields than the chunk is read with: ``fields`` of them."""

    def __init__(self, fields: int) -> None:
        super().__init__(fields)
        self.fields = fields


def _is_blank(fields: list[str]) -> bool:
    # pandas skips lines that are empty or only spaces and tabs.
    return not fields or (len(fields) == 1 and not fields[0].strip(" \t"))


def _count_fields(file: Path, csv: CsvOptions, shape: _Shape) -> _Shape:
    """Count every line's fields with Python's csv module, which, unlike pandas, tells a
    missing field from an empty one: the widest line, and the rows with too few fields."""
    rows: list[int] = []
    counts: list[int] = []
    widest = shape.fields
    record = -1  # the header is record -1, the first row record 0
    try:
        with file.open(encoding=csv.encoding, newline="") as handle:
            for fields in csv_module.reader(handle, delimiter=_separator(file, csv)):
                if _is_blank(fields):
                    continue
                if record >= 0 and len(fields) < shape.named:
                    rows.append(record)
                    counts.append(len(fields))
                widest = max(widest, len(fields))
                record += 1
    except csv_module.Error as error:
        raise ConfigError(f"{file}: cannot be read as CSV ({error})") from None
    return _Shape(
        width=shape.width,
        named=shape.named,
        fields=widest,
        short_rows=np.array(rows, dtype=np.int64),
        short_fields=np.array(counts, dtype=np.int64),
        records=max(record, 0),
    )


def _chunks(file: Path, csv: CsvOptions, shape: _Shape, rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows, ``rows`` at a time, each line read into ``shape.fields`` columns: the
    header's, then the extra ones. No index is inferred, so no value moves to another column."""
    names = [f"{_EXTRA}{n}" for n in range(shape.fields)]
    try:
        # The header line is read as a row and dropped: with header=0, pandas would expect
        # every line to have the header's width, whatever the names.
        with _read_csv(
            file, csv, header=None, names=names, index_col=False, iterator=True
        ) as reader:
            size, skip = rows + 1, 1
            while True:
                try:
                    chunk = reader.get_chunk(size).iloc[skip:]
                except StopIteration:
                    return
                size, skip = rows, 0
                if len(chunk):
                    yield chunk
    except pd.errors.ParserError as error:
        wide = _TOO_WIDE.search(str(error))
        if wide:
            raise _TooWide(int(wide.group(1))) from None
        raise _csv_error(file, csv, error) from None
    except ValueError as error:
        raise _csv_error(file, csv, error) from None


class _Marks:
    """The problems found while reading one chunk, per row, for :data:`READ_PROBLEMS`."""

    def __init__(self) -> None:
        self.rows: dict[int, list[tuple[str, str, str, str]]] = {}

    def add(self, position: int, code: FailureCode, column: str, message: str, value: str) -> None:
        self.rows.setdefault(position, []).append((str(code), column, message, value))

    def attach(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.rows:
            return frame
        marks: list[str | None] = [None] * len(frame)
        for position, problems in self.rows.items():
            marks[position] = read_problems_text(problems)
        frame[READ_PROBLEMS] = pd.Series(marks, index=frame.index, dtype=object)
        return frame


def _line_text(values: Iterable[object], sep: str) -> str:
    """A line's fields as CSV text again (missing ones empty), for messages."""
    out = io.StringIO()
    fields = [v if isinstance(v, str) else "" for v in values]  # fields are text or missing
    csv_module.writer(out, delimiter=sep, lineterminator="").writerow(fields)
    return out.getvalue()


def _mark_shapes(
    chunk: pd.DataFrame, shape: _Shape, start: int, file: Path, sep: str, marks: _Marks
) -> None:
    """Mark the rows whose lines do not fit the header (see the module docstring)."""
    if shape.fields > shape.width:
        extra = chunk.iloc[:, shape.width :].notna().to_numpy().any(axis=1)
        for position in np.flatnonzero(extra).tolist():
            values = chunk.iloc[position].tolist()
            last = max(i for i, v in enumerate(values) if isinstance(v, str))
            line = _line_text(values[: last + 1], sep)
            marks.add(
                position,
                FailureCode.CSV_EXTRA_FIELDS,
                file.name,
                f"the line has more fields than the header's {shape.width}, and the ones beyond "
                "it are not empty, so which value belongs to which column is a guess: fix the "
                f"line (or the separator: sep=, --sep); as read: {line}",
                line,
            )
    low, high = np.searchsorted(shape.short_rows, [start, start + len(chunk)])
    for row, count in zip(
        shape.short_rows[low:high].tolist(), shape.short_fields[low:high].tolist(), strict=True
    ):
        position = row - start
        line = _line_text(chunk.iloc[position, :count], sep)
        marks.add(
            position,
            FailureCode.CSV_MISSING_FIELDS,
            file.name,
            f"the line has {count} field{'s' if count != 1 else ''} but the header {shape.named}, "
            f"so which value belongs to which column is a guess: fix the line; as read: {line}",
            line,
        )


class InputFile:
    """One input (a file, a directory or a glob), read a batch at a time.

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
    ) -> None:
        self.files = _files(path)
        kinds = {_kind(f) for f in self.files}
        if len(kinds) > 1:
            raise ConfigError(f"{path}: mixes CSV and Parquet files; give one kind at a time")
        self.kind = kinds.pop()
        self.csv = csv or CsvOptions()
        self.types: dict[str, str] = {}
        self._scans: dict[str, ColumnScan] = {}
        self._shapes: dict[Path, _Shape] = {}
        if self.kind == "parquet":
            self.columns, self.rows = _parquet_columns(self.files)
        else:
            self.columns = _csv_columns(self.files, self.csv)
            self.rows = self._csv_scan({str(c) for c in text_columns})

    # --- Parquet -------------------------------------------------------------------------

    def _parquet_frames(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for file in self.files:
            # pre_buffer would keep every column chunk read so far: memory grows with the file.
            with pq.ParquetFile(file, pre_buffer=False) as parquet:
                notes = file_notes(parquet.schema_arrow)
                for batch in parquet.iter_batches(batch_size=batch_rows):
                    # Integers with nulls stay exact Python ints rather than become floats.
                    yield retyped(restore(batch.to_pandas(integer_object_nulls=True), notes))

    # --- CSV -----------------------------------------------------------------------------

    def _scan_file(
        self, file: Path, shape: _Shape, scanned: list[str]
    ) -> tuple[int, dict[str, ColumnScan], bool]:
        """One file's first pass: its rows, what its values are, and whether a line may be
        short (its last named field is missing)."""
        scans = {name: ColumnScan() for name in scanned}
        positions = {str(c): n for n, c in enumerate(self.columns)}
        rows, maybe_short = 0, False
        for chunk in _chunks(file, self.csv, shape, _SCAN_ROWS):
            for name, scan in scans.items():
                text = pa.array(chunk.iloc[:, positions[name]], pa.string(), from_pandas=True)
                scan.add(text, self.csv.dtype.get(name))
            if shape.named:
                maybe_short |= bool(chunk.iloc[:, shape.named - 1].isna().any())
            rows += len(chunk)
        return rows, scans, maybe_short

    def _scan_shaped(
        self, file: Path, scanned: list[str]
    ) -> tuple[_Shape, int, dict[str, ColumnScan]]:
        """:meth:`_scan_file` with as many fields per line as the file's widest line has.

        Lines are read by the header's width first: most files fit it, and each field more
        costs time. A wider line (a trailing separator on every line) is read again wider; a
        third width, or a line that may be short, has every line's fields counted.
        """
        shape = _Shape.of(self.columns)
        try:
            found, scans, maybe_short = self._scan_file(file, shape, scanned)
        except _TooWide as wide:
            shape = _Shape.of(self.columns, wide.fields + 1)
            try:
                found, scans, maybe_short = self._scan_file(file, shape, scanned)
            except _TooWide:
                shape = _count_fields(file, self.csv, shape)
                found, scans, maybe_short = self._scan_file(file, shape, scanned)
        if maybe_short and shape.records is None:
            shape = _count_fields(file, self.csv, shape)
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
            for chunk in _chunks(file, self.csv, shape, batch_rows):
                yield self._read_chunk(chunk, file, shape, start)
                start += len(chunk)

    def _read_chunk(
        self, chunk: pd.DataFrame, file: Path, shape: _Shape, start: int
    ) -> pd.DataFrame:
        """A chunk as the input's columns, typed, with its rows' problems marked."""
        marks = _Marks()
        _mark_shapes(chunk, shape, start, file, _separator(file, self.csv), marks)
        frame = chunk.iloc[:, : shape.width] if shape.fields > shape.width else chunk
        frame.columns = self.columns
        frame.index = pd.RangeIndex(len(frame))
        for name in frame.columns:
            kind = self.types[str(name)]
            if kind == "text":
                continue
            text = frame[name]
            frame[name], bad = convert(
                text, kind, self._scans[str(name)], asked=str(name) in self.csv.dtype
            )
            _mark_values(text, bad, marks)
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


#: the types :func:`~gb_backfill._input.csv_types.convert` reads text as, and the ``dtype=`` name
#: each refines
_CONVERTED = {
    "int": "int", "bigint": "int", "float": "float", "decimal": "float", "bool": "bool",
    "datetime": "datetime",
}  # fmt: skip


def retyped(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (from a failures file) with the text of values a CSV reader could not convert
    converted again by the type it was read as (see
    :func:`~gb_backfill._store.failures.as_text_columns`); a value that still does not convert is
    its row's ``dtype_unconvertible`` failure again. Columns the user converted already (no text
    left) stay as they are."""
    as_text = as_text_columns(frame)
    if not as_text:
        return frame
    frame = frame.copy()
    marks = _Marks()
    for name, kind in as_text.items():
        column = next(c for c in frame.columns if str(c) == name)
        values = frame[column]
        text = np.array([isinstance(v, str) for v in values.tolist()], dtype=bool)
        if not text.any() or kind not in _CONVERTED:
            continue
        cells = pd.Series(values[text].tolist(), name=column, dtype=object)
        scan = ColumnScan()
        scan.add(pa.array(cells, pa.string()), _CONVERTED[kind])
        converted, bad = convert(cells, kind, scan, asked=True)
        if text.all():
            frame[column] = converted.set_axis(frame.index)
        else:
            merged = values.astype(object).copy()
            merged[text] = converted.astype(object).where(converted.notna(), None).to_numpy()
            frame[column] = merged
        where = np.flatnonzero(text)
        for found in bad:
            for n in np.flatnonzero(found.mask).tolist():
                value = str(cells.iloc[n])
                message = found.message.replace("{value}", repr(value))
                marks.add(int(where[n]), found.code, name, message, value)
    return marks.attach(frame)


def _mark_values(text: pd.Series, bad: list[BadValues], marks: _Marks) -> None:
    for values in bad:
        for position in np.flatnonzero(values.mask).tolist():
            value = str(text.iloc[position])
            message = values.message.replace("{value}", repr(value))
            marks.add(position, values.code, str(text.name), message, value)


def _undecodable_line(file: Path, encoding: str) -> int:
    """The number of the first line of ``file`` that does not decode (1-based)."""
    with file.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                return number
    return 0


def columns_of(path: str | os.PathLike[str], csv: CsvOptions | None = None) -> pd.Index:
    """The input's column names, reading no rows (for resolving the column mapping)."""
    files = _files(path)
    if _kind(files[0]) == "parquet":
        return _parquet_columns(files)[0]
    return _csv_columns(files, csv or CsvOptions())


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


def input_mapping(path: str | os.PathLike[str], csv: CsvOptions, **keywords: Any) -> ColumnMapping:
    """The column mapping for an input (see :func:`~gb_backfill._rows.mapping.resolve_mapping`);
    when it cannot be resolved and a wrong separator is the likely cause, the error says so."""
    columns = columns_of(path, csv)
    try:
        return resolve_mapping(columns, **keywords)
    except ConfigError as error:
        hint = separator_hint(columns, csv)
        if hint is not None:
            error.add_hint(hint[0], **hint[1])
        raise


def key_frames(
    frames: Iterator[pd.DataFrame], columns: Sequence[Hashable]
) -> Iterator[pd.DataFrame]:
    """Only the ``row_key`` columns of each frame (for the uniqueness check)."""
    for frame in frames:
        yield frame[list(columns)]
