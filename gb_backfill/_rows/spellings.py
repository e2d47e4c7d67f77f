"""Spellings of one name: values that differ only in case, spacing or character width.

Gameball matches event names and customer ids exactly: ``purchase``, ``Purchase`` and
``PURCHASE `` are three events to its campaigns, and ``C12``, ``c12`` and ``C12`` in full width
three customers. Two values are spellings of one when they fold to the same text
(:func:`folded`: NFKC, which makes full-width characters plain, lower case, spaces trimmed and
runs of them made one).

:class:`Spellings` counts the rows of each spelling over a whole input, a chunk at a time, in
bounded memory: a table of at most ``slots`` folded values (a 64-bit hash each, and the first
spelling met, its count and its text cut to 32 bytes: 56 bytes a place, doubling from 1,024
places while more than half are taken, 28 MB at most), each tried in two places; a folded
value found with a second spelling moves to an exact count of its spellings (at most
``MAX_GROUPS`` of them, each with at most ``MAX_SPELLINGS`` spellings). A folded value whose
two places are both taken is not looked at (:attr:`Spellings.unchecked` counts them): on an
input with far more distinct values than slots some variants may go unseen, never a false
one. A text longer than 32 bytes is shown cut (when the table held it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__: list[str] = []

_TEXT_BYTES = 32


def folded(values: pa.Array) -> pa.Array:
    """Each value as all its spellings fold to (see the module docstring)."""
    text = pc.utf8_normalize(values, "NFKC")
    text = pc.utf8_trim_whitespace(pc.utf8_lower(text))
    return pc.replace_substring_regex(text, r"\s+", " ")


def _hashes(values: pa.Array) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each text, never 0 (0 marks a free slot)."""
    found = pd.util.hash_array(values.to_numpy(zero_copy_only=False), categorize=False)
    return np.asarray(np.maximum(found, np.uint64(1)), dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class Variants:
    """The spellings of one folded value, most rows first: ``(spelling, rows)``."""

    spellings: tuple[tuple[str, int], ...]

    @property
    def rows(self) -> int:
        return sum(rows for _, rows in self.spellings)

    @property
    def others(self) -> int:
        """The rows not in the most common spelling."""
        return self.rows - self.spellings[0][1]

    def words(self, shown: int = 4) -> str:
        """``'purchase' 8,817 rows, 'Purchase' 412, 'PURCHASE ' 3``."""
        parts = [
            f"{text!r} {rows:,}" + ((" row" if rows == 1 else " rows") if n == 0 else "")
            for n, (text, rows) in enumerate(self.spellings[:shown])
        ]
        more = len(self.spellings) - shown
        return ", ".join(parts) + (f" and {more:,} more spelling(s)" if more > 0 else "")


class Spellings:
    """Counts the spellings of each folded value over the chunks of one input."""

    MAX_GROUPS = 1_000
    MAX_SPELLINGS = 20

    def __init__(self, slots: int = 1 << 19, *, start: int = 1 << 10) -> None:
        """``slots``: the most values the table holds; it starts with ``start`` places and
        doubles while more than half of them are taken, so a small input costs little."""
        self.slots = slots
        self._size = self._used = 0
        self._folded = self._spelling = np.zeros(0, dtype=np.uint64)
        self._count = np.zeros(0, dtype=np.int64)
        self._text: npt.NDArray[Any] = np.zeros(0, dtype=f"S{_TEXT_BYTES}")
        self._resize(min(start, slots))
        self._groups: dict[int, Counter[str]] = {}
        self.unchecked = 0  #: distinct folded values not looked at (both their places taken)
        self.full = False  #: more folded values had several spellings than ``MAX_GROUPS``

    def _resize(self, size: int) -> None:
        """A table of ``size`` places, holding what the old one held."""
        old = self._folded, self._spelling, self._count, self._text
        self._size = size
        self._folded = np.zeros(size, dtype=np.uint64)
        self._spelling = np.zeros(size, dtype=np.uint64)
        self._count = np.zeros(size, dtype=np.int64)
        self._text = np.zeros(size, dtype=f"S{_TEXT_BYTES}")
        self._used = 0
        held = np.flatnonzero(old[0])
        if len(held):
            folds, raw, counts, texts = old
            self.unchecked += self._place(folds[held], raw[held], counts[held], texts[held])

    def _places(self, folds: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint64], ...]:
        size = np.uint64(self._size)
        return folds % size, (folds // size) % size

    def _place(
        self,
        folds: npt.NDArray[np.uint64],
        raw: npt.NDArray[np.uint64],
        counts: npt.NDArray[np.int64],
        texts: npt.NDArray[Any],
    ) -> int:
        """Put new values in the table, each in the first of its two places that is free;
        returns how many found neither free."""
        new = np.arange(len(folds))
        for places in self._places(folds):  # each new value tries its two places in turn
            place = places[new]
            # Two new values may want one place: the first takes it.
            _, firsts = np.unique(place, return_index=True)
            takes = np.zeros(len(new), dtype=bool)
            takes[firsts] = True
            takes &= self._folded[place] == 0
            chosen, slots = new[takes], place[takes]
            self._folded[slots] = folds[chosen]
            self._spelling[slots] = raw[chosen]
            self._count[slots] = counts[chosen]
            # Cut to the slot's bytes by numpy (a character cut in two is dropped when shown).
            self._text[slots] = texts[chosen]
            self._used += len(chosen)
            new = new[~takes]
        return len(new)

    def add(self, values: pa.Array) -> None:
        """Count one chunk's values (nulls left out)."""
        present = pc.drop_null(values)
        if not len(present):
            return
        tally = pc.value_counts(present)
        spellings = tally.field("values")
        counts = tally.field("counts").to_numpy().astype(np.int64)
        folds = _hashes(folded(spellings))
        if self._groups:
            grouped = np.isin(folds, np.fromiter(self._groups, dtype=np.uint64))
            for i in np.flatnonzero(grouped):
                self._count_in_group(int(folds[i]), str(spellings[i].as_py()), int(counts[i]))
            kept = np.flatnonzero(~grouped)
            spellings, counts, folds = spellings.take(pa.array(kept)), counts[kept], folds[kept]
        # A folded value with several spellings in this chunk is a group at once.
        several = pd.Series(folds).duplicated(keep=False).to_numpy()
        for fold in {int(folds[i]) for i in np.flatnonzero(several)}:
            self._from_table(fold)
        for i in np.flatnonzero(several):
            self._count_in_group(int(folds[i]), str(spellings[i].as_py()), int(counts[i]))
        alone = np.flatnonzero(~several)
        if len(alone):
            self._add_alone(spellings.take(pa.array(alone)), counts[alone], folds[alone])

    def _add_alone(
        self, spellings: pa.Array, counts: npt.NDArray[np.int64], folds: npt.NDArray[np.uint64]
    ) -> None:
        """Values whose folded value has one spelling in the chunk: counted in the table, or
        made a group when the table holds another spelling."""
        raw = _hashes(spellings)
        first, second = self._places(folds)
        at_first = self._folded[first] == folds
        at = np.where(at_first, first, second)
        found = at_first | (self._folded[second] == folds)
        same = found & (self._spelling[at] == raw)
        self._count[at[same]] += counts[same]
        for i in np.flatnonzero(found & ~same):  # a second spelling: a group from now on
            self._from_table(int(folds[i]))
            self._count_in_group(int(folds[i]), str(spellings[i].as_py()), int(counts[i]))
        new = np.flatnonzero(~found)
        if not len(new):
            return
        while 2 * (self._used + len(new)) > self._size and self._size < self.slots:
            self._resize(min(2 * self._size, self.slots))
        texts = pc.cast(spellings.take(pa.array(new)), pa.binary()).to_numpy(zero_copy_only=False)
        self.unchecked += self._place(folds[new], raw[new], counts[new], texts)

    def _from_table(self, fold: int) -> None:
        """The spelling the table holds for ``fold``, if any, into its group."""
        key = np.uint64(fold)
        for places in self._places(np.array([key], dtype=np.uint64)):
            slot = places[0]
            if self._folded[slot] == key:
                cut = bytes(self._text[slot])
                text = cut.decode("utf-8", "ignore") + ("…" if len(cut) == _TEXT_BYTES else "")
                self._count_in_group(fold, text, int(self._count[slot]))
                return

    def _count_in_group(self, fold: int, spelling: str, rows: int) -> None:
        group = self._groups.get(fold)
        if group is None:
            if len(self._groups) >= self.MAX_GROUPS:
                self.full = True
                return
            group = self._groups[fold] = Counter()
        if spelling in group or len(group) < self.MAX_SPELLINGS:
            group[spelling] += rows

    def variants(self) -> list[Variants]:
        """The folded values met in several spellings, the most rows in other spellings first."""
        found = [
            Variants(tuple(sorted(group.items(), key=lambda item: (-item[1], item[0]))))
            for group in self._groups.values()
            if len(group) > 1
        ]
        return sorted(found, key=lambda variants: (-variants.others, variants.spellings[0][0]))
