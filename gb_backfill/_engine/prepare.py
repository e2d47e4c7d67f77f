"""Turning a chunk of the input into rows ready to send: checked, encoded, keyed, and laned.

This is the CPU-heavy part of a run, and it touches no run state, so the run does it off the
event loop (requests keep their pace meanwhile). The dry run and the changed-rows check prepare
rows the same way, so what they count is what a live run would send.

In batch mode a run first counts each customer's rows (:class:`LoadCounter`, a cheap pass of
the rules alone, in fixed memory but for the busiest customers) so that
:func:`~gb_backfill._engine.makespan.route` can send the busiest customers' rows through the events
lane; the :class:`Preparer` then lanes rows by that routing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from .._config import Settings
from .._gameball import lane_for
from .._rows.keys import RowKeyMaker, RowKeys, keys_for
from .._rows.loose import loose_keys
from .._rows.mapping import ColumnMapping
from .._rows.orders import check_rows, encode_checked, is_order
from .._rows.rules import CheckedFrame, first_failures
from .._rows.warnings import WarningTally
from .._vocabulary import Lane
from .chunks import Chunk, OutgoingRow
from .makespan import LaneCosts, Loads, Routing, routing_floor
from .sketch import CustomerSketch

__all__: list[str] = []


@dataclass(frozen=True, slots=True)
class Prepared:
    """A chunk checked, encoded and keyed, ready to be admitted."""

    chunk: Chunk
    rows: list[OutgoingRow]  #: one per valid row
    busy: list[int]  #: each row's customer's rows so far (batch mode), else 0
    worst: pd.DataFrame | None  #: the invalid rows' first failures
    checked: CheckedFrame | None = None  #: what the checks found

    @property
    def invalid_positions(self) -> npt.NDArray[np.int64]:
        """The invalid rows' positions in the chunk; the n-th's key follows the valid rows'
        (key index ``len(rows) + n``)."""
        if self.worst is None:
            return np.zeros(0, dtype=np.int64)
        return self.worst.index.to_numpy(dtype=np.int64)


class Preparer:
    """Checks, encodes and keys chunks and makes their outgoing rows: the CPU-heavy part, which
    touches no run state, so it runs off the event loop. Strictly private."""

    def __init__(
        self,
        settings: Settings,
        mapping: ColumnMapping,
        *,
        loose: bool,
        former: bool = True,
        routing: Routing | None = None,
        warnings: WarningTally | None = None,
    ) -> None:
        self.settings, self.mapping, self.loose = settings, mapping, loose
        #: also the loose keys with event names as written, for a ledger created before names
        #: were folded (see :mod:`gb_backfill._rows.loose`); only lookups need them
        self.former = former
        self.warnings = warnings  #: the dry run's: column warnings gathered as chunks pass
        self.key_maker = RowKeyMaker()
        self.customer_counts = CustomerSketch()
        #: batch mode: customers whose rows all take the events lane, and their rows in all
        self.routed = routing.customers if routing is not None else frozenset()
        self.known_rows: dict[str, int] = dict(routing.rows) if routing is not None else {}

    def close(self) -> None:
        self.key_maker.close()

    def prepare(self, frame: pd.DataFrame, offset: int) -> Prepared:
        checked = check_rows(frame, self.mapping)
        encoded = encode_checked(frame, checked)
        worst = first_failures(checked.failures) if checked.invalid.any() else None
        keyed = keys_for(
            frame,
            encoded.positions,
            encoded.bodies,
            row_key=self.settings.row_key,
            maker=self.key_maker,
            mapping=self.mapping,
            invalid=None if worst is None else worst.index.to_numpy(dtype=np.int64),
            order_ids=encoded.order_ids,
        )
        if self.warnings is not None:
            # Rows keyed by row_key= columns have no occurrences: the tally compares them.
            repeated = None if self.settings.row_key else _repeated(keyed, encoded.positions)
            self.warnings.add(frame, checked.customer_ids, checked.invalid, repeated)
        # Orders are keyed by their id, which no other way of writing them changes.
        loose = None
        if self.loose and not self.mapping.all_orders:
            loose = loose_keys(frame, checked, encoded, self.key_maker, former=self.former)
        chunk = Chunk(frame, offset, keyed, bool(self.settings.row_key), loose)
        batched = self.settings.mode == "batch"
        # How busy each row's customer is: batch mode sends the busiest first, by their rows
        # in all where the count before the run knows them, else by their rows so far.
        busy = [0] * len(encoded)
        if batched:
            busy = self.customer_counts.add(encoded.customer_ids).tolist()
            if self.known_rows:
                known = self.known_rows
                busy = [known.get(c, b) for c, b in zip(encoded.customer_ids, busy, strict=True)]
        tokens = encoded.session_tokens or [None] * len(encoded)
        routed = self.routed
        fields = zip(
            encoded.positions.tolist(),
            encoded.customer_ids,
            encoded.bodies,
            tokens,
            encoded.plain.tolist(),
            is_order(encoded).tolist(),
            strict=True,
        )
        rows = [
            OutgoingRow(
                chunk,
                local,
                customer,
                body,
                token,
                index,
                Lane.EVENTS
                if customer in routed and not order
                else lane_for(batch_mode=batched, plain=plain, order=order),
                plain=plain,
            )
            for index, (local, customer, body, token, plain, order) in enumerate(fields)
        ]
        return Prepared(chunk, rows, busy, worst, checked)


def _repeated(keyed: RowKeys, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The positions of valid rows whose request body an earlier row of the input had (their
    occurrence counts them), rows that carry a ``gb_key`` left out."""
    counted = keyed.occurrence[: len(positions)] > 0
    if keyed.carried is not None:
        counted &= ~keyed.carried[: len(positions)]
    return positions[counted]


def _lane_ids(checked: CheckedFrame) -> tuple[pa.Array, pa.Array]:
    """The customer ids of a frame's valid rows: those a batch item can carry, and the rest."""
    valid = ~checked.invalid
    plain = valid & checked.plain()
    ids = checked.customer_ids
    return ids.filter(pa.array(plain)), ids.filter(pa.array(valid & ~plain))


class LoadCounter:
    """Counts each customer's rows before a batch-mode run, in two passes over the input, for
    :func:`~gb_backfill._engine.makespan.route`. Strictly private.

    The first pass (:meth:`count`) checks the rules alone and counts rows per lane, and per
    customer in a fixed-size sketch. The second (:meth:`count_busiest`), needed only when some
    customer may reach :func:`~gb_backfill._engine.makespan.routing_floor`, counts exactly the
    customers the sketch puts at or above it: at most about rows / floor of them, so memory stays
    bounded however many customers the input has.
    """

    def __init__(self, mapping: ColumnMapping, costs: LaneCosts) -> None:
        self.mapping, self.costs = mapping, costs
        self.batch_rows = self.events_rows = 0
        self._batch = CustomerSketch()
        self._events = CustomerSketch()
        self._busiest: Counter[str] = Counter()
        self.floor = 0

    def count(self, frame: pd.DataFrame) -> None:
        batch, events = _lane_ids(check_rows(frame, self.mapping))
        self.batch_rows += len(batch)
        self.events_rows += len(events)
        if len(batch):
            self._batch.add(batch)
        if len(events):
            self._events.add(events)

    def needs_busiest(self) -> bool:
        """Whether a second pass is needed: some customer may be busy enough to move."""
        self.floor = routing_floor(self.batch_rows, self.costs)
        return self._batch.most() >= self.floor

    def count_busiest(self, frame: pd.DataFrame) -> None:
        batch, _ = _lane_ids(check_rows(frame, self.mapping))
        if len(batch):
            busy = batch.filter(pa.array(self._batch.estimate(batch) >= self.floor))
            self._busiest.update(busy.to_pylist())

    def loads(self) -> Loads:
        busiest = {c: n for c, n in self._busiest.items() if n >= self.floor}
        return Loads(
            events_rows=self.events_rows,
            events_chain=self._events.most(),
            batch_rows=self.batch_rows,
            busiest=busiest,
            others_chain=min(self._batch.most(), max(self.floor - 1, 0)),
        )
