"""What one request's answer means for its row: sent, retry, failed, unknown, or stop the run.

Gameball has no idempotency key, so the line that matters is between failures where the
request surely was not processed (retry them) and those where it may have been (``unknown``:
retrying could award points twice).
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass

import httpx

from .. import _gameball as gameball
from .._vocabulary import SendErrorCode, Verdict


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's verdict, with the error code and message recorded for the row."""

    verdict: Verdict
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    #: 429 and 2001: the pace, not the request, was wrong
    pacing: bool = False


SENT = Outcome(Verdict.SENT, http_status=200)

# Raised before the request left: safe to send again. A local protocol error (a header the
# client refused to write) and an unsupported scheme never reach the network either.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "inf" and "nan" parse as floats; they are no instruction a client can follow.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_details(response: httpx.Response) -> tuple[int | None, str]:
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
    code, message = error_details(response)
    detail = f"{message} (Gameball code {code})" if code is not None else message
    name = f"http_{status}"
    if status in (401, 403):
        return Outcome(Verdict.AUTH, name, detail, status)
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 429 or (status == 422 and code == gameball.CONCURRENT_REQUEST):
        return Outcome(Verdict.RETRY, name, detail, status, wait, pacing=True)
    if status >= 500 or status == 408:
        return Outcome(Verdict.RETRY, name, detail, status, wait)
    return Outcome(Verdict.FAILED, name, detail, status)


#: A transport error in words, by its kind (the first that matches): what a person reads in
#: a message and in the failures file's ``gb_error_message``, never httpx's class names.
_ERROR_WORDS: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectTimeout, "connecting timed out"),
    (httpx.ConnectError, "could not connect"),
    (httpx.PoolTimeout, "no connection was free in time"),
    (httpx.UnsupportedProtocol, "the URL's scheme is not http or https"),
    (httpx.LocalProtocolError, "the request could not be written"),
    (httpx.ReadTimeout, "no answer within the timeout"),
    (httpx.WriteTimeout, "sending the request timed out"),
    (httpx.RemoteProtocolError, "the server closed the connection without a proper answer"),
    (httpx.ReadError, "the connection broke while waiting for the answer"),
    (httpx.WriteError, "the connection broke while sending the request"),
    (httpx.TimeoutException, "it timed out"),
)


def error_words(error: httpx.HTTPError) -> str:
    """What went wrong, in words, with the address tried (``scheme://host:port``) and the
    system's own reason when it gives one (``[Errno 111] Connection refused``)."""
    said = next((words for kind, words in _ERROR_WORDS if isinstance(error, kind)), None)
    said = said or "the connection failed"
    try:
        url = error.request.url
    except RuntimeError:  # an error raised without its request
        where = ""
    else:
        port = f":{url.port}" if url.port is not None else ""
        where = f" ({url.scheme}://{url.host}{port})"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{said}{where}: {reason}" if reason else f"{said}{where}"


def already_there(outcome: Outcome, code: int | None, message: str) -> Outcome:
    """``outcome`` of an order, unless Gameball refused it as a duplicate (see
    :func:`~gb_backfill._gameball.is_duplicate_order`): then it is ``sent``, already there."""
    if outcome.verdict is not Verdict.FAILED:
        return outcome
    if not gameball.is_duplicate_order(outcome.http_status, code, message):
        return outcome
    said = f"{message} (Gameball code {code})" if code is not None else message
    return Outcome(
        Verdict.SENT, SendErrorCode.ALREADY_THERE,
        f"already there: Gameball has this orderId ({said})", outcome.http_status,
    )  # fmt: skip


def classify_order(response: httpx.Response) -> Outcome:
    """What an answer to an order means: as :func:`classify_response` says, but a refusal that
    says the order exists is ``sent`` (orders are idempotent by ``orderId``)."""
    outcome = classify_response(response)
    if outcome.verdict is not Verdict.FAILED:
        return outcome
    code, message = error_details(response)
    return already_there(outcome, code, message)


def classify_error(error: httpx.HTTPError) -> Outcome:
    said = error_words(error)
    if isinstance(error, _NOT_SENT):
        return Outcome(
            Verdict.RETRY, SendErrorCode.CONNECT_ERROR, f"{said}; the request was not sent"
        )
    return Outcome(
        Verdict.UNKNOWN,
        SendErrorCode.TIMEOUT
        if isinstance(error, httpx.TimeoutException)
        else SendErrorCode.CONNECTION_LOST,
        f"{said}; the request may have been processed: not retried, to avoid sending it twice",
    )


class RepeatedFailures:
    """A circuit breaker: trips when ``threshold`` rows in a row fail the same way.

    A wrong base URL (404 on everything), nothing listening (connection refused), or a server
    that is down fails every row the same way; retrying each row six times would take hours
    and prove nothing. Successes reset the count; 429 and 2001 (pacing) and 401/403 (which stop
    the run by themselves) are not counted. Once tripped it stays tripped.
    """

    def __init__(self, threshold: int = 8) -> None:
        self.threshold = threshold
        self.code: str | None = None
        self.count = 0
        self.tripped_by: Outcome | None = None

    def observe(self, outcome: Outcome) -> bool:
        """Count ``outcome``; True when the breaker has tripped (and ``outcome`` is no answer)."""
        if outcome.verdict.answered:
            self.code, self.count = None, 0
            return False
        if self.tripped_by is not None:
            return True
        if outcome.pacing or outcome.verdict is Verdict.AUTH:
            return False
        if outcome.code == self.code:
            self.count += 1
        else:
            self.code, self.count = outcome.code, 1
        if self.count >= self.threshold:
            self.tripped_by = outcome
        return self.tripped_by is not None
