"""Rows per customer in fixed memory: the one count-min sketch of a run.

Batch mode needs each customer's rows (the busiest are the critical path): the dry run and the
count before a run estimate them per lane (:class:`~gb_backfill._engine.prepare.LoadCounter`),
and a run that goes on without that count ranks rows by their customer's rows so far
(:class:`~gb_backfill._engine.prepare.Preparer`). Counting exactly would hold every customer
id; the sketch holds two hashed counters per customer in 8 MB, and the lesser is the estimate:
never below the true count, and rarely far above it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

__all__: list[str] = []

Counts = npt.NDArray[np.uint32]


class CustomerSketch:
    """How many rows each customer has had, estimated in fixed memory (8 MB). Strictly
    private."""

    _BITS = 20

    def __init__(self) -> None:
        self._counts: Counts = np.zeros((2, 1 << self._BITS), dtype=np.uint32)

    def _cells(
        self, customers: Sequence[str] | pa.Array
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Each customer's two counters."""
        if isinstance(customers, pa.Array):
            values = np.asarray(customers.to_numpy(zero_copy_only=False), dtype=object)
        else:
            values = np.asarray(customers, dtype=object)
        hashes = pd.util.hash_array(values, categorize=False)
        mask = (1 << self._BITS) - 1
        return (hashes & mask).astype(np.intp), ((hashes >> self._BITS) & mask).astype(np.intp)

    def add(self, customers: Sequence[str] | pa.Array) -> Counts:
        """Count a row for each entry of ``customers``; returns each entry's estimate, these
        rows included."""
        if not len(customers):
            return np.zeros(0, dtype=np.uint32)
        first, second = self._cells(customers)
        for counts, cells in ((self._counts[0], first), (self._counts[1], second)):
            # Distinct cells, each added once: several times faster than np.add.at, with
            # temporaries the size of the chunk (a bincount's would be the whole sketch's).
            distinct, times = np.unique(cells, return_counts=True)
            counts[distinct] += times.astype(np.uint32)
        return self._lesser(first, second)

    def estimate(self, customers: Sequence[str] | pa.Array) -> Counts:
        """Each entry's estimated count."""
        if not len(customers):
            return np.zeros(0, dtype=np.uint32)
        return self._lesser(*self._cells(customers))

    def _lesser(self, first: npt.NDArray[np.intp], second: npt.NDArray[np.intp]) -> Counts:
        found: Counts = np.minimum(self._counts[0][first], self._counts[1][second])
        return found

    def most(self) -> int:
        """An upper bound on any one customer's count."""
        return int(min(self._counts[0].max(), self._counts[1].max()))
