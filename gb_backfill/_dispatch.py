"""Which row goes out next: each customer's rows in input order, across both lanes.

Rows wait in a queue per customer. A customer's next row is offered to its lane (events or
batch) only when the customer has nothing in flight, so one customer is never in flight in both
lanes at once and its rows arrive in input order, retries included. With ``keep_order=False``,
a customer's consecutive batch rows are offered together (they go into different jobs, never
two in one); a row for the events lane still waits for everything before it.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from ._bookkeeping import Job

__all__: list[str] = []

EVENTS, BATCH = "events", "batch"


class Lane(Protocol):
    def offer(self, job: Job, *, more_waiting: bool = False) -> None:
        """Take ``job``; it must end with :meth:`Dispatcher.done` once its status is recorded.

        ``more_waiting`` says the customer has more rows queued behind it: in batch mode those
        customers are the critical path, so their rows should go first.
        """


class _Customer:
    __slots__ = ("in_flight", "lane", "waiting")

    def __init__(self) -> None:
        self.waiting: deque[Job] = deque()
        self.in_flight = 0
        self.lane: str | None = None


class Dispatcher:
    """Per-customer queues feeding the lanes. Strictly private."""

    def __init__(self, *, keep_order: bool = True) -> None:
        self.keep_order = keep_order
        self.lanes: dict[str, Lane] = {}
        self._customers: dict[str, _Customer] = {}

    def submit(self, job: Job) -> None:
        customer = self._customers.get(job.customer)
        if customer is None:
            customer = self._customers[job.customer] = _Customer()
        customer.waiting.append(job)
        self._pump(customer)

    def done(self, job: Job) -> None:
        """``job`` has its final status: the customer's next row may go."""
        customer = self._customers[job.customer]
        customer.in_flight -= 1
        if customer.in_flight == 0:
            customer.lane = None
        self._pump(customer)
        if not customer.in_flight and not customer.waiting:
            del self._customers[job.customer]

    def waiting(self) -> list[Job]:
        """Take every row not yet offered to a lane (to abort them when the run stops)."""
        jobs = [job for customer in self._customers.values() for job in customer.waiting]
        for customer in self._customers.values():
            customer.waiting.clear()
        return jobs

    def _pump(self, customer: _Customer) -> None:
        while customer.waiting:
            head = customer.waiting[0]
            together = not self.keep_order and head.lane == BATCH and customer.lane == BATCH
            if customer.in_flight and not together:
                return
            customer.waiting.popleft()
            customer.in_flight += 1
            customer.lane = head.lane
            self.lanes[head.lane].offer(head, more_waiting=bool(customer.waiting))
            if self.keep_order or head.lane != BATCH:
                return
