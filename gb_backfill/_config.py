"""Settings for a send: rate limits, retries and keys, as small frozen values."""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._errors import ConfigError

__all__ = ["RateLimits", "RetryPolicy"]

API_KEY_ENV = "GAMEBALL_API_KEY"
SECRET_KEY_ENV = "GAMEBALL_SECRET_KEY"
DEFAULT_BASE_URL = "https://api.gameball.co"
_MIN_SLACK = 0.1  # seconds: network jitter and event-loop stalls of a busy client
#: Requests are spaced this share under the per-second limit (at most 95% of it).
SPACING_SLACK = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Gameball's documented limits for events, which the sender never exceeds.

    At most ``per_second`` requests in any second and ``per_window`` in any ``window`` seconds
    (the defaults: 100/s and 1,200 per 30 s, so about 40/s sustained). 0 lifts a limit. The
    sender keeps a slack of ``margin`` of the long window (1%: 0.3 s of a 30 s window), and at
    least 100 ms, for clocks and network jitter, and spaces requests at 95% of ``per_second``,
    so that it reaches about 98% of what the limits allow.
    """

    per_second: int = 100
    per_window: int = 1200
    window: float = 30.0
    margin: float = 0.01

    def __post_init__(self) -> None:
        if self.per_second < 0 or self.per_window < 0:
            raise ConfigError("rate limits are request counts, at least 0 (0 lifts a limit)")
        if not (self.window > 0 and 0 <= self.margin < 1) or math.isinf(self.window):
            raise ConfigError(
                "window must be a finite number of seconds above 0, and margin a share of it "
                "from 0 to 1 (0.01 keeps 1% slack)"
            )

    def slack(self, period: float) -> float:
        """The seconds of slack kept on a window of ``period`` seconds."""
        return max(_MIN_SLACK, self.margin * period) if self.margin else 0.0

    @classmethod
    def unlimited(cls) -> RateLimits:
        """No client-side limit (for local emulators and benchmarks)."""
        return cls(per_second=0, per_window=0)


PREVIEW_LIMITS = RateLimits(per_second=30, per_window=360)  # the reward preview's; undocumented


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
class Keys:
    """The API and secret keys. They never appear in reprs, messages or files."""

    api_key: str = field(repr=False)
    secret_key: str | None = field(repr=False)

    def __repr__(self) -> str:
        secret = "None" if self.secret_key is None else "'********'"
        return f"Keys(api_key='********', secret_key={secret})"

    def headers(self) -> dict[str, str]:
        """The headers every keyed JSON request carries."""
        headers = {
            "APIKey": self.api_key,
            "Content-Type": "application/json",
            "User-Agent": "gb-backfill",
        }
        if self.secret_key:
            headers["SecretKey"] = self.secret_key
        return headers

    @classmethod
    def resolve(cls, api_key: str | None, secret_key: str | None, *, required: bool = True) -> Keys:
        """Keys from the arguments, else from GAMEBALL_API_KEY and GAMEBALL_SECRET_KEY.

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
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"base_url= must be an http(s) URL, e.g. {DEFAULT_BASE_URL}")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ConfigError(
            f"refusing to send keys over plain http to {parts.hostname}: use https, "
            "or pass allow_insecure_http=True (--allow-insecure-http) if you really mean it"
        )
    return base_url.rstrip("/")
