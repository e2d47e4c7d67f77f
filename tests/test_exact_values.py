"""Exact values or a clear failure, never a silent change (issue: identity of rows and values)."""

import datetime as dt
import decimal
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gb_backfill
from gb_backfill import ConfigError, payloads, validate
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.payloads import encode_rows
from gb_backfill._rows.rules import check_frame
from tests.conftest import examples


def codes_by_row(report):
    return report.failures.groupby("row")["code"].apply(list).to_dict()


def sent(df, **mapping):
    return payloads(df, **mapping).tolist()


def test_large_float_ids_are_a_failure_not_a_merged_customer():
    """A float64 id column cannot hold 1000000000000000001; say so instead of rounding."""
    df = pd.DataFrame(
        {"customerId": [1e18 + 1, 1e18 + 2, 9007199254740993.0, np.nan, 42.0], "eventName": "e"}
    )
    report = validate(df)
    assert codes_by_row(report) == {
        0: ["customer_id_inexact"],
        1: ["customer_id_inexact"],
        2: ["customer_id_inexact"],
        3: ["customer_id_missing"],
    }
    assert [p["customerId"] for p in sent(df)] == ["42"]


def test_python_ints_beyond_64_bits_are_sent_exactly():
    big = 2**70 + 1
    df = pd.DataFrame(
        {"customerId": pd.Series([big, 5], dtype=object), "eventName": "e", "n": [big, 10**400]}
    )
    report = validate(df)
    assert codes_by_row(report) == {1: ["metadata_out_of_range"]}
    [payload] = sent(df)
    assert payload["customerId"] == str(big)
    assert payload["events"]["e"]["n"] == big


def test_booleans_are_never_ids_even_next_to_floats():
    df = pd.DataFrame({"customerId": pd.Series([1.5, True, 7.0], dtype=object), "eventName": "e"})
    assert codes_by_row(validate(df)) == {0: ["customer_id_inexact"], 1: ["customer_id_type"]}
    assert [p["customerId"] for p in sent(df)] == ["7"]


def test_far_timestamps_pass_validate_and_send():
    df = pd.DataFrame(
        {
            "customerId": ["a", "b"],
            "eventName": "e",
            "when": pd.Series([pd.Timestamp("9999-12-31"), pd.Timestamp("1000-01-01 00:00:01.5")]),
        }
    )
    assert validate(df).ok
    assert [p["events"]["e"]["when"] for p in sent(df)] == [
        "9999-12-31T00:00:00",
        "1000-01-01T00:00:01.500",
    ]


def test_mixed_naive_and_aware_timestamps_are_a_failure():
    aware = pd.Timestamp("2024-01-01 12:00", tz="Europe/Paris")
    df = pd.DataFrame(
        {
            "customerId": ["a", "b"],
            "eventName": "e",
            "when": pd.Series([dt.datetime(2024, 1, 1, 12), aware], dtype=object),
        }
    )
    assert codes_by_row(validate(df)) == {0: ["metadata_mixed_timezones"]}
    assert sent(df)[0]["events"]["e"]["when"] == "2024-01-01T11:00:00Z"


def test_lone_surrogates_are_a_failure_code_not_a_traceback():
    df = pd.DataFrame(
        {
            "customerId": pd.Series(["ok", "bad\ud800", "c"], dtype=object),
            "eventName": "e",
            "email": pd.Series([None, None, "x\udc00@y.co"], dtype=object),
            "note": pd.Series(["fine", "fine", "fine"], dtype=object),
        }
    )
    report = validate(df)
    assert codes_by_row(report) == {1: ["text_not_unicode"], 2: ["text_not_unicode"]}
    assert [p["customerId"] for p in sent(df)] == ["ok"]


def test_duplicate_and_colliding_column_names_are_clear_errors():
    twice = pd.DataFrame([["a", "e", 1, 2]], columns=["customerId", "eventName", "x", "x"])
    with pytest.raises(ConfigError, match=r"duplicate column names: 'x' \(2 times\)"):
        validate(twice)
    colliding = pd.DataFrame([["a", "e", 1, 2]], columns=["customerId", "eventName", 0, "0"])
    with pytest.raises(ConfigError, match="columns 0 and '0' would both be the metadata key '0'"):
        payloads(colliding)
    unnamed = pd.DataFrame([["a", "e", 1]], columns=["customerId", "eventName", None])
    with pytest.raises(ConfigError, match="cannot be a metadata key"):
        validate(unnamed)
    assert sent(unnamed, metadata=[]) == [{"customerId": "a", "events": {"e": {}}}]


def test_non_string_column_names_become_their_text():
    df = pd.DataFrame([["a", "e", 1, 2.5]], columns=["customerId", "eventName", 0, 1.5])
    assert sent(df) == [{"customerId": "a", "events": {"e": {"0": 1, "1.5": 2.5}}}]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (" c-1", "customer_id_whitespace"),
        ("c-1\t", "customer_id_whitespace"),
        ("c-1\u200b", "customer_id_whitespace"),
        ("\ufeffc-1", "customer_id_whitespace"),
        ("c\u00a0", "customer_id_whitespace"),
        ("c 1", None),
    ],
)
def test_untrimmed_and_invisible_characters_in_ids_are_a_failure(value, code):
    report = validate(pd.DataFrame({"customerId": [value], "eventName": ["e"]}))
    assert report.failures["code"].tolist() == ([code] if code else [])


def test_untrimmed_event_names_are_a_failure():
    report = validate(pd.DataFrame({"customerId": ["a", "b"], "eventName": ["buy ", "buy"]}))
    assert codes_by_row(report) == {0: ["event_name_whitespace"]}
    with pytest.raises(ConfigError, match="whitespace at an end"):
        validate(pd.DataFrame({"customerId": ["a"]}), event="buy ")


def test_session_tokens_that_cannot_be_headers_are_a_failure():
    df = pd.DataFrame(
        {"customerId": ["a", "b", "c"], "eventName": "e", "sessionToken": ["ok.tok", "é", "a b"]}
    )
    assert codes_by_row(validate(df)) == {
        1: ["session_token_malformed"],
        2: ["session_token_malformed"],
    }


def test_a_value_converts_the_same_way_whatever_its_neighbours():
    """One rule per value: a batch of one gives the same text as the whole column."""
    column = pd.Series(
        [
            pd.Timestamp("2024-01-01"),
            pd.Timestamp("2024-01-01 00:00:00.123"),
            pd.Timestamp("2024-01-01 00:00:00.000001"),
        ]
    )
    mixed = pd.Series([1.0, 2.5, "x", decimal.Decimal("2"), 123456789012.0], dtype=object)
    floats = pd.Series([1.0, 2.5, 123456789012.0, 1e-7])
    for values in (column, mixed, floats):
        df = pd.DataFrame({"customerId": "a", "eventName": "e", "m": values})
        mapping = resolve_mapping(df.columns)
        whole = encode_rows(df, check_frame(df, mapping)).bodies
        alone = [
            encode_rows(df.iloc[[i]], check_frame(df.iloc[[i]], mapping)).bodies[0]
            for i in range(len(df))
        ]
        assert whole == alone


def test_int_and_float_and_decimal_of_one_number_read_the_same():
    values = [3, 3.0, decimal.Decimal("3.00"), np.int8(3), np.float32(3)]
    bodies = {
        payloads(pd.DataFrame({"customerId": ["a"], "eventName": "e", "m": [v]}))[0]["events"]["e"][
            "m"
        ]
        for v in values
    }
    assert bodies == {3}


def test_metadata_keys_are_sorted_so_column_order_does_not_matter():
    df = pd.DataFrame({"customerId": ["a"], "eventName": "e", "b": [1], "a": [2]})
    mapping = resolve_mapping(df.columns)
    body = encode_rows(df, check_frame(df, mapping)).bodies[0]
    assert body == b'{"customerId":"a","events":{"e":{"a":2,"b":1}}}'
    flipped = df[["a", "b", "customerId", "eventName"]]
    assert encode_rows(flipped, check_frame(flipped, resolve_mapping(flipped.columns))).bodies == [
        body
    ]


DECIMALS = ["12345678901234567.89", "99999999999999999999.99", "-0.000001", "3.000000"]


def decimal_frames():
    """The same decimals as object Decimals and as ArrowDtype(decimal128(38, 6))."""
    values = [decimal.Decimal(text) for text in DECIMALS]
    arrow = pd.array(values, dtype=pd.ArrowDtype(pa.decimal128(38, 6)))
    for column in (pd.Series(values, dtype=object), pd.Series(arrow)):
        yield pd.DataFrame({"customerId": list("abcd"), "eventName": "e", "amount": column})


def test_decimals_are_sent_with_exactly_their_digits():
    """Issue 18.2: 12345678901234567.89 went out as 1.2345678901234568e+16."""
    for df in decimal_frames():
        mapping = resolve_mapping(df.columns)
        bodies = encode_rows(df, check_frame(df, mapping)).bodies
        amounts = [
            json.loads(b, parse_float=decimal.Decimal)["events"]["e"]["amount"] for b in bodies
        ]
        assert amounts == [decimal.Decimal(t) for t in DECIMALS]
        assert bodies[0].endswith(b'"amount":12345678901234567.89}}}')
        assert bodies[3].endswith(b'"amount":3}}}'), "the same value, the same text"
        # payloads() gives a float where a float holds the number, a Decimal where not.
        shown = [p["events"]["e"]["amount"] for p in payloads(df)]
        assert [type(v) for v in shown] == [decimal.Decimal, decimal.Decimal, float, int]
        assert [decimal.Decimal(str(v)) for v in shown] == [decimal.Decimal(t) for t in DECIMALS]


def test_the_dry_runs_bodies_file_keeps_a_parquet_decimals_digits(tmp_path):
    """Issue 18.2: the dry run's --write-bodies file went through floats."""
    path = tmp_path / "amounts.parquet"
    table = pa.table(
        {
            "customerId": list("abcd"),
            "eventName": ["e"] * 4,
            "amount": pa.array([decimal.Decimal(t) for t in DECIMALS], pa.decimal128(38, 6)),
        }
    )
    pq.write_table(table, path)
    bodies = tmp_path / "bodies.jsonl"
    gb_backfill.plan_path(path, api_key="k", bodies_path=bodies)
    text = bodies.read_text().splitlines()
    lines = [json.loads(line, parse_float=decimal.Decimal) for line in text]
    assert [line["body"]["events"]["e"]["amount"] for line in lines] == [
        decimal.Decimal(t) for t in DECIMALS
    ]


@pytest.mark.property
@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(
        st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**300), max_value=10**300),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_property_decimal_bodies_parse_back_to_the_input(values, arrow):
    """Any decimal a double's range holds goes out with exactly its digits, or the row fails."""
    column = pd.Series(values, dtype=object)
    if arrow:
        quantum = decimal.Decimal(1).scaleb(-6)
        wide = decimal.Context(prec=100)
        values = [v.quantize(quantum, context=wide) if abs(v) < 10**31 else v * 0 for v in values]
        column = pd.Series(pd.array(values, dtype=pd.ArrowDtype(pa.decimal128(38, 6))))
    df = pd.DataFrame({"customerId": "a", "eventName": "e", "n": column})
    checked = check_frame(df, resolve_mapping(df.columns))
    encoded = encode_rows(df, checked)
    for position, body in zip(encoded.positions, encoded.bodies, strict=True):
        sent_value = json.loads(body, parse_float=decimal.Decimal)["events"]["e"]["n"]
        assert sent_value == values[position]
    failed = set(checked.failures["position"])
    assert set(encoded.positions) | failed == set(range(len(values)))
    for position in failed:
        assert float(values[position]) == 0, "only a decimal a double reads as 0 fails"
        assert values[position] != 0


def test_decimals_a_double_cannot_hold_are_a_failure_not_a_rounded_number():
    tiny, huge = decimal.Decimal("1E-400"), decimal.Decimal("1E+400")
    df = pd.DataFrame(
        {"customerId": ["a", "b", "c"], "eventName": "e", "n": [tiny, huge, decimal.Decimal("0")]}
    )
    assert codes_by_row(validate(df)) == {
        0: ["metadata_out_of_range"],
        1: ["metadata_out_of_range"],
    }
