"""What gb-backfill relies on about Gameball's API, stated once (see the shared API notes).

The sender, the dry run, the preview and the emulator all read these; nothing else spells a
path, a header, an error code or a documented limit.
"""

from __future__ import annotations

import re

from ._vocabulary import Lane

__all__ = ["HISTORY_WARNING", "PREVIEW_CAVEATS"]

BASE_URL = "https://api.gameball.co"
API_VERSIONS = ("4.0", "4.1")
#: A row with a session token goes to this version, whatever the run's.
TOKEN_API_VERSION = "4.1"

# --- paths -----------------------------------------------------------------------------------

EVENTS_PATH = "/api/v{version}/integrations/events"
PREVIEW_PATH = "/api/v{version}/integrations/events/reward-preview"
BATCH_CREATE_PATH = "/api/v4.0/integrations/batch/events"
#: Orders: one order per request; a batch job of orders (the same jobs, status and stop paths
#: as batch events); the order reward preview (read-only, evaluates ``place_order`` only).
ORDERS_PATH = "/api/v{version}/integrations/orders"
ORDERS_BATCH_CREATE_PATH = "/api/v4.0/integrations/batch/orders"
ORDERS_PREVIEW_PATH = "/api/v{version}/integrations/orders/reward-preview"
#: Job status: the tutorial's path (``response.successful/failed``), then the OpenAPI's
#: (``results/errors``); both are documented, and the client tries them in this order.
BATCH_STATUS_PATHS = (
    "/api/v4/integrations/batch/{job}",
    "/api/v4.0/integrations/batches/{job}/status",
)
BATCH_STOP_PATHS = (
    "/api/v{version}/integrations/batch/{job}",
    "/api/v4.0/integrations/batches/{job}/stop",
)
#: Job statuses that mean the job is over (lower case; ``failed`` and ``stopped`` as a whole).
BATCH_ENDED = frozenset({"completed", "failed", "stopped"})
BATCH_FAILED_AS_A_WHOLE = frozenset({"failed", "stopped"})

# --- headers ---------------------------------------------------------------------------------

API_KEY_HEADER = "APIKey"
SECRET_KEY_HEADER = "SecretKey"
SESSION_TOKEN_HEADER = "X-GB-TOKEN"

# --- sizes and codes -------------------------------------------------------------------------

#: Items a batch job may hold (documented).
MAX_ITEMS_PER_JOB = 1000
#: Orders a batch job of orders may hold (documented: "up to 1,000 orders").
MAX_ORDERS_PER_JOB = 1000
#: Bytes a batch job's body is kept under (1 MiB): Gameball documents no size limit, and 1 MiB
#: is the smallest request-body limit common in front of web APIs (nginx's default).
MAX_JOB_BYTES = 1 << 20
#: Customer ids longer than this are refused by the reward preview.
MAX_CUSTOMER_ID = 100
#: 422 with this code: a request for the same customer is still in progress (retry later).
CONCURRENT_REQUEST = 2001
#: 404 with this code: the customer does not exist (the preview never creates one).
CUSTOMER_NOT_FOUND = 7000
#: The other codes of an error answer the emulator gives, as the shared API notes list them.
UNAUTHORIZED = 1000  #: 401: the APIKey (or the SecretKey) is wrong
SECRET_KEY_REQUIRED = 1001  #: 401
MISSING_ARGUMENT = 3000  #: 400
INVALID_VALUE = 3003  #: 422
NOT_JSON = 3013  #: 415: the body is not ``application/json``
MALFORMED_JSON = 3016  #: 400: an invalid payload, or malformed JSON
GENERIC_ERROR = 4000  #: 400 or 404: no such endpoint, no such job
#: 429: Gameball documents no code for it; the emulator answers with this one.
TOO_MANY_REQUESTS = 4290

# --- orders ----------------------------------------------------------------------------------

#: The fields every order must carry, on ``/orders`` and in each ``/batch/orders`` item.
ORDER_REQUIRED_FIELDS = ("customerId", "orderId", "orderDate", "totalPaid")
#: The channels an order may name (the OpenAPI file's enum).
ORDER_CHANNELS = ("mobile", "pos", "web", "callcenter")
#: The event Gameball records for every order (never sent by hand for orders).
PLACE_ORDER_EVENT = "place_order"
#: 422 with one of these: the order is already there ("Never reuse an orderId, duplicates are
#: rejected"). Which of the two Gameball answers is not documented.
TRANSACTION_TIME_EXISTS = 9003  #: "Transaction Time Already Exists"
TRANSACTION_ID_EXISTS = 9004  #: "Transaction ID Already Exists"
ORDER_EXISTS_CODES = frozenset({TRANSACTION_TIME_EXISTS, TRANSACTION_ID_EXISTS})
# A message that says the order (or transaction) exists: "Transaction ID Already Exists",
# "Order already exists", "orderId 123 exists"; not "the customer of this order does not exist".
_EXISTS_MESSAGE = re.compile(
    r"\balready\s+exists?\b|\b(?:order|transaction)(?:\s*id)?\b(?:(?!\bnot\b)[^.])*\bexists\b",
    re.IGNORECASE,
)


def is_duplicate_order(status: int | None, code: int | None, message: str) -> bool:
    """Whether an answer to an order says it is already there: a 422 with code 9003 or 9004,
    or whose message says the order exists. ``status`` is None for a batch job's failed item,
    which carries only a code and a message."""
    if status is not None and status != 422:
        return False
    return code in ORDER_EXISTS_CODES or bool(_EXISTS_MESSAGE.search(message or ""))


# --- documented rate limits (per account and key, counted by arrival) ------------------------

WINDOW = 30.0  #: seconds of the long window
#: Events: 100 requests in any second and 1,200 in any 30 s (about 40/s sustained).
EVENTS_PER_SECOND, EVENTS_PER_WINDOW = 100, 1200
#: The "others" row (30/s, 360 per 30 s): the likeliest for batch job creation and the reward
#: preview, whose limits are not documented.
OTHERS_PER_SECOND, OTHERS_PER_WINDOW = 30, 360
#: Reads (GET): 100/s, 1,200 per 30 s; batch job status reads are assumed to count as these.
READS_PER_SECOND, READS_PER_WINDOW = 100, 1200
#: Orders ("Orders (Tracking)"): 30 requests in any second and 360 in any 30 s (documented).
ORDERS_PER_SECOND, ORDERS_PER_WINDOW = 30, 360


def lane_for(*, batch_mode: bool, plain: bool, order: bool = False) -> Lane:
    """The lane that can carry a row: a batch item holds only ``customerId`` and ``events``, so
    unless the row is ``plain`` (no email, mobile or session token), it goes one request at a
    time. An ``order`` goes to the orders endpoints: in jobs in batch mode (a batch order takes
    every field a single one does), else one per request."""
    if order:
        return Lane.BATCH_ORDERS if batch_mode else Lane.ORDERS
    return Lane.BATCH if batch_mode and plain else Lane.EVENTS


#: Said by the plan, the preview, the CLI before a live send to the real API, and the README.
HISTORY_WARNING = (
    "Gameball stamps events when it receives them and evaluates them against live campaigns: "
    "a backfill can award real points and send real notifications, and an unknown customerId "
    "creates a customer. Try it with a test API key first, and `gb-backfill preview` it."
)

_ORDERS_HISTORY_WARNING = (
    "Gameball records orders at their orderDate, but rewards them by the account's live "
    "cashback and campaigns: a backfill can award real points and send real notifications, and "
    "an unknown customerId creates a customer. Try it with a test API key first, and "
    "`gb-backfill preview` it."
)


def history_warning(*, events: bool, orders: bool) -> str:
    """:data:`HISTORY_WARNING` for what a run sends: events, orders, or both."""
    if orders and not events:
        return _ORDERS_HISTORY_WARNING
    if orders:
        return HISTORY_WARNING.replace(
            "when it receives them", "when it receives them (orders keep their orderDate)"
        )
    return HISTORY_WARNING


#: What the reward preview cannot see, said by its report, the CLI and the README.
PREVIEW_CAVEATS = (
    "A quote is what one event would award now, on its own: a customer's many backfilled events "
    "are not added up against per-customer caps or progress (for capped campaigns the estimate "
    "is an upper bound); campaign budgets are not checked; streak badges and mission steps are "
    "not included; customers that do not exist yet cannot be quoted (their rows count 0 here)."
)
