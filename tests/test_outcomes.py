"""What an answer means for its row: the retry table and Retry-After."""

import email.utils
import time

import httpx
import pytest

from gb_backfill._engine.outcomes import classify_error, classify_response, retry_after_seconds
from gb_backfill._vocabulary import Verdict

REQUEST = httpx.Request("POST", "https://api.gameball.co/api/v4.0/integrations/events")


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, {}, Verdict.SENT),
        (204, None, Verdict.SENT),
        (400, {"code": 3000, "message": "missing"}, Verdict.FAILED),
        (404, {"code": 3017}, Verdict.FAILED),
        (412, {"code": 2000}, Verdict.FAILED),
        (415, {"code": 3013}, Verdict.FAILED),
        (422, {"code": 3003}, Verdict.FAILED),
        (422, {"code": 2001}, Verdict.RETRY),
        (429, {}, Verdict.RETRY),
        (500, {}, Verdict.RETRY),
        (502, None, Verdict.RETRY),
        (503, {"code": 5003}, Verdict.RETRY),
        (401, {"code": 1000}, Verdict.AUTH),
        (403, {"code": 1002}, Verdict.AUTH),
    ],
)
def test_status_table(status, body, verdict):
    response = httpx.Response(status, json=body, request=REQUEST)
    assert classify_response(response).verdict is verdict


def test_error_details_are_read_leniently():
    old_shape = httpx.Response(400, json={"ErrorCode": 4, "ErrorMsg": "The field is required."})
    outcome = classify_response(old_shape)
    assert outcome.message == "The field is required. (Gameball code 4)"
    assert outcome.code == "http_400"
    text = classify_response(httpx.Response(400, text="plain words"))
    assert text.message == "plain words"


def test_retry_after_seconds_and_dates():
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0.5") == 0.5
    assert retry_after_seconds("nonsense") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after_seconds(later) <= 31
    response = httpx.Response(429, headers={"Retry-After": "7"})
    assert classify_response(response).retry_after == 7.0


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (httpx.ConnectError, Verdict.RETRY),
        (httpx.ConnectTimeout, Verdict.RETRY),
        (httpx.PoolTimeout, Verdict.RETRY),
        (httpx.ReadTimeout, Verdict.UNKNOWN),
        (httpx.WriteTimeout, Verdict.UNKNOWN),
        (httpx.ReadError, Verdict.UNKNOWN),
        (httpx.WriteError, Verdict.UNKNOWN),
        (httpx.RemoteProtocolError, Verdict.UNKNOWN),
    ],
)
def test_transport_errors(error, verdict):
    """Retry only when the request surely was not sent."""
    assert classify_error(error("x", request=REQUEST)).verdict is verdict
