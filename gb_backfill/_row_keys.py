"""Stable row keys: the ledger's way to know a row it has seen before.

By default a row's key is a 128-bit hash of its content (every column but the ``gb_`` status
columns, each value in the canonical text it would be sent as, so ``1`` and ``1.0`` agree) and
of its position in the input (its ``gb_row`` when it comes from a failures file). The same input
gives the same keys on every run, and two identical rows still get two keys. With
``row_key=[columns]`` the key is the hash of those columns alone, which must be unique.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._errors import ConfigError, LedgerError
from ._failures import FAILURE_STATUS_COLUMNS
from ._values import json_values

__all__: list[str] = []

Hashes = npt.NDArray[np.uint64]  # shape (rows, 2)

_SALTS = ("gb-backfill-row1", "gb-backfill-row2")  # pandas wants 16-character hash keys
_MIX = np.uint64(0x100000001B3)


def _column_hashes(series: pd.Series) -> Hashes:
    text = pd.Series(json_values(series).to_numpy(zero_copy_only=False), dtype=object)
    text = text.fillna("\x00missing")
    return np.stack([pd.util.hash_array(text.to_numpy(), hash_key=salt) for salt in _SALTS], axis=1)


def _combine(columns: Iterable[Hashes], rows: int) -> Hashes:
    combined = np.zeros((rows, 2), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for hashes in columns:
            combined = combined * _MIX ^ hashes
    return combined


def content_columns(columns: Iterable[Hashable]) -> list[Hashable]:
    """The columns that make up a row's content: all but the gb_ status columns."""
    return [c for c in columns if c not in FAILURE_STATUS_COLUMNS]


def content_hashes(chunk: pd.DataFrame, positions: npt.NDArray[np.int64]) -> Hashes:
    """Default keys for ``chunk``; ``positions`` are the rows' positions in the whole input."""
    if "gb_row" in chunk.columns:
        earlier = pd.to_numeric(chunk["gb_row"], errors="coerce").to_numpy(dtype=float)
        positions = np.where(np.isnan(earlier), positions, earlier).astype(np.int64)
    place = pd.Series(positions, dtype=np.int64).to_numpy()
    position_hashes = np.stack(
        [pd.util.hash_array(place, hash_key=salt) for salt in _SALTS], axis=1
    )
    columns = (_column_hashes(chunk[c]) for c in content_columns(chunk.columns))
    return _combine([position_hashes, *columns], len(chunk))


def natural_hashes(chunk: pd.DataFrame, key_columns: Sequence[Hashable]) -> Hashes:
    """Keys from the user's own key columns."""
    return _combine((_column_hashes(chunk[c]) for c in key_columns), len(chunk))


def as_keys(hashes: Hashes) -> list[bytes]:
    raw = np.ascontiguousarray(hashes).tobytes()
    return [raw[i : i + 16] for i in range(0, len(raw), 16)]


def check_key_columns(columns: Iterable[Hashable], key_columns: Sequence[Hashable]) -> None:
    present = list(columns)
    missing = [c for c in key_columns if c not in present]
    if missing:
        raise ConfigError(
            f"row_key names missing column(s) {', '.join(map(str, missing))}; "
            f"the columns are: {', '.join(map(str, present))}"
        )


def check_unique(chunks: Iterable[pd.DataFrame], key_columns: Sequence[Hashable]) -> None:
    """Raise :class:`LedgerError` if ``key_columns`` do not identify every row."""
    parts = [natural_hashes(chunk, key_columns) for chunk in chunks]
    if not parts:
        return
    hashes = np.concatenate(parts)
    order = np.lexsort((hashes[:, 1], hashes[:, 0]))
    ordered = hashes[order]
    same = (ordered[1:] == ordered[:-1]).all(axis=1)
    if same.any():
        repeats = int(same.sum())
        first = int(order[int(np.flatnonzero(same)[0]) + 1])
        raise LedgerError(
            f"row_key={list(key_columns)} is not unique: {repeats:,} row(s) repeat a key "
            f"(first at row {first}); add columns to the key, or leave row_key out to key "
            "rows by their content and position"
        )
