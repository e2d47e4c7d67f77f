"""Stable row keys: the ledger's way to know a row it has seen before.

By default a row's key is a function of the row alone: a 128-bit hash of the request body it
would be sent as (customer id, event name, metadata, email and mobile, in the canonical text of
:mod:`._payloads`, which depends on no batch, chunk, column order or neighbour) and, for rows
whose bodies are identical, which occurrence of that body it is in the input (the first, the
second, ...). Sorting, filtering, adding or dropping unsent columns, another ``batch_rows`` or
fixing other rows never changes a key.

The failures file carries each row's key in ``gb_key`` as ``<content hash>/<occurrence>``; a
row sent again from it keeps that key while its content is unchanged, so the third of three
identical rows stays the third even when it is alone in the file. A row fixed by hand is a new
row. With ``row_key=[columns]`` the key is the hash of those columns alone, which must be
unique.

Occurrences are counted in a private temporary SQLite database on disk, so memory stays flat
however many rows the input has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._errors import ConfigError, LedgerError
from ._values import json_values

__all__: list[str] = []

Hashes = npt.NDArray[np.uint64]  # shape (rows, 2)

#: How the ledger records this key scheme; a ledger written another way is refused.
CONTENT_SCHEME = "content-v2"

_SALTS = ("gb-backfill-row1", "gb-backfill-row2")  # pandas wants 16-character hash keys
_MIX = np.uint64(0x100000001B3)
_QUERY_CHUNK = 10_000


def _hash_text(values: npt.NDArray[np.object_]) -> Hashes:
    return np.stack([pd.util.hash_array(values, hash_key=salt) for salt in _SALTS], axis=1)


def _combine(columns: Iterable[Hashes], rows: int) -> Hashes:
    combined = np.zeros((rows, 2), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for hashes in columns:
            combined = combined * _MIX ^ hashes
    return combined


def as_keys(hashes: Hashes) -> list[bytes]:
    raw = np.ascontiguousarray(hashes).tobytes()
    return [raw[i : i + 16] for i in range(0, len(raw), 16)]


class ContentKeys:
    """Keys from request bodies, counting identical bodies across the whole input.

    Make one per run and feed it the input's valid rows in input order; :meth:`close` it at
    the end. ``carried`` are ``gb_key`` values from a failures file (or None).

    Counting needs every body hash seen so far. They live in a private temporary SQLite file
    on disk, and a fixed-size Bloom filter in memory says which hashes were surely never seen,
    so that only the rare maybe-seen ones are looked up: memory stays flat, and time is that of
    one sorted insert per row.
    """

    _BLOOM_BITS = 1 << 27  # 16 MB: under 1% false "maybe" at ten million distinct rows

    def __init__(self) -> None:
        # An empty name makes SQLite keep a private temporary database on disk, deleted on close.
        self._seen = sqlite3.connect("", isolation_level=None)
        self._seen.execute("PRAGMA cache_size=-8000")  # 8 MB of pages, whatever the input's size
        self._seen.execute("CREATE TABLE seen (hash INTEGER PRIMARY KEY, count INTEGER NOT NULL)")
        self._bloom = np.zeros(self._BLOOM_BITS // 64, dtype=np.uint64)

    def close(self) -> None:
        self._seen.close()

    def keys(self, bodies: Sequence[bytes], carried: Sequence[object] | None = None) -> RowKeys:
        """The keys of ``bodies``; ``carried[i]`` is row i's ``gb_key`` from a failures file."""
        size = len(bodies)
        content = _hash_text(np.asarray(bodies, dtype=object)) if size else _no_hashes()
        occurrence = np.zeros(size, dtype=np.int64)
        fresh = np.ones(size, dtype=bool)
        if carried is not None:
            for position, text in enumerate(carried):
                found = _parse_carried(text)
                if found is not None and found[0] == content[position].tobytes().hex():
                    occurrence[position] = found[1]
                    fresh[position] = False
        if fresh.any():
            occurrence[fresh] = self._count(content[fresh])
        keys = np.where(
            (occurrence == 0)[:, None], content, content ^ _occurrence_hashes(occurrence)
        )
        return RowKeys(as_keys(keys), content, occurrence)

    def _bloom_positions(
        self, hashes: Hashes
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        bits = np.uint64(self._BLOOM_BITS - 1)
        with np.errstate(over="ignore"):
            spots = np.stack(
                [(hashes[:, 0] + np.uint64(i) * hashes[:, 1]) & bits for i in range(3)], axis=1
            )
        words = (spots >> np.uint64(6)).astype(np.int64)
        masks = np.left_shift(np.uint64(1), spots & np.uint64(63))
        return words, masks

    def _count(self, hashes: Hashes) -> npt.NDArray[np.int64]:
        """How many equal bodies came before each one, in this call and in earlier calls.

        Rows are matched on 64 bits: a collision (about 1 in 10**7 for ten million rows) only
        numbers one row's occurrence differently; its key still hashes its own content.
        """
        size = len(hashes)
        ids = hashes[:, 0].view(np.int64)
        order = np.argsort(ids, kind="stable")
        ordered = ids[order]
        starts = np.r_[True, ordered[1:] != ordered[:-1]]
        first = np.maximum.accumulate(np.where(starts, np.arange(size), 0))
        local = np.empty(size, dtype=np.int64)
        local[order] = np.arange(size) - first
        distinct = ordered[starts]
        counts = np.diff(np.r_[np.flatnonzero(starts), size])
        words, masks = self._bloom_positions(hashes[order][starts])
        maybe = ((self._bloom[words] & masks) != 0).all(axis=1)
        earlier = np.zeros(len(distinct), dtype=np.int64)
        if maybe.any():
            known: dict[int, int] = {}
            candidates = distinct[maybe].tolist()
            for start in range(0, len(candidates), _QUERY_CHUNK):
                chunk = candidates[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT hash, count FROM seen WHERE hash IN ({marks})"
                known.update(self._seen.execute(query, chunk).fetchall())
            earlier[maybe] = [known.get(h, 0) for h in candidates]
        np.bitwise_or.at(self._bloom, words.ravel(), masks.ravel())
        seen_before = earlier > 0
        self._seen.execute("BEGIN")
        self._seen.executemany(
            "INSERT INTO seen (hash, count) VALUES (?, ?)",
            zip(distinct[~seen_before].tolist(), counts[~seen_before].tolist(), strict=True),
        )
        self._seen.executemany(
            "UPDATE seen SET count = count + ? WHERE hash = ?",
            zip(counts[seen_before].tolist(), distinct[seen_before].tolist(), strict=True),
        )
        self._seen.execute("COMMIT")
        return local + earlier[np.searchsorted(distinct, ids)]


@dataclass(frozen=True, slots=True)
class RowKeys:
    """The keys of a batch of rows: ledger keys, and what ``gb_key`` shows, made on demand."""

    keys: list[bytes]
    content: Hashes
    occurrence: npt.NDArray[np.int64]

    def text(self, index: int) -> str:
        """Row ``index``'s ``gb_key``: ``<content hash>/<occurrence>``."""
        return f"{self.content[index].tobytes().hex()}/{self.occurrence[index]}"


def _no_hashes() -> Hashes:
    return np.zeros((0, 2), dtype=np.uint64)


def _occurrence_hashes(occurrence: npt.NDArray[np.int64]) -> Hashes:
    return np.stack([pd.util.hash_array(occurrence, hash_key=salt) for salt in _SALTS], axis=1)


def _parse_carried(text: object) -> tuple[str, int] | None:
    """``(content hex, occurrence)`` from a ``gb_key`` value; None when there is none."""
    if not isinstance(text, str):
        return None
    content, _, occurrence = text.partition("/")
    if len(content) != 32 or not occurrence.isdigit():
        return None
    return content, int(occurrence)


def natural_hashes(chunk: pd.DataFrame, key_columns: Sequence[Hashable]) -> Hashes:
    """Keys from the user's own key columns, each value in its canonical JSON text."""

    def column(series: pd.Series) -> Hashes:
        text = pd.Series(json_values(series).to_numpy(zero_copy_only=False), dtype=object)
        return _hash_text(text.fillna("\x00missing").to_numpy())

    return _combine((column(chunk[c]) for c in key_columns), len(chunk))


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
            "rows by their content"
        )
