"""Stable row keys: the ledger's way to know a row it has seen before.

By default a row's key is a function of the row alone: a 128-bit hash of the request body it
would be sent as (customer id, event name, metadata, email and mobile, in the canonical text of
:mod:`gb_backfill._rows.payloads`, which depends on no chunk, column order or neighbour) and,
for rows whose bodies are identical, which occurrence of that body it is in the input (the first,
the second, ...). Sorting, filtering, adding or dropping unsent columns, another ``batch_rows`` or
fixing other rows never changes a key.

The failures file carries each row's key in ``gb_key`` as ``<content hash>/<occurrence>``, and
a row that carries one keeps it, as written or edited: it is the same row, so the third of three
identical rows stays the third when it is alone in the file, and a row fixed by hand is still
the row it was (the ledger's word on that key decides what becomes of it: see
:mod:`gb_backfill._engine.fate`). An invalid row has no body, so its key hashes its cells instead
(:func:`identity_hashes`, with salts of its own, so it never meets a body's); a fixed copy of it
that carries that key is that row. With ``row_key=[columns]`` the key is the hash of those columns
alone, which must be unique, for valid and invalid rows alike. A valid order (see
:mod:`gb_backfill._rows.orders`) is keyed by its ``orderId`` alone, with salts of its own,
counted like a body (a second row with the same order id is its second occurrence): Gameball
knows an order by its id, so whatever else a re-run's row says, the same order id is the same
order.

Occurrences are counted with a fixed-size Bloom filter and sorted runs of hashes spilled to
temporary files, so memory stays flat however many rows the input has.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._errors import ConfigError, LedgerError
from .mapping import READ_PROBLEMS, ColumnMapping, metadata_key, unconverted_texts
from .values import json_values

__all__: list[str] = []

Hashes = npt.NDArray[np.uint64]  # shape (rows, 2)

#: How the ledger records this key scheme; a ledger written another way is refused.
CONTENT_SCHEME = "content-v2"

_SALTS = ("gb-backfill-row1", "gb-backfill-row2")  # pandas wants 16-character hash keys
_IDENTITY_SALTS = ("gb-backfill-inv1", "gb-backfill-inv2")
_ORDER_SALTS = ("gb-backfill-ord1", "gb-backfill-ord2")
_MIX = np.uint64(0x100000001B3)
_QUERY_CHUNK = 10_000


def _hash_text(values: npt.NDArray[np.object_]) -> Hashes:
    # categorize=False gives the same hashes; factorizing first only pays when values repeat,
    # and bodies nearly never do (it took three quarters of the time).
    return np.stack(
        [pd.util.hash_array(values, hash_key=salt, categorize=False) for salt in _SALTS], axis=1
    )


def _combine(columns: Iterable[Hashes], rows: int) -> Hashes:
    combined = np.zeros((rows, 2), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for hashes in columns:
            combined = combined * _MIX ^ hashes
    return combined


def as_keys(hashes: Hashes) -> list[bytes]:
    raw = np.ascontiguousarray(hashes).tobytes()
    return [raw[i : i + 16] for i in range(0, len(raw), 16)]


class RowKeyMaker:
    """Makes row keys from request bodies, counting identical bodies across the whole input.

    Make one per run and feed it the input's valid rows in input order; :meth:`close` it at
    the end. ``carried`` are ``gb_key`` values from a failures file (or None).

    Counting needs every body hash seen so far, in flat memory whatever the input's length: a
    fixed-size Bloom filter says which hashes were surely never seen (nearly all of them), and
    the hashes themselves go to :class:`_SeenHashes`, sorted runs on disk searched only for the
    rare maybe-seen ones.
    """

    _BLOOM_BITS = 1 << 28  # 32 MB: about 1 false "maybe" in 2,500 at ten million distinct rows
    _BLOOM_HASHES = 4

    def __init__(self, *, bloom_bits: int = _BLOOM_BITS) -> None:
        self._seen = _SeenHashes()
        self._bloom_bits = bloom_bits
        self._bloom = np.zeros(bloom_bits // 64, dtype=np.uint64)

    def close(self) -> None:
        self._seen.close()

    def keys(self, bodies: Sequence[bytes], carried: Sequence[object] | None = None) -> RowKeys:
        """The keys of ``bodies``; ``carried[i]`` is row i's ``gb_key`` from a failures file,
        which it keeps whatever its content now (``RowKeys.changed`` says where that differs)."""
        size = len(bodies)
        own = _hash_text(np.asarray(bodies, dtype=object)) if size else _no_hashes()
        return self._keyed(own, carried)

    def identity_keys(self, hashes: Hashes, carried: Sequence[object] | None = None) -> RowKeys:
        """Keys for rows without a body (invalid rows) from :func:`identity_hashes`, told apart
        by occurrence in the same multiset as the bodies (their salts differ, so they never
        meet); ``carried`` as for :meth:`keys`."""
        return self._keyed(hashes, carried)

    def _keyed(self, own: Hashes, carried: Sequence[object] | None) -> RowKeys:
        size = len(own)
        content = own.copy()
        occurrence = np.zeros(size, dtype=np.int64)
        taken = np.zeros(size, dtype=bool)
        if carried is not None:
            for position, text in enumerate(carried):
                found = _parse_carried(text)
                if found is not None:
                    content[position] = np.frombuffer(bytes.fromhex(found[0]), dtype=np.uint64)
                    occurrence[position] = found[1]
                    taken[position] = True
        fresh = ~taken
        if fresh.any():
            occurrence[fresh] = self._count(content[fresh])
        mixed = content ^ _occurrence_hashes(occurrence)
        keys = np.where((occurrence == 0)[:, None], content, mixed)
        changed = taken & (content != own).any(axis=1)
        return RowKeys(as_keys(keys), content, occurrence, taken, changed)

    def repeats(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """How many equal 64-bit ``hashes`` came before each one, over every call (a multiset
        of their own: use a counter for one kind of hash only)."""
        if not len(hashes):
            return np.zeros(0, dtype=np.int64)
        return self._count(np.stack([hashes, hashes], axis=1))

    def occurrence_keys(self, hashes: Hashes) -> list[bytes]:
        """Keys from ``hashes`` (made with salts of their own, so they never meet the bodies'),
        told apart by occurrence like the body keys, counted in the same multiset."""
        if not len(hashes):
            return []
        occurrence = self._count(hashes)
        mixed = hashes ^ _occurrence_hashes(occurrence)
        return as_keys(np.where((occurrence == 0)[:, None], hashes, mixed))

    def _bloom_spots(self, hashes: Hashes) -> tuple[npt.NDArray[np.int64], Hashes]:
        bits = np.uint64(self._bloom_bits - 1)
        with np.errstate(over="ignore"):
            spots = np.stack(
                [
                    (hashes[:, 0] + np.uint64(i) * hashes[:, 1]) & bits
                    for i in range(self._BLOOM_HASHES)
                ],
                axis=1,
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
        words, masks = self._bloom_spots(hashes[order][starts])
        maybe = ((self._bloom[words] & masks) != 0).all(axis=1)
        earlier = np.zeros(len(distinct), dtype=np.int64)
        if maybe.any():
            earlier[maybe] = self._seen.counts(distinct[maybe])
        np.bitwise_or.at(self._bloom, words.ravel(), masks.ravel())
        self._seen.add(distinct, counts)
        return local + earlier[np.searchsorted(distinct, ids)]


class _SeenHashes:
    """A multiset of 64-bit hashes: sorted runs in memory, spilled to files once large.

    Adding is a sort now and then. Counting searches each run; a spilled run keeps only every
    ``_BLOCK``-th hash in memory and reads the one block a hash could be in from its file, so
    neither the heap nor the mapped pages grow with the input. It is meant for few hashes at a
    time (those the Bloom filter could not rule out).
    """

    _SPILL = 1 << 18  # hashes held in memory before a run goes to disk (4 MB with counts)
    _BLOCK = 512  # hashes per block read from a spilled run (4 KB)

    def __init__(self) -> None:
        self._memory: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
        self._held = 0
        self._runs: list[tuple[Path, npt.NDArray[np.int64]]] = []
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        self._runs.clear()
        if self._folder is not None:
            self._folder.cleanup()

    def add(self, hashes: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> None:
        """Add sorted distinct ``hashes``, each seen ``counts`` times."""
        self._memory.append((hashes, counts))
        self._held += len(hashes)
        if self._held >= self._SPILL:
            self._spill()

    def counts(self, hashes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """How many times each of ``hashes`` was added."""
        total = np.zeros(len(hashes), dtype=np.int64)
        for run, counts in self._memory:
            total += _found(run, counts, hashes)
        for path, fence in self._runs:
            blocks = np.searchsorted(fence, hashes, side="right") - 1
            with path.open("rb") as handle:
                for block in np.unique(blocks[blocks >= 0]).tolist():
                    handle.seek(block * self._BLOCK * 16)
                    pairs = np.frombuffer(handle.read(self._BLOCK * 16), dtype=np.int64)
                    wanted = blocks == block
                    total[wanted] += _found(pairs[0::2], pairs[1::2], hashes[wanted])
        return total

    def _spill(self) -> None:
        hashes = np.concatenate([h for h, _ in self._memory])
        counts = np.concatenate([c for _, c in self._memory])
        order = np.argsort(hashes, kind="stable")
        pairs = np.empty(2 * len(hashes), dtype=np.int64)
        pairs[0::2], pairs[1::2] = hashes[order], counts[order]
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="gb-backfill-keys-")
        path = Path(self._folder.name) / f"run-{len(self._runs):05d}.bin"
        pairs.tofile(path)
        self._runs.append((path, hashes[order][:: self._BLOCK].copy()))
        self._memory, self._held = [], 0


def _found(
    run: npt.NDArray[np.int64], counts: npt.NDArray[np.int64], hashes: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """The count of each of ``hashes`` in the sorted ``run`` (0 where absent)."""
    if not len(run):
        return np.zeros(len(hashes), dtype=np.int64)
    at = np.searchsorted(run, hashes).clip(max=len(run) - 1)
    return np.where(run[at] == hashes, counts[at], 0)


@dataclass(frozen=True, slots=True)
class RowKeys:
    """The keys of a chunk's rows: ledger keys, and what ``gb_key`` shows, made on demand.

    ``carried`` marks the rows keyed by the ``gb_key`` they carried, ``changed`` those of them
    whose content is not what that key was made from (edited, or fixed from invalid), and
    ``unchanged_invalid`` those whose cells are still those of the invalid row the key was made
    from (sent again as they were); each is None where nothing was carried.
    """

    keys: list[bytes]
    content: Hashes
    occurrence: npt.NDArray[np.int64]
    carried: npt.NDArray[np.bool_] | None = None
    changed: npt.NDArray[np.bool_] | None = None
    unchanged_invalid: npt.NDArray[np.bool_] | None = None

    def text(self, index: int) -> str:
        """Row ``index``'s ``gb_key``: ``<content hash>/<occurrence>``."""
        return f"{self.content[index].tobytes().hex()}/{self.occurrence[index]}"

    def flag(self, name: str, index: int) -> bool:
        """``carried``, ``changed`` or ``unchanged_invalid`` of row ``index``."""
        flags = getattr(self, name)
        return flags is not None and bool(flags[index])

    def take(self, order: npt.NDArray[np.int64]) -> RowKeys:
        """These keys in the order ``order`` gives (positions into them)."""

        def taken(flags: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.bool_] | None:
            return None if flags is None else flags[order]

        return RowKeys(
            [self.keys[i] for i in order.tolist()], self.content[order], self.occurrence[order],
            taken(self.carried), taken(self.changed), taken(self.unchanged_invalid),
        )  # fmt: skip

    def __add__(self, other: RowKeys) -> RowKeys:
        """These keys, then ``other``'s (a chunk's valid rows, then its invalid ones)."""
        size, more = len(self.keys), len(other.keys)

        def joined(name: str) -> npt.NDArray[np.bool_] | None:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is None and theirs is None:
                return None
            mine = np.zeros(size, dtype=bool) if mine is None else mine
            theirs = np.zeros(more, dtype=bool) if theirs is None else theirs
            return np.concatenate([mine, theirs])

        return RowKeys(
            self.keys + other.keys,
            np.concatenate([self.content, other.content]),
            np.concatenate([self.occurrence, other.occurrence]),
            joined("carried"),
            joined("changed"),
            joined("unchanged_invalid"),
        )


def _no_hashes() -> Hashes:
    return np.zeros((0, 2), dtype=np.uint64)


def keys_for(
    frame: pd.DataFrame,
    positions: npt.NDArray[np.int64],
    bodies: Sequence[bytes],
    *,
    row_key: Sequence[Hashable] | None,
    maker: RowKeyMaker,
    mapping: ColumnMapping | None = None,
    invalid: npt.NDArray[np.int64] | None = None,
    order_ids: Sequence[str | None] | None = None,
) -> RowKeys:
    """The keys of the rows of ``frame`` at ``positions``, whose bodies are ``bodies``, then
    (with ``mapping``) of its ``invalid`` rows: from the ``row_key`` columns when given, else
    from the bodies and the invalid rows' cells, a failures file's ``gb_key`` kept. A row with
    an order id (``order_ids[i]``, see :mod:`.orders`) is keyed by it (:func:`order_hashes`),
    whatever ``row_key`` says: Gameball knows an order by its id alone."""
    orders = np.array([o is not None for o in order_ids or ()], dtype=bool)
    if row_key and not orders.any():
        every = positions if invalid is None else np.concatenate([positions, invalid])
        hashes = natural_hashes(frame.iloc[every], row_key)
        return RowKeys(as_keys(hashes), hashes, np.zeros(len(every), dtype=np.int64))
    carried = frame["gb_key"].tolist() if "gb_key" in frame.columns and not row_key else None
    valid = _valid_keys(frame, positions, bodies, row_key, maker, carried, order_ids)
    if carried is not None and mapping is not None and valid.changed is not None:
        # A fixed copy of an invalid row is valid; sent again as it was, it is not fixed.
        edited = np.flatnonzero(valid.changed)
        same = np.zeros(len(positions), dtype=bool)
        if len(edited):
            cells = identity_hashes(frame, positions[edited], mapping)
            same[edited] = (cells == valid.content[edited]).all(axis=1)
        valid = RowKeys(
            valid.keys, valid.content, valid.occurrence, valid.carried, valid.changed, same
        )
    if mapping is None or invalid is None:
        return valid
    if row_key:
        hashes = natural_hashes(frame.iloc[invalid], row_key)
        return valid + RowKeys(as_keys(hashes), hashes, np.zeros(len(invalid), dtype=np.int64))
    hashes = identity_hashes(frame, invalid, mapping)
    taken = None if carried is None else [carried[p] for p in invalid]
    return valid + maker.identity_keys(hashes, taken)


def _valid_keys(
    frame: pd.DataFrame,
    positions: npt.NDArray[np.int64],
    bodies: Sequence[bytes],
    row_key: Sequence[Hashable] | None,
    maker: RowKeyMaker,
    carried: list[object] | None,
    order_ids: Sequence[str | None] | None,
) -> RowKeys:
    """The valid rows' keys: orders by their id, events by their body (or ``row_key``)."""
    if order_ids is None or all(o is None for o in order_ids):
        return maker.keys(bodies, None if carried is None else [carried[p] for p in positions])
    orders = np.array([o is not None for o in order_ids], dtype=bool)
    events_at, orders_at = np.flatnonzero(~orders), np.flatnonzero(orders)

    def given(at: npt.NDArray[np.int64]) -> list[object] | None:
        return None if carried is None else [carried[p] for p in positions[at]]

    if row_key:
        hashes = natural_hashes(frame.iloc[positions[events_at]], row_key)
        events = RowKeys(as_keys(hashes), hashes, np.zeros(len(events_at), dtype=np.int64))
    else:
        events = maker.keys([bodies[i] for i in events_at.tolist()], given(events_at))
    ids = np.array([order_ids[i] for i in orders_at.tolist()], dtype=np.object_)
    placed = events + maker.identity_keys(order_hashes(ids), given(orders_at))
    return placed.take(np.argsort(np.concatenate([events_at, orders_at]), kind="stable"))


def order_hashes(order_ids: npt.NDArray[np.object_]) -> Hashes:
    """The content hash of orders with these ids (salts of their own: never a body's, never an
    invalid row's)."""
    return _hash_with(order_ids, _ORDER_SALTS)


def identity_hashes(
    frame: pd.DataFrame, positions: npt.NDArray[np.int64], mapping: ColumnMapping
) -> Hashes:
    """A hash of what the rows at ``positions`` hold in their mapped columns: each cell as the
    JSON text it would be sent as where it has one, else a text of its value; a cell a reader
    could not convert (``dtype=``) as the text it was, as the failures file shows it. Column by
    column, as the body keys are made, with salts of their own."""
    rows = frame.iloc[positions]
    roles: list[tuple[str, Hashable]] = [("\x00customerId", mapping.customer_id)]
    roles += [("\x00eventName", mapping.event_name)] if mapping.event_name is not None else []
    roles += [(metadata_key(column), column) for column in mapping.metadata]
    roles += [
        (f"\x00{role}", column)
        for role, column in (
            ("email", mapping.email), ("mobile", mapping.mobile),
            ("sessionToken", mapping.session_token),
        )
        if column is not None
    ]  # fmt: skip
    if mapping.order is not None:
        order = mapping.order
        roles += [("\x00orderId", order.order_id), ("\x00orderDate", order.order_date),
                  ("\x00totalPaid", order.total_paid)]  # fmt: skip
        roles += [(f"\x00extra\x1f{metadata_key(column)}", column) for column in order.extra]
        roles += [(f"\x00{wire}", column) for wire, column in order.fields]
    read = unconverted_texts(rows[READ_PROBLEMS].tolist()) if READ_PROBLEMS in rows else {}
    combined = np.zeros((len(rows), 2), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name, column in sorted(roles, key=lambda role: role[0]):
            cells = _cell_texts(rows[column])
            for at, text in read.get(str(column), {}).items():
                cells[at] = json.dumps(text, ensure_ascii=False)
            combined = (combined * _MIX ^ _named(name)) * _MIX ^ _hash_with(cells, _IDENTITY_SALTS)
        if mapping.event is not None:
            combined = combined * _MIX ^ _named(f"\x00event\x1f{mapping.event}")
    return combined


def _named(name: str) -> Hashes:
    return _hash_with(np.array([name], dtype=object), _IDENTITY_SALTS)


def _hash_with(values: npt.NDArray[np.object_], salts: tuple[str, str]) -> Hashes:
    return np.stack(
        [pd.util.hash_array(values, hash_key=salt, categorize=False) for salt in salts], axis=1
    )


def _cell_texts(series: pd.Series) -> npt.NDArray[np.object_]:
    """Each cell's JSON text; a cell with none: empty when missing, else a text of its value."""
    texts: npt.NDArray[np.object_] = np.asarray(
        json_values(series).to_numpy(zero_copy_only=False), dtype=object
    )
    absent = np.flatnonzero(pd.isna(texts))
    if len(absent):
        missing = np.asarray(pd.isna(series.iloc[absent]), dtype=bool)
        texts[absent[missing]] = ""
        rest = absent[~missing]  # values a rule refuses: few
        texts[rest] = [_other_text(value) for value in series.iloc[rest].tolist()]
    return texts


def _other_text(value: Any) -> str:
    """A cell with no JSON text: missing (empty), or a value a rule refuses, as text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return f"?{type(value).__name__}:{value!r}"


def _occurrence_hashes(occurrence: npt.NDArray[np.int64]) -> Hashes:
    return np.stack([pd.util.hash_array(occurrence, hash_key=salt) for salt in _SALTS], axis=1)


def carried_flags(texts: Sequence[object]) -> npt.NDArray[np.bool_]:
    """Which of ``texts`` are well-formed ``gb_key`` values."""
    return np.array([_parse_carried(text) is not None for text in texts], dtype=bool)


def carried_keys(texts: Iterable[object]) -> list[bytes]:
    """The ledger keys the well-formed ``gb_key`` values among ``texts`` name."""
    found = [parsed for text in texts if (parsed := _parse_carried(text)) is not None]
    if not found:
        return []
    content = np.frombuffer(b"".join(bytes.fromhex(c) for c, _ in found), dtype=np.uint64)
    hashes = content.reshape(-1, 2)
    occurrence = np.array([n for _, n in found], dtype=np.int64)
    mixed = hashes ^ _occurrence_hashes(occurrence)
    return as_keys(np.where((occurrence == 0)[:, None], hashes, mixed))


def _parse_carried(text: object) -> tuple[str, int] | None:
    """``(content hex, occurrence)`` from a ``gb_key`` value; None when there is none."""
    if not isinstance(text, str):
        return None
    content, _, occurrence = text.partition("/")
    if len(content) != 32 or not occurrence.isascii() or not occurrence.isdigit():
        return None
    if len(occurrence) > 18:  # no input has a billion billion copies of one row
        return None
    try:
        bytes.fromhex(content)
    except ValueError:
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
            "{row_key=*} names missing column(s) {missing}; the columns are: {present}",
            option="row_key",
            row_key=list(key_columns),
            missing=", ".join(map(str, missing)),
            present=", ".join(map(str, present)),
        )


def check_unique(chunks: Iterable[pd.DataFrame], key_columns: Sequence[Hashable]) -> None:
    """Raise :class:`LedgerError` if ``key_columns`` do not identify every row: rows with no
    key (every key column empty) are told apart from rows that repeat a key."""
    parts, missing, seen = [], [], 0
    for chunk in chunks:
        parts.append(natural_hashes(chunk, key_columns))
        empty = np.ones(len(chunk), dtype=bool)
        for column in key_columns:
            values = chunk[column]
            empty &= values.isna().to_numpy() | (values.astype(object) == "").to_numpy()
        missing.append(np.flatnonzero(empty) + seen)
        seen += len(chunk)
    if not parts:
        return
    lacking = np.concatenate(missing)
    if len(lacking) > 1:  # one row without a key is a key of its own; more would share it
        raise LedgerError(
            "{row_key=*} is not given in every row: {count:,} rows have no key (an empty "
            "{columns}; first at row {first}), so they cannot be told apart; fill them, or "
            "leave {row_key=} out to key rows by their content",
            option="row_key",
            row_key=list(key_columns),
            count=len(lacking),
            columns=" and ".join(map(str, key_columns)),
            first=int(lacking[0]),
        )
    hashes = np.concatenate(parts)
    order = np.lexsort((hashes[:, 1], hashes[:, 0]))
    ordered = hashes[order]
    same = (ordered[1:] == ordered[:-1]).all(axis=1)
    if same.any():
        repeats = int(same.sum())
        first = int(order[int(np.flatnonzero(same)[0]) + 1])
        raise LedgerError(
            "{row_key=*} is not unique: {repeats:,} row(s) repeat a key given in an earlier row "
            "(first at row {first}); add columns to the key, or leave {row_key=} out to key rows "
            "by their content",
            option="row_key",
            row_key=list(key_columns),
            repeats=repeats,
            first=first,
        )
