"""What the emulator remembers and shows: the events and orders it accepted, the points they
earned, and its counters.

:class:`State` is everything :meth:`Emulator.reset` forgets; :class:`Records` is the part of
:class:`~gb_backfill.Emulator` that reads it (``events()``, ``orders()``, ``awards()``, their
Parquet files, and ``GET /_emulator/events``).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import _gameball as gameball
from .campaigns import Tally
from .wire import RateWindows, error, web

__all__ = ["RECORD_PATH", "OrderRow", "Records", "State", "orders_beside"]

#: where the emulator shows what it received (GET, with the APIKey header)
RECORD_PATH = "/_emulator/events"

_EVENT_COLUMNS = [
    "customer_id", "event_name", "metadata", "email", "mobile", "api_version", "session_token",
    "received_at",
]  # fmt: skip
_ORDER_COLUMNS = [
    "customer_id", "order_id", "order_date", "total_paid", "email", "mobile", "extra", "order",
    "api_version", "received_at", "cashback_points",
]  # fmt: skip


def orders_beside(events_path: str | os.PathLike[str]) -> str:
    """Where ``gb-backfill emulator --record PATH`` writes the orders: ``NAME.orders.parquet``
    beside PATH."""
    path = Path(events_path)
    return str(path.with_name(f"{path.stem}.orders{path.suffix or '.parquet'}"))


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One accepted order: the body as sent, how it came (``4.0``, ``4.1`` or ``batch``), when,
    its cashback points, and the row of its ``place_order`` event in the events' record."""

    body: dict[str, Any]
    api_version: str
    received_at: float
    cashback_points: int
    event_row: int

    def values(self) -> tuple[Any, ...]:
        body = self.body
        return (
            body["customerId"], body["orderId"], body["orderDate"], body["totalPaid"],
            body.get("email"), body.get("mobile"), body.get("extra"), body, self.api_version,
            self.received_at, self.cashback_points,
        )  # fmt: skip


@dataclass
class State:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    windows: RateWindows = field(default_factory=RateWindows)
    busy: set[tuple[str, str]] = field(default_factory=set)
    requests: int = 0
    # Customers with a live event, each with what its events did to each campaign (by id).
    standings: dict[str, dict[int, Tally]] = field(default_factory=dict)
    # The points each accepted event earned, by its row in ``events``; only those above 0.
    points: dict[int, int] = field(default_factory=dict)
    orders: list[OrderRow] = field(default_factory=list)
    # (API key, orderId) of every accepted order: a second one is refused as a duplicate.
    order_ids: set[tuple[str, str]] = field(default_factory=set)


class Records:
    """What the emulator accepted, read under its lock. A part of :class:`Emulator`."""

    api_key: str
    _lock: threading.Lock
    _state: State

    @property
    def counters(self) -> Counter[str]:
        """How many answers of each kind were given (``accepted``, ``rate_limited``, ...)."""
        with self._lock:
            return Counter(self._state.counters)

    def events(self) -> pd.DataFrame:
        """Every accepted event, one row per event, in the order they were processed (an
        order's ``place_order`` event too)."""
        with self._lock:
            rows = list(self._state.events)
        events = pd.DataFrame(rows, columns=_EVENT_COLUMNS)
        events["received_at"] = pd.to_datetime(events["received_at"], unit="s", utc=True)
        return events

    def write_events(self, path: str | os.PathLike[str]) -> int:
        """Write every accepted event to a Parquet file (metadata as JSON text); returns the
        number of events."""
        events = self.events()
        events["metadata"] = events["metadata"].map(lambda m: json.dumps(m, sort_keys=True))
        events.to_parquet(path, index=False)
        return len(events)

    def orders(self) -> pd.DataFrame:
        """Every accepted order, one row per order, in the order they were processed:
        customer_id, order_id, order_date (as sent), total_paid, email, mobile, extra, order
        (the whole body), api_version (``batch`` for a batch item), received_at, and the points
        it earned: cashback_points, campaign_points (its ``place_order`` event's) and points,
        their sum."""
        with self._lock:
            rows = [order.values() for order in self._state.orders]
            campaign = [self._state.points.get(o.event_row, 0) for o in self._state.orders]
        orders = pd.DataFrame(rows, columns=_ORDER_COLUMNS)
        orders["received_at"] = pd.to_datetime(orders["received_at"], unit="s", utc=True)
        orders["cashback_points"] = orders["cashback_points"].astype("int64")
        orders["campaign_points"] = pd.Series(campaign, dtype="int64")
        orders["points"] = orders["cashback_points"] + orders["campaign_points"]
        return orders

    def write_orders(self, path: str | os.PathLike[str]) -> int:
        """Write every accepted order to a Parquet file (``extra`` and ``order`` as JSON text);
        returns the number of orders."""
        orders = self.orders()
        for column in ("extra", "order"):
            orders[column] = orders[column].map(lambda v: json.dumps(v, sort_keys=True))
        orders.to_parquet(path, index=False)
        return len(orders)

    def awards(self) -> pd.DataFrame:
        """The points each accepted event earned from the campaigns when it arrived, one row
        per row of :meth:`events`, in the same order: customer_id, event_name, points."""
        with self._lock:
            rows = [row[:2] for row in self._state.events]
            points = dict(self._state.points)
        awards = pd.DataFrame(rows, columns=["customer_id", "event_name"])
        awards["points"] = pd.Series([points.get(n, 0) for n in range(len(rows))], dtype="int64")
        return awards

    def reset(self) -> None:
        """Forget recorded events and orders, counters, rate-limit windows and what customers
        achieved."""
        with self._lock:
            self._state = State()

    async def _record_view(self, request: web.Request) -> web.StreamResponse:
        """``GET /_emulator/events`` (with the APIKey header): what it received, as JSON."""
        if request.headers.get(gameball.API_KEY_HEADER) != self.api_key:
            return error(
                401,
                gameball.UNAUTHORIZED,
                "Unauthorized: the APIKey header is missing or wrong.",
                0,
            )
        with self._lock:
            rows = list(self._state.events)
            orders = [order.values() for order in self._state.orders]
            counters = dict(self._state.counters)
        events = [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows]
        listed = [dict(zip(_ORDER_COLUMNS, row, strict=True)) for row in orders]
        return web.json_response({"counters": counters, "events": events, "orders": listed})
