"""Gameball's event rules: every failure has a stable code, every row is accounted for."""

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import gb_backfill
from gb_backfill import FailureCode, validate
from tests.conftest import MockGameball, send_options


def codes_by_row(report):
    return report.failures.groupby("row")["code"].apply(list).to_dict()


def test_valid_frame_is_ok():
    df = pd.DataFrame({"customerId": ["a", "b"], "eventName": ["x", "y"], "n": [1, 2]})
    report = validate(df)
    assert report.ok
    assert len(report.valid) == 2
    assert list(report.failures.columns) == ["row", "column", "code", "message", "value"]
    assert repr(report) == "<ValidationReport rows=2 valid_rows=2 invalid_rows=0>"


def test_customer_id_missing_empty_and_whitespace():
    df = pd.DataFrame(
        {"customerId": ["ok", None, "", "   ", np.nan], "eventName": ["e"] * 5},
        index=[10, 11, 12, 13, 14],
    )
    report = validate(df)
    assert codes_by_row(report) == {
        11: ["customer_id_missing"],
        12: ["customer_id_empty"],
        13: ["customer_id_empty"],
        14: ["customer_id_missing"],
    }
    assert list(report.valid.index) == [10]


def test_integer_and_whole_float_ids_become_strings():
    df = pd.DataFrame({"customerId": [1001, 1002], "eventName": ["e", "e"]})
    assert gb_backfill.payloads(df).map(lambda p: p["customerId"]).tolist() == ["1001", "1002"]
    gaps = pd.DataFrame({"customerId": [1001.0, np.nan, 7.5], "eventName": ["e"] * 3})
    report = validate(gaps)
    assert codes_by_row(report) == {1: ["customer_id_missing"], 2: ["customer_id_inexact"]}
    ids = gb_backfill.payloads(gaps).map(lambda p: p["customerId"]).tolist()
    assert ids == ["1001"], "a float column of ids with gaps reads back as whole numbers"


def test_unusable_customer_id_types():
    df = pd.DataFrame({"customerId": [{"a": 1}, True, float("inf"), "x"], "eventName": ["e"] * 4})
    report = validate(df)
    assert codes_by_row(report) == {
        0: ["customer_id_type"],
        1: ["customer_id_type"],
        2: ["customer_id_type"],
    }


def test_event_name_missing_and_empty_and_constant():
    df = pd.DataFrame({"customerId": ["a", "b", "c"], "eventName": ["x", None, " "]})
    assert codes_by_row(validate(df)) == {1: ["event_name_missing"], 2: ["event_name_empty"]}
    # event= with the column of event names still there is refused (issue 30); with the
    # metadata listed, it names every row.
    assert validate(df, event="signup", metadata=[]).ok, "event= names every row"


def test_metadata_types():
    """Dicts, lists, bytes and objects are refused; inf is refused; missing values are fine."""
    df = pd.DataFrame(
        {
            "customerId": list("abcdefgh"),
            "eventName": ["e"] * 8,
            "meta": [{"a": 1}, [1, 2], b"raw", object(), "s", 1, None, np.nan],
            "amount": [1.0, 2.0, 3.0, 4.0, np.inf, -np.inf, np.nan, 5.0],
        }
    )
    report = validate(df)
    assert codes_by_row(report) == {
        0: ["metadata_type"],
        1: ["metadata_type"],
        2: ["metadata_type"],
        3: ["metadata_type"],
        4: ["metadata_not_finite"],
        5: ["metadata_not_finite"],
    }
    assert "not dict" in report.failures.loc[0, "message"]


def test_homogeneous_container_columns_are_refused():
    """A column of only dicts converts to an Arrow struct; it is still refused."""
    df = pd.DataFrame({"customerId": ["a", "b"], "eventName": ["e", "e"], "d": [{"x": 1}, None]})
    assert codes_by_row(validate(df)) == {0: ["metadata_type"]}


def test_timedelta_is_refused_and_decimal_infinity_is_not_finite():
    df = pd.DataFrame(
        {
            "customerId": ["a", "b", "c"],
            "eventName": ["e"] * 3,
            "took": pd.to_timedelta([1, 2, None], unit="s"),
            "price": [decimal.Decimal("1.5"), decimal.Decimal("Infinity"), "x"],
        }
    )
    assert codes_by_row(validate(df)) == {
        0: ["metadata_type"],
        1: ["metadata_type", "metadata_not_finite"],
    }


def test_email_and_mobile():
    df = pd.DataFrame(
        {
            "customerId": list("abcdef"),
            "eventName": ["e"] * 6,
            "email": ["a@b.co", "no-at-sign", None, "", "x@y", "ok@example.com"],
            "mobile": ["+20 100 123 4567", "(555) 123-4567", "call me", None, "12", "+1"],
        }
    )
    report = validate(df)
    assert codes_by_row(report) == {
        1: ["email_malformed"],
        2: ["mobile_malformed"],
        4: ["email_malformed", "mobile_malformed"],
        5: ["mobile_malformed"],
    }


def test_every_row_is_valid_or_failed_with_a_duplicate_index():
    df = pd.DataFrame(
        {"customerId": ["a", None, "c"], "eventName": ["e", "e", None]}, index=[7, 7, 7]
    )
    report = validate(df)
    assert len(report.valid) == 1
    assert report.invalid_rows == 2
    assert report.counts().to_dict() == {"customer_id_missing": 1, "event_name_missing": 1}


def test_extension_and_pyarrow_dtypes_are_accepted():
    df = pd.DataFrame(
        {
            "customerId": pd.array(["a", "b", None], dtype="string[pyarrow]"),
            "eventName": pd.Categorical(["x", "y", "x"]),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "f": pd.array([1.5, None, 2.5], dtype="Float64"),
            "when": pd.to_datetime(["2024-01-01", None, "2024-02-01"]),
            "day": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 2)],
        }
    )
    report = validate(df)
    assert codes_by_row(report) == {2: ["customer_id_missing"]}


def test_validate_is_reachable_from_the_accessor():
    df = pd.DataFrame({"customerId": ["a", ""], "eventName": ["e", "e"]})
    assert repr(df.gameball.validate()) == repr(validate(df))


@pytest.mark.parametrize("code", list(FailureCode))
def test_codes_are_stable_snake_case(code):
    assert code.value == code.value.lower()
    assert " " not in code.value


def sparse_and_dense():
    dense = pd.DataFrame(
        {
            "customerId": pd.Series([7, 0, 0, 12]),
            "eventName": ["e"] * 4,
            "amount": [1.5, np.nan, 0.0, 2.25],
            "flag": [True, False, False, False],
            "note": pd.Series(["a", None, None, "b"], dtype=object),
            "when": pd.to_datetime(
                ["2024-01-01", None, None, "2024-01-02 10:00:00.5"], format="ISO8601"
            ),
        }
    )
    sparse = dense.copy()
    for name in dense.columns.drop("eventName"):
        sparse[name] = pd.arrays.SparseArray(dense[name])
    return dense, sparse


def test_sparse_columns_are_read_exactly_as_their_dense_values():
    """Issue 18.5: a SparseArray column raised a raw ValueError."""
    dense, sparse = sparse_and_dense()
    assert gb_backfill.payloads(sparse).tolist() == gb_backfill.payloads(dense).tolist()
    sparse.loc[3, "eventName"] = None
    report = validate(sparse)
    assert codes_by_row(report) == {3: ["event_name_missing"]}


def test_a_send_with_sparse_columns_writes_its_failures_file(tmp_path):
    """The failures file stores a sparse column densified (Arrow has no sparse type)."""
    _, sparse = sparse_and_dense()
    sparse["eventName"] = ["e", None, "e", "e"]
    gameball = MockGameball()
    path = tmp_path / "failures.parquet"
    report = gb_backfill.send(sparse, failures_path=path, **send_options(gameball))
    assert (report.sent, report.invalid) == (3, 1)
    written = gb_backfill.read_failures(path)
    assert written["gb_error_code"].tolist() == ["event_name_missing"]
    assert written["customerId"].tolist() == [0]
    assert len(gameball.requests) == 3


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            np.array([1.5, 2, 3], dtype=np.longdouble),
            r"column 'm' is float128 .*astype\('float64'\)",
        ),
        (
            pd.array(["a", "b", None], dtype=pd.ArrowDtype(pa.string_view())),
            r"column 'm' has dtype string_view.*astype\(object\)",
        ),
    ],
    ids=["long-double", "string-view"],
)
def test_dtypes_that_cannot_be_read_exactly_are_one_line_config_errors(column, message):
    df = pd.DataFrame({"customerId": ["a", "b", "c"], "eventName": "e", "m": column})
    with pytest.raises(gb_backfill.ConfigError, match=message) as caught:
        validate(df)
    assert "\n" not in str(caught.value)


def test_a_rule_on_a_renamed_column_names_the_column():
    """A trial's validate said 'customerId is missing' of its column user_id."""
    df = pd.DataFrame({"user_id": ["u1", None], "action": [None, "e"]})
    failures = gb_backfill.validate(df, customer_id="user_id", event_name="action").failures
    messages = dict(zip(failures["code"], failures["message"], strict=True))
    assert messages["customer_id_missing"] == "customerId (column user_id) is missing"
    assert messages["event_name_missing"] == "the event name (column action) is missing"
    plain = gb_backfill.validate(pd.DataFrame({"customerId": [None], "eventName": ["e"]}))
    assert plain.failures["message"].tolist() == ["customerId is missing"]
