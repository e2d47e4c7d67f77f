"""Reading CSV and Parquet input a bounded batch at a time, never the whole file.

An input is one file, a directory of ``.parquet`` or ``.csv`` files, or a glob
(``exports/2024-*.csv``); several files must have the same columns and are read as one input.

CSV is read without guessing per chunk, which is how ``00123`` became ``123`` in one chunk and
stayed ``00123`` in another:

* the mapped id, event name, email, mobile, session token and row-key columns are text, exactly
  as written;
* only an empty field is missing (``na_values=`` adds more: ``NA`` is Namibia until you say so);
* every other column's type is decided once for the whole input, by a first pass over it:
  whole numbers (without leading zeros) → integers, numbers → floats, ``true``/``false`` →
  booleans, anything else → text. Timestamps stay text, as written, unless ``dtype=`` asks for
  ``datetime``; ``dtype={"col": "text" | "int" | "float" | "bool" | "datetime"}`` overrides any
  column. The same pass finds bad bytes and broken lines before anything is sent.

Parquet keeps its own types; a failures file's stored values are restored (see :mod:`._failures`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._errors import ConfigError
from ._failures import encoded_columns, restore

__all__ = ["CSV_TYPES", "InputFile"]

_PARQUET = {".parquet", ".pq", ".parq"}
_CSV = {".csv", ".txt", ".tsv"}
_SCAN_ROWS = 100_000

#: The types ``dtype=`` may name for a CSV column, and the names each goes by.
CSV_TYPES = {
    "text": ("text", "str", "string"),
    "int": ("int", "integer", "int64"),
    "float": ("float", "float64", "double", "number"),
    "bool": ("bool", "boolean"),
    "datetime": ("datetime", "timestamp", "datetime64"),
}
_TYPE_NAMES = {alias: kind for kind, aliases in CSV_TYPES.items() for alias in aliases}

_INT = r"^-?(0|[1-9][0-9]*)$"
_FLOAT = r"^-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]+)?$"
_INFINITY = r"(?i)^-?(inf|infinity)$"
_BOOL = r"(?i)^(true|false)$"
_INT64_DIGITS = 18  # beyond this many digits an integer may not fit int64


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


def canonical_type(name: str) -> str:
    kind = _TYPE_NAMES.get(str(name).lower() if str(name) != "Int64" else "int")
    if kind is None:
        raise ConfigError(f"unknown column type {name!r}; use one of {', '.join(CSV_TYPES)}")
    return kind


@dataclass(slots=True)
class _Guess:
    """What the first pass learned of one CSV column's values."""

    values: int = 0
    ints: int = 0
    floats: int = 0
    bools: int = 0
    big: bool = False

    def add(self, text: pa.Array) -> None:
        present = pc.drop_null(text)
        if not len(present):
            return
        self.values += len(present)
        ints = pc.match_substring_regex(present, _INT)
        self.ints += pc.sum(ints).as_py() or 0
        lengths = pc.utf8_length(pc.filter(present, ints))
        if len(lengths) and (pc.max(lengths).as_py() or 0) > _INT64_DIGITS:
            self.big = True
        numbers = pc.or_(
            pc.and_(
                pc.match_substring_regex(present, _FLOAT),
                pc.match_substring_regex(present, r"[0-9]"),
            ),
            pc.match_substring_regex(present, _INFINITY),
        )
        self.floats += pc.sum(numbers).as_py() or 0
        self.bools += pc.sum(pc.match_substring_regex(present, _BOOL)).as_py() or 0

    def decide(self) -> str:
        if not self.values:
            return "text"
        if self.ints == self.values:
            return "bigint" if self.big else "int"
        if self.floats == self.values:
            return "float"
        if self.bools == self.values:
            return "bool"
        return "text"


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
            raise ConfigError(f"na_values takes a list of strings, e.g. na_values=[{na_values!r}]")
        if encoding is not None:
            import codecs

            try:
                codecs.lookup(encoding)
            except LookupError:
                raise ConfigError(f"unknown encoding {encoding!r}, e.g. utf-8 or latin-1") from None
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


def _read_csv(file: Path, csv: CsvOptions, **options: Any) -> Any:
    """``pd.read_csv`` with every field as text and only ``csv.na_values`` missing."""
    sep = csv.sep if csv.sep is not None else ("\t" if file.suffix.lower() == ".tsv" else ",")
    return pd.read_csv(
        file,
        sep=sep,
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
            f"{file}, line {line}: not valid {csv.encoding} text ({error.reason}); pass the "
            "file's encoding (encoding=..., --encoding), e.g. latin-1"
        )
    if isinstance(error, pd.errors.EmptyDataError):
        return ConfigError(f"{file}: empty file; a CSV input needs at least a header line")
    return ConfigError(f"{file}: cannot be read as CSV ({error})".replace("\n", " "))


def _csv_columns(files: Sequence[Path], csv: CsvOptions) -> pd.Index:
    """The header the CSV files share; :class:`ConfigError` if they differ or cannot be read."""
    first: pd.Index | None = None
    for file in files:
        try:
            columns: pd.Index = _read_csv(file, csv, nrows=0).columns
        except (ValueError, pd.errors.ParserError) as error:
            raise _csv_error(file, csv, error) from None
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
            f"dtype names missing column(s) {', '.join(unknown)}; the columns are: "
            f"{', '.join(map(str, first))}"
        )
    return first


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
                encoded = encoded_columns(parquet.schema_arrow)
                for batch in parquet.iter_batches(batch_size=batch_rows):
                    # Integers with nulls stay exact Python ints rather than become floats.
                    yield restore(batch.to_pandas(integer_object_nulls=True), encoded)

    # --- CSV -----------------------------------------------------------------------------

    def _csv_scan(self, text_columns: set[str]) -> int:
        """The first pass: decide each column's type, count rows, find unreadable places."""
        guesses = {str(c): _Guess() for c in self.columns}
        asked = dict(self.csv.dtype)
        rows = 0
        for file in self.files:
            try:
                with _read_csv(file, self.csv, chunksize=_SCAN_ROWS) as reader:
                    for chunk in reader:
                        for name, guess in guesses.items():
                            if name in asked:
                                _convert(chunk[name], asked[name], column=name, at=rows)
                            elif name not in text_columns:
                                guess.add(pa.array(chunk[name], pa.string(), from_pandas=True))
                        rows += len(chunk)
            except (ValueError, pd.errors.ParserError) as error:
                if isinstance(error, ConfigError):
                    raise
                raise _csv_error(file, self.csv, error) from None
        for name, guess in guesses.items():
            self.types[name] = asked.get(name) or (
                "text" if name in text_columns else guess.decide()
            )
        return rows

    def _csv_frames(self, batch_rows: int) -> Iterator[pd.DataFrame]:
        for file in self.files:
            with _read_csv(file, self.csv, chunksize=batch_rows) as reader:
                for chunk in reader:
                    for name in chunk.columns:
                        kind = self.types.get(str(name), "text")
                        if kind != "text":
                            chunk[name] = _convert(chunk[name], kind, column=str(name), at=0)
                    yield chunk

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


def _convert(series: pd.Series, kind: str, *, column: str, at: int) -> pd.Series:
    """A CSV text column as ``kind``; :class:`ConfigError` naming the first value that is not."""
    text = pa.array(series, pa.string(), from_pandas=True)
    present = text.is_valid()
    try:
        if kind == "text":
            return series
        if kind == "int":
            array = pc.cast(text, pa.int64())
        elif kind == "bigint":
            return pd.Series(
                [None if v is None else int(v) for v in text.to_pylist()],
                index=series.index,
                dtype=object,
            )
        elif kind == "float":
            array = pc.cast(text, pa.float64())
        elif kind == "bool":
            lower = pc.utf8_lower(text)
            bad = pc.and_(present, pc.invert(pc.is_in(lower, pa.array(["true", "false"]))))
            if pc.any(bad).as_py():
                raise ValueError("not true or false")
            array = pc.equal(lower, "true")
        else:
            return pd.Series(pd.to_datetime(series, format="ISO8601"), index=series.index)
    except (pa.ArrowInvalid, ValueError, TypeError, OverflowError) as error:
        first = _first_bad(series, kind)
        where = f" (row {at + first[0] + 1})" if first else ""
        value = f" {first[1]!r}" if first else ""
        raise ConfigError(
            f"column {column!r} was asked to be {kind}, but value{value}{where} is not: {error}"
        ) from None
    return pd.Series(pd.arrays.ArrowExtensionArray(array), index=series.index)


def _first_bad(series: pd.Series, kind: str) -> tuple[int, str] | None:
    for position, value in enumerate(series.tolist()):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        try:
            _convert(pd.Series([value]), kind, column="", at=0)
        except ConfigError:
            return position, value
    return None


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


def key_frames(
    frames: Iterator[pd.DataFrame], columns: Sequence[Hashable]
) -> Iterator[pd.DataFrame]:
    """Only the ``row_key`` columns of each frame (for the uniqueness check)."""
    for frame in frames:
        yield frame[list(columns)]
