"""Gameball's orders facts: how a duplicate order is recognised, and the documented numbers."""

import pytest

from gb_backfill import _gameball as gameball
from gb_backfill._config import ORDERS_LIMITS


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (422, 9004, "Transaction ID Already Exists"),
        (422, 9003, "Transaction Time Already Exists"),
        (422, None, "Order already exists"),
        (422, 3003, "orderId 'A-1' exists"),
        (None, 9004, ""),  # a batch job's failed item: a code, no status
        (None, None, "Transaction ID already exists"),
    ],
)
def test_a_duplicate_order_is_recognised(status, code, message):
    assert gameball.is_duplicate_order(status, code, message)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, 9004, "Transaction ID Already Exists"),  # not a 422
        (500, None, "Order already exists"),
        (422, 3003, "orderDate must be in UTC (ISO 8601 format)"),
        (422, None, "The customer of this order does not exist"),
        (422, None, "order not exists"),
        (422, gameball.CONCURRENT_REQUEST, "a request for this customer is in progress"),
        (None, None, ""),
    ],
)
def test_other_answers_are_not_duplicates(status, code, message):
    assert not gameball.is_duplicate_order(status, code, message)


def test_the_documented_orders_numbers():
    assert ORDERS_LIMITS.per_second == 30
    assert ORDERS_LIMITS.per_window == 360
    assert ORDERS_LIMITS.window == 30.0
    assert gameball.MAX_ORDERS_PER_JOB == 1000
    assert gameball.ORDER_REQUIRED_FIELDS == ("customerId", "orderId", "orderDate", "totalPaid")
    assert gameball.ORDERS_PATH.format(version="4.0") == "/api/v4.0/integrations/orders"
    assert gameball.ORDERS_BATCH_CREATE_PATH == "/api/v4.0/integrations/batch/orders"
    assert (
        gameball.ORDERS_PREVIEW_PATH.format(version="4.0")
        == "/api/v4.0/integrations/orders/reward-preview"
    )
