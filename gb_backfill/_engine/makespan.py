"""How long a run takes, and which lane each customer's rows take in batch mode to finish first.

A run ends when both lanes have: its makespan is the longer of the two lanes' times.

* The events lane sends rows one request each within the events limits and ``concurrency``
  requests in flight, and a customer's rows one at a time (order kept): ``T_events = max(least
  time for its rows at the events limits, rows x round trip / concurrency, longest chain x round
  trip)``.
* The batch lane sends jobs of up to 1,000 rows within the batch limits, and a customer's rows
  one job cycle each (a job holds one row per customer, and the next waits for the last to
  settle): ``T_batch = max(least time for its jobs at the batch limits + one cycle, longest
  chain x job cycle)``.

In batch mode a customer with many rows is the batch lane's critical path, one job cycle per
row, where the events lane takes the same rows one round trip each, within its own budget.
:func:`route` moves the busiest customers to the events lane while that shortens the run, and
:func:`estimate` is the same model for the plan, so the plan and the run agree by construction.

The model needs two figures the limits do not give: the events lane's round trip and how long
Gameball takes to process a job. Neither is documented, nor known before a request is sent:
they are assumed (:func:`assumed_costs`) and stated in the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import _gameball as gameball
from .._config import RateLimits, Settings, is_loopback

__all__: list[str] = []

#: seconds Gameball is assumed to take to process a job (undocumented; the emulator's default)
ASSUMED_JOB_SECONDS = 0.2
#: seconds an events request is assumed to take, there and back: to a remote server, and to one
#: on this machine (the emulator, a local proxy)
ASSUMED_ROUND_TRIP = 0.05
ASSUMED_LOCAL_ROUND_TRIP = 0.005
#: a job's cycle beyond the post, the processing and the status read: the first read comes a
#: little after the typical duration (10%, see :mod:`gb_backfill._engine.lanes.jobs`), then the rows
#: settle and the customer's next row joins the next job (measured: 0.03-0.06 s on loopback)
_FIRST_READ_MARGIN = 1.1
_SETTLE = 0.03


def job_cycle(job_seconds: float, round_trip: float) -> float:
    """Seconds from posting a job holding a customer's row to posting the one holding its next
    row: the post, the processing, the first status read after it, the settle."""
    return 2 * round_trip + _FIRST_READ_MARGIN * job_seconds + _SETTLE


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneCosts:
    """What the model needs to know of the lanes: their limits and their two durations."""

    events_limits: RateLimits
    batch_limits: RateLimits
    round_trip: float  #: seconds per events request, there and back
    concurrency: int  #: events requests in flight at most
    job_seconds: float  #: seconds Gameball takes to process a job

    @property
    def cycle(self) -> float:
        return job_cycle(self.job_seconds, self.round_trip)


def assumed_costs(settings: Settings) -> LaneCosts:
    """The costs a run with ``settings`` is planned with (see the module's docstring)."""
    host = urlsplit(settings.base_url).hostname or ""
    return LaneCosts(
        events_limits=settings.limits,
        batch_limits=settings.batch_limits,
        round_trip=ASSUMED_LOCAL_ROUND_TRIP if is_loopback(host) else ASSUMED_ROUND_TRIP,
        job_seconds=ASSUMED_JOB_SECONDS,
        concurrency=settings.concurrency,
    )


def routes(settings: Settings) -> bool:
    """Whether a run with ``settings`` routes customers: in batch mode, in order, with the
    events limits in force (lifted, as against a local emulator, the lanes' times are the
    assumed durations alone, which say nothing of such a server)."""
    lifted = not settings.limits.per_second and not settings.limits.per_window
    return settings.mode == "batch" and settings.keep_order and not lifted


def minimum_seconds(requests: int, limits: RateLimits) -> float:
    """The least time ``requests`` take within ``limits`` (both windows, sliding)."""
    if requests <= 0:
        return 0.0
    per_second = limits.per_second or math.inf
    if not limits.per_window:
        return (requests - 1) / per_second if per_second < math.inf else 0.0
    full, rest = divmod(requests - 1, limits.per_window)
    return full * limits.window + (rest / per_second if per_second < math.inf else 0.0)


def events_seconds(rows: int, chain: int, costs: LaneCosts) -> float:
    """The events lane's time for ``rows``, the longest customer's being ``chain``."""
    if rows <= 0:
        return 0.0
    in_flight = rows * costs.round_trip / costs.concurrency
    return max(minimum_seconds(rows, costs.events_limits), in_flight, chain * costs.round_trip)


def batch_seconds(rows: int, chain: int, costs: LaneCosts) -> float:
    """The batch lane's time for ``rows``, the longest customer's being ``chain``."""
    if rows <= 0:
        return 0.0
    jobs = math.ceil(rows / gameball.MAX_ITEMS_PER_JOB)
    least = minimum_seconds(jobs, costs.batch_limits) + costs.cycle
    return max(least, chain * costs.cycle)


@dataclass(frozen=True, slots=True, kw_only=True)
class Loads:
    """What the model needs of the input: rows per lane before routing, and the busiest
    customers' batch rows (exact for every customer whose chain could matter)."""

    events_rows: int  #: rows only the events lane can carry (an email, a mobile, a token)
    events_chain: int  #: the most of those one customer has
    batch_rows: int  #: rows a batch job can carry
    #: customer -> its batch rows, for the customers busy enough to be worth moving, busiest
    #: first; the rest have fewer than :func:`routing_floor` rows
    busiest: Mapping[str, int]
    #: the most batch rows any customer not in ``busiest`` may have
    others_chain: int = 0


def routing_floor(batch_rows: int, costs: LaneCosts) -> int:
    """Below this many rows a customer's chain fits in the batch lane's own least time, so
    moving it cannot shorten the run: only customers at or above it need an exact count."""
    least = batch_seconds(batch_rows, 0, costs)
    return max(2, math.floor(least / costs.cycle) + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Routing:
    """Which customers' rows take the events lane, and what each lane is expected to take."""

    customers: frozenset[str]  #: customers whose every row takes the events lane
    #: the busiest customers' batch rows in all (the lanes send the busiest first)
    rows: Mapping[str, int]
    events_rows: int
    batch_rows: int
    events_seconds: float
    batch_seconds: float
    costs: LaneCosts
    #: rows from which a customer left in the batch lane has a long chain (one whose row
    #: waiting most of an events window would make it outlast the run), whose events-lane
    #: rows get places kept in the events window; None: no customer has one
    chain_priority: int | None = None

    @property
    def seconds(self) -> float:
        """The run's expected time: the longer lane's."""
        return max(self.events_seconds, self.batch_seconds)


def route(loads: Loads, costs: LaneCosts, *, keep_order: bool = True) -> Routing:
    """Move the busiest customers to the events lane, busiest first, as far as that shortens
    the run (the best prefix of the busiest, ties going to fewer moved)."""
    ranked = sorted(loads.busiest.items(), key=lambda item: -item[1])
    if not keep_order:  # a customer may ride many jobs at once: no chain to shorten
        ranked = []
    events_rows, events_chain = loads.events_rows, loads.events_chain
    batch_rows = loads.batch_rows
    rest_chain = [count for _, count in ranked[1:]] + [loads.others_chain]
    first = ranked[0][1] if ranked else loads.others_chain

    def lanes(e_rows: int, e_chain: int, b_rows: int, b_chain: int) -> tuple[float, float]:
        return (
            events_seconds(e_rows, e_chain, costs),
            batch_seconds(b_rows, b_chain if keep_order else 1, costs),
        )

    best = lanes(events_rows, events_chain, batch_rows, first)
    moved = 0
    for index, (_, count) in enumerate(ranked):
        events_rows += count
        events_chain = max(events_chain, count)
        batch_rows -= count
        trial = lanes(events_rows, events_chain, batch_rows, rest_chain[index])
        if max(trial) < max(best):
            best, moved = trial, index + 1
    e_rows = loads.events_rows + sum(count for _, count in ranked[:moved])
    longest = rest_chain[moved - 1] if moved else first
    # A chain is long when a row of it waiting most of an events window (which short chains
    # fill in its first seconds) would make it outlast the run.
    long_chain = max(2, math.ceil((max(best) - costs.events_limits.window) / costs.cycle))
    return Routing(
        customers=frozenset(customer for customer, _ in ranked[:moved]),
        rows=dict(loads.busiest),
        events_rows=e_rows,
        batch_rows=loads.events_rows + loads.batch_rows - e_rows,
        events_seconds=best[0],
        batch_seconds=best[1],
        costs=costs,
        chain_priority=long_chain if keep_order and longest >= long_chain else None,
    )
