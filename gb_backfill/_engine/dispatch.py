"""Which row goes out next: each customer's rows in input order, across both lanes.

Rows wait in a queue per customer. A customer's next row is offered to its lane (events or
batch) only when the customer has nothing in flight, so one customer is never in flight in both
lanes at once and its rows arrive in input order, retries included. With ``keep_order=False``,
a customer's consecutive batch rows are offered together (they go into different jobs, never
two in one); a row for the events lane still waits for everything before it.

In batch mode a customer with many rows is the critical path (one job cycle per row), so each
row is offered with a priority: how many rows its customer has had in the input so far (a
fixed-size count sketch, so memory does not grow with the customers), or how many it has
queued, whichever is more. The batch lane puts the highest priorities in the next job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

from .._vocabulary import Lane
from .chunks import OutgoingRow

__all__: list[str] = []


class Receiver(Protocol):
    """What the dispatcher offers rows to: a lane (see :mod:`gb_backfill._engine.lanes`)."""

    def offer(self, row: OutgoingRow, *, priority: int = 0) -> None:
        """Take ``row``; it must end with :meth:`Dispatcher.done_many` once its status is
        recorded.

        ``priority`` estimates how many rows its customer has in all: in batch mode the busiest
        customers are the critical path, so their rows should go first.
        """


class _Customer:
    __slots__ = ("in_flight", "lane", "rows", "waiting")

    def __init__(self) -> None:
        self.waiting: deque[OutgoingRow] = deque()
        self.in_flight = 0
        self.lane: Lane | None = None
        self.rows = 0  # its rows in the input so far, as far as known


class Dispatcher:
    """Per-customer queues feeding the lanes. Strictly private.

    Most customers have one row in flight and nothing waiting: they are only named in
    ``_lone`` (with their row's lane), so such a row costs a dictionary entry, not a queue.
    A customer whose next row arrives while one is in flight gets a :class:`_Customer`.
    """

    def __init__(self, *, keep_order: bool = True) -> None:
        self.keep_order = keep_order
        self.lanes: dict[Lane, Receiver] = {}
        self._lone: dict[str, Lane] = {}  # one row in flight, nothing waiting: its lane
        self._customers: dict[str, _Customer] = {}

    def submit(self, row: OutgoingRow, *, busy: int = 0) -> None:
        """Queue ``row``; ``busy`` is how many rows its customer has had so far, if known."""
        self.submit_many([row], [busy])

    def submit_many(self, rows: Sequence[OutgoingRow], busy: Sequence[int]) -> None:
        """Queue ``rows`` in order; ``busy[i]`` is how many rows ``rows[i]``'s customer has had
        so far (0 if not known)."""
        lone, customers, lanes = self._lone, self._customers, self.lanes
        for row, count in zip(rows, busy, strict=True):
            name = row.customer
            if name not in lone and name not in customers:  # no chain: it goes at once
                lone[name] = row.lane
                lanes[row.lane].offer(row, priority=max(count, 1))
                continue
            customer = customers.get(name)
            if customer is None:
                customer = customers[name] = _Customer()
                customer.in_flight, customer.lane = 1, lone.pop(name)
            customer.waiting.append(row)
            customer.rows = max(customer.rows, count)
            self._pump(customer)

    def done_many(self, rows: Sequence[OutgoingRow]) -> None:
        """``rows`` have their final status: their customers' next rows may go."""
        lone, customers = self._lone, self._customers
        for row in rows:
            name = row.customer
            if lone.pop(name, None) is not None:
                continue
            customer = customers[name]
            customer.in_flight -= 1
            if customer.in_flight == 0:
                customer.lane = None
            self._pump(customer)
            if not customer.in_flight and not customer.waiting:
                del customers[name]

    def waiting(self) -> list[OutgoingRow]:
        """Take every row not yet offered to a lane (to abort them when the run stops)."""
        rows = [row for customer in self._customers.values() for row in customer.waiting]
        for customer in self._customers.values():
            customer.waiting.clear()
        return rows

    def _pump(self, customer: _Customer) -> None:
        while customer.waiting:
            head = customer.waiting[0]
            together = (
                not self.keep_order and head.lane == Lane.BATCH and customer.lane == Lane.BATCH
            )
            if customer.in_flight and not together:
                return
            customer.waiting.popleft()
            customer.in_flight += 1
            customer.lane = head.lane
            priority = max(customer.rows, len(customer.waiting) + 1)
            self.lanes[head.lane].offer(head, priority=priority)
            if self.keep_order or head.lane != Lane.BATCH:
                return
