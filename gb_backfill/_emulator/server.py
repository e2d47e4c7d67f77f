"""Gameball on loopback: a real HTTP server (aiohttp) that follows ``shared/docs/gameball-api.md``
for the demo, notebooks and end-to-end tests.

:class:`Emulator` serves the events endpoints (v4.0 and v4.1) with Gameball's keys, payload
rules, error bodies and per-key rate limits, 2001 for a customer whose request is still running,
another client of the same key, and seeded faults (:mod:`.faults`); the batch endpoints
(:mod:`.batch`); the read-only reward preview, quoted from campaigns (:mod:`.campaigns`); and
the orders endpoints, through the same faults (:mod:`.orders`). What it says on the wire is in
:mod:`.wire`. Every accepted event and order is recorded (:mod:`.record`). The user's guide to
it is ``docs/reference.md#the-emulator``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from .. import _gameball as gameball
from .._config import (
    BATCH_LIMITS,
    EVENTS_LIMITS,
    ORDERS_LIMITS,
    PREVIEW_LIMITS,
    STATUS_LIMITS,
    RateLimits,
)
from .._errors import ConfigError
from .batch import BatchEndpoints, BatchJobs, BatchSettings, Operation, item_problem
from .campaigns import Campaign, Campaigns, preview_problem
from .faults import DEFAULT_API_KEY, DEFAULT_SECRET_KEY, Faults
from .orders import OrderEndpoints, OrderSettings, quote_order
from .record import RECORD_PATH, Records, State

__all__ = ["NEEDS_AIOHTTP", "RECORD_PATH", "Emulator"]

from .wire import (
    EVENTS_GATE,
    NEEDS_AIOHTTP,
    PREVIEW_GATE,
    Gate,
    authenticate,
    error,
    payload_problem,
    route,
    share_draw,
    web,
)


class Emulator(Records):
    """Gameball's events and orders API on loopback.

    Use it as a context manager, which serves from a background thread::

        with Emulator(faults=Faults(latency=0.05)) as emu:
            send(df, base_url=emu.base_url, api_key=emu.api_key)
            emu.events()  # what was accepted (emu.orders(): the orders)

    Rate limits are per API key, a :class:`RateLimits` per endpoint: ``limits`` for events
    (Gameball's documented 100/s and 1,200 per 30 s), ``batch_limits`` for creating batch jobs
    and ``status_limits`` for reading their status (undocumented; Gameball's "others" and GET
    rows), ``preview_limits`` for both reward previews (the "others" row), ``orders_limits`` for
    orders (Gameball's documented 30/s and 360 per 30 s). ``per_second`` requests
    in any second and ``per_window`` in any ``window`` seconds; 0 lifts a limit, and
    ``RateLimits.unlimited()`` lifts both (``margin`` is the sender's slack: the emulator counts
    exactly). ``retry_after=True`` adds a
    ``Retry-After`` header to 429 answers with the real wait; a number of seconds sends that
    number always, whatever the limit (as a proxy or a gateway in front of an API may).
    ``background_rate`` runs another client of the same key, a live shop's storefront sending
    events at that many requests a second on average (a Poisson stream, seeded by
    ``faults.seed``): each takes its place in the key's events limits or is refused and not
    retried, counted as ``background_sent`` and ``background_rate_limited``; it records no
    event. ``batch`` sets the batch jobs' status shape, processing time and faults; ``orders``
    the orders' cashback and duplicate answer (:class:`OrderSettings`, see :mod:`.orders`).

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
        orders_limits: RateLimits = ORDERS_LIMITS,
        retry_after: bool | float = False,
        background_rate: float = 0.0,
        faults: Faults | None = None,
        batch: BatchSettings | None = None,
        orders: OrderSettings | None = None,
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
            "orders_limits": orders_limits,
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
        self.orders_limits = orders_limits
        self.host, self.port = host, port
        self.api_key, self.secret_key = api_key, secret_key
        self.high_security = high_security
        self.retry_after = retry_after
        self.background_rate = background_rate
        self._background: asyncio.Task[None] | None = None
        self.faults = faults or Faults()
        self.batch = batch or BatchSettings()
        self.order_settings = orders or OrderSettings()
        self._jobs: BatchJobs | None = None
        self._random = random.Random(self.faults.seed)
        # Previews draw their jitter apart, so they never shift the events' seeded faults.
        self._preview_random = random.Random(self.faults.seed)
        self._state = State()
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
        add.add_post(route(gameball.EVENTS_PATH), self._handle)
        add.add_post(route(gameball.PREVIEW_PATH), self._preview)
        orders = OrderEndpoints(self)
        self._jobs = BatchJobs(self.batch, self._count, events=Operation(
            item_problem, self._record_item), orders=orders.batch_operation)  # fmt: skip
        batch = BatchEndpoints(self._jobs, self.batch, self._batch_gate, self._count,
                               self._next_request)  # fmt: skip
        add.add_post(gameball.BATCH_CREATE_PATH, batch.create_job)
        add.add_post(gameball.ORDERS_BATCH_CREATE_PATH, batch.create_order_job)
        add.add_post(route(gameball.ORDERS_PATH), orders.track)
        add.add_post(route(gameball.ORDERS_PREVIEW_PATH), orders.preview)
        # The tutorial's status path, in any version (the client asks for /api/v4/...).
        add.add_get(tutorial_status.replace("/v4/", "/{version}/"), batch.tutorial_status)
        add.add_delete(route(stop_by_delete), batch.stop_job)
        add.add_get(openapi_status, batch.openapi_status)
        add.add_post(stop_by_post, batch.stop_job)
        app.router.add_get(RECORD_PATH, self._record_view)
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
        if customer_id in self.customers or share_draw(customer_id) < self.existing_share:
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

    def quote_order(self, body: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
        """What the order reward preview answers now for ``body``, computed in process,
        consuming nothing: an exact oracle for tests. Raises ConfigError for a body it answers
        400."""
        return quote_order(self, body, now or datetime.now(UTC))

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
        one frees. Kinds: ``events``, ``batch`` (job creation), ``status`` (job reads),
        ``preview`` (both previews) and ``orders``."""
        limits = {
            "events": self.limits,
            "orders": self.orders_limits,
            "batch": self.batch_limits,
            "status": self.status_limits,
            "preview": self.preview_limits,
        }[kind]
        with self._lock:
            return self._state.windows.admit((api_key, kind), limits, time.monotonic())

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

    async def _admitted(
        self, request: web.Request, request_id: int, gate: Gate
    ) -> tuple[str, Any] | web.StreamResponse:
        """What the events and preview endpoints check first, in Gameball's order: the path,
        the media type, the keys, the rate limit, the JSON. Returns the API version and the
        parsed body, or the error answer (counted under ``gate``'s names)."""
        version = gate.paths.get(request.path)
        if version is None:
            self._count("not_found")
            return error(
                404, gameball.GENERIC_ERROR, f"No such endpoint: {request.path}", request_id
            )
        if request.content_type != "application/json":
            self._count(gate.unsupported)
            return error(
                415, gameball.NOT_JSON, "The request body must be application/json.", request_id
            )
        problem = authenticate(request.headers, version, self, secret_always=gate.secret_always)
        if problem:
            self._count(gate.unauthorized)
            return error(*problem, request_id)
        wait = self._admit(request.headers[gameball.API_KEY_HEADER], gate.kind)
        if wait:
            self._count(gate.rate_limited)
            response = error(429, gameball.TOO_MANY_REQUESTS, "Too many requests.", request_id)
            if self.retry_after:
                response.headers["Retry-After"] = self._retry_after(wait)
            return response
        try:
            return version, json.loads(await request.read())
        except ValueError:
            self._count(gate.malformed)
            return error(400, gameball.MALFORMED_JSON, "Malformed JSON.", request_id)

    async def _arrive(self) -> None:
        """The arrival delay (a one-way network delay) before a request is counted."""
        faults = self.faults
        if faults.arrival_delay or faults.arrival_jitter:
            with self._lock:
                draw = self._random.random()
            await asyncio.sleep(faults.arrival_delay + draw * faults.arrival_jitter)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await self._arrive()
        request_id = self._next_request()
        admitted = await self._admitted(request, request_id, EVENTS_GATE)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        version, body = admitted
        problem = payload_problem(body)
        if problem:
            self._count("bad_request")
            return error(*problem, request_id)

        def accept() -> dict[str, Any]:
            self._record(request, body, version)
            return {"success": True, "message": "Events processed"}

        return await self._process(request, body["customerId"], request_id, accept)

    async def _process(
        self,
        request: web.Request,
        customer: str,
        request_id: int,
        accept: Callable[[], dict[str, Any] | web.Response],
        prefix: str = "",
    ) -> web.StreamResponse:
        """The faults and 2001 around ``accept`` (which records and gives the answer's body, or
        refuses); the counters are named with ``prefix`` (``orders_`` for orders)."""
        customer_key = (request.headers[gameball.API_KEY_HEADER], customer)
        faults = self.faults
        with self._lock:
            if customer_key in self._state.busy:
                self._state.counters[f"{prefix}concurrent"] += 1
                return error(
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
                self._count(f"{prefix}server_error_{status}")
                return error(status, status * 10, "Injected server error.", request_id)
            draw -= faults.server_errors
            if draw < faults.dropped_connections:
                self._count(f"{prefix}dropped")
                return self._drop(request)
            draw -= faults.dropped_connections
            delay = faults.latency + jitter * faults.jitter
            if delay:
                await asyncio.sleep(delay)
            answer = accept()
        finally:
            with self._lock:
                self._state.busy.discard(customer_key)
        if isinstance(answer, web.Response):  # refused (a duplicate order)
            return answer
        if draw < faults.lost_responses:
            self._count(f"{prefix}lost_response")
            if faults.lost_mode == "drop":
                return self._drop(request)
            await asyncio.sleep(faults.slow_reply)
        else:
            self._count(f"{prefix}accepted")
        return web.json_response(answer)

    def _drop(self, request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        # Nothing reaches the client after the abort; aiohttp discards this answer.
        return web.Response(status=499)

    async def _preview(self, request: web.Request) -> web.StreamResponse:
        """The reward preview: a quote with no side effects. Of the faults, only latency."""
        request_id = self._next_request()
        admitted = await self._admitted(request, request_id, PREVIEW_GATE)
        if isinstance(admitted, web.StreamResponse):
            return admitted
        _, body = admitted
        problem_400 = preview_problem(body)
        if problem_400:
            self._count("preview_bad_request")
            return error(400, *problem_400, request_id)
        if not self.customer_exists(body["customerId"]):
            self._count("preview_not_found")
            return error(404, gameball.CUSTOMER_NOT_FOUND, "Customer not found.", request_id)
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
            return error(
                401,
                gameball.UNAUTHORIZED,
                "Unauthorized: the APIKey header is missing or wrong.",
                request_id,
            )
        if request.headers.get(gameball.SECRET_KEY_HEADER) != self.secret_key:
            self._count("unauthorized")
            return error(
                401,
                gameball.SECRET_KEY_REQUIRED,
                "Batch APIs need the right SecretKey.",
                request_id,
            )
        wait = self._admit(api_key, kind)
        if wait:
            self._count(f"rate_limited_{kind}")
            response = error(429, gameball.TOO_MANY_REQUESTS, "Too many requests.", request_id)
            if self.retry_after:
                response.headers["Retry-After"] = self._retry_after(wait)
            return response
        return None

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
