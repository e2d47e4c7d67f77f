"""Payload conversion: strict JSON, the v4 shape, and every row accounted for."""

import datetime as dt
import decimal
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gb_backfill import payloads, validate
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.payloads import encode_rows
from gb_backfill._rows.rules import check_frame
from tests.conftest import examples


def strict_loads(body):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(body, parse_constant=refuse)


def test_v4_shape_with_email_and_mobile():
    df = pd.DataFrame(
        {
            "customerId": ["c-1"],
            "eventName": ["purchase"],
            "email": ["a@b.co"],
            "mobile": ["+201001234567"],
            "amount": [9.5],
        },
        index=["r1"],
    )
    result = payloads(df)
    assert result.index.tolist() == ["r1"]
    assert result["r1"] == {
        "customerId": "c-1",
        "events": {"purchase": {"amount": 9.5}},
        "email": "a@b.co",
        "mobile": "+201001234567",
    }


def test_missing_values_are_left_out_not_null():
    df = pd.DataFrame(
        {
            "customerId": ["a", "b"],
            "eventName": ["e", "e"],
            "x": [1.0, np.nan],
            "s": [None, "t"],
            "email": [None, ""],
        }
    )
    assert payloads(df).tolist() == [
        {"customerId": "a", "events": {"e": {"x": 1}}},
        {"customerId": "b", "events": {"e": {"s": "t"}}},
    ]


def test_invalid_rows_are_left_out_and_order_is_kept():
    df = pd.DataFrame(
        {"customerId": ["a", None, "c"], "eventName": ["1", "2", "3"]}, index=[5, 3, 1]
    )
    result = payloads(df)
    assert result.index.tolist() == [5, 1]
    assert [next(iter(p["events"])) for p in result] == ["1", "3"]


def test_types_convert_as_documented():
    df = pd.DataFrame(
        {
            "customerId": ["a", "b"],
            "event_name": ["e", "e"],
            "naive": pd.to_datetime(
                ["2024-03-01 10:00:00", "2024-03-01 10:00:00.250"], format="ISO8601"
            ),
            "aware": pd.to_datetime(["2024-03-01 12:00:00", None]).tz_localize("Europe/Paris"),
            "day": [dt.date(2024, 3, 1), dt.date(2024, 3, 2)],
            "at": [dt.time(9, 30), dt.time(9, 30, 0, 500000)],
            "price": [decimal.Decimal("19.90"), decimal.Decimal("5")],
            "n": pd.array([3, None], dtype="Int64"),
            "flag": [np.bool_(True), np.bool_(False)],
            "big": np.array([2**40, -1], dtype=np.int64),
            "cat": pd.Categorical(["x", None]),
            "quote": ['say "hi"\n\\', "tab\there \x01"],
            "uni": ["مرحبا", "😀"],
        }
    )
    first, second = payloads(df).tolist()
    meta1, meta2 = first["events"]["e"], second["events"]["e"]
    assert meta1["naive"] == "2024-03-01T10:00:00", "one rule per value, not per column"
    assert meta2["naive"] == "2024-03-01T10:00:00.250"
    assert meta1["aware"] == "2024-03-01T11:00:00Z"
    assert "aware" not in meta2
    assert (meta1["day"], meta1["at"], meta2["at"]) == ("2024-03-01", "09:30:00", "09:30:00.500000")
    assert (meta1["price"], meta2["price"]) == (19.9, 5)
    assert (meta1["n"], "n" in meta2) == (3, False)
    assert (meta1["flag"], meta2["flag"]) == (True, False)
    assert meta1["big"] == 2**40
    assert (meta1["cat"], "cat" in meta2) == ("x", False)
    assert (meta1["quote"], meta2["quote"]) == ('say "hi"\n\\', "tab\there \x01")
    assert (meta1["uni"], meta2["uni"]) == ("مرحبا", "😀")


def test_mixed_object_column_converts_each_type():
    df = pd.DataFrame(
        {
            "customerId": list("abcdef"),
            "eventName": ["e"] * 6,
            "m": ["s", 3, 2.5, True, decimal.Decimal("1.10"), pd.Timestamp("2024-01-01", tz="UTC")],
        }
    )
    values = [p["events"]["e"]["m"] for p in payloads(df)]
    assert values == ["s", 3, 2.5, True, 1.1, "2024-01-01T00:00:00Z"]


def test_bodies_map_back_to_rows():
    df = pd.DataFrame(
        {
            "customerId": ["a", "", "c"],
            "eventName": ["e", "e", "e"],
            "sessionToken": ["t1", None, None],
        }
    )
    mapping = resolve_mapping(df.columns)
    encoded = encode_rows(df, check_frame(df, mapping))
    assert encoded.positions.tolist() == [0, 2]
    assert encoded.customer_ids == ["a", "c"]
    assert encoded.session_tokens == ["t1", None]
    assert [strict_loads(b)["customerId"] for b in encoded.bodies] == ["a", "c"]


# --- property: any frame, every row valid xor failed, every payload strict and lawful ----------

ids = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["lone\ud800", " padded", "zero\u200bwidth", "1.5"]),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.just("  "),
)
scalars = st.one_of(
    st.text(),
    st.sampled_from(["lone\udc00", "NA"]),
    st.integers(-(2**70), 2**70),
    st.just(10**400),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.datetimes(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, places=3),
)
oddities = st.one_of(
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.binary(max_size=3),
)
datetimes = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1))


@st.composite
def frames(draw):
    rows = draw(st.integers(0, 12))
    column = lambda values: draw(st.lists(values, min_size=rows, max_size=rows))  # noqa: E731
    data = {
        "customerId": pd.Series(column(ids), dtype=object),
        "eventName": column(st.one_of(st.text(max_size=5), st.none())),
        "mixed": pd.Series(column(st.one_of(scalars, oddities)), dtype=object),
        "floats": np.array(column(st.floats(allow_nan=True, allow_infinity=True)), dtype=float),
        "ints": pd.array(column(st.one_of(st.integers(-100, 100), st.none())), dtype="Int64"),
        "text": pd.array(column(st.one_of(st.text(), st.none())), dtype="string"),
        "when": pd.to_datetime(column(st.one_of(datetimes, st.none()))),
        "flags": column(st.one_of(st.booleans(), st.none())),
    }
    return pd.DataFrame(data)


@pytest.mark.property
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_property_every_row_is_valid_xor_failed_and_payloads_are_lawful(df):
    report = validate(df)
    failed_rows = set(report.failures["row"])
    valid_rows = set(report.valid.index)
    assert not failed_rows & valid_rows, "no row is both valid and failed"
    assert failed_rows | valid_rows == set(df.index), "no row is neither"

    mapping = resolve_mapping(df.columns)
    encoded = encode_rows(df, check_frame(df, mapping))
    assert encoded.positions.tolist() == [df.index.get_loc(r) for r in report.valid.index]
    for position, body in zip(encoded.positions, encoded.bodies, strict=True):
        payload = strict_loads(body)
        assert set(payload) == {"customerId", "events"}
        assert isinstance(payload["customerId"], str)
        assert payload["customerId"].strip()
        [(name, metadata)] = payload["events"].items()
        assert name == df["eventName"].iloc[position]
        for key, value in metadata.items():
            assert isinstance(value, (str, int, float, bool)), (key, value)
            assert not (isinstance(value, float) and not math.isfinite(value))
            original = df[key].iloc[position]
            if key in ("floats", "ints"):
                assert value == original
            if key == "text":
                assert value == original
        present = {
            k
            for k in ("floats", "ints", "text", "flags", "when")
            if not pd.isna(df[k].iloc[position])
        }
        assert present <= set(metadata), "a present value is never dropped"


@pytest.mark.parametrize("value", [float("nan"), None, pd.NA, pd.NaT])
def test_every_kind_of_missing_is_left_out(value):
    df = pd.DataFrame(
        {"customerId": ["a"], "eventName": ["e"], "m": pd.Series([value], dtype=object)}
    )
    assert payloads(df).tolist() == [{"customerId": "a", "events": {"e": {}}}]
