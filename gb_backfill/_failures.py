"""The failures file: every row that was not sent, with its original columns and the reason.

The file is Parquet with the input's own columns plus a fixed set of ``gb_`` columns. Those are
never metadata, so the file can be fixed and sent again as it is.

While a run goes on, failures are written to complete Parquet parts in ``<path>.parts/``, so a
crash (even SIGKILL) leaves every failure found so far readable with ``pd.read_parquet``. When
the run ends, normally, by error or by Ctrl-C, the parts are merged into ``<path>``.
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

__all__ = ["FAILURE_STATUS_COLUMNS"]

#: The columns gb-backfill adds to every failure row.
FAILURE_STATUS_COLUMNS = (
    "gb_status",
    "gb_error_code",
    "gb_error_message",
    "gb_http_status",
    "gb_attempts",
    "gb_row",
)

_PART_ROWS = 10_000


def failure_rows(
    df: pd.DataFrame,
    positions: npt.NDArray[np.int64] | Sequence[int],
    *,
    status: Sequence[str] | str,
    code: Sequence[str | None] | str | None,
    message: Sequence[str | None] | str | None,
    http_status: Sequence[int | None] | None = None,
    attempts: Sequence[int] | int = 0,
    row_offset: int = 0,
) -> pd.DataFrame:
    """The rows of ``df`` at ``positions`` with the ``gb_`` status columns filled in.

    ``row_offset`` is the position of ``df``'s first row in the whole input (for chunked input).
    Old ``gb_`` status columns (from a failures file sent again) are replaced, not duplicated.
    """
    positions = np.asarray(positions, dtype=np.int64)
    rows = df.iloc[positions].drop(columns=list(FAILURE_STATUS_COLUMNS), errors="ignore")
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
    return rows


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn object columns Arrow cannot store (mixed types) into text, so writing never fails."""
    safe = frame.copy()
    safe.columns = [str(c) for c in safe.columns]
    for name in safe.columns:
        if safe[name].dtype == object:
            try:
                pa.array(safe[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                safe[name] = safe[name].map(lambda v: v if v is None else repr(v)).astype("string")
    return safe


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``frame`` to ``path`` atomically: a reader sees the old file or the new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot: readers of a parts directory skip a part a crash left half written.
    scratch = target.with_name(f".{target.name}.tmp")
    _parquet_safe(frame).to_parquet(scratch, index=False)
    os.replace(scratch, target)


class FailureWriter:
    """Collects failure rows and keeps them on disk as the run goes.

    ``add`` buffers rows and writes a complete Parquet part every few thousand rows (and on
    ``flush``); ``close`` merges the parts into the final file, in input order, and returns
    them as one frame. Without a path, the rows are only kept in memory.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else Path(path)
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._parts = 0
        if self.path is not None:
            self._parts_dir = self.path.with_name(self.path.name + ".parts")
            # Parts left by a run that was killed belong to that run; this run accounts anew.
            shutil.rmtree(self._parts_dir, ignore_errors=True)

    def add(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        self._buffer.append(frame)
        self._buffered += len(frame)
        if self.path is not None and self._buffered >= _PART_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as one complete part file."""
        if self.path is None or not self._buffer:
            return
        self._parts_dir.mkdir(parents=True, exist_ok=True)
        part = self._parts_dir / f"part-{self._parts:06d}.parquet"
        write_parquet(pd.concat(self._buffer, ignore_index=True), part)
        self._parts += 1
        self._buffer.clear()
        self._buffered = 0

    def close(self, columns: Sequence[object] = ()) -> pd.DataFrame:
        """Finish the file and return every failure row as one frame."""
        if self.path is None:
            frames = self._buffer
        else:
            self.flush()
            parts = sorted(self._parts_dir.glob("part-*.parquet")) if self._parts else []
            frames = [pd.read_parquet(part) for part in parts]
        if frames:
            merged = pd.concat(frames, ignore_index=True)
            merged = merged.sort_values("gb_row", kind="stable", ignore_index=True)
        else:
            merged = failure_rows(
                pd.DataFrame(columns=list(columns)), [], status=[], code=[], message=[], attempts=[]
            )
        if self.path is not None:
            write_parquet(merged, self.path)
            shutil.rmtree(self._parts_dir, ignore_errors=True)
        return merged
