"""The failures file round-trips: same values, same verdict, same payload, same key."""

import datetime as dt
import decimal
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gb_backfill import StoredObject, read_failures, validate
from gb_backfill._rows.keys import RowKeyMaker
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.payloads import encode_rows
from gb_backfill._rows.rules import check_frame
from gb_backfill._store.failures import FailureWriter, failure_rows, write_parquet
from tests.conftest import examples


class Opaque:
    def __repr__(self):
        return "<Opaque thing>"


def missing(value):
    try:
        if value is None or value is pd.NaT or value is pd.NA:
            return True
        found = pd.isna(value)
        return bool(found) if np.ndim(found) == 0 else False  # a list or an array is a value
    except (TypeError, ValueError):
        return False


def same(a, b):
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    if isinstance(a, Opaque):
        return isinstance(b, StoredObject) and repr(b) == repr(a)
    if isinstance(a, float) and isinstance(b, float) and math.isinf(a):
        return a == b
    return (type(a) is bool and b is a) or (type(a) is not bool and a == b)


def verdicts(df):
    failures = validate(df).failures
    return failures.groupby("row")["code"].apply(list).to_dict() if len(failures) else {}


def bodies_and_keys(df, carried=None):
    checked = check_frame(df, resolve_mapping(df.columns))
    encoded = encode_rows(df, checked)
    counter = RowKeyMaker()
    keyed = counter.keys(encoded.bodies, carried)
    counter.close()
    texts = [keyed.text(i) for i in range(len(keyed.keys))]
    return encoded.positions.tolist(), encoded.bodies, keyed.keys, texts


values = st.one_of(
    st.text(max_size=4),
    st.sampled_from(["8", "A23", "lone\ud800", "NA", "", " x "]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, max_value=10**6, min_value=-(10**6)
    ),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.datetimes(
        min_value=dt.datetime(1990, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    st.dates(),
    st.times(),
    st.timedeltas(max_value=dt.timedelta(days=999), min_value=dt.timedelta(days=-999)),
    st.binary(max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
    st.just(Opaque()),
)
ids = st.one_of(
    st.text(max_size=4), st.integers(-(2**70), 2**70), st.floats(), st.none(), st.booleans()
)


@st.composite
def frames(draw):
    rows = draw(st.integers(1, 10))
    column = lambda strategy: draw(st.lists(strategy, min_size=rows, max_size=rows))  # noqa: E731
    return pd.DataFrame(
        {
            "customerId": pd.Series(column(ids), dtype=object),
            "eventName": pd.Series(column(st.sampled_from(["buy", "", None, 3])), dtype=object),
            "mixed": pd.Series(column(values), dtype=object),
            "other": pd.Series(column(values), dtype=object),
            "plain": np.array(column(st.floats(allow_nan=True)), dtype=float),
        }
    )


def round_trip(df, tmp_path, parts):
    positions, bodies, keys, texts = bodies_and_keys(df)
    gb_keys = [None] * len(df)
    for position, text in zip(positions, texts, strict=True):
        gb_keys[position] = text
    rows = failure_rows(
        df, np.arange(len(df)), status="failed", code="x", message="m", keys=gb_keys
    )
    path = tmp_path / "f.parquet"
    if parts == 1:
        write_parquet(rows, path)
    else:
        # Several parts, each stored its own way, merged into one file as a run does.
        writer = FailureWriter(path)
        for piece in np.array_split(np.arange(len(rows)), parts):
            writer.add(rows.iloc[piece])
            writer.flush()
        writer.close()
    return read_failures(path), (positions, bodies, keys)


@pytest.mark.property
@settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
@given(df=frames(), parts=st.sampled_from([1, 3]))
def test_property_the_failures_file_round_trips(df, parts, tmp_path_factory):
    back, (positions, bodies, keys) = round_trip(df, tmp_path_factory.mktemp("rt"), parts)
    original = df.drop(columns=[])
    for column in original.columns:
        for a, b in zip(original[column], back[column], strict=True):
            assert same(a, b), (column, a, b)
    assert verdicts(back.drop(columns=[c for c in back if c.startswith("gb_")])) == verdicts(df)
    again = bodies_and_keys(back.drop(columns=["gb_key"]), None)
    assert (again[0], again[1]) == (positions, bodies), "same payloads"
    carried = back["gb_key"].tolist()
    _, _, back_keys, _ = bodies_and_keys(back, [carried[p] for p in positions])
    assert back_keys == keys, "same keys"


def test_examples_from_the_field_are_restored_not_repr(tmp_path):
    df = pd.DataFrame(
        {
            "customerId": ["c1", "c2", "c3"],
            "eventName": "e",
            "nested": pd.Series([{"nested": 1}, "A23", 8], dtype=object),
            "code": pd.Series(["8", 8, None], dtype=object),
        }
    )
    rows = failure_rows(df, [0, 1, 2], status="invalid", code="x", message="m")
    path = tmp_path / "f.parquet"
    write_parquet(rows, path)
    back = read_failures(path)
    assert back["nested"].tolist() == [{"nested": 1}, "A23", 8]
    assert back["code"].tolist()[:2] == ["8", 8]
    assert verdicts(back.drop(columns=[c for c in back if c.startswith("gb_")])) == verdicts(df)
    plain = pd.read_parquet(path)
    assert plain["nested"][0] == '["j", {"nested": 1}]', "documented: tagged JSON text"
    assert b"gb_backfill" in pq.read_schema(path).metadata


def test_a_parquet_list_column_comes_back_as_arrays_ready_to_fix(tmp_path, capsys):
    """pandas reads a Parquet list as numpy arrays: they come back as such, not as their repr,
    and the failure names them as lists."""
    from gb_backfill._cli import main

    source = tmp_path / "in.parquet"
    pd.DataFrame(
        {"customerId": ["a", "b", "c"], "eventName": "e", "tags": [["x", "y"], ["z"], None],
         "sizes": [[1, 2], [3], [4]]}
    ).to_parquet(source)  # fmt: skip
    failures = tmp_path / "f.parquet"
    assert main(["validate", str(source), "--failures", str(failures)]) == 1
    back = read_failures(failures)
    assert "must be a string, number or boolean, not a list (numpy array)" in str(
        back["gb_error_message"].tolist()
    )
    original = pd.read_parquet(source)
    for column in ("tags", "sizes"):
        for was, now in zip(original[column], back[column], strict=True):
            assert type(now) is type(was), (was, now)
            assert np.array_equal(now, was), (was, now)
            assert now is None or now.dtype == was.dtype
    fixed = back.assign(
        tags=back["tags"].map(",".join, na_action="ignore"), sizes=back["sizes"].map(sum)
    )
    assert verdicts(fixed.drop(columns=[c for c in fixed if c.startswith("gb_")])) == {}


def test_plain_columns_stay_plain(tmp_path):
    df = pd.DataFrame({"customerId": ["c1"], "eventName": ["e"], "n": [1.5], "s": ["x"]})
    path = tmp_path / "f.parquet"
    write_parquet(failure_rows(df, [0], status="failed", code="x", message="m"), path)
    plain = pd.read_parquet(path)
    assert (plain["n"][0], plain["s"][0]) == (1.5, "x")
    assert b"gb_backfill" not in (pq.read_schema(path).metadata or {})


def test_decimal_values_round_trip_exactly(tmp_path):
    df = pd.DataFrame(
        {
            "customerId": ["a", "b"],
            "eventName": "e",
            "p": [decimal.Decimal("2"), decimal.Decimal("1.50")],
        }
    )
    path = tmp_path / "f.parquet"
    write_parquet(failure_rows(df, [0, 1], status="failed", code="x", message="m"), path)
    assert read_failures(path)["p"].tolist() == [decimal.Decimal("2"), decimal.Decimal("1.50")]


@pytest.mark.parametrize("parts", [1, 3])
def test_integers_with_nulls_come_back_as_exact_ints_not_floats(parts, tmp_path):
    """Found by the property test: a part holding only [None, 2**53] was stored as int64 with
    a null and read back as a float, which made a valid 2**53 id inexact."""
    df = pd.DataFrame(
        {
            "customerId": pd.Series(["a", "b", None, 2**53, "c", "d"], dtype=object),
            "eventName": "buy",
        }
    )
    back, _ = round_trip(df, tmp_path, parts)
    assert back["customerId"].tolist()[2:4] == [None, 2**53]
    assert type(back["customerId"].iloc[3]) is int
    assert verdicts(back.drop(columns=[c for c in back if c.startswith("gb_")])) == verdicts(df)


def test_a_dataframe_is_read_in_retyped_chunks_and_an_empty_one_is_one_empty_chunk():
    """A send, a dry run and a preview read a DataFrame the same way (one function): chunks of
    ``batch_rows``, each with a failures file's unconverted text converted again; an empty frame
    is one empty chunk, so its columns are still seen."""
    from gb_backfill._input.reader import frame_chunks

    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(25)], "at": ["2024-01-01"] * 25})
    df.attrs = {"gb_backfill": {"as_text": {"at": "datetime"}}}  # as a failures file notes it
    chunks = list(frame_chunks(df, 10))
    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    assert all(pd.api.types.is_datetime64_any_dtype(chunk["at"]) for chunk in chunks)
    assert [chunk.index[0] for chunk in chunks] == [0, 10, 20]
    empty = list(frame_chunks(df.iloc[:0], 10))
    assert len(empty) == 1
    assert empty[0].empty
    assert list(empty[0].columns) == ["customerId", "at"]
