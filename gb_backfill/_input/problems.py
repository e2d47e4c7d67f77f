"""The problems reading finds, as data on their rows, and a failures file's text read again.

A reader marks each row's problems in the reserved :data:`~gb_backfill._rows.rules.READ_PROBLEMS`
column (:class:`ReadMarks`), which :func:`~gb_backfill._rows.rules.check_frame` turns into
failures. A failures file keeps as text the values a CSV reader could not convert;
:func:`retyped` converts them again by the type they were read as.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .._rows.mapping import READ_PROBLEMS, read_problems_text
from .._store.stored_values import as_text_columns
from .._vocabulary import FailureCode
from .csv_types import BadValues, ColumnScan, convert

__all__: list[str] = []


class ReadMarks:
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


#: the types :func:`~gb_backfill._input.csv_types.convert` reads text as, and the ``dtype=`` name
#: each refines
_CONVERTED = {
    "int": "int", "bigint": "int", "float": "float", "decimal": "float", "bool": "bool",
    "datetime": "datetime",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Asked:
    """How ``dtype=`` reads a column of an input that is not CSV (Parquet): the type the first
    pass decided (:meth:`ColumnScan.decide`), that pass's scan, and the text as the converters
    read it (``na_values`` missing, numbers without thousands separators)."""

    kind: str
    scan: ColumnScan
    reread: Callable[[pa.Array], pa.Array]


def retyped(frame: pd.DataFrame, asked: Mapping[str, Asked] | None = None) -> pd.DataFrame:
    """``frame`` with its text converted as a CSV reader converts it: the text of values a CSV
    reader could not convert, from a failures file, by the type it was read as (see
    :func:`~gb_backfill._store.stored_values.as_text_columns`), and the text of the columns
    ``asked`` names (``dtype=`` on Parquet), which it overrides. A value that does not convert
    is its row's ``dtype_unconvertible`` failure (again). Columns with no text (typed already,
    or converted by the user) stay as they are."""
    kinds = {**as_text_columns(frame), **{n: a.kind for n, a in (asked or {}).items()}}
    if not any(kind in _CONVERTED for kind in kinds.values()):
        return frame
    frame = frame.copy()
    marks = ReadMarks()
    for name, kind in kinds.items():
        if kind not in _CONVERTED:
            continue
        column = next(c for c in frame.columns if str(c) == name)
        how = (asked or {}).get(name)
        values = frame[column]
        text = np.array([isinstance(v, str) for v in values.tolist()], dtype=bool)
        if not text.any():
            continue
        if how is not None and (text | values.isna().to_numpy()).all():
            text[:] = True  # a text column, missing values and all: converted whole, as a CSV's
        cells = pd.Series(values[text].tolist(), name=column, dtype=object)
        read = pa.array(cells, pa.string(), from_pandas=True)
        if how is None:
            scan = ColumnScan()
            scan.add(read, _CONVERTED[kind])
        else:
            read, scan = how.reread(read), how.scan
        converted, bad = convert(pd.Series(read.to_pandas(), name=column), kind, scan, asked=True)
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


def mark_values(text: pd.Series, bad: list[BadValues], marks: ReadMarks) -> None:
    for values in bad:
        for position in np.flatnonzero(values.mask).tolist():
            value = str(text.iloc[position])
            message = values.message.replace("{value}", repr(value))
            marks.add(position, values.code, str(text.name), message, value)
