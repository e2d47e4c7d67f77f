"""What one request's answer means for its row: sent, retry, failed, unknown, or stop the run.

Gameball has no idempotency key, so the line that matters is between failures where the
request surely was not processed (retry them) and those where it may have been (``unknown``:
retrying could award points twice).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from enum import Enum

import httpx

CONCURRENT_REQUEST_CODE = 2001


class Verdict(Enum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"
    AUTH = "auth"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's verdict, with the error code and message recorded for the row."""

    verdict: Verdict
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    retry_after: float | None = None


SENT = Outcome(Verdict.SENT, http_status=200)

# Raised before the request left: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_details(response: httpx.Response) -> tuple[int | None, str]:
    """Gameball's error code and message, read leniently (several body shapes exist)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if not isinstance(body, dict):
        return None, str(body)[:200]
    code = body.get("code", body.get("error", body.get("ErrorCode")))
    message = body.get("message") or body.get("errorMsg") or body.get("ErrorMsg") or ""
    return (code if isinstance(code, int) else None), str(message)[:500]


def classify_response(response: httpx.Response) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return SENT
    code, message = _error_details(response)
    detail = f"{message} (Gameball code {code})" if code is not None else message
    name = f"http_{status}"
    if status in (401, 403):
        return Outcome(Verdict.AUTH, name, detail, status)
    if status == 429:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        return Outcome(Verdict.RETRY, name, detail, status, wait)
    if status >= 500 or status == 408 or (status == 422 and code == CONCURRENT_REQUEST_CODE):
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        return Outcome(Verdict.RETRY, name, detail, status, wait)
    return Outcome(Verdict.FAILED, name, detail, status)


def classify_error(error: httpx.HTTPError) -> Outcome:
    kind = type(error).__name__
    if isinstance(error, _NOT_SENT):
        return Outcome(Verdict.RETRY, "connect_error", f"{kind}: the request was not sent")
    return Outcome(
        Verdict.UNKNOWN,
        "timeout" if isinstance(error, httpx.TimeoutException) else "connection_lost",
        f"{kind}: the request may have been processed; not retried, to avoid sending it twice",
    )
