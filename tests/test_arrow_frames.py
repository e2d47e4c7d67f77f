"""Any frame that speaks Arrow in: Polars, DuckDB and pyarrow give pandas' bodies and keys.

Polars and DuckDB are test dependencies only (the ``test`` extra); the library reads them through
the Arrow C stream interface.
"""

import asyncio
import gc
import os
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import gb_backfill
from gb_backfill import ConfigError, Emulator, RateLimits
from gb_backfill._input.arrow import ArrowInput, open_frame, plain_type

SAMPLE = Path(__file__).parent.parent / "sample_data" / "events.parquet"
MAPPING = {"customer_id": "customer_id", "event_name": "event_name"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample's first 2,000 rows as a Parquet file, and as pandas reads it."""
    path = tmp_path_factory.mktemp("sample") / "events.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 2_000), path)
    return path, pd.read_parquet(path)


FRAMES = {
    "polars": lambda path: pl.read_parquet(path),
    "polars-lazy": lambda path: pl.scan_parquet(path),
    "pyarrow-table": lambda path: pq.read_table(path),
    "record-batch-reader": lambda path: pq.read_table(path).to_reader(max_chunksize=300),
    "pyarrow-dataset": lambda path: ds.dataset(path),
    "duckdb": lambda path: duckdb.sql(f"select * from '{path}'"),
}


def bodies(data, tmp_path, name, **options):
    out = tmp_path / f"{name}.jsonl"
    gb_backfill.plan(data, bodies_path=out, **MAPPING, **options)
    return out.read_bytes()


@pytest.mark.parametrize("kind", FRAMES)
def test_an_arrow_frame_gives_the_bytes_pandas_gives(sample, tmp_path, kind):
    path, df = sample
    data = FRAMES[kind](path)
    if kind == "polars":
        assert pa.RecordBatchReader.from_stream(data).schema.field("event_name").type == (
            pa.string_view()
        ), "Polars sends text as string_view"
    want = bodies(df, tmp_path, "pandas", batch_rows=700)
    assert want.count(b"\n") > 1_900
    assert bodies(data, tmp_path, kind, batch_rows=700) == want
    got = gb_backfill.payloads(FRAMES[kind](path), **MAPPING)
    assert got.tolist() == gb_backfill.payloads(df, **MAPPING).tolist()
    report = gb_backfill.validate(FRAMES[kind](path), **MAPPING)
    expected = gb_backfill.validate(df, **MAPPING)
    assert (report.valid_rows, report.invalid_rows) == (expected.valid_rows, expected.invalid_rows)
    assert report.failures.equals(expected.failures)


@pytest.mark.parametrize(
    "rows", [pytest.param(150, id="150-rows"), pytest.param(2_000, marks=pytest.mark.slow)]
)
def test_a_polars_frame_sends_every_valid_row_and_pandas_again_sends_nothing(
    sample, tmp_path, rows
):
    path, df = sample
    df = df.iloc[:rows]
    ledger = tmp_path / "ledger"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        options = {
            "base_url": emu.base_url, "api_key": emu.api_key, "limits": RateLimits.unlimited(),
            "progress": False, "ledger": ledger, "failures_path": tmp_path / "f.parquet",
            **MAPPING,
        }  # fmt: skip
        first = gb_backfill.send(pl.read_parquet(path).head(rows), **options)
        arrived = emu.events()
        again = gb_backfill.send(df, **options)
        arrived_again = len(emu.events())
    valid = gb_backfill.validate(df, **MAPPING).valid_rows
    assert first.rows == len(df) == rows
    assert first.sent == valid == len(arrived) > rows * 0.9
    assert first.invalid == len(df) - valid
    assert again.sent == 0, "the pandas run found every row in the Polars run's ledger"
    assert again.skipped == valid
    assert arrived_again == len(arrived)
    failures = gb_backfill.read_failures(tmp_path / "f.parquet")
    assert set(failures["gb_status"]) == {"invalid"}
    assert isinstance(first.failures, pd.DataFrame), "results stay pandas"


def test_a_reader_read_once_serves_every_pass_of_a_send(sample, tmp_path):
    """A ledger with sent rows and row_key= make a send read its input four times; a
    RecordBatchReader can be read once, so it is read through a temporary copy."""
    path, df = sample
    table = pq.read_table(path).append_column("row", pa.array(range(2_000)))
    gameball = _AcceptAll()
    options = {**MAPPING, "api_key": "k", "client": gameball.client(), "progress": False,
               "limits": RateLimits.unlimited(), "ledger": tmp_path / "ledger",
               "row_key": ["row"]}  # fmt: skip
    first = gb_backfill.send(table.slice(0, 1_000).to_reader(max_chunksize=128), **options)
    second = gb_backfill.send(table.to_reader(max_chunksize=128), **options)
    assert first.rows == 1_000
    assert second.rows == 2_000, "every pass read every row"
    assert second.skipped == first.sent
    assert first.sent + second.sent == gb_backfill.validate(df, **MAPPING).valid_rows
    assert gameball.count == first.sent + second.sent
    gc.collect()
    left = [p for p in os.listdir(os.environ.get("TMPDIR", "/tmp")) if "gb-backfill-stream" in p]
    assert not left, "the copy is removed after the run"


class _AcceptAll:
    def __init__(self):
        self.count = 0

    def client(self):
        import httpx

        def answer(request):
            self.count += 1
            return httpx.Response(200, json={})

        return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def test_view_and_large_types_read_as_their_plain_forms():
    columns = {
        "customerId": (["a", "b", None], pa.string_view()),
        "eventName": (["e", "e", "e"], pa.large_string()),
        "note": (["a much longer text than twelve bytes", "x", None], pa.string_view()),
        "big": (["1", "2", "3"], pa.large_string()),
    }
    views = pa.table({name: pa.array(values, kind) for name, (values, kind) in columns.items()})
    plain = pd.DataFrame({name: values for name, (values, _) in columns.items()})
    assert gb_backfill.payloads(views).tolist() == gb_backfill.payloads(plain).tolist()
    read = ArrowInput(views, function="send").whole()
    assert read.to_dict("list") == plain.to_dict("list")
    report = gb_backfill.validate(views)
    assert report.failures["code"].tolist() == ["customer_id_missing"]
    binary = pa.table({"code": pa.array([b"\x00\x01", None, b"z"], pa.binary_view())})
    assert ArrowInput(binary, function="send").whole()["code"].tolist() == [b"\x00\x01", None, b"z"]


@pytest.mark.parametrize(
    ("kind", "plain"),
    [
        (pa.large_list(pa.string_view()), pa.list_(pa.string())),
        (
            pa.struct([("x", pa.string_view()), ("y", pa.large_binary())]),
            pa.struct([("x", pa.string()), ("y", pa.binary())]),
        ),
        (
            pa.map_(pa.large_string(), pa.list_view(pa.int64())),
            pa.map_(pa.string(), pa.list_(pa.int64())),
        ),
        (pa.dictionary(pa.int32(), pa.large_string()), pa.dictionary(pa.int32(), pa.string())),
        (pa.int64(), pa.int64()),
    ],
    ids=["list", "struct", "map", "dictionary", "int"],
)
def test_view_and_large_types_are_plain_at_any_depth(kind, plain):
    assert plain_type(kind) == plain


def test_a_stream_is_read_a_batch_at_a_time():
    """Only the batches a chunk needs are pulled from the stream, never the whole input."""
    pulled = []
    schema = pa.schema([("customerId", pa.string()), ("eventName", pa.string())])

    def batches():
        for n in range(50):
            pulled.append(n)
            yield pa.record_batch([[f"c{n}"] * 100, ["e"] * 100], schema=schema)

    class Stream:  # one new stream per pass, like a Polars frame
        def __arrow_c_stream__(self, requested_schema=None):
            reader = pa.RecordBatchReader.from_batches(schema, batches())
            return reader.__arrow_c_stream__(requested_schema)

    source = open_frame(Stream(), "send")
    assert source.rows is None, "not known before reading"
    frames = source.frames(batch_rows=250)
    first = next(frames)
    assert len(first) == 250
    assert len(pulled) <= 4, "three batches make the first chunk (and one may be read ahead)"
    assert [len(f) for f in frames] == [250] * 19
    assert list(first.columns) == ["customerId", "eventName"]


def test_an_empty_frame_still_shows_its_columns(tmp_path):
    empty = pl.DataFrame(
        {"customerId": [], "eventName": []},
        schema={"customerId": pl.String, "eventName": pl.String},
    )
    plan = gb_backfill.plan(empty)
    assert plan.rows == 0
    with pytest.raises(ConfigError, match="customer"):
        gb_backfill.plan(pl.DataFrame({"who": ["a"]}))


@pytest.mark.parametrize("thing", [42, [{"customerId": "a"}], "events.parquet"])
def test_anything_else_is_a_one_line_error(thing):
    for function in (gb_backfill.plan, gb_backfill.validate, gb_backfill.payloads):
        with pytest.raises(ConfigError, match="pandas DataFrame or a frame that speaks Arrow") as e:
            function(thing)
        assert "\n" not in str(e.value)


def test_a_stream_that_fails_is_a_one_line_error():
    class Broken:
        def __arrow_c_stream__(self, requested_schema=None):
            raise ValueError("the warehouse hung up")

    with pytest.raises(ConfigError, match="could not read Broken as an Arrow stream") as e:
        gb_backfill.plan(Broken())
    assert "\n" not in str(e.value)


def test_the_async_faces_take_arrow_frames_too(sample):
    path, df = sample
    plan = asyncio.run(gb_backfill.aplan(pl.read_parquet(path), **MAPPING))
    assert plan.rows == len(df)


def test_spooled_reader_keeps_its_rows_and_removes_its_copy(sample):
    path, _ = sample
    source = ArrowInput(pq.read_table(path).to_reader(max_chunksize=100), function="send")
    assert source.rows == 2_000
    assert sum(len(f) for f in source.frames(batch_rows=333)) == 2_000
    assert sum(len(f) for f in source.frames(batch_rows=333)) == 2_000, "read again"
    spool = source._spool.name
    assert Path(spool).exists()
    source.close()
    assert not Path(spool).exists()


def test_a_polars_frame_is_previewed_as_pandas_is(sample):
    path, df = sample
    unlimited = RateLimits.unlimited()
    with Emulator(existing_share=0.5, preview_limits=unlimited) as emu:
        options = {"base_url": emu.base_url, "api_key": emu.api_key, "preview_limits": unlimited,
                   "progress": False, "sample": 40, "seed": 7, **MAPPING}  # fmt: skip
        from_polars = gb_backfill.preview(pl.read_parquet(path), **options)
        from_pandas = gb_backfill.preview(df, **options)
    assert from_polars.rows == from_pandas.rows == len(df)
    assert from_polars.quoted == from_pandas.quoted == 40
    assert from_polars.points == from_pandas.points, "the same sample, the same quotes"
