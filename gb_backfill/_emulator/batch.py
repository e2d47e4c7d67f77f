"""The emulator's batch endpoints: asynchronous jobs of up to 1,000 events or orders.

``POST /api/v4.0/integrations/batch/events`` takes ``{"body": [{"customerId", "events"}, ...]}``
and ``POST /api/v4.0/integrations/batch/orders`` ``{"body": [order, ...]}`` (each item checked
and recorded as ``POST .../orders`` would, see :mod:`.orders`); both answer ``{"jobId": n}``,
and the job is processed ``delay`` seconds later. An order job's entries in ``successful`` and
``failed`` name the ``orderId`` beside the ``customerId``. Its status is served
in one of the two documented shapes, chosen by ``status_shape``:

* ``"tutorial"``: ``GET /api/v4/integrations/batch/{jobId}`` (also ``/api/v4.0/...``), body
  ``{operation, status: queued|running|completed|failed|stopped, totalCount, finishedCount,
  errorCount, createdAt, startedAt, response: {successful: [...], failed: [...]}}``, a failure's
  reason under ``error`` or ``message`` (both occur in Gameball's examples);
* ``"openapi"``: ``GET /api/v4.0/integrations/batches/{batchId}/status``, body ``{status:
  pending|processing|completed|failed, progress, totalItems, processedItems, failedItems,
  results, errors}``.

The other shape's path answers 404, as an API that serves one of them would. Seeded faults:
items that fail (a ``transient_share`` of them with the transient code 2001), jobs that fail as
a whole, and jobs that are lost (they never end). ``busy_jobs``: the first jobs fail every item
with 2001, as when another client is sending for the same customers. ``create_delay``: a job
exists (and is processed) from the moment its POST arrives, but the answer naming its id comes
that many seconds later, as across a slow network.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import _gameball as gameball
from .._errors import ConfigError
from .wire import error, web

__all__ = ["BatchSettings", "Operation"]

_TRANSIENT = f"{gameball.CONCURRENT_REQUEST}: a request for this customer is already in progress"
_PERMANENT = "3003: the customer cannot receive events"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSettings:
    """How the emulator's batch jobs behave: which status shape it serves, how long a job takes,
    and its faults. Their endpoints' rate limits are the emulator's ``batch_limits=`` (job
    creation) and ``status_limits=`` (status reads), beside its other endpoints' limits.
    """

    status_shape: Literal["tutorial", "openapi"] = "tutorial"
    delay: float = 0.2
    item_failures: float = 0.0
    job_failures: float = 0.0
    lost_jobs: float = 0.0
    #: a job holding an item whose JSON is longer than this is refused as a whole with 400
    #: (0: no limit), as an API that checks item sizes before queueing a job would
    max_item_bytes: int = 0
    transient_share: float = 0.5
    busy_jobs: int = 0
    create_delay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.status_shape not in ("tutorial", "openapi"):
            raise ConfigError("status_shape must be 'tutorial' or 'openapi'")
        shares = (self.item_failures, self.job_failures, self.lost_jobs, self.transient_share)
        if any(not 0 <= s <= 1 for s in shares) or min(self.delay, self.create_delay) < 0:
            raise ConfigError("batch fault shares are 0 to 1 and delays are seconds, at least 0")
        if self.busy_jobs < 0:
            raise ConfigError("busy_jobs is a number of jobs, at least 0")


@dataclass(frozen=True, slots=True)
class Operation:
    """What a job of one kind does with an item: ``check`` says why it cannot be processed
    (None: it can); ``record`` records it, or says why it is refused (a duplicate order).
    ``names`` are the item's fields its status entries repeat; ``done`` their message."""

    check: Callable[[Any], str | None]
    record: Callable[[str, dict[str, Any]], str | None]
    names: tuple[str, ...] = ("customerId",)
    done: str = "Event processed"


@dataclass(eq=False, slots=True)
class Job:
    id: int
    api_key: str
    items: list[Any]
    operation: str = "events"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    status: str = "queued"
    successful: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)


def item_problem(item: object) -> str | None:
    """Why a batch events item cannot be processed, or None."""
    if not isinstance(item, dict):
        return "each item must be an object"
    customer = item.get("customerId")
    if not isinstance(customer, str) or not customer.strip():
        return "customerId must be a non-empty string"
    events = item.get("events")
    if not isinstance(events, dict) or not events:
        return "events must be a non-empty object"
    return None


class BatchJobs:
    """The jobs of one emulator. Call from the emulator's event loop only."""

    def __init__(
        self, settings: BatchSettings, count: Callable[[str], None], **operations: Operation
    ) -> None:
        self.settings = settings
        self.operations = operations  # by kind: "events", "orders"
        self._count = count
        self._random = random.Random(settings.seed)
        self.jobs: dict[int, Job] = {}
        self._next_id = 1000

    def create(self, api_key: str, items: list[Any], operation: str = "events") -> Job:
        self._next_id += 1
        job = Job(self._next_id, api_key, items, operation)
        self.jobs[job.id] = job
        self._count("batch_jobs")
        draw = self._random.random()
        if draw < self.settings.lost_jobs:
            self._count("batch_jobs_lost")
            job.status = "running"  # and so it stays
            return job
        fails = draw < self.settings.lost_jobs + self.settings.job_failures
        busy = len(self.jobs) <= self.settings.busy_jobs
        asyncio.get_running_loop().call_later(self.settings.delay, self._process, job, fails, busy)
        return job

    def _process(self, job: Job, fails: bool, busy: bool = False) -> None:
        job.started_at = time.time()
        if job.status == "stopped":
            return
        if fails:
            job.status = "failed"
            self._count("batch_jobs_failed")
            return
        operation = self.operations[job.operation]
        for number, item in enumerate(job.items):
            named = {n: item.get(n) for n in operation.names} if isinstance(item, dict) else {}
            named.setdefault("customerId", None)
            problem = operation.check(item)
            if problem is None and busy:
                problem = _TRANSIENT
            elif problem is None and self._random.random() < self.settings.item_failures:
                transient = self._random.random() < self.settings.transient_share
                problem = _TRANSIENT if transient else _PERMANENT
            if problem is not None:
                # Gameball's examples give the reason as "error" in one item, "message" in another.
                reason = "error" if number % 2 else "message"
                job.failed.append({**named, reason: problem})
                self._count("batch_items_failed")
                continue
            refused = operation.record(job.api_key, item)
            if refused is not None:
                job.failed.append({**named, "error" if number % 2 else "message": refused})
                self._count("batch_items_failed")
                continue
            job.successful.append({**named, "message": operation.done})
            self._count("batch_items_ok")
        job.status = "completed"

    def stop(self, job: Job) -> None:
        if job.status in ("queued", "running"):
            job.status = "stopped"

    def tutorial(self, job: Job) -> dict[str, Any]:
        done = len(job.successful) + len(job.failed)
        return {
            "operation": job.operation,
            "status": job.status,
            "totalCount": len(job.items),
            "finishedCount": done,
            "errorCount": len(job.failed),
            "createdAt": job.created_at,
            "startedAt": job.started_at,
            "response": {"successful": job.successful, "failed": job.failed},
        }

    def openapi(self, job: Job) -> dict[str, Any]:
        status = {"queued": "pending", "running": "processing", "stopped": "failed"}.get(
            job.status, job.status
        )
        done = len(job.successful) + len(job.failed)
        return {
            "status": status,
            "progress": round(100 * done / max(len(job.items), 1)),
            "totalItems": len(job.items),
            "processedItems": done,
            "failedItems": len(job.failed),
            "results": job.successful,
            "errors": job.failed,
        }


class BatchEndpoints:
    """The batch endpoints' handlers: create a job, read its status in the shape served, stop
    it. ``gate`` checks a request's keys and takes its rate-limit slot (the emulator's, shared
    with its other endpoints); ``count`` counts an answer; ``next_request`` numbers requests.
    Strictly private."""

    def __init__(
        self,
        jobs: BatchJobs,
        settings: BatchSettings,
        gate: Callable[[web.Request, str, int], web.Response | None],
        count: Callable[[str], None],
        next_request: Callable[[], int],
    ) -> None:
        self.jobs, self.settings = jobs, settings
        self.gate, self.count, self.next_request = gate, count, next_request

    async def create_job(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "events")

    async def create_order_job(self, request: web.Request) -> web.StreamResponse:
        return await self._create(request, "orders")

    async def _create(self, request: web.Request, operation: str) -> web.StreamResponse:
        request_id = self.next_request()
        refused = self.gate(request, "batch", request_id)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
        except ValueError:
            self.count("bad_request")
            return error(400, gameball.MALFORMED_JSON, "Malformed JSON.", request_id)
        items = body.get("body") if isinstance(body, dict) else None
        cap = gameball.MAX_ORDERS_PER_JOB if operation == "orders" else gameball.MAX_ITEMS_PER_JOB
        if not isinstance(items, list) or not 1 <= len(items) <= cap:
            self.count("bad_request")
            return error(
                400,
                gameball.MISSING_ARGUMENT,
                f"body must be a list of 1 to {cap} items.",
                request_id,
            )
        limit = self.settings.max_item_bytes
        too_large = [
            n for n, item in enumerate(items) if limit and len(json.dumps(item).encode()) > limit
        ]
        if too_large:
            self.count("bad_request")
            message = f"item {too_large[0]} is larger than {limit:,} bytes."
            return error(400, gameball.MALFORMED_JSON, message, request_id)
        job = self.jobs.create(request.headers[gameball.API_KEY_HEADER], items, operation)
        if self.settings.create_delay:
            await asyncio.sleep(self.settings.create_delay)
        return web.json_response({"jobId": job.id})

    def _job(self, request: web.Request, request_id: int) -> Any:
        try:
            job = self.jobs.jobs.get(int(request.match_info["job"]))
        except ValueError:
            job = None
        if job is None or job.api_key != request.headers.get(gameball.API_KEY_HEADER):
            return error(404, gameball.GENERIC_ERROR, "No such job.", request_id)
        return job

    async def _status(self, request: web.Request, shape: str) -> web.StreamResponse:
        request_id = self.next_request()
        refused = self.gate(request, "status", request_id)
        if refused is not None:
            return refused
        if self.settings.status_shape != shape or request.match_info.get("version", "v4.0") not in (
            "v4",
            "v4.0",
        ):
            self.count("not_found")
            return error(
                404, gameball.GENERIC_ERROR, f"No such endpoint: {request.path}", request_id
            )
        job = self._job(request, request_id)
        if isinstance(job, web.Response):
            return job
        self.count("status_polls")
        body = self.jobs.tutorial(job) if shape == "tutorial" else self.jobs.openapi(job)
        return web.json_response(body)

    async def tutorial_status(self, request: web.Request) -> web.StreamResponse:
        return await self._status(request, "tutorial")

    async def openapi_status(self, request: web.Request) -> web.StreamResponse:
        return await self._status(request, "openapi")

    async def stop_job(self, request: web.Request) -> web.StreamResponse:
        request_id = self.next_request()
        refused = self.gate(request, "status", request_id)
        if refused is not None:
            return refused
        job = self._job(request, request_id)
        if isinstance(job, web.Response):
            return job
        self.jobs.stop(job)
        return web.json_response({"jobId": job.id, "status": job.status})
