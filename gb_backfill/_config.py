"""Every option of a run, its default and its check, in one place.

The small frozen values users pass (:class:`RateLimits`, :class:`RetryPolicy`), the keys, every
default the Python API, the CLI's ``--help``, the emulator and the README read, and
:func:`make_settings`, which checks the options of a send or a preview in the caller's terms
before anything starts. Gameball's own numbers come from :mod:`gb_backfill._gameball`.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

import numpy as np

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
            raise ConfigError(f"no API key: pass api_key=... or set {API_KEY_ENV}")
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
            f"base_url={base_url!r} is not a URL ({error}); e.g. {gameball.BASE_URL}"
        ) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"base_url= must be an http(s) URL, e.g. {gameball.BASE_URL}")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(
            f"refusing to send keys over plain http to {parts.hostname}: use https, "
            "or pass allow_insecure_http=True (--allow-insecure-http) if you really mean it"
        )
    return base_url.rstrip("/")


# --- defaults ----------------------------------------------------------------------------------

DEFAULT_CONCURRENCY = 32  # an upper bound: requests in flight follow rate x round trip
DEFAULT_TIMEOUT = 30.0  # seconds for an answer
DEFAULT_BATCH_ROWS = 50_000  # rows read at a time
DEFAULT_JOB_TIMEOUT = 300.0  # seconds for a batch job to end
#: The events endpoint's documented limits.
EVENTS_LIMITS = RateLimits()
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
#: The keywords that say which column is which.
MAPPING_KEYWORDS = frozenset(
    {"customer_id", "event_name", "event", "metadata", "email", "mobile", "session_token"}
)


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
    keep_order: bool = True
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    rebuild_ledger: bool = False
    resend_changed: bool = False
    #: the share of the account's limits left for other clients of the key; the limits above
    #: are the run's own share already (see :func:`leave_room`)
    reserve: float = 0.0


def _whole(name: str, value: object, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ConfigError(f"{name}= must be a whole number of at least {least}, not {value!r}")
    return int(value)


def _switch(name: str, value: object) -> bool:
    """A yes/no option, which must be a bool: ``bool("false")`` is True, and a switch read
    from a config file as text (``retry_unknown="false"``) could resend rows."""
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{name}= must be True or False, not {value!r}")
    return bool(value)


def check_progress(value: object) -> None:
    """``progress=``: True, False or None (a bar when the output is a terminal)."""
    if value is not None and not isinstance(value, bool | np.bool_):
        raise ConfigError(f"progress= must be True, False or None (automatic), not {value!r}")


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(f"{name}= must be a number of seconds, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name}= must be a finite number of seconds above 0, not {value!r}")
    return number


def _reserve(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(f"reserve= must be a share from 0 to below 1, e.g. 0.3, not {value!r}")
    share = float(value)
    if not 0 <= share < 1:
        raise ConfigError(
            f"reserve= must be a share from 0 to below 1 (0.3 leaves 30% of the limits to "
            f"the other clients of the key), not {value!r}"
        )
    return share


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


def _check_key(keyword: str, env: str, value: str | None) -> None:
    if value is not None and not re.fullmatch(HEADER_VALUE, value):
        # The key itself is never shown: it is a secret.
        raise ConfigError(
            f"{keyword}= holds whitespace or characters an HTTP header cannot carry (a newline "
            f"from a file? a no-break space?): fix it where you set {keyword}= or {env}"
        )


def _check_limits(name: str, limits: object) -> None:
    if limits is None or isinstance(limits, RateLimits):
        return
    example = ", ".join(f"{k}={v!r}" for k, v in limits.items()) if isinstance(limits, dict) else ""
    raise ConfigError(
        f"{name}= takes gb_backfill.RateLimits(...), not {type(limits).__name__}: "
        f"{name}=RateLimits({example or 'per_second=100, per_window=1200, window=30'})"
    )


def unknown_keywords(given: Sequence[str], known: Sequence[str], where: str) -> None:
    """Raise :class:`ConfigError` for keywords not in ``known``, naming the nearest known one."""
    for keyword in given:
        if keyword in known:
            continue
        near = difflib.get_close_matches(keyword, known, n=1)
        hint = f"; did you mean {near[0]}=?" if near else f"; the keywords are {', '.join(known)}"
        raise ConfigError(f"{where}() got an unknown keyword {keyword}={hint}")


def _keys(
    api_key: object, secret_key: object, *, api_version: str, mode: str, dry_run: bool
) -> ApiKeys:
    """The keys, checked: a dry run sends nothing, so it needs none (given ones are checked)."""
    for name, value in (("api_key", api_key), ("secret_key", secret_key)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name}= must be a string, not {type(value).__name__}")
    keys = ApiKeys.resolve(api_key, secret_key, required=not dry_run)  # type: ignore[arg-type]
    _check_key("api_key", API_KEY_ENV, keys.api_key or None)
    _check_key("secret_key", SECRET_KEY_ENV, keys.secret_key)
    if keys.secret_key or dry_run:
        return keys
    if api_version == "4.1":
        raise ConfigError(
            f"api_version='4.1' needs the secret key: pass secret_key=... or set {SECRET_KEY_ENV}"
        )
    if mode == "batch":
        raise ConfigError(
            "mode='batch' needs the secret key (Gameball's batch API requires it): pass "
            f"secret_key=... or set {SECRET_KEY_ENV}"
        )
    return keys


def _check_values(*, limits: object, batch_limits: object, retry: object, row_key: object) -> None:
    for name, given in (("limits", limits), ("batch_limits", batch_limits)):
        _check_limits(name, given)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigError(
            f"retry= takes gb_backfill.RetryPolicy(...), not {type(retry).__name__}: "
            "e.g. retry=RetryPolicy(attempts=6)"
        )
    if isinstance(row_key, str):
        raise ConfigError(f"row_key= takes a list of columns, e.g. row_key=[{row_key!r}]")


def make_settings(
    *,
    api_key: str | None = None,
    secret_key: str | None = None,
    base_url: str = gameball.BASE_URL,
    api_version: str = "4.0",
    limits: RateLimits | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    retry_unknown: bool = False,
    allow_insecure_http: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    row_key: Sequence[Hashable] | None = None,
    mode: Literal["events", "batch"] | str = "events",
    batch_limits: RateLimits | None = None,
    keep_order: bool = True,
    job_timeout: float = DEFAULT_JOB_TIMEOUT,
    rebuild_ledger: bool = False,
    resend_changed: bool = False,
    reserve: float = 0.0,
    dry_run: bool = False,
) -> Settings:
    """Check every option of a send, in the caller's terms, before anything starts."""
    if mode not in ("events", "batch"):
        raise ConfigError(f"mode= must be 'events' or 'batch', not {mode!r}")
    retry_unknown = _switch("retry_unknown", retry_unknown)
    allow_insecure_http = _switch("allow_insecure_http", allow_insecure_http)
    keep_order = _switch("keep_order", keep_order)
    rebuild_ledger = _switch("rebuild_ledger", rebuild_ledger)
    resend_changed = _switch("resend_changed", resend_changed)
    dry_run = _switch("dry_run", dry_run)
    api_version = str(api_version).removeprefix("v")
    if api_version not in gameball.API_VERSIONS:
        raise ConfigError(f"api_version= must be '4.0' or '4.1', not {api_version!r}")
    keys = _keys(api_key, secret_key, api_version=api_version, mode=mode, dry_run=dry_run)
    _check_values(limits=limits, batch_limits=batch_limits, retry=retry, row_key=row_key)
    lifted = batch_limits is not None and not (batch_limits.per_second or batch_limits.per_window)
    reserve = _reserve(reserve)
    return Settings(
        api_keys=keys,
        base_url=check_base_url(base_url, allow_insecure_http=allow_insecure_http),
        api_version=api_version,
        limits=leave_room(limits or EVENTS_LIMITS, reserve),
        retry=retry or RetryPolicy(),
        concurrency=_whole("concurrency", concurrency, least=1),
        timeout=_seconds("timeout", timeout),
        retry_unknown=retry_unknown,
        batch_rows=_whole("batch_rows", batch_rows, least=1),
        row_key=tuple(row_key) if row_key else None,
        mode=mode,
        batch_limits=leave_room(batch_limits or BATCH_LIMITS, reserve),
        # Lifting the batch limits (a local emulator) lifts the status reads' limits too.
        status_limits=RateLimits.unlimited() if lifted else leave_room(STATUS_LIMITS, reserve),
        keep_order=keep_order,
        job_timeout=_seconds("job_timeout", job_timeout),
        rebuild_ledger=rebuild_ledger,
        resend_changed=resend_changed,
        reserve=reserve,
    )
