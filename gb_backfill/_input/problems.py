"""The problems reading finds, as data on their rows, and a failures file's text read again.

A reader marks each row's problems in the reserved :data:`~gb_backfill._rows.rules.READ_PROBLEMS`
column (:class:`ReadMarks`), which :func:`~gb_backfill._rows.rules.check_frame` turns into
failures. A failures file keeps as text the values a CSV reader could not convert;
:func:`retyped` converts them again by the type they were read as.
"""

from __future__ import annotations

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


def retyped(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (from a failures file) with the text of values a CSV reader could not convert
    converted again by the type it was read as (see
    :func:`~gb_backfill._store.stored_values.as_text_columns`); a value that still does not
    convert is its row's ``dtype_unconvertible`` failure again. Columns the user converted
    already (no text left) stay as they are."""
    as_text = as_text_columns(frame)
    if not as_text:
        return frame
    frame = frame.copy()
    marks = ReadMarks()
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


def mark_values(text: pd.Series, bad: list[BadValues], marks: ReadMarks) -> None:
    for values in bad:
        for position in np.flatnonzero(values.mask).tolist():
            value = str(text.iloc[position])
            message = values.message.replace("{value}", repr(value))
            marks.add(position, values.code, str(text.name), message, value)
