"""A local emulator of Gameball's events API, for the demo, notebooks and end-to-end tests.

It is a real HTTP server on loopback (aiohttp) that follows ``shared/docs/gameball-api.md``:

* ``POST /api/v4.0/integrations/events`` and ``POST /api/v4.1/integrations/events``;
* ``APIKey`` always; ``SecretKey`` on v4.1 (an ``X-GB-TOKEN`` session token may stand in for
  it) and on v4.0 when ``high_security`` is on. Errors use the JSON body
  ``{"code", "type", "message", "documentationUrl", "requestId"}``;
* the payload rules: ``customerId`` a non-empty string, ``events`` a non-empty object of name
  to metadata object, scalar metadata values;
* per-API-key rate limits, one :class:`RateLimits` per endpoint (events: 100 requests/s and
  1,200 per 30 s by default), answered with 429;
* another client of the same key (a live shop's storefront), whose requests take their places
  in the key's limits: a Poisson stream at a given rate, its 429s counted;
* 422 with code 2001 for a request about a customer whose earlier request is still running;
* seeded fault injection: latency, 500/503 before processing, dropped connections before
  processing, and requests processed whose answer is then lost (the case that makes blind
  retries double-count);
* the batch endpoints, asynchronous jobs of up to 1,000 events with their own limits, both
  documented status shapes and their faults (see :mod:`.batch`);
* the reward preview, ``POST /api/v4.0/integrations/events/reward-preview`` (and v4.1): a
  read-only quote from campaigns (see :mod:`.campaigns`), 404 for a customer it does
  not know, its own limits (30/s and 360 per 30 s by default); live events achieve campaigns
  exactly as quoted, and previews change nothing.

Every accepted event is recorded; :meth:`Emulator.events` returns them as a DataFrame and
:attr:`Emulator.counters` counts every kind of answer given.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import pandas as pd

from .. import _gameball as gameball
from .._config import BATCH_LIMITS, EVENTS_LIMITS, PREVIEW_LIMITS, STATUS_LIMITS, RateLimits
from .._errors import ConfigError
from .batch import BatchJobs, BatchSettings
from .campaigns import Campaign, Campaigns, Tally, preview_problem
from .faults import DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Faults

try:
    from aiohttp import web
except ModuleNotFoundError as missing:  # a core install: the emulator is an extra
    if missing.name != "aiohttp":
        raise
    web = None  # type: ignore[assignment]  # Emulator() says what to install

__all__ = ["RECORD_PATH", "Emulator"]

#: What using the emulator without its extra says.
NEEDS_AIOHTTP = (
    "the emulator needs aiohttp, which `pip install gb-backfill` leaves out: "
    "pip install 'gb-backfill[emulator]'"
)

_PATHS = {gameball.EVENTS_PATH.format(version=v): v for v in gameball.API_VERSIONS}
_PREVIEW_PATHS = {gameball.PREVIEW_PATH.format(version=v): v for v in gameball.API_VERSIONS}


@dataclass(frozen=True, slots=True)
class _Gate:
    """An endpoint's paths, its rate-limit kind, and the counters its refusals go under."""

    paths: Mapping[str, str]
    kind: str
    unsupported: str
    unauthorized: str
    rate_limited: str
    malformed: str


_EVENTS_GATE = _Gate(
    _PATHS, "events", "unsupported_media_type", "unauthorized", "rate_limited", "bad_request"
)
_PREVIEW_GATE = _Gate(
    _PREVIEW_PATHS, "preview", "preview_bad_request", "preview_unauthorized",
    "rate_limited_preview", "preview_bad_request",
)  # fmt: skip


def _route(path: str) -> str:
    """An API path as an aiohttp route: its version (``v4.0``) as a match."""
    return path.replace("v{version}", "{version}")


_DOCS = "https://docs.gameball.co/api-reference/overview/status-error-codes"
#: where the emulator shows what it received (GET, with the APIKey header)
RECORD_PATH = "/_emulator/events"

_EVENT_COLUMNS = [
    "customer_id",
    "event_name",
    "metadata",
    "email",
    "mobile",
    "api_version",
    "session_token",
    "received_at",
]


class _SlidingWindow:
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


@dataclass
class _State:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    windows: dict[tuple[str, str], tuple[_SlidingWindow, _SlidingWindow]] = field(
        default_factory=dict
    )
    busy: set[tuple[str, str]] = field(default_factory=set)
    requests: int = 0
    # Customers with a live event, each with what its events did to each campaign (by id).
    standings: dict[str, dict[int, Tally]] = field(default_factory=dict)
    # The points each accepted event earned, by its row in ``events``; only those above 0.
    points: dict[int, int] = field(default_factory=dict)


def _error(status: int, code: int, message: str, request_id: int) -> web.Response:
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


def _payload_problem(body: object) -> tuple[int, int, str] | None:
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


def _share_draw(customer_id: str) -> float:
    """A stable draw in [0, 1) for a customer id: an id exists in every run, or in none."""
    digest = hashlib.sha256(f"gb-emulator-customer:{customer_id}".encode(errors="replace"))
    return int.from_bytes(digest.digest()[:8], "big") / 2**64


class Emulator:
    """Gameball's events API on loopback.

    Use it as a context manager, which serves from a background thread::

        with Emulator(faults=Faults(latency=0.05)) as emu:
            send(df, base_url=emu.base_url, api_key=emu.api_key)
            emu.events()  # what was accepted

    Rate limits are per API key, a :class:`RateLimits` per endpoint: ``limits`` for events
    (Gameball's documented 100/s and 1,200 per 30 s), ``batch_limits`` for creating batch jobs
    and ``status_limits`` for reading their status (undocumented; Gameball's "others" and GET
    rows), ``preview_limits`` for the reward preview (the "others" row). ``per_second`` requests
    in any second and ``per_window`` in any ``window`` seconds; 0 lifts a limit, and
    ``RateLimits.unlimited()`` lifts both (``margin`` is the sender's slack: the emulator counts
    exactly). ``retry_after=True`` adds a
    ``Retry-After`` header to 429 answers with the real wait; a number of seconds sends that
    number always, whatever the limit (as a proxy or a gateway in front of an API may).
    ``background_rate`` runs another client of the same key, a live shop's storefront sending
    events at that many requests a second on average (a Poisson stream, seeded by
    ``faults.seed``): each takes its place in the key's events limits or is refused and not
    retried, counted as ``background_sent`` and ``background_rate_limited``; it records no
    event. ``batch`` sets the batch jobs' status shape, processing time and faults.

    The reward preview quotes from ``campaigns`` (a :class:`Campaigns`, e.g.
    ``Campaigns.from_json(path)``, or a list of :class:`Campaign`) and ``known_events``, event
    names Gameball knows without a campaign; other names are ``EventNotFound``. A customer
    exists once it has a live event, or when listed in ``customers``, or for an
    ``existing_share`` of ids (chosen by a stable hash of the id; 1 makes every customer
    exist); others answer 404.

    Without aiohttp (``pip install gb-backfill`` leaves it out) it raises :class:`ConfigError`
    naming ``pip install 'gb-backfill[emulator]'``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        high_security: bool = False,
        limits: RateLimits = EVENTS_LIMITS,
        batch_limits: RateLimits = BATCH_LIMITS,
        status_limits: RateLimits = STATUS_LIMITS,
        preview_limits: RateLimits = PREVIEW_LIMITS,
        retry_after: bool | float = False,
        background_rate: float = 0.0,
        faults: Faults | None = None,
        batch: BatchSettings | None = None,
        campaigns: Campaigns | Iterable[Campaign] = (),
        known_events: Iterable[str] = (),
        customers: Iterable[str] = (),
        existing_share: float = 0.0,
    ) -> None:
        if web is None:
            raise ConfigError(NEEDS_AIOHTTP)
        endpoints = {
            "limits": limits,
            "batch_limits": batch_limits,
            "status_limits": status_limits,
            "preview_limits": preview_limits,
        }
        for keyword, given in endpoints.items():
            if not isinstance(given, RateLimits):
                raise ConfigError(
                    f"{keyword}= takes gb_backfill.RateLimits(per_second=..., per_window=...), "
                    f"not {type(given).__name__} (RateLimits.unlimited() lifts them)"
                )
        seconds = isinstance(retry_after, int | float) and 0 < retry_after < math.inf
        if not (isinstance(retry_after, bool) or seconds):
            raise ConfigError("retry_after= is True, False or a number of seconds above 0")
        if not (isinstance(background_rate, int | float) and 0 <= background_rate < math.inf):
            raise ConfigError("background_rate= is requests per second, at least 0 (0: none)")
        if isinstance(customers, str):
            raise ConfigError("customers=... is a list of customer ids, not one string")
        if not 0 <= existing_share <= 1:
            raise ConfigError("existing_share is a share of customers from 0 to 1 (1: all exist)")
        self._campaigns = Campaigns.of(campaigns, known_events)
        self.customers = frozenset(customers)
        self.existing_share = existing_share
        self.limits, self.batch_limits = limits, batch_limits
        self.status_limits, self.preview_limits = status_limits, preview_limits
        self.host, self.port = host, port
        self.api_key, self.secret_key = api_key, secret_key
        self.high_security = high_security
        self.retry_after = retry_after
        self.background_rate = background_rate
        self._background: asyncio.Task[None] | None = None
        self.faults = faults or Faults()
        self.batch = batch or BatchSettings()
        self._jobs: BatchJobs | None = None
        self._random = random.Random(self.faults.seed)
        # Previews draw their jitter apart, so they never shift the events' seeded faults.
        self._preview_random = random.Random(self.faults.seed)
        self._state = _State()
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._runner else "not running"
        return f"<Emulator {where} accepted={self.counters.get('accepted', 0):,}>"

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The URL to pass as ``base_url`` to the sender, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    async def start_async(self) -> None:
        """Start serving on the running event loop."""
        app = web.Application(client_max_size=32 * 1024**2)
        tutorial_status, openapi_status = gameball.BATCH_STATUS_PATHS
        stop_by_delete, stop_by_post = gameball.BATCH_STOP_PATHS
        add = app.router
        add.add_post(_route(gameball.EVENTS_PATH), self._handle)
        add.add_post(_route(gameball.PREVIEW_PATH), self._preview)
        add.add_post(gameball.BATCH_CREATE_PATH, self._create_job)
        # The tutorial's status path, in any version (the client asks for /api/v4/...).
        add.add_get(tutorial_status.replace("/v4/", "/{version}/"), self._tutorial_status)
        add.add_delete(_route(stop_by_delete), self._stop_job)
        add.add_get(openapi_status, self._openapi_status)
        add.add_post(stop_by_post, self._stop_job)
        app.router.add_get(RECORD_PATH, self._record_view)
        self._jobs = BatchJobs(self.batch, self._record_item, self._count)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        if self.port == 0:  # the port the system picked
            self.port = self._runner.addresses[0][1]
        if self.background_rate:
            self._background = asyncio.create_task(self._background_client())

    async def stop_async(self) -> None:
        """Stop serving and close open connections."""
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
            self._background = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> Self:
        """Serve from a background thread; returns once the port is bound."""
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as error:  # reported to start()'s caller
                failure.append(error)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=serve, name="gb-emulator", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop the background server and wait for its thread."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what happened ---------------------------------------------------------------------

    @property
    def counters(self) -> Counter[str]:
        """How many answers of each kind were given (``accepted``, ``rate_limited``, ...)."""
        with self._lock:
            return Counter(self._state.counters)

    def events(self) -> pd.DataFrame:
        """Every accepted event, one row per event, in the order they were processed."""
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

    async def _record_view(self, request: web.Request) -> web.StreamResponse:
        """``GET /_emulator/events`` (with the APIKey header): what it received, as JSON."""
        if request.headers.get(gameball.API_KEY_HEADER) != self.api_key:
            return _error(
                401,
                gameball.UNAUTHORIZED,
                "Unauthorized: the APIKey header is missing or wrong.",
                0,
            )
        with self._lock:
            rows = list(self._state.events)
            counters = dict(self._state.counters)
        events = [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in rows]
        return web.json_response({"counters": counters, "events": events})

    def reset(self) -> None:
        """Forget recorded events, counters, rate-limit windows and what customers achieved."""
        with self._lock:
            self._state = _State()

    # --- the reward preview ------------------------------------------------------------------

    @property
    def campaigns(self) -> Campaigns:
        """The campaigns and known event names the preview quotes from."""
        return self._campaigns

    def set_campaigns(
        self, campaigns: Campaigns | Iterable[Campaign] = (), *, known_events: Iterable[str] = ()
    ) -> None:
        """Replace the campaigns and known event names, also while running. What customers
        achieved so far stays, by campaign id."""
        replacement = Campaigns.of(campaigns, known_events)
        with self._lock:
            self._campaigns = replacement

    def customer_exists(self, customer_id: str) -> bool:
        """Whether the preview knows the customer (else it answers 404): a live event accepted
        for it, listed in ``customers``, or in the ``existing_share`` of ids."""
        if customer_id in self.customers or _share_draw(customer_id) < self.existing_share:
            return True
        with self._lock:
            return customer_id in self._state.standings

    def quote(self, body: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
        """What the preview answers now for ``body`` and an existing customer, computed in
        process, consuming nothing: an exact oracle for tests. Raises ConfigError for a body
        the endpoint answers 400; :meth:`customer_exists` says when it answers 404 instead."""
        problem = preview_problem(body)
        if problem:
            raise ConfigError(f"the preview would answer 400: {problem[1]}")
        return self._quote(body, now or datetime.now(UTC))

    def awards(self) -> pd.DataFrame:
        """The points each accepted event earned from the campaigns when it arrived, one row
        per row of :meth:`events`, in the same order: customer_id, event_name, points."""
        with self._lock:
            rows = [row[:2] for row in self._state.events]
            points = dict(self._state.points)
        awards = pd.DataFrame(rows, columns=["customer_id", "event_name"])
        awards["points"] = pd.Series([points.get(n, 0) for n in range(len(rows))], dtype="int64")
        return awards

    def _quote(self, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        with self._lock:
            campaigns = self._campaigns
            standing = dict(self._state.standings.get(body["customerId"], {}))
        return campaigns.quote(body, standing, now=now)

    def _award(self, customer: str, events: Mapping[str, Any]) -> None:
        """Live events achieve campaigns as the preview quotes them. Call with the lock held,
        right after their rows were added to the record."""
        now = datetime.now(UTC)
        standing = self._state.standings.setdefault(customer, {})
        first_row = len(self._state.events) - len(events)
        for row, (name, metadata) in enumerate(events.items(), start=first_row):
            given = metadata if isinstance(metadata, dict) else {}
            points, changed = self._campaigns.award(name, given, standing, now=now)
            standing.update(changed)
            if points:
                self._state.points[row] = points

    # --- the API ---------------------------------------------------------------------------

    def _count(self, kind: str) -> None:
        with self._lock:
            self._state.counters[kind] += 1

    def _admit(self, api_key: str, kind: str = "events") -> float:
        """Take a rate-limit slot of ``kind`` for ``api_key``; returns 0, or the seconds until
        one frees. Kinds: ``events``, ``batch`` (job creation), ``status`` (job reads) and
        ``preview``."""
        now = time.monotonic()
        limits = {
            "events": self.limits,
            "batch": self.batch_limits,
            "status": self.status_limits,
            "preview": self.preview_limits,
        }[kind]
        with self._lock:
            windows = self._state.windows.get((api_key, kind))
            if windows is None:
                windows = (
                    _SlidingWindow(limits.per_second or 2**62, 1.0),
                    _SlidingWindow(limits.per_window or 2**62, limits.window),
                )
                self._state.windows[api_key, kind] = windows
            wait = max(w.wait(now) for w in windows)
            if wait == 0:
                for w in windows:
                    w.times.append(now)
            return wait

    async def _background_client(self) -> None:
        """Another client of the key: events requests at ``background_rate`` a second on
        average (a Poisson stream), each taking its place in the key's events limits or
        refused; a storefront may not retry a refused request, so none is retried."""
        draw = random.Random(f"background:{self.faults.seed}")
        due = time.monotonic()
        while True:
            due += draw.expovariate(self.background_rate)  # on schedule, however late the loop
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self._count("background_sent")
            if self._admit(self.api_key):
                self._count("background_rate_limited")

    def _retry_after(self, wait: float) -> str:
        """The Retry-After header's value for a refusal whose slot frees in ``wait`` seconds."""
        if self.retry_after is True:
            return str(max(1, round(wait + 0.5)))
        return f"{self.retry_after:g}"

    def _authenticate(self, request: web.Request, version: str) -> tuple[int, int, str] | None:
        api_key = request.headers.get(gameball.API_KEY_HEADER)
        if not api_key or api_key != self.api_key:
            return (
                401,
                gameball.UNAUTHORIZED,
                "Unauthorized: the APIKey header is missing or wrong.",
            )
        token = request.headers.get(gameball.SESSION_TOKEN_HEADER)
        needs_secret = version == "4.1" or self.high_security
        secret = request.headers.get(gameball.SECRET_KEY_HEADER)
        if version == "4.1" and token:
            return None
        if needs_secret and not secret:
            return 401, gameball.SECRET_KEY_REQUIRED, "A SecretKey is required for this request."
        if secret is not None and secret != self.secret_key:
            return 401, gameball.UNAUTHORIZED, "Unauthorized: the SecretKey is wrong."
        return None

    async def _admitted(
        self, request: web.Request, request_id: int, gate: _Gate
    ) -> tuple[str, Any] | web.StreamResponse:
        """What the events and preview endpoints check first, in Gameball's order: the path,
        the media type, the keys, the rate limit, the JSON. Returns the API version and the
        parsed body, or the error answer (counted under ``gate``'s names)."""
        version = gate.paths.get(request.path)
        if version is None:
            self._count("not_found")
            return _error(
                404, gameball.GENERIC_ERROR, f"No such endpoint: {request.path}", request_id
            )
        if request.content_type != "application/json":
            self._count(gate.unsupported)
            return _error(
                415, gameball.NOT_JSON, "The request body must be application/json.", request_id
            )
        problem = self._authenticate(request, version)
        if problem:
            self._count(gate.unauthorized)
            return _error(*problem, request_id)
        wait = self._admit(request.headers[gameball.API_KEY_HEADER], gate.kind)
        if wait:
            self._count(gate.rate_limited)
            response = _error(429, gameball.TOO_MANY_REQUESTS, "Too many requests.", request_id)
            if self.retry_after:
                response.headers["Retry-After"] = self._retry_after(wait)
            return response
        try:
            return version, json.loads(await request.read())
        except ValueError:
            self._count(gate.malformed)
            return _error(400, gameball.MALFORMED_JSON, "Malformed JSON.", request_id)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        faults = self.faults
        if faults.arrival_delay or faults.arrival_jitter:
            with self._lock:
                draw = self._random.random()
            await asyncio.sleep(faults.arrival_delay + draw * faults.arrival_jitter)
        request_id = self._next_request()
        admitted = await self._admitted(request, request_id, _EVENTS_GATE)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        version, body = admitted
        problem = _payload_problem(body)
        if problem:
            self._count("bad_request")
            return _error(*problem, request_id)
        return await self._process(request, body, version, request_id)

    async def _process(
        self, request: web.Request, body: dict[str, Any], version: str, request_id: int
    ) -> web.StreamResponse:
        customer_key = (request.headers[gameball.API_KEY_HEADER], body["customerId"])
        faults = self.faults
        with self._lock:
            if customer_key in self._state.busy:
                self._state.counters["concurrent"] += 1
                return _error(
                    422,
                    gameball.CONCURRENT_REQUEST,
                    "A request for this customer is already in progress.",
                    request_id,
                )
            self._state.busy.add(customer_key)
            draw, pick, jitter = (self._random.random() for _ in range(3))
        try:
            if draw < faults.server_errors:
                status = 500 if pick < 0.5 else 503
                self._count(f"server_error_{status}")
                return _error(status, status * 10, "Injected server error.", request_id)
            draw -= faults.server_errors
            if draw < faults.dropped_connections:
                self._count("dropped")
                return self._drop(request)
            draw -= faults.dropped_connections
            delay = faults.latency + jitter * faults.jitter
            if delay:
                await asyncio.sleep(delay)
            self._record(request, body, version)
        finally:
            with self._lock:
                self._state.busy.discard(customer_key)
        if draw < faults.lost_responses:
            self._count("lost_response")
            if faults.lost_mode == "drop":
                return self._drop(request)
            await asyncio.sleep(faults.slow_reply)
        else:
            self._count("accepted")
        return web.json_response({"success": True, "message": "Events processed"})

    def _drop(self, request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        # Nothing reaches the client after the abort; aiohttp discards this answer.
        return web.Response(status=499)

    async def _preview(self, request: web.Request) -> web.StreamResponse:
        """The reward preview: a quote with no side effects. Of the faults, only latency."""
        request_id = self._next_request()
        admitted = await self._admitted(request, request_id, _PREVIEW_GATE)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        _, body = admitted
        problem_400 = preview_problem(body)
        if problem_400:
            self._count("preview_bad_request")
            return _error(400, *problem_400, request_id)
        if not self.customer_exists(body["customerId"]):
            self._count("preview_not_found")
            return _error(404, gameball.CUSTOMER_NOT_FOUND, "Customer not found.", request_id)
        delay = self.faults.latency + self._preview_random.random() * self.faults.jitter
        if delay:
            await asyncio.sleep(delay)
        answer = self._quote(body, datetime.now(UTC))
        self._count("preview_ok")
        return web.json_response(answer)

    # --- batch jobs --------------------------------------------------------------------------

    def _record_item(self, api_key: str, item: dict[str, Any]) -> None:
        now = time.time()
        rows = [
            (item["customerId"], name, metadata, None, None, "batch", None, now)
            for name, metadata in item["events"].items()
        ]
        with self._lock:
            self._state.events.extend(rows)
            self._award(item["customerId"], item["events"])

    def _next_request(self) -> int:
        with self._lock:
            self._state.requests += 1
            return self._state.requests

    def _batch_gate(self, request: web.Request, kind: str, request_id: int) -> web.Response | None:
        """Authentication (APIKey and SecretKey, always) and the limits of ``kind``."""
        api_key = request.headers.get(gameball.API_KEY_HEADER)
        if not api_key or api_key != self.api_key:
            self._count("unauthorized")
            return _error(
                401,
                gameball.UNAUTHORIZED,
                "Unauthorized: the APIKey header is missing or wrong.",
                request_id,
            )
        if request.headers.get(gameball.SECRET_KEY_HEADER) != self.secret_key:
            self._count("unauthorized")
            return _error(
                401,
                gameball.SECRET_KEY_REQUIRED,
                "Batch APIs need the right SecretKey.",
                request_id,
            )
        wait = self._admit(api_key, kind)
        if wait:
            self._count(f"rate_limited_{kind}")
            response = _error(429, gameball.TOO_MANY_REQUESTS, "Too many requests.", request_id)
            if self.retry_after:
                response.headers["Retry-After"] = self._retry_after(wait)
            return response
        return None

    async def _create_job(self, request: web.Request) -> web.StreamResponse:
        request_id = self._next_request()
        refused = self._batch_gate(request, "batch", request_id)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            self._count("bad_request")
            return _error(400, gameball.MALFORMED_JSON, "Malformed JSON.", request_id)
        items = body.get("body") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 1 <= len(items) <= gameball.MAX_ITEMS_PER_JOB:
            self._count("bad_request")
            return _error(
                400,
                gameball.MISSING_ARGUMENT,
                f"body must be a list of 1 to {gameball.MAX_ITEMS_PER_JOB} items.",
                request_id,
            )
        limit = self.batch.max_item_bytes
        too_large = [
            n for n, item in enumerate(items) if limit and len(json.dumps(item).encode()) > limit
        ]
        if too_large:
            self._count("bad_request")
            message = f"item {too_large[0]} is larger than {limit:,} bytes."
            return _error(400, gameball.MALFORMED_JSON, message, request_id)
        assert self._jobs is not None
        job = self._jobs.create(request.headers[gameball.API_KEY_HEADER], items)
        if self.batch.create_delay:
            await asyncio.sleep(self.batch.create_delay)
        return web.json_response({"jobId": job.id})

    def _job(self, request: web.Request, request_id: int) -> Any:
        assert self._jobs is not None
        try:
            job = self._jobs.jobs.get(int(request.match_info["job"]))
        except ValueError:
            job = None
        if job is None or job.api_key != request.headers.get(gameball.API_KEY_HEADER):
            return _error(404, gameball.GENERIC_ERROR, "No such job.", request_id)
        return job

    async def _status(self, request: web.Request, shape: str) -> web.StreamResponse:
        request_id = self._next_request()
        refused = self._batch_gate(request, "status", request_id)
        if refused is not None:
            return refused
        if self.batch.status_shape != shape or request.match_info.get("version", "v4.0") not in (
            "v4",
            "v4.0",
        ):
            self._count("not_found")
            return _error(
                404, gameball.GENERIC_ERROR, f"No such endpoint: {request.path}", request_id
            )
        job = self._job(request, request_id)
        if isinstance(job, web.Response):
            return job
        self._count("status_polls")
        assert self._jobs is not None
        body = self._jobs.tutorial(job) if shape == "tutorial" else self._jobs.openapi(job)
        return web.json_response(body)

    async def _tutorial_status(self, request: web.Request) -> web.StreamResponse:
        return await self._status(request, "tutorial")

    async def _openapi_status(self, request: web.Request) -> web.StreamResponse:
        return await self._status(request, "openapi")

    async def _stop_job(self, request: web.Request) -> web.StreamResponse:
        request_id = self._next_request()
        refused = self._batch_gate(request, "status", request_id)
        if refused is not None:
            return refused
        job = self._job(request, request_id)
        if isinstance(job, web.Response):
            return job
        assert self._jobs is not None
        self._jobs.stop(job)
        return web.json_response({"jobId": job.id, "status": job.status})

    def _record(self, request: web.Request, body: dict[str, Any], version: str) -> None:
        now = time.time()
        token = request.headers.get(gameball.SESSION_TOKEN_HEADER)
        rows = [
            (
                body["customerId"],
                name,
                metadata,
                body.get("email"),
                body.get("mobile"),
                version,
                token,
                now,
            )
            for name, metadata in body["events"].items()
        ]
        with self._lock:
            self._state.events.extend(rows)
            self._award(body["customerId"], body["events"])
