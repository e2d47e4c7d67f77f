"""Exact identity for every number the wire carries exactly (issue 26, item 2).

An integer beyond 2**53 (an order number, a snowflake id) goes out exactly; the ledger's loose
identity must neither convert it through float64 (pyarrow refused it, and the run stopped) nor
take 2**53 + 1 for 2**53.
"""

import decimal

import numpy as np
import pandas as pd

from gb_backfill import Emulator, send, send_path
from gb_backfill._rows.loose import canonical

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
BEYOND_DOUBLE = 2**53 + 1


def frame():
    return pd.DataFrame(
        {
            "customerId": ["a", "b", "c", "d"],
            "eventName": "order",
            "order_id": np.array([INT64_MIN, INT64_MAX, BEYOND_DOUBLE, 5], dtype=np.int64),
            "snowflake": np.array([UINT64_MAX, BEYOND_DOUBLE, 0, 1], dtype=np.uint64),
        }
    )


def test_int64_and_uint64_ids_with_a_ledger_are_sent_exactly_and_once(tmp_path):
    df = frame()
    ledger = tmp_path / "run.ledger"
    with Emulator() as emu:
        first = send(df, base_url=emu.base_url, api_key=emu.api_key, ledger=ledger,
                     progress=False)  # fmt: skip
        again = send(df, base_url=emu.base_url, api_key=emu.api_key, ledger=ledger,
                     progress=False)  # fmt: skip
        events = emu.events()
    assert first.sent == 4, first
    assert again.requests == 0, again
    assert again.skipped == 4, again
    metadata = events.set_index("customer_id")["metadata"]
    assert [metadata[c]["order_id"] for c in "abcd"] == [INT64_MIN, INT64_MAX, BEYOND_DOUBLE, 5]
    assert [metadata[c]["snowflake"] for c in "abcd"] == [UINT64_MAX, BEYOND_DOUBLE, 0, 1]


def test_a_csv_of_big_ids_with_a_ledger_is_sent_exactly_and_once(tmp_path):
    source = tmp_path / "orders.csv"
    frame().to_csv(source, index=False)
    ledger = tmp_path / "run.ledger"
    with Emulator() as emu:
        options = {"base_url": emu.base_url, "api_key": emu.api_key, "ledger": ledger,
                   "progress": False, "failures_path": tmp_path / "f.parquet"}  # fmt: skip
        first = send_path(source, **options)
        again = send_path(source, **options)
        events = emu.events()
    assert first.sent == 4, first
    assert again.requests == 0, again
    order_ids = sorted(m["order_id"] for m in events["metadata"])
    assert order_ids == sorted([INT64_MIN, INT64_MAX, BEYOND_DOUBLE, 5])


def test_numbers_beyond_a_double_keep_their_own_loose_identity():
    typed = canonical(pd.Series(np.array([2**53, BEYOND_DOUBLE, INT64_MAX], dtype=np.int64)))[0]
    text = canonical(pd.Series(["9007199254740992", "9007199254740993", str(INT64_MAX)]))[0]
    assert typed.to_pylist() == text.to_pylist(), "typed and written as text: the same value"
    assert len(set(typed.to_pylist())) == 3, "2**53 and 2**53 + 1 are two numbers"
    unsigned = canonical(pd.Series(np.array([UINT64_MAX, UINT64_MAX - 1], dtype=np.uint64)))[0]
    assert len(set(unsigned.to_pylist())) == 2


def test_long_decimals_keep_every_digit_in_their_loose_identity():
    long = "12345678901234567890.1234567891"  # 30 digits: more than decimal's 28 by default
    neighbour = "12345678901234567890.1234567892"
    as_decimals = canonical(pd.Series([decimal.Decimal(long), decimal.Decimal(neighbour)]))[0]
    as_text = canonical(pd.Series([long, neighbour + "0"]))[0]
    assert as_decimals.to_pylist() == as_text.to_pylist()
    assert as_decimals[0] != as_decimals[1]
    # Values float64 carries keep the loose text older ledgers hold.
    short = canonical(pd.Series([decimal.Decimal("12.50"), decimal.Decimal("0.1")]))[0]
    assert short.to_pylist() == canonical(pd.Series([12.5, 0.1]))[0].to_pylist()
    assert short.to_pylist() == ["n:12.5", "n:0.1"]
