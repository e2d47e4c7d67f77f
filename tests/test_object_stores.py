"""Inputs in object stores, end to end against a local S3-compatible server on loopback.

moto's server mode (a test dependency) plays S3 on 127.0.0.1; gb-backfill finds it the way the
AWS tools do, through ``AWS_ENDPOINT_URL`` and the ``AWS_*`` credentials.
"""

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import gb_backfill
from gb_backfill import ConfigError, Emulator, RateLimits
from gb_backfill._cli import main
from gb_backfill._store.failures import failures_input

moto_server = pytest.importorskip("moto.server")

SAMPLE = Path(__file__).parent.parent / "sample_data" / "events.parquet"
MAPPING = {"customer_id": "customer_id", "event_name": "event_name"}
KEY_ID = "AKIDLOCALTEST0001"
SECRET = "s3-SECRET-never-shown-8f2c"


@pytest.fixture(scope="module")
def s3_server():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    """A bucket ``exports`` on the local server, and the environment the AWS tools read."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    store = _store(s3_server)
    store.create_dir("exports")
    yield store
    store.delete_dir("exports")


def _store(endpoint):
    return pafs.S3FileSystem(
        access_key=KEY_ID, secret_key=SECRET, endpoint_override=endpoint, region="us-east-1",
        allow_bucket_creation=True, allow_bucket_deletion=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sample():
    return pq.read_table(SAMPLE).slice(0, 600)


def put(store, path, table):
    pq.write_table(table, path, filesystem=store)


def put_text(store, path, text):
    with store.open_output_stream(path) as out:
        out.write(text.encode())


def valid_rows(table):
    """The rows a send would send (the dry run of the same rows, read locally)."""
    return gb_backfill.plan(table.to_pandas(), **MAPPING).valid


@pytest.mark.parametrize(
    "rows", [pytest.param(150, id="150-rows"), pytest.param(1_500, marks=pytest.mark.slow)]
)
def test_the_cli_sends_a_stored_file_once(s3, tmp_path, capsys, rows):
    sample = pq.read_table(SAMPLE).slice(0, rows)
    put(s3, "exports/prefix/events.parquet", sample)
    ledger, failures = tmp_path / "ledger", tmp_path / "failures.parquet"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        args = [
            "send", "s3://exports/prefix/events.parquet", "--base-url", emu.base_url,
            "--api-key", emu.api_key, "--no-progress", "--rate", "0", "--quota", "0",
            "--ledger", str(ledger),
            "--failures", str(failures), "--customer-id", "customer_id",
            "--event-name", "event_name",
        ]  # fmt: skip
        assert main(args) == 1, "some rows of the sample are invalid"
        first = capsys.readouterr()
        arrived = len(emu.events())
        assert main(args) == 1
        again = capsys.readouterr()
        assert len(emu.events()) == arrived, "the second run sent nothing"
    assert arrived == valid_rows(sample) > rows * 0.9
    assert f": {arrived:,} sent," in first.out.splitlines()[0]
    assert ": 0 sent," in again.out.splitlines()[0]
    assert f"{arrived:,} skipped" in again.out.splitlines()[0]
    assert failures_input(failures) == "s3://exports/prefix/events.parquet"
    shown = first.out + first.err + again.out + again.err
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for secret in (SECRET, KEY_ID):
        assert secret not in shown
        assert secret.encode() not in stored, "not in the ledger, not in the failures file"


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_prefix_of_several_files_is_one_input(s3, sample):
    parts = [sample.slice(0, 200), sample.slice(200, 150), sample.slice(350, 250)]
    for n, part in enumerate(parts):
        put(s3, f"exports/parts/part-{n}.parquet", part)
    put_text(s3, "exports/parts/_SUCCESS", "")
    put(s3, "exports/parts/older/part-9.parquet", sample.slice(0, 7))  # below: not read
    valid = valid_rows(sample)
    for uri in ("s3://exports/parts/", "s3://exports/parts", "s3://exports/parts/part-*.parquet"):
        plan = gb_backfill.plan_path(uri, **MAPPING)
        assert (plan.rows, plan.valid) == (600, valid), uri
    one = gb_backfill.plan_path("s3://exports/parts/part-1.parquet", **MAPPING)
    assert one.rows == 150


def test_stored_csv_reads_as_a_local_csv_does(s3, sample, tmp_path):
    frame = sample.to_pandas().drop(columns=["utm"])
    for n, start in enumerate((0, 300)):
        text = frame.iloc[start : start + 300].to_csv(index=False)
        put_text(s3, f"exports/csv/events-{n}.csv", text)
        (tmp_path / f"events-{n}.csv").write_text(text)
    stored = gb_backfill.validate_path("s3://exports/csv/", **MAPPING, batch_rows=200)
    local = gb_backfill.validate_path(tmp_path, **MAPPING, batch_rows=200)
    assert stored.rows == local.rows == 600
    assert stored.counts().equals(local.counts())
    remote_bodies, local_bodies = tmp_path / "s3.jsonl", tmp_path / "local.jsonl"
    gb_backfill.plan_path("s3://exports/csv/*.csv", bodies_path=remote_bodies, **MAPPING)
    gb_backfill.plan_path(tmp_path / "*.csv", bodies_path=local_bodies, **MAPPING)
    assert remote_bodies.read_bytes() == local_bodies.read_bytes()


def test_dtype_reads_a_stored_parquet_files_text_as_a_local_csvs(s3, tmp_path):
    """Issue 30: dtype=, thousands= and na_values= convert a stored Parquet file's text column
    as they convert the same values in a local CSV: the same bodies, numbers in them."""
    frame = pd.DataFrame({"customer_id": [f"c{n}" for n in range(6)], "event_name": "buy",
                          "amount": ["1,299.50", "12", "n/a", "7,000", "0.5", "3"]})  # fmt: skip
    put(s3, "exports/amounts.parquet", pa.Table.from_pandas(frame, preserve_index=False))
    frame.to_csv(tmp_path / "amounts.csv", index=False)
    read = {"dtype": {"amount": "float"}, "thousands": ",", "na_values": ["n/a"], **MAPPING}
    stored, local = tmp_path / "s3.jsonl", tmp_path / "local.jsonl"
    gb_backfill.plan_path("s3://exports/amounts.parquet", bodies_path=stored, **read)
    gb_backfill.plan_path(tmp_path / "amounts.csv", bodies_path=local, **read)
    assert stored.read_bytes() == local.read_bytes()
    assert b'"amount":1299.5' in stored.read_bytes()


def test_a_wrong_bucket_is_one_line_that_names_it(s3, capsys, tmp_path):
    with pytest.raises(ConfigError) as caught:
        gb_backfill.send_path("s3://no-such-bucket/events.parquet", api_key="k", **MAPPING)
    message = str(caught.value)
    assert "\n" not in message
    assert "no bucket 'no-such-bucket'" in message
    assert SECRET not in message
    assert KEY_ID not in message
    failures = tmp_path / "f.parquet"
    code = main(["send", "s3://no-such-bucket/x/", "--api-key", "k", "--failures", str(failures),
                 "--base-url", "http://127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "no-such-bucket" in err
    assert SECRET not in err
    with pytest.raises(ConfigError, match="no such file"):
        gb_backfill.plan_path("s3://exports/missing.parquet")
    with pytest.raises(ConfigError, match="no file matches"):
        gb_backfill.plan_path("s3://exports/none-*.parquet")


def test_credentials_in_the_uri_are_never_shown(s3):
    uri = f"s3://{KEY_ID}:{SECRET}@no-such-bucket/events.parquet?region=us-east-1"
    with pytest.raises(ConfigError) as caught:
        gb_backfill.validate_path(uri)
    assert SECRET not in str(caught.value)
    assert KEY_ID not in str(caught.value)
    assert "s3://no-such-bucket/events.parquet" in str(caught.value)


def test_a_filesystem_argument(s3, s3_server, sample, monkeypatch, tmp_path):
    put(s3, "exports/fs/events.parquet", sample)
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    filesystem = _store(s3_server)
    for path in ("exports/fs/events.parquet", "s3://exports/fs/events.parquet"):
        plan = gb_backfill.plan_path(path, filesystem=filesystem, **MAPPING)
        assert plan.rows == 600
    local = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    pq.write_table(sample.slice(0, 10), tmp_path / "few.parquet")
    assert gb_backfill.validate_path("few.parquet", filesystem=local).rows == 10
    with pytest.raises(ConfigError, match=r"filesystem=.*pyarrow.fs.FileSystem") as caught:
        gb_backfill.plan_path("few.parquet", filesystem="s3")
    assert caught.value.option == "filesystem"


def test_the_failures_file_and_the_ledger_stay_local(s3, sample, tmp_path, monkeypatch):
    put(s3, "exports/local/events.parquet", sample.slice(0, 100))
    monkeypatch.chdir(tmp_path)
    with Emulator(limits=RateLimits.unlimited()) as emu:
        report = gb_backfill.send_path(
            "s3://exports/local/events.parquet", base_url=emu.base_url, api_key=emu.api_key,
            limits=RateLimits.unlimited(), progress=False, ledger="ledger",
            failures_path="failures.parquet", **MAPPING,
        )  # fmt: skip
    assert report.invalid > 0
    assert (tmp_path / "ledger").exists()
    assert (tmp_path / "failures.parquet").exists()
    listed = s3.get_file_info(pafs.FileSelector("exports/local", recursive=True))
    assert [i.base_name for i in listed] == ["events.parquet"], "nothing written to the store"
    written = pd.read_parquet(tmp_path / "failures.parquet")
    assert len(written) == report.invalid


@pytest.mark.parametrize(
    ("uri", "kind", "path"),
    [
        ("gs://bucket/exports/x.parquet", "GcsFileSystem", "bucket/exports/x.parquet"),
        ("abfs://box@account.dfs.core.windows.net/x.csv", "AzureFileSystem", "box/x.csv"),
    ],
)
def test_gcs_and_azure_uris_open_pyarrows_filesystems(uri, kind, path):
    """gs:// and abfs:// reach pyarrow's own filesystems (opening one makes no request; no
    server for them runs here)."""
    from gb_backfill._input.stores import _filesystem, shown_uri

    filesystem, found, _scheme = _filesystem(uri, None)
    assert (type(filesystem).__name__, found) == (kind, path)
    assert shown_uri(uri) == uri, "the container is not a credential"
    secret = "abfs://box:SAS-SECRET@account.dfs.core.windows.net/x.csv"
    assert shown_uri(secret) == "abfs://box@account.dfs.core.windows.net/x.csv"


def test_a_table_written_to_the_store_round_trips(s3):
    """The store itself works as the tests assume (a sanity check of the server)."""
    put(s3, "exports/check.parquet", pa.table({"a": [1, 2, 3]}))
    assert pq.read_table("exports/check.parquet", filesystem=s3).num_rows == 3
