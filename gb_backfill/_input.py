"""Reading CSV and Parquet input a bounded batch at a time, never the whole file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ._errors import ConfigError

__all__: list[str] = []

_PARQUET = {".parquet", ".pq", ".parq"}
_CSV = {".csv", ".txt", ".tsv"}


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if path.is_dir() or any(s in _PARQUET for s in suffixes):
        return "parquet"
    if any(s in _CSV for s in suffixes):
        return "csv"
    raise ConfigError(f"{path}: unknown input format; use a .csv or .parquet file")


def _checked(path: str | os.PathLike[str]) -> Path:
    found = Path(path)
    if not found.exists():
        raise ConfigError(f"{found}: no such file")
    return found


def iter_frames(path: str | os.PathLike[str], *, batch_rows: int) -> Iterator[pd.DataFrame]:
    """Yield the file as DataFrames of at most ``batch_rows`` rows, never reading it whole.

    Each frame's index continues the previous one, so index labels are positions in the file.
    """
    found = _checked(path)
    start = 0
    if _kind(found) == "parquet":
        import pyarrow.parquet as pq

        files = sorted(found.glob("*.parquet")) if found.is_dir() else [found]
        for file in files:
            # pre_buffer would keep every column chunk read so far: memory grows with the file.
            with pq.ParquetFile(file, pre_buffer=False) as parquet:
                for batch in parquet.iter_batches(batch_size=batch_rows):
                    frame = batch.to_pandas()
                    frame.index = pd.RangeIndex(start, start + len(frame))
                    start += len(frame)
                    yield frame
        return
    sep = "\t" if found.suffix.lower() == ".tsv" else ","
    with pd.read_csv(found, sep=sep, chunksize=batch_rows) as reader:
        for frame in reader:
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame


def read_columns(path: str | os.PathLike[str]) -> pd.Index:
    """The file's column names, reading no rows."""
    found = _checked(path)
    if _kind(found) == "parquet":
        import pyarrow.parquet as pq

        files = sorted(found.glob("*.parquet")) if found.is_dir() else [found]
        names: list[str] = pq.read_schema(files[0]).names if files else []
        return pd.Index([n for n in names if not n.startswith("__index_level_")])
    sep = "\t" if found.suffix.lower() == ".tsv" else ","
    columns: pd.Index = pd.read_csv(found, sep=sep, nrows=0).columns
    return columns


def count_rows(path: str | os.PathLike[str]) -> int:
    """The number of rows, for the progress bar: exact for Parquet (its metadata), and for CSV
    the number of lines after the header (a value with a quoted line break counts twice)."""
    found = _checked(path)
    if _kind(found) == "parquet":
        import pyarrow.parquet as pq

        files = sorted(found.glob("*.parquet")) if found.is_dir() else [found]
        return sum(int(pq.ParquetFile(f).metadata.num_rows) for f in files)
    lines, last = 0, b"\n"
    with found.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)
