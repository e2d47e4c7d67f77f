"""Refusals that name the fix that works (issue 30, item 7): rows an earlier run sent, written
differently, are refused with the --dtype that makes them match (which then skips them), and
every one of them is listed in a file the message names."""

import pandas as pd
import pytest

import gb_backfill as gb
from gb_backfill._cli import main


def export(rows=40):
    return pd.DataFrame(
        {
            "customer_id": [f"c{n % 7}" for n in range(rows)],
            "event_name": "purchase",
            "amount": [n + 0.5 for n in range(rows)],
            "occurred_at": pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC"),
        }
    )


@pytest.fixture
def sent_as_parquet(tmp_path):
    """The export sent once as Parquet with a ledger, and the same rows as CSV."""
    df = export()
    df.to_parquet(tmp_path / "export.parquet")
    df.to_csv(tmp_path / "export.csv", index=False)
    with gb.Emulator() as emu:
        keys = {"base_url": emu.base_url, "api_key": emu.api_key, "progress": False}
        first = gb.send_path(tmp_path / "export.parquet", **keys, ledger=tmp_path / "l")
        assert first.sent == len(df)
        yield emu, tmp_path


def cli(emu, tmp_path, *more):
    return main(["send", str(tmp_path / "export.csv"), "--base-url", emu.base_url, "--api-key",
                 emu.api_key, "--ledger", str(tmp_path / "l"), "--no-progress",
                 "--failures", str(tmp_path / "export.csv.failures.parquet"), *more])  # fmt: skip


def test_the_refusal_names_the_dtype_that_makes_the_rows_match_and_it_does(sent_as_parquet, capsys):
    emu, tmp_path = sent_as_parquet
    assert cli(emu, tmp_path) == 2
    err = capsys.readouterr().err
    assert "--dtype occurred_at=datetime" in err
    assert "resend_changed" not in err, "flags, not keywords"
    assert "NaN" not in err
    received = len(emu.events())
    assert cli(emu, tmp_path, "--dtype", "occurred_at=datetime") == 0, "the fix works"
    assert "40 rows: 0 sent, 40 skipped" in capsys.readouterr().out
    assert len(emu.events()) == received, "nothing was sent twice"


def test_every_refused_row_is_listed_in_the_file_the_last_line_names(sent_as_parquet, capsys):
    emu, tmp_path = sent_as_parquet
    assert cli(emu, tmp_path) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    listed = tmp_path / "export.csv.changed-rows.csv"
    assert (
        last
        == f"gb-backfill: all 40 of them (row: the row's position in the input, the first row 0) "
        f"are in {listed}"
    )
    every = pd.read_csv(listed)
    assert list(every["row"]) == list(range(40))
    assert list(every.columns) == ["row", "customer_id", "event_name", "occurred_at"]


def test_in_python_the_refusal_names_dtype_and_holds_every_row(sent_as_parquet):
    emu, tmp_path = sent_as_parquet
    with pytest.raises(gb.ChangedRowsError) as refused:
        gb.send_path(tmp_path / "export.csv", base_url=emu.base_url, api_key=emu.api_key,
                     ledger=tmp_path / "l", progress=False)  # fmt: skip
    error = refused.value
    assert "dtype={'occurred_at': 'datetime'}" in str(error)
    assert len(error.examples) == 5
    assert len(error.every) == 40


def test_no_dtype_is_named_when_none_would_make_them_match(tmp_path):
    """Empty text where the first run had a missing value: no type reads "" as missing, so the
    refusal names no --dtype (the fix it names must work)."""
    df = export().assign(coupon=[None if n % 2 else "SAVE" for n in range(40)])
    with gb.Emulator() as emu:
        keys = {"base_url": emu.base_url, "api_key": emu.api_key, "ledger": tmp_path / "l",
                "progress": False}  # fmt: skip
        assert gb.send(df, **keys).sent == 40
        with pytest.raises(gb.ChangedRowsError) as refused:
            gb.send(df.assign(coupon=df["coupon"].fillna("")), **keys)
    said = str(refused.value)
    assert "coupon" in said.split(":")[0], "the column that differs is named"
    assert "dtype=" not in said
    assert "resend_changed=True" in said


def test_the_dry_run_names_the_flag_on_the_command_line(sent_as_parquet, capsys):
    emu, tmp_path = sent_as_parquet
    assert cli(emu, tmp_path, "--dry-run") == 2, "as the live send: refused"
    out = capsys.readouterr().out
    assert "unless --resend-changed" in out
    assert "resend_changed=True" not in out
