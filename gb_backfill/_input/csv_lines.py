"""How a CSV file is read: its options, every field as text, and each line fit to the header.

pandas reads each line into the header's fields and the extra ones (:func:`csv_chunks`); a line
with more fields than the header is read by the header when every extra field is empty, and is
otherwise its row's ``csv_extra_fields`` failure; a line with fewer is ``csv_missing_fields``
(:func:`mark_shapes`). pandas cannot tell a missing field from an empty one, so when some line
may be short, Python's ``csv`` module counts each line's fields (:func:`count_fields`). See
:mod:`gb_backfill._input.reader`.
"""

from __future__ import annotations

import csv as csv_module
import io
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import ConfigError, Written
from .._vocabulary import FailureCode
from .csv_types import canonical_type
from .problems import ReadMarks
from .stores import SourceFile, StoreFile

__all__: list[str] = []


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvOptions:
    """How CSV files are read (the keywords of ``send_path`` and the CLI's flags)."""

    sep: str | None = None
    encoding: str = "utf-8"
    na_values: tuple[str, ...] = ("",)
    dtype: Mapping[str, str] = field(default_factory=dict)
    #: how the numbers of the columns ``dtype`` reads as int or float are written for people
    #: (``1,299.50``: ``thousands=","``; ``1.299,50``: also ``decimal=","``)
    thousands: str | None = None
    decimal: str = "."
    #: whether ``encoding`` was given (not the default): a Parquet input refuses it
    encoding_given: bool = False

    def marks_numbers(self, name: str) -> bool:
        """True when column ``name``'s numbers are written with a thousands separator or a
        decimal mark other than a point (``dtype`` reads it as a number)."""
        marked = self.thousands is not None or self.decimal != "."
        return marked and self.dtype.get(name) in ("int", "float")

    def missing(self, text: pa.Array) -> pa.Array:
        """``text`` with the values ``na_values`` names (an empty one too) as nulls: a CSV
        reader's missing values, for text read from Parquet."""
        return pc.if_else(pc.is_in(text, pa.array(self.na_values, pa.string())), None, text)

    def plain_numbers(self, name: str, text: pa.Array) -> pa.Array:
        """``text`` of column ``name`` as the number rules read it: the thousands separator
        dropped and the decimal mark a point, for a column ``dtype`` reads as a number."""
        if not self.marks_numbers(name):
            return text
        if self.thousands is not None:
            # Only where the marks group thousands (1,299.50, not 99,16): a number the mark
            # does not fit is left as written, to fail its conversion, not change its value.
            mark, point = re.escape(self.thousands), re.escape(self.decimal)
            grouped = rf"^\s*[-+]?\d{{1,3}}({mark}\d{{3}})+({point}\d*)?\s*$"
            fits = pc.or_(pc.match_substring_regex(text, grouped),
                          pc.invert(pc.match_substring(text, self.thousands)))  # fmt: skip
            text = pc.if_else(fits, pc.replace_substring(text, self.thousands, ""), text)
        if self.decimal != ".":
            text = pc.replace_substring(text, self.decimal, ".")
        return text

    @classmethod
    def make(
        cls,
        *,
        sep: str | None = None,
        encoding: str | None = None,
        na_values: Iterable[str] | None = None,
        dtype: Mapping[Hashable, str] | None = None,
        thousands: str | None = None,
        decimal: str | None = None,
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
        _check_number_marks(thousands, decimal, types)
        missing = ("", *na_values) if na_values is not None else ("",)
        return cls(
            sep=sep,
            encoding=encoding or "utf-8",
            encoding_given=encoding is not None,
            na_values=tuple(dict.fromkeys(missing)),
            dtype=types,
            thousands=thousands,
            decimal=decimal or ".",
        )


def _check_number_marks(
    thousands: str | None, decimal: str | None, types: Mapping[str, str]
) -> None:
    """``thousands=`` and ``decimal=``: one character each, not a digit, sign or letter, not the
    same, and only with a column ``dtype=`` reads as a number (they apply to no other)."""
    for name, mark in (("thousands", thousands), ("decimal", decimal)):
        if mark is None:
            continue
        if not isinstance(mark, str) or len(mark) != 1 or mark.isalnum() or mark in "+-":
            raise ConfigError(
                "{" + name + "=} takes one character that is not a digit, a letter or a sign "
                "(not {value!r}), e.g. {" + name + "=*}",
                option=name, value=mark, **{name: ","},
            )  # fmt: skip
    if thousands is not None and thousands == (decimal or "."):
        raise ConfigError(
            "{thousands=} and the decimal mark are both {mark!r}: a number could be read two "
            "ways; give {decimal=} the other one",
            option="thousands", mark=thousands,
        )  # fmt: skip
    if (thousands is not None or decimal not in (None, ".")) and not any(
        kind in ("int", "float") for kind in types.values()
    ):
        given = "thousands" if thousands is not None else "decimal"
        raise ConfigError(
            "{" + given + "=} applies to the columns read as numbers with {dtype=*}: name "
            "each column that holds numbers written for people",
            option=given, dtype=Written("{'COL': 'float'}", "COL=float"),
        )  # fmt: skip


# pandas' words when a line has more fields than the names it reads with.
_TOO_WIDE = re.compile(r"Expected \d+ fields in line \d+, saw (\d+)")
# Names for fields beyond the header while a chunk is read; never kept.
_EXTRA = "\x00extra-field-"


def separator(file: SourceFile, csv: CsvOptions) -> str:
    return csv.sep if csv.sep is not None else ("\t" if file.suffix.lower() == ".tsv" else ",")


def read_csv_text(file: SourceFile, csv: CsvOptions, **options: Any) -> Any:
    """``pd.read_csv`` with every field as text and only ``csv.na_values`` missing; a stored
    file (:mod:`gb_backfill._input.stores`) is read from its stream, which closes with the
    reader (``iterator=True``) or at once."""
    if isinstance(file, StoreFile):
        stream = file.open("rb")
        try:
            read = _read_csv_text(stream, file, csv, **options)
        except BaseException:
            stream.close()
            raise
        if not options.get("iterator"):
            stream.close()
            return read
        return _Closing(read, stream)
    return _read_csv_text(file, file, csv, **options)


class _Closing:
    """A ``read_csv`` iterator that closes its stream when it is closed."""

    def __init__(self, reader: Any, stream: Any) -> None:
        self.reader, self.stream = reader, stream

    def get_chunk(self, size: int) -> pd.DataFrame:
        return self.reader.get_chunk(size)  # type: ignore[no-any-return]

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()
        self.stream.close()


def _read_csv_text(source: Any, file: SourceFile, csv: CsvOptions, **options: Any) -> Any:
    return pd.read_csv(
        source,
        sep=separator(file, csv),
        encoding=csv.encoding,
        dtype=str,
        keep_default_na=False,
        na_values=list(csv.na_values),
        **options,
    )


def csv_error(file: SourceFile, csv: CsvOptions, error: Exception) -> ConfigError:
    if isinstance(error, UnicodeDecodeError):
        line, likely = _undecodable_line(file, csv.encoding)
        excel = " (as Excel writes on Windows)" if likely == "cp1252" else ""
        return ConfigError(
            "{file}, line {line}: not valid {codec} text ({reason}); pass the file's "
            "encoding ({encoding=...|ENCODING}), likely {likely}{excel}",
            option="encoding", file=file, line=line, codec=csv.encoding, reason=error.reason,
            likely=likely, excel=excel,
        )  # fmt: skip
    if isinstance(error, pd.errors.EmptyDataError):
        return ConfigError(f"{file}: empty file; a CSV input needs at least a header line")
    return ConfigError(f"{file}: cannot be read as CSV ({error})".replace("\n", " "))


def csv_columns(files: Sequence[SourceFile], csv: CsvOptions) -> pd.Index:
    """The header the CSV files share; :class:`ConfigError` if they differ or cannot be read."""
    first: pd.Index | None = None
    for file in files:
        try:
            columns: pd.Index = read_csv_text(file, csv, nrows=0).columns
            # pandas renames a name given twice (amount, amount.1): read the names as written.
            written = read_csv_text(file, csv, header=None, nrows=1).iloc[0].tolist()
        except (ValueError, pd.errors.ParserError) as error:
            raise csv_error(file, csv, error) from None
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
    check_asked_columns(first, csv)
    return first


def check_asked_columns(columns: pd.Index, csv: CsvOptions) -> None:
    """:class:`ConfigError` when ``dtype=`` names a column the input (CSV or Parquet) lacks."""
    unknown = [c for c in csv.dtype if c not in {str(n) for n in columns}]
    if unknown:
        raise ConfigError(
            "{dtype=} names missing column(s) {missing}; the columns are: {columns}",
            option="dtype",
            missing=", ".join(unknown),
            columns=", ".join(map(str, columns)),
        )


@dataclass(frozen=True, slots=True)
class Shape:
    """How one CSV file's lines fit its header, as the first pass found it."""

    width: int  #: the header's fields
    named: int  #: up to its last named one: a trailing separator after it names no column
    fields: int  #: fields read per line: the widest line's, at least the header's
    short_rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    short_fields: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    records: int | None = None  #: data lines the count found (None: not counted)

    @classmethod
    def of(cls, columns: pd.Index, fields: int = 0) -> Shape:
        names = [str(c) for c in columns]
        named = len(names)
        while named and names[named - 1] == f"Unnamed: {named - 1}":
            named -= 1
        return cls(width=len(names), named=named, fields=max(fields, len(names)))


class TooWide(Exception):
    """A line has more fields than the chunk is read with: ``fields`` of them."""

    def __init__(self, fields: int) -> None:
        super().__init__(fields)
        self.fields = fields


def _is_blank(fields: list[str]) -> bool:
    # pandas skips lines that are empty or only spaces and tabs.
    return not fields or (len(fields) == 1 and not fields[0].strip(" \t"))


def count_fields(file: SourceFile, csv: CsvOptions, shape: Shape) -> Shape:
    """Count every line's fields with Python's csv module, which, unlike pandas, tells a
    missing field from an empty one: the widest line, and the rows with too few fields."""
    rows: list[int] = []
    counts: list[int] = []
    widest = shape.fields
    record = -1  # the header is record -1, the first row record 0
    try:
        with file.open(encoding=csv.encoding, newline="") as handle:
            for fields in csv_module.reader(handle, delimiter=separator(file, csv)):
                if _is_blank(fields):
                    continue
                if record >= 0 and len(fields) < shape.named:
                    rows.append(record)
                    counts.append(len(fields))
                widest = max(widest, len(fields))
                record += 1
    except csv_module.Error as error:
        raise ConfigError(f"{file}: cannot be read as CSV ({error})") from None
    return Shape(
        width=shape.width,
        named=shape.named,
        fields=widest,
        short_rows=np.array(rows, dtype=np.int64),
        short_fields=np.array(counts, dtype=np.int64),
        records=max(record, 0),
    )


def csv_chunks(
    file: SourceFile, csv: CsvOptions, shape: Shape, rows: int
) -> Iterator[pd.DataFrame]:
    """The file's rows, ``rows`` at a time, each line read into ``shape.fields`` columns: the
    header's, then the extra ones. No index is inferred, so no value moves to another column."""
    names = [f"{_EXTRA}{n}" for n in range(shape.fields)]
    try:
        # The header line is read as a row and dropped: with header=0, pandas would expect
        # every line to have the header's width, whatever the names.
        with read_csv_text(
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
            raise TooWide(int(wide.group(1))) from None
        raise csv_error(file, csv, error) from None
    except ValueError as error:
        raise csv_error(file, csv, error) from None


def _line_text(values: Iterable[object], sep: str) -> str:
    """A line's fields as CSV text again (missing ones empty), for messages."""
    out = io.StringIO()
    fields = [v if isinstance(v, str) else "" for v in values]  # fields are text or missing
    csv_module.writer(out, delimiter=sep, lineterminator="").writerow(fields)
    return out.getvalue()


def mark_shapes(
    chunk: pd.DataFrame, shape: Shape, start: int, file: SourceFile, sep: str, marks: ReadMarks
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


def _undecodable_line(file: SourceFile, encoding: str) -> tuple[int, str]:
    """The number of the first line of ``file`` that does not decode (1-based), and the
    encoding to suggest: cp1252 (what Excel writes on Windows in Western Europe and the
    Americas) when that line reads in it, else latin-1, which reads any byte."""
    with file.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                try:
                    line.decode("cp1252")
                except UnicodeDecodeError:
                    return number, "latin-1"
                return number, "cp1252"
    return 0, "cp1252"
