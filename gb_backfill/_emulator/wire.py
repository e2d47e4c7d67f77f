"""What the emulator speaks on the wire: its routes, Gameball's error body, the payload rules,
and the sliding windows its rate limits count in.

aiohttp is the emulator's extra (``pip install 'gb-backfill[emulator]'``): without it ``web`` is
None and building an :class:`~gb_backfill.Emulator` says what to install.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .. import _gameball as gameball
from .._config import RateLimits

try:
    from aiohttp import web
except ModuleNotFoundError as missing:  # a core install: the emulator is an extra
    if missing.name != "aiohttp":
        raise
    web = None  # type: ignore[assignment]  # Emulator() says what to install

__all__ = [
    "EVENTS_GATE", "NEEDS_AIOHTTP", "ORDERS_GATE", "ORDERS_PREVIEW_GATE", "PREVIEW_GATE", "Gate",
    "RateWindows", "SlidingWindow",
    "authenticate", "error", "payload_problem", "route", "share_draw", "web",
]  # fmt: skip

#: What using the emulator without its extra says.
NEEDS_AIOHTTP = (
    "the emulator needs aiohttp, which `pip install gb-backfill` leaves out: "
    "pip install 'gb-backfill[emulator]'"
)

_EVENTS_PATHS = {gameball.EVENTS_PATH.format(version=v): v for v in gameball.API_VERSIONS}
_PREVIEW_PATHS = {gameball.PREVIEW_PATH.format(version=v): v for v in gameball.API_VERSIONS}
_ORDERS_PATHS = {gameball.ORDERS_PATH.format(version=v): v for v in gameball.API_VERSIONS}
_ORDERS_PREVIEW_PATHS = {
    gameball.ORDERS_PREVIEW_PATH.format(version=v): v for v in gameball.API_VERSIONS
}


@dataclass(frozen=True, slots=True)
class Gate:
    """An endpoint's paths, its rate-limit kind, and the counters its refusals go under."""

    paths: Mapping[str, str]
    kind: str
    unsupported: str
    unauthorized: str
    rate_limited: str
    malformed: str
    #: the SecretKey is required in every version (orders: "Requires both apikey and secretkey")
    secret_always: bool = False


EVENTS_GATE = Gate(
    _EVENTS_PATHS, "events", "unsupported_media_type", "unauthorized", "rate_limited", "bad_request"
)
PREVIEW_GATE = Gate(
    _PREVIEW_PATHS, "preview", "preview_bad_request", "preview_unauthorized",
    "rate_limited_preview", "preview_bad_request",
)  # fmt: skip
ORDERS_GATE = Gate(
    _ORDERS_PATHS, "orders", "orders_bad_request", "orders_unauthorized", "rate_limited_orders",
    "orders_bad_request", secret_always=True,
)  # fmt: skip
#: The order reward preview shares the "others" row's limits with the events' preview.
ORDERS_PREVIEW_GATE = Gate(
    _ORDERS_PREVIEW_PATHS, "preview", "order_preview_bad_request", "order_preview_unauthorized",
    "rate_limited_preview", "order_preview_bad_request",
)  # fmt: skip


def route(path: str) -> str:
    """An API path as an aiohttp route: its version (``v4.0``) as a match."""
    return path.replace("v{version}", "{version}")


_DOCS = "https://docs.gameball.co/api-reference/overview/status-error-codes"


class SlidingWindow:
    """At most ``limit`` admissions in any ``period`` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until one more admission fits; 0 when it fits now."""
        while self.times and self.times[0] <= now - self.period:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.times[0] + self.period - now


def error(status: int, code: int, message: str, request_id: int) -> web.Response:
    body = {
        "code": code,
        "type": web.Response(status=status).reason,
        "message": message,
        "documentationUrl": _DOCS,
        "requestId": str(request_id),
    }
    return web.json_response(body, status=status)


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def payload_problem(body: object) -> tuple[int, int, str] | None:
    """(status, code, message) when the body breaks the payload rules."""
    if not isinstance(body, dict):
        return 400, gameball.MALFORMED_JSON, "The request body must be a JSON object."
    customer = body.get("customerId")
    if customer is None:
        return 400, gameball.MISSING_ARGUMENT, "The customerId field is required."
    if not isinstance(customer, str) or not customer.strip():
        return 422, gameball.INVALID_VALUE, "customerId must be a non-empty string."
    events = body.get("events")
    if events is None or events == {}:
        return 400, gameball.MISSING_ARGUMENT, "At least one event is required."
    if not isinstance(events, dict):
        return 422, gameball.INVALID_VALUE, "events must be an object of event name to metadata."
    for name, metadata in events.items():
        if not name.strip():
            return 422, gameball.INVALID_VALUE, "Event names must not be empty."
        if not isinstance(metadata, dict):
            return 422, gameball.INVALID_VALUE, f"The metadata of event {name!r} must be an object."
        for key, value in metadata.items():
            if not _scalar(value):
                return (
                    422,
                    gameball.INVALID_VALUE,
                    f"Metadata {key!r} of event {name!r} must be a scalar value.",
                )
    for optional in ("email", "mobile"):
        if body.get(optional) is not None and not isinstance(body[optional], str):
            return 422, gameball.INVALID_VALUE, f"{optional} must be a string."
    return None


def share_draw(customer_id: str) -> float:
    """A stable draw in [0, 1) for a customer id: an id exists in every run, or in none."""
    digest = hashlib.sha256(f"gb-emulator-customer:{customer_id}".encode(errors="replace"))
    return int.from_bytes(digest.digest()[:8], "big") / 2**64


class Keyed(Protocol):
    """What :func:`authenticate` checks a request's keys against."""

    api_key: str
    secret_key: str
    high_security: bool


def authenticate(
    headers: Mapping[str, str], version: str, keys: Keyed, *, secret_always: bool = False
) -> tuple[int, int, str] | None:
    """(status, code, message) when the keys in ``headers`` do not open an events or preview
    endpoint of ``version``: ``APIKey`` always, ``SecretKey`` on v4.1 (a session token may stand
    in for it) and in High Security Mode; ``secret_always``: ``SecretKey`` always (orders)."""
    api_key = headers.get(gameball.API_KEY_HEADER)
    if not api_key or api_key != keys.api_key:
        return (
            401,
            gameball.UNAUTHORIZED,
            "Unauthorized: the APIKey header is missing or wrong.",
        )
    token = headers.get(gameball.SESSION_TOKEN_HEADER)
    needs_secret = version == "4.1" or keys.high_security or secret_always
    secret = headers.get(gameball.SECRET_KEY_HEADER)
    if version == "4.1" and token and not secret_always:
        return None
    if needs_secret and not secret:
        return 401, gameball.SECRET_KEY_REQUIRED, "A SecretKey is required for this request."
    if secret is not None and secret != keys.secret_key:
        return 401, gameball.UNAUTHORIZED, "Unauthorized: the SecretKey is wrong."
    return None


class RateWindows:
    """Each API key's sliding windows per kind of endpoint, as Gameball counts requests."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str], tuple[SlidingWindow, SlidingWindow]] = {}

    def admit(self, kind: tuple[str, str], limits: RateLimits, now: float) -> float:
        """Take a slot of ``kind`` (an API key and an endpoint) within ``limits``; returns 0,
        or the seconds until one frees (0 lifts a limit)."""
        windows = self.windows.get(kind)
        if windows is None:
            windows = (
                SlidingWindow(limits.per_second or 2**62, 1.0),
                SlidingWindow(limits.per_window or 2**62, limits.window),
            )
            self.windows[kind] = windows
        wait = max(w.wait(now) for w in windows)
        if wait == 0:
            for w in windows:
                w.times.append(now)
        return wait
