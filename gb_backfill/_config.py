"""What a run is configured with: the small frozen values users pass, the keys, the defaults.

:class:`RateLimits` and :class:`RetryPolicy` (passed as ``limits=``, ``retry=``...), the keys,
the defaults the options' declaration (:mod:`gb_backfill._options`), the emulator and the README
read, and :class:`Settings`, the checked options of one run, which
:func:`gb_backfill._options.make_settings` makes. Gameball's own numbers come from
:mod:`gb_backfill._gameball`.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from . import _gameball as gameball
from ._errors import ConfigError

__all__ = ["RateLimits", "RetryPolicy"]

API_KEY_ENV = "GAMEBALL_API_KEY"
SECRET_KEY_ENV = "GAMEBALL_SECRET_KEY"
_MIN_SLACK = 0.1  # seconds: network jitter and event-loop stalls of a busy client
#: Requests are spaced this share under the per-second limit (at most 95% of it).
SPACING_SLACK = 0.05
# What an HTTP header value may hold here: visible ASCII. A key read from a file with its
# newline, or pasted with a no-break space, is refused before anything is sent.
HEADER_VALUE = r"[\x21-\x7e]+"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Gameball's documented limits for events, which the sender never exceeds.

    At most ``per_second`` requests in any second and ``per_window`` in any ``window`` seconds
    (the defaults: 100/s and 1,200 per 30 s, so about 40/s sustained). 0 lifts a limit. The
    sender keeps a slack of ``margin`` of the long window (1%: 0.3 s of a 30 s window), and at
    least 100 ms, for clocks and network jitter, and spaces requests at 95% of ``per_second``,
    so that it reaches about 98% of what the limits allow. Where a request holds its place in
    the long window until one window after its answer (the lanes do), the network's delays are
    covered already: the slack is only for clocks, ``margin`` of the window but at most 100 ms.
    """

    per_second: int = gameball.EVENTS_PER_SECOND
    per_window: int = gameball.EVENTS_PER_WINDOW
    window: float = gameball.WINDOW
    margin: float = 0.01

    def __post_init__(self) -> None:
        if self.per_second < 0 or self.per_window < 0:
            raise ConfigError("rate limits are request counts, at least 0 (0 lifts a limit)")
        if not (self.window > 0 and 0 <= self.margin < 1) or math.isinf(self.window):
            raise ConfigError(
                "window must be a finite number of seconds above 0, and margin a share of it "
                "from 0 to 1 (0.01 keeps 1% slack)"
            )

    def slack(self, period: float, *, after_answers: bool = False) -> float:
        """The seconds of slack kept on a window of ``period`` seconds; ``after_answers``: the
        window is counted from answers, which come after Gameball counted the request."""
        if not self.margin:
            return 0.0
        if after_answers:
            return min(_MIN_SLACK, self.margin * period)
        return max(_MIN_SLACK, self.margin * period)

    def sustained(self) -> float | None:
        """The most requests a second these limits let through over time (None: no limit)."""
        rates = [rate for rate in (self.per_second, self.per_window / self.window) if rate]
        return min(rates) if rates else None

    @classmethod
    def unlimited(cls) -> RateLimits:
        """No client-side limit (for local emulators and benchmarks)."""
        return cls(per_second=0, per_window=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How retryable failures are retried: capped attempts, exponential backoff with jitter.

    The n-th retry waits ``min(wait_max, wait_initial * 2 ** (n - 1)) + uniform(0, wait_jitter)``
    seconds, or what ``Retry-After`` says when the server sends it (never longer than
    ``wait_max``). ``attempts`` counts the first try. Answers that say the account is over its
    rate limit (429, Gameball's 2001) are not the row's fault and use up no attempt: the send
    slows down instead, and a row fails only after ``throttled_max`` seconds of them.
    """

    attempts: int = 6
    wait_initial: float = 0.5
    wait_max: float = 30.0
    wait_jitter: float = 0.5
    throttled_max: float = 600.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("RetryPolicy(attempts=...) must be at least 1")
        if min(self.wait_initial, self.wait_max, self.wait_jitter, self.throttled_max) < 0:
            raise ConfigError("RetryPolicy waits are seconds, at least 0")

    def backoff(self, retry: int, jitter: float) -> float:
        """The wait before retry number ``retry`` (1-based); ``jitter`` is a draw in [0, 1)."""
        base = min(self.wait_max, self.wait_initial * 2.0 ** (retry - 1))
        return float(base + jitter * self.wait_jitter)


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """The API and secret keys. They never appear in reprs, messages or files."""

    api_key: str = field(repr=False)
    secret_key: str | None = field(repr=False)

    def __repr__(self) -> str:
        secret = "None" if self.secret_key is None else "'********'"
        return f"ApiKeys(api_key='********', secret_key={secret})"

    def headers(self) -> dict[str, str]:
        """The headers every keyed JSON request carries."""
        headers = {
            gameball.API_KEY_HEADER: self.api_key,
            "Content-Type": "application/json",
            "User-Agent": "gb-backfill",
        }
        if self.secret_key:
            headers[gameball.SECRET_KEY_HEADER] = self.secret_key
        return headers

    @classmethod
    def resolve(
        cls, api_key: str | None, secret_key: str | None, *, required: bool = True
    ) -> ApiKeys:
        """The keys from the arguments, else from GAMEBALL_API_KEY and GAMEBALL_SECRET_KEY.

        With ``required=False`` (a dry run, which sends nothing) a missing API key is "".
        """
        api = api_key or os.environ.get(API_KEY_ENV) or None
        secret = secret_key or os.environ.get(SECRET_KEY_ENV) or None
        if not api and required:
            raise ConfigError(
                "no API key: pass {api_key=...} or set {env}", option="api_key", env=API_KEY_ENV
            )
        return cls(api or "", secret)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """The base URL without a trailing slash; refuses to send keys in clear text to other hosts."""
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018  (reading it checks it: "host:abc", a port beyond 65535)
    except (ValueError, TypeError, AttributeError) as error:
        raise ConfigError(
            "{base_url=*} is not a URL ({error}); e.g. {example}",
            option="base_url", base_url=base_url, error=error, example=gameball.BASE_URL,
        ) from None  # fmt: skip
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError("{base_url=} must be an http(s) URL, e.g. {example}",
                          option="base_url", example=gameball.BASE_URL)  # fmt: skip
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(
            "refusing to send keys over plain http to {host}: use https, or pass "
            "{allow_insecure_http=True} if you really mean it",
            option="allow_insecure_http", host=parts.hostname,
        )  # fmt: skip
    return base_url.rstrip("/")


# --- defaults ----------------------------------------------------------------------------------

DEFAULT_CONCURRENCY = 32  # an upper bound: requests in flight follow rate x round trip
DEFAULT_TIMEOUT = 30.0  # seconds for an answer
DEFAULT_BATCH_ROWS = 50_000  # rows read at a time
DEFAULT_JOB_TIMEOUT = 300.0  # seconds for a batch job to end
#: The events endpoint's documented limits.
EVENTS_LIMITS = RateLimits()
#: The orders endpoint's documented limits ("Orders (Tracking)").
ORDERS_LIMITS = RateLimits(
    per_second=gameball.ORDERS_PER_SECOND, per_window=gameball.ORDERS_PER_WINDOW
)
#: Batch job creation: Gameball's "others" row, the likeliest; not documented.
BATCH_LIMITS = RateLimits(
    per_second=gameball.OTHERS_PER_SECOND, per_window=gameball.OTHERS_PER_WINDOW
)
#: Batch job status reads, assumed to count as GETs; not documented.
STATUS_LIMITS = RateLimits(
    per_second=gameball.READS_PER_SECOND, per_window=gameball.READS_PER_WINDOW
)
#: The reward preview: the "others" row until measured; not documented.
PREVIEW_LIMITS = RateLimits(
    per_second=gameball.OTHERS_PER_SECOND, per_window=gameball.OTHERS_PER_WINDOW
)
#: Seconds a preview's sample should take at :data:`PREVIEW_LIMITS`.
PREVIEW_SECONDS = 15.0


# --- the checked options of a run --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The checked options of one send (or preview). Strictly private."""

    api_keys: ApiKeys
    base_url: str
    api_version: str
    limits: RateLimits
    retry: RetryPolicy
    concurrency: int
    timeout: float
    retry_unknown: bool
    batch_rows: int
    row_key: tuple[Hashable, ...] | None
    mode: str = "events"
    batch_limits: RateLimits = BATCH_LIMITS
    status_limits: RateLimits = STATUS_LIMITS
    #: the orders endpoint's (one order per request; jobs of orders keep the batch limits)
    order_limits: RateLimits = ORDERS_LIMITS
    keep_order: bool = True
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    rebuild_ledger: bool = False
    resend_changed: bool = False
    #: the share of the account's limits left for other clients of the key; the limits above
    #: are the run's own share already (see :func:`leave_room`)
    reserve: float = 0.0
    #: a path input's name, and the read options it was given (JSON: ``dtype=``,
    #: ``na_values=``, ...), which the ledger keeps per input, so that the same input read
    #: another way is told how it was read before (None: a DataFrame)
    input_name: str | None = None
    read_with: str = "{}"


def leave_room(limits: RateLimits, reserve: float) -> RateLimits:
    """The run's own share of ``limits`` when ``reserve`` of them is left for other clients of
    the key (a live shop sending with the same key): each limit times ``1 - reserve``, rounded
    down, at least 1; a lifted limit stays lifted."""
    if not reserve:
        return limits

    def share(limit: int) -> int:
        return max(1, math.floor(limit * (1 - reserve) + 1e-9)) if limit else 0

    return replace(limits, per_second=share(limits.per_second), per_window=share(limits.per_window))


def account_limits(kept: RateLimits, reserve: float) -> RateLimits:
    """The account's limits whose share left after ``reserve`` is ``kept`` (the least such):
    what to pass as ``limits=`` with the same ``reserve=`` for a run to keep ``kept``."""
    if not reserve:
        return kept

    def whole(limit: int) -> int:
        return math.ceil(limit / (1 - reserve) - 1e-9) if limit else 0

    return replace(kept, per_second=whole(kept.per_second), per_window=whole(kept.per_window))
