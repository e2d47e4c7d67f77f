"""The lanes: each carries rows to one kind of Gameball endpoint, within that endpoint's limits.

All of them share one interface and one delivery loop (:mod:`.base`): retries, backoff, the
429/2001 pacing, the breaker, and what a stop means for each row are written once.

* :class:`EventsLane` (:mod:`.events`): one request per row to ``/integrations/events``;
* :class:`BatchLane` (:mod:`.batch`): jobs of up to 1,000 rows, whose status is read (:mod:`.jobs`)
  until they end;
* :class:`OrdersLane` and :class:`BatchOrdersLane` (:mod:`.orders`): orders, one per request
  or in jobs, idempotent by ``orderId`` (a duplicate refusal is ``sent``, a lost answer retried);
* :class:`QuoteLane` (:mod:`.quotes`): one request per sampled row to the reward preview, whose
  answers go to a :class:`QuoteBook` instead of the ledger.
"""

from .base import BaseLane
from .batch import BatchLane
from .events import EventsLane
from .jobs import settle_earlier_jobs
from .orders import BatchOrdersLane, OrdersLane, orders_lanes
from .quotes import QuoteBook, QuoteLane

__all__ = [
    "BaseLane", "BatchLane", "BatchOrdersLane", "EventsLane", "OrdersLane", "QuoteBook",
    "QuoteLane", "orders_lanes", "settle_earlier_jobs",
]  # fmt: skip
