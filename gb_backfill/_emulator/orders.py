"""The emulator's orders: purchase history at its real date (``shared/docs/gameball-api.md`` §6c).

* ``POST /api/v{4.0,4.1}/integrations/orders``: one order. Both keys, always (the OpenAPI file:
  "Requires both apikey and secretkey"). Required ``customerId``, ``orderId``, ``orderDate``
  and ``totalPaid`` (missing: 400, code 3000); the other fields typed as the OpenAPI file types
  them (422, code 3003, naming the field), and stricter where its prose is: ``orderDate`` in UTC
  ("Must be in UTC (ISO 8601 format)", ``Z`` or ``+00:00``), ``extra`` values strings, the
  order's totals numbers of at least 0. An unknown customer is created. An ``orderId`` already
  accepted for the key is refused: 422 with :attr:`OrderSettings.duplicate_code` (9004
  "Transaction ID Already Exists" unless told otherwise). The answer: ``{customerId,
  redeemedPoints, rewardedPoints, lineItems}``.
* ``POST /api/v4.0/integrations/batch/orders``: ``{"body": [order, ...]}``, up to 1,000, the
  same jobs and status shapes as batch events (:mod:`.batch`); each item is checked and recorded
  as above, a bad or duplicate one listed in ``failed`` with its reason.
* ``POST /api/v{4.0,4.1}/integrations/orders/reward-preview``: the read-only quote: ``totalPaid``
  required (and every amount at least 0: 400 otherwise); answers ``{customerId, customerFound,
  totalPoints, totalCoupons, cashback, eventRewards}``. ``eventRewards`` is the ``place_order``
  event's quote from the campaigns (as the events' preview gives it), or null when the customer
  does not exist; ``totalPoints`` is the cashback plus the campaigns' points.

Every accepted order is recorded (``Emulator.orders()``) and also as a ``place_order`` event
(``Emulator.events()``) whose metadata is the order's ``extra``, its totals, its ``channel`` and
``order_id``; that event achieves the campaigns listening to ``place_order``, so a campaign with
``PointsPerUnit(of="totalPaid")`` awards points on ``totalPaid``. A preview's metadata has no
``order_id`` (Gameball's preview has no order id either). Campaigns are evaluated when the order
arrives, whatever its ``orderDate``: Gameball does not document what a past date changes.
Cashback (:attr:`OrderSettings.cashback`) is points per unit of ``totalPaid``, the same in a
quote and a live order. Orders meet the events' faults (server errors, dropped connections,
lost answers, 2001 for a customer with a request in progress) and their own limits.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeGuard

from .. import _gameball as gameball
from .._errors import ConfigError
from .batch import Operation
from .campaigns import Campaigns, PointsPerUnit
from .faults import Faults
from .record import OrderRow, State
from .wire import ORDERS_GATE, ORDERS_PREVIEW_GATE, Gate, error, web

__all__ = ["CHANNELS", "OrderEndpoints", "OrderSettings", "order_problem", "preview_problem"]

#: The channels the OpenAPI file lists for an order.
CHANNELS = ("mobile", "pos", "web", "callcenter")
_DUPLICATE_MESSAGES = {
    gameball.TRANSACTION_ID_EXISTS: "Transaction ID Already Exists",
    gameball.TRANSACTION_TIME_EXISTS: "Transaction Time Already Exists",
}
_TOTALS = ("totalPaid", "totalPrice", "totalDiscount", "totalShipping", "totalTax")
# RFC 3339 (the OpenAPI's date-time) in UTC: seconds required, a fraction allowed.
_UTC_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)\Z")
_ORDER_DATE_RULE = "must be in UTC (ISO 8601 format), e.g. 2024-10-16T08:13:29.290Z"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSettings:
    """How the emulator's orders behave beyond the documented rules.

    ``cashback``: points per unit of an order value, e.g. ``PointsPerUnit(points=1, per=10,
    of="totalPaid")`` (None: no cashback), awarded by a live order and quoted by the preview.
    ``duplicate_code``: the code of the 422 refusing a reused ``orderId``: 9004 (the default)
    or 9003, as Gameball documents both; any other code answers with a message that only says
    the order exists (``Order 'A-1' already exists.``). Their endpoint's limits are the
    emulator's ``orders_limits=``.
    """

    cashback: PointsPerUnit | None = None
    duplicate_code: int = gameball.TRANSACTION_ID_EXISTS

    def __post_init__(self) -> None:
        if self.cashback is not None and not isinstance(self.cashback, PointsPerUnit):
            raise ConfigError(
                'cashback is PointsPerUnit(points=..., per=..., of="totalPaid") or None'
            )
        if isinstance(self.duplicate_code, bool) or not isinstance(self.duplicate_code, int):
            raise ConfigError("duplicate_code is a Gameball error code, e.g. 9004 or 9003")

    def cashback_points(self, order: Mapping[str, Any]) -> int:
        cashback = self.cashback
        return 0 if cashback is None else cashback.units(order) * cashback.points

    def duplicate(self, order_id: str) -> tuple[int, str]:
        """The code and message refusing a reused ``order_id``."""
        code = self.duplicate_code
        return code, _DUPLICATE_MESSAGES.get(code, f"Order {order_id!r} already exists.")


# --- the payload rules -------------------------------------------------------------------------

# A field's rule: a type, "amount" (a number of at least 0), "number", "strings" (an object of
# string values), "object" (any object), an enum (a tuple), a list of one rule (an array of it),
# or a dict of rules (an object whose listed fields follow them). None is never a value.
_LINE_ITEM = {
    "productId": str, "quantity": "number", "price": "number", "sku": str, "tags": [str],
    "category": [str], "weight": "number", "vendor": str, "collection": [str], "title": str,
    "taxes": "number", "discount": "number", "extra": "object",
}  # fmt: skip
_ORDER: dict[str, Any] = {
    "customerId": str, "email": str, "mobile": str, "orderId": str, "orderDate": str,
    **dict.fromkeys(_TOTALS, "amount"), "lineItems": [_LINE_ITEM],
    "redemption": {"pointsHoldReference": str, "couponsLockReference": str, "couponCodes": [str]},
    "extra": "strings",
    "merchant": {"uniqueId": str, "name": str, "branch": {"uniqueId": str, "name": str}},
    "guest": bool, "channel": CHANNELS, "cartId": str,
    "cashbackConfigurations": {"returnWindow": "days"},
}  # fmt: skip
# The preview's: every amount at least 0, lineItems' too; no orderId or orderDate.
_PREVIEW_LINE_ITEM = {
    **_LINE_ITEM,
    **{k: "amount" for k, rule in _LINE_ITEM.items() if rule == "number"},
}
_PREVIEW: dict[str, Any] = {
    "customerId": str, "email": str, "mobile": str, **dict.fromkeys(_TOTALS, "amount"),
    "lineItems": [_PREVIEW_LINE_ITEM], "merchant": _ORDER["merchant"], "channel": str,
    "extra": "object",
}  # fmt: skip


def _number(value: object) -> TypeGuard[int | float]:
    """A JSON number: an int or a finite float, never a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _rule_problem(value: object, rule: Any, where: str) -> str | None:
    """Why ``value`` breaks ``rule`` (a message naming ``where``), or None."""
    if rule in (str, bool):
        kind = "a string" if rule is str else "true or false"
        return None if type(value) is rule else f"{where} must be {kind}."
    if rule in ("number", "amount"):
        if not _number(value):
            return f"{where} must be a number."
        return f"{where} must be at least 0." if rule == "amount" and value < 0 else None
    if rule == "days":
        good = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7300
        return None if good else f"{where} must be a whole number of days from 0 to 7300."
    if isinstance(rule, tuple):
        return None if value in rule else f"{where} must be one of {', '.join(rule)}."
    if isinstance(rule, list):
        if not isinstance(value, list):
            return f"{where} must be an array."
        problems = (_rule_problem(v, rule[0], f"{where}[{n}]") for n, v in enumerate(value))
        return next((p for p in problems if p), None)
    if not isinstance(value, dict):
        return f"{where} must be an object."
    if rule == "strings":
        bad = next((k for k, v in value.items() if not isinstance(v, str)), None)
        return None if bad is None else f"{where}.{bad} must be a string (extra values are)."
    if rule == "object":
        return None
    return _fields_problem(value, rule, f"{where}.")


def _fields_problem(body: Mapping[str, Any], rules: Mapping[str, Any], prefix: str) -> str | None:
    for name, rule in rules.items():
        if name in body:
            problem = _rule_problem(body[name], rule, f"{prefix}{name}")
            if problem:
                return problem
    return None


def order_problem(body: object) -> tuple[int, int, str] | None:
    """(status, code, message) when an order breaks the rules (see the module), else None."""
    if not isinstance(body, dict):
        return 400, gameball.MALFORMED_JSON, "The request body must be a JSON object."
    for name in gameball.ORDER_REQUIRED_FIELDS:
        if body.get(name) is None:
            return 400, gameball.MISSING_ARGUMENT, f"The {name} field is required."
    problem = _fields_problem(body, _ORDER, "")
    if problem is None:
        for name in ("customerId", "orderId"):
            if not body[name].strip():
                problem = f"{name} must not be empty."
    if problem is None and not _utc_date_time(body["orderDate"]):
        problem = f"orderDate {_ORDER_DATE_RULE}, not {body['orderDate']!r}."
    return None if problem is None else (422, gameball.INVALID_VALUE, problem)


def _utc_date_time(text: str) -> bool:
    if not _UTC_DATE_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # a month 13, a February 30
        return False
    return True


def item_problem(item: object) -> str | None:
    """Why a batch item cannot be processed (``"3003: ..."``), or None."""
    problem = order_problem(item)
    return None if problem is None else f"{problem[1]}: {problem[2]}"


def preview_problem(body: object) -> tuple[int, str] | None:
    """``(code, message)`` when an order preview's body is answered 400, else None."""
    if not isinstance(body, dict):
        return gameball.MALFORMED_JSON, "The request body must be a JSON object."
    if body.get("totalPaid") is None:
        return gameball.MISSING_ARGUMENT, "The totalPaid field is required."
    problem = _fields_problem(body, _PREVIEW, "")
    customer = body.get("customerId")
    if problem is None and customer is not None and len(customer) > gameball.MAX_CUSTOMER_ID:
        problem = f"customerId must be at most {gameball.MAX_CUSTOMER_ID} characters."
    for number, line in enumerate(body.get("lineItems") or [] if problem is None else []):
        if line.get("discount", 0) > line.get("price", 0) * line.get("quantity", 1):
            problem = problem or f"lineItems[{number}].discount must not exceed the line's total."
    return None if problem is None else (gameball.INVALID_VALUE, problem)


def place_order_metadata(order: Mapping[str, Any], *, order_id: bool = True) -> dict[str, Any]:
    """The metadata of the ``place_order`` event an order makes: its ``extra``, its totals and
    its ``channel``, and ``order_id`` (not in a preview)."""
    metadata = dict(order.get("extra") or {})
    metadata.update((name, order[name]) for name in (*_TOTALS, "channel") if name in order)
    if order_id:
        metadata["order_id"] = order["orderId"]
    return metadata


# --- the endpoints -----------------------------------------------------------------------------


class Host(Protocol):
    """What the orders use of their :class:`~gb_backfill.Emulator`."""

    faults: Faults
    order_settings: OrderSettings
    _lock: threading.Lock
    _state: State
    _campaigns: Campaigns
    _preview_random: random.Random

    def _count(self, kind: str) -> None: ...
    def _next_request(self) -> int: ...
    async def _arrive(self) -> None: ...
    def _award(self, customer: str, events: Mapping[str, Any]) -> None: ...
    def customer_exists(self, customer_id: str) -> bool: ...
    async def _admitted(
        self, request: web.Request, request_id: int, gate: Gate
    ) -> tuple[str, Any] | web.StreamResponse: ...
    async def _process(
        self,
        request: web.Request,
        customer: str,
        request_id: int,
        accept: Callable[[], dict[str, Any] | web.Response],
        prefix: str = "",
    ) -> web.StreamResponse: ...


def quote_order(host: Host, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The order preview's 200 answer for ``body``; ConfigError for a body answered 400."""
    problem = preview_problem(body)
    if problem:
        raise ConfigError(f"the order preview would answer 400: {problem[1]}")
    cashback = host.order_settings.cashback_points(body)
    customer = body.get("customerId")
    found = customer is not None and host.customer_exists(customer)
    rewards: dict[str, Any] | None = None
    if found and customer is not None:
        with host._lock:
            campaigns, standing = host._campaigns, dict(host._state.standings.get(customer, {}))
        # Gameball knows place_order whether or not a campaign listens to it.
        known = Campaigns.of(campaigns, {gameball.PLACE_ORDER_EVENT})
        events = {gameball.PLACE_ORDER_EVENT: place_order_metadata(body, order_id=False)}
        quoted = known.quote({"customerId": customer, "events": events}, standing, now=now)
        rewards = quoted["events"][0]
    campaigns_won = rewards["campaigns"] if rewards else []
    return {
        "customerId": customer,
        "customerFound": found,
        "totalPoints": cashback + (rewards["totalPoints"] if rewards else 0),
        "totalCoupons": sum(c["timesAchieved"] for c in campaigns_won if c["couponType"]),
        "cashback": {"totalPoints": cashback, "totalScore": cashback, "lineItems": []},
        "eventRewards": rewards,
    }


class OrderEndpoints:
    """The orders' handlers, on their emulator. Strictly private."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.batch_operation = Operation(
            item_problem, self._record_item, ("customerId", "orderId"), "Order processed"
        )

    def record(self, api_key: str, order: dict[str, Any], via: str) -> OrderRow | None:
        """Record a checked order and its ``place_order`` event, awarding its points; None when
        its ``orderId`` was accepted before for ``api_key``."""
        host = self.host
        cashback = host.order_settings.cashback_points(order)
        metadata = place_order_metadata(order)
        customer = order["customerId"]
        with host._lock:
            state = host._state
            if (api_key, order["orderId"]) in state.order_ids:
                return None
            state.order_ids.add((api_key, order["orderId"]))
            now = time.time()
            event = (customer, gameball.PLACE_ORDER_EVENT, metadata, order.get("email"),
                     order.get("mobile"), via, None, now)  # fmt: skip
            state.events.append(event)
            host._award(customer, {gameball.PLACE_ORDER_EVENT: metadata})
            row = OrderRow(order, via, now, cashback, len(state.events) - 1)
            state.orders.append(row)
        return row

    def _record_item(self, api_key: str, item: dict[str, Any]) -> str | None:
        if self.record(api_key, item, "batch") is not None:
            return None
        self.host._count("orders_duplicate")
        code, message = self.host.order_settings.duplicate(item["orderId"])
        return f"{code}: {message}"

    async def track(self, request: web.Request) -> web.StreamResponse:
        """``POST .../orders``: one order, through the events' faults."""
        host = self.host
        await host._arrive()
        request_id = host._next_request()
        admitted = await host._admitted(request, request_id, ORDERS_GATE)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        version, body = admitted
        problem = order_problem(body)
        if problem:
            host._count("orders_bad_request")
            return error(*problem, request_id)
        api_key = request.headers[gameball.API_KEY_HEADER]

        def accept() -> dict[str, Any] | web.Response:
            row = self.record(api_key, body, version)
            if row is None:
                host._count("orders_duplicate")
                return error(422, *host.order_settings.duplicate(body["orderId"]), request_id)
            return {
                "customerId": body["customerId"],
                "redeemedPoints": 0,
                "rewardedPoints": row.cashback_points,
                "lineItems": [],
            }

        return await host._process(request, body["customerId"], request_id, accept, "orders_")

    async def preview(self, request: web.Request) -> web.StreamResponse:
        """``POST .../orders/reward-preview``: a quote with no side effects. Of the faults,
        only latency."""
        host = self.host
        request_id = host._next_request()
        admitted = await host._admitted(request, request_id, ORDERS_PREVIEW_GATE)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        _, body = admitted
        problem = preview_problem(body)
        if problem:
            host._count("order_preview_bad_request")
            return error(400, *problem, request_id)
        faults = host.faults
        if faults.latency or faults.jitter:
            await asyncio.sleep(faults.latency + host._preview_random.random() * faults.jitter)
        answer = quote_order(host, body, datetime.now(UTC))
        host._count("order_preview_ok")
        return web.json_response(answer)
