"""Rows that look sent but differ: the same export again in another format is not sent twice.

A CSV keeps timestamps and numbers as text and writes an empty string as an empty field, so the
same rows read from CSV after Parquet have other exact keys. Their loose identity (customer,
event, values read the same way) is what the ledger recognises.
"""

import asyncio

import httpx
import numpy as np
import pandas as pd
import pytest

import gb_backfill
from gb_backfill import ChangedRowsError, Emulator, RateLimits, asend, send_path
from gb_backfill._cli import main
from gb_backfill._rows.loose import canonical


def export(rows=60):
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "customer_id": [f"{n:05d}" for n in rng.integers(0, 20, rows)],
            "event_name": rng.choice(["purchase", "review"], rows),
            "occurred_at": pd.date_range("2024-03-30 22:00", periods=rows, freq="37min", tz="UTC"),
            "amount": np.round(rng.uniform(1, 500, rows), 2),
            "items": rng.integers(1, 5, rows),
            "first_order": rng.choice([True, False], rows),
            "coupon": rng.choice(["", "SPRING", "WELCOME10"], rows),
        }
    )


class Gameball:
    def __init__(self):
        self.bodies = []

    def __call__(self, request):
        self.bodies.append(request.content)
        return httpx.Response(200)


def options(gameball, ledger, **more):
    return {
        "api_key": "k",
        "base_url": "https://api.gameball.co",
        "client": httpx.AsyncClient(transport=httpx.MockTransport(gameball)),
        "limits": RateLimits.unlimited(),
        "progress": False,
        "ledger": ledger,
        **more,
    }


def test_the_same_rows_as_csv_after_parquet_are_refused_before_anything_is_sent(tmp_path):
    df = export()
    df.to_parquet(tmp_path / "export.parquet")
    df.to_csv(tmp_path / "export.csv", index=False)
    ledger = tmp_path / "l"
    gameball = Gameball()
    first = send_path(tmp_path / "export.parquet", **options(gameball, ledger))
    assert first.sent == len(df)

    with pytest.raises(ChangedRowsError) as refused:
        send_path(tmp_path / "export.csv", **options(gameball, ledger))
    assert len(gameball.bodies) == len(df), "nothing more was sent"
    error = refused.value
    assert error.rows == len(df)
    assert "resend_changed=True" in str(error)
    assert "occurred_at" in str(error), "the columns that differ are named"
    assert len(error.examples) == 5
    assert {"row", "customer_id", "event_name", "occurred_at"} <= set(error.examples.columns)


def test_a_regional_csv_after_parquet_is_refused_too(tmp_path):
    """As regional Excel writes it: ';'-separated cp1252, a decimal comma and a point between
    thousands (2.277,83). Read with only --sep and --encoding, its amounts are text; they are
    still the amounts already sent, so nothing goes twice."""
    df = export().assign(amount=lambda d: (d["amount"] * 10).round(2), place="São Paulo")
    df.to_parquet(tmp_path / "export.parquet")
    regional = df.assign(
        amount=[
            f"{a:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") for a in df["amount"]
        ]
    )
    assert regional["amount"].str.fullmatch(r"\d{1,3}(?:\.\d{3})*,\d{2}").all()
    assert regional["amount"].str.contains(".", regex=False).any(), "some have thousands"
    regional.to_csv(tmp_path / "export.csv", index=False, sep=";", encoding="cp1252")
    ledger = tmp_path / "l"
    gameball = Gameball()
    assert send_path(tmp_path / "export.parquet", **options(gameball, ledger)).sent == len(df)

    with pytest.raises(ChangedRowsError) as refused:
        send_path(tmp_path / "export.csv", sep=";", encoding="cp1252", **options(gameball, ledger))
    assert len(gameball.bodies) == len(df), "nothing more was sent"
    assert refused.value.rows == len(df)
    assert "amount" in str(refused.value)


@pytest.mark.parametrize(
    "change",
    [
        "reordered",
        "empty-for-missing",
        "missing-for-empty",
        "numbers-as-text",
        "columns-reordered",
        "another-timezone",
    ],
)
def test_rows_written_differently_are_recognised(tmp_path, change):
    df = export()
    ledger = tmp_path / "l"
    gameball = Gameball()
    asyncio.run(asend(df, **options(gameball, ledger)))
    again = df.copy()
    if change == "reordered":  # and as text, as a CSV holds it (reordering alone changes no key)
        again = again.sample(frac=1, random_state=3).astype(str)
    elif change == "empty-for-missing":
        again["coupon"] = again["coupon"].replace("", None)
    elif change == "missing-for-empty":
        again.loc[again.index[::2], "items"] = None
        df2 = df.copy()
        df2.loc[df2.index[::2], "items"] = None  # the first run had them missing
        ledger = tmp_path / "l2"
        asyncio.run(asend(df2, **options(Gameball(), ledger)))
        again = df2.assign(items=df2["items"].astype(object).where(df2["items"].notna(), ""))
    elif change == "numbers-as-text":
        again["amount"] = again["amount"].map(lambda v: f"{v:,.2f}")
        again["items"] = again["items"].astype(str)
    elif change == "columns-reordered":
        again = again[list(reversed(again.columns))]
        again["amount"] = again["amount"].astype(str)
    elif change == "another-timezone":
        again["occurred_at"] = again["occurred_at"].dt.tz_convert("Africa/Cairo").astype(str)
    sent_before = len(gameball.bodies)
    with pytest.raises(ChangedRowsError):
        asyncio.run(asend(again, **options(gameball, ledger)))
    assert len(gameball.bodies) == sent_before


def test_resend_changed_sends_them_and_the_dry_run_counts_them(tmp_path):
    df = export()
    ledger = tmp_path / "l"
    gameball = Gameball()
    asyncio.run(asend(df, **options(gameball, ledger)))
    text = df.astype(str)
    plan = gb_backfill.plan(text, **options(gameball, ledger))
    assert plan.changed == len(df)
    assert "resend_changed" in plan.summary()
    report = asyncio.run(asend(text, **options(gameball, ledger, resend_changed=True)))
    assert report.sent == len(df)


def test_new_rows_and_new_occurrences_are_not_taken_for_changed_ones(tmp_path):
    df = export(20)
    ledger = tmp_path / "l"
    gameball = Gameball()
    asyncio.run(asend(df, **options(gameball, ledger)))
    grown = pd.concat([df, df.iloc[[0]], export(30).iloc[20:]], ignore_index=True)
    report = asyncio.run(asend(grown, **options(gameball, ledger)))
    assert report.skipped == 20
    assert report.sent == 11, "a second identical event and ten new ones are new rows"
    # ...and the same grown input as text later: all of it is recognised.
    with pytest.raises(ChangedRowsError) as refused:
        asyncio.run(asend(grown.astype(str), **options(gameball, ledger)))
    assert refused.value.rows == len(grown)


def test_a_first_run_with_an_empty_ledger_is_not_checked_twice(tmp_path, monkeypatch):
    import gb_backfill._input.arrow as sender  # where a DataFrame input is read in chunks

    reads = []
    original = sender.frame_chunks

    def counting(df, rows):
        reads.append(1)
        return original(df, rows)

    monkeypatch.setattr(sender, "frame_chunks", counting)
    asyncio.run(asend(export(), **options(Gameball(), tmp_path / "l")))
    assert len(reads) == 1, "no ledger rows to compare with: the input is read once"


def test_canonical_forms_meet():
    typed = pd.Series([1.5, 3.0, None])
    text = pd.Series(["1.50", "3", ""])
    assert canonical(typed)[0].to_pylist() == canonical(text)[0].to_pylist()
    stamps = pd.Series(pd.to_datetime(["2024-03-31 01:30"]).tz_localize("UTC"))
    cairo = pd.Series(["2024-03-31T03:30:00+02:00"])
    assert canonical(stamps)[0].to_pylist() == canonical(cairo)[0].to_pylist()
    assert canonical(pd.Series([True]))[0] == canonical(pd.Series(["TRUE"]))[0]
    assert canonical(pd.Series(["7,029.78"]))[0] == canonical(pd.Series([7029.78]))[0]
    regional = pd.Series(["2.277,83", "99,16", "1 234,5", "-0,5"])
    assert canonical(regional)[0] == canonical(pd.Series([2277.83, 99.16, 1234.5, -0.5]))[0]
    assert canonical(pd.Series(["1,234"]))[0] == canonical(pd.Series([1234]))[0], "thousands"
    assert canonical(pd.Series(["1,2,3"]))[0] != canonical(pd.Series([1.23]))[0]
    assert canonical(pd.Series(["A1"]))[0] != canonical(pd.Series(["a1"]))[0]


@pytest.mark.slow
def test_the_cli_refuses_csv_after_parquet_with_exit_2_and_sends_with_the_flag(tmp_path, capsys):
    df = export()
    df.to_parquet(tmp_path / "export.parquet")
    df.sample(frac=1, random_state=1).to_csv(tmp_path / "export.csv", index=False)
    with Emulator(limits=RateLimits.unlimited()) as emu:
        common = [
            "--base-url", emu.base_url, "--api-key", emu.api_key, "--ledger",
            str(tmp_path / "l"), "--no-progress", "--customer-id", "customer_id",
            "--event-name", "event_name",
        ]  # fmt: skip
        first = ["--failures", str(tmp_path / "parquet.failures.parquet")]
        assert main(["send", str(tmp_path / "export.parquet"), *common, *first]) == 0
        capsys.readouterr()
        common += ["--failures", str(tmp_path / "csv.failures.parquet")]
        assert main(["send", str(tmp_path / "export.csv"), *common]) == 2
        err = capsys.readouterr().err
        assert len(emu.events()) == len(df), "0 rows twice"
        assert "nothing was sent" in err
        assert "--resend-changed" in err
        assert "resend_changed=" not in err, "the command line names its flag, not the keyword"
        assert main(["send", str(tmp_path / "export.csv"), *common, "--dry-run"]) == 2
        assert f"changed: {len(df):,} rows" in capsys.readouterr().out
        assert main(["send", str(tmp_path / "export.csv"), *common, "--resend-changed"]) == 0
        assert len(emu.events()) == 2 * len(df)


def test_rows_that_differ_in_no_column_are_not_said_to_be_written_differently(tmp_path):
    """A trial sent its export (n/a read as missing) after the fixed failures file: the
    refusal said its rows were 'written differently (email, mobile, or how a value is
    written)', and no column differed."""
    import gb_backfill as gb

    source = tmp_path / "in.csv"
    source.write_text("customer_id,event_name,total\nc1,e,1.5\nc2,e,n/a\nc3,e,2\n")
    with gb.Emulator() as emu:
        options = {"base_url": emu.base_url, "api_key": emu.api_key, "progress": False,
                   "ledger": tmp_path / "l.db"}  # fmt: skip
        gb.send_path(source, dtype={"total": "float"}, failures_path=tmp_path / "f.parquet",
                     **options)  # fmt: skip
        fixed = pd.read_parquet(tmp_path / "f.parquet")
        fixed["total"] = fixed["total"].replace({"n/a": None}).astype(float)
        assert gb.send(fixed, **options).sent == 1
        export = pd.read_csv(source, na_values=["n/a"])
        planned = gb.plan(pd.concat([export, fixed], ignore_index=True), ledger=tmp_path / "l.db")
        # What the rows are adds up to the rows; what a send would do with them is said apart.
        assert planned.headline().startswith(
            "dry run, nothing was sent: 4 rows, 4 valid, 0 invalid; a send would send nothing: "
            "1 row looks like a row an earlier run sent (changed, below)"
        ), planned.headline()
        # The counts after it are of the rows it would send without the changed ones (a trial
        # read customers and event names under "send nothing" and could not place them).
        lines = planned.summary().splitlines()
        at = next(n for n, line in enumerate(lines) if line.startswith("  changed: 1 row looks"))
        assert lines[at + 1 : at + 3] == [
            "  without the changed rows, a send would send 0 rows; of those:",
            "  customers: 0",
        ], lines
        with pytest.raises(gb.ChangedRowsError) as refused:
            gb.send(pd.concat([export, fixed], ignore_index=True), **options)
    said = str(refused.value)
    assert said.startswith("1 row has the same customer, event and values as rows an earlier")
    assert "as an export's row and its fixed copy from a failures file do" in said
    assert "written differently" not in said


def test_an_input_sent_again_read_another_way_is_told_how_it_was_read(tmp_path, capsys):
    """A trial sent its export with --dtype total=float --na-values n/a, sent it again with
    neither, dropped the rows refused as changed, and its n/a rows went twice (missing the
    first time, "n/a" the second): the refusal names the read options it was sent with."""
    source = tmp_path / "export.csv"
    source.write_text("customer_id,event_name,total\nc1,e,1.5\nc2,e,n/a\nc3,e,2\n")
    ledger = tmp_path / "l.db"
    with Emulator() as emu:
        flags = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--ledger", str(ledger),
                 "--no-progress", "--failures", str(tmp_path / "f.parquet")]  # fmt: skip
        read = ["--dtype", "total=float", "--na-values", "n/a"]
        assert main(["send", str(source), *flags, *read]) == 0
        capsys.readouterr()
        assert main(["send", str(source), *flags, "--dry-run"]) == 2  # as the live send: refused
        planned = " ".join(capsys.readouterr().out.split())
        assert "read it as then, --dtype total=float --na-values n/a" in planned, planned
        # The rows it would send are suspect too: the n/a row sent then is one of them.
        assert (
            "so the rows it would send may hold rows it sent then, read otherwise (a text such "
            "as n/a that was missing)" in planned
        ), planned
        assert "without the changed rows, a send would send 1 row; of those:" in planned
        assert main(["send", str(source), *flags]) == 2
        refusal = " ".join(capsys.readouterr().err.split())
        assert (
            "this input was sent before read another way, so the 1 row it would send now "
            "may be a row it sent then, read otherwise (a text such as n/a that was missing). "
            "Read it as then, --dtype total=float --na-values n/a, and the run skips the rows it "
            "sent" in refusal
        ), refusal
        assert refusal.lower().count("nothing was sent") == 1, "said once"
        assert main(["send", str(source), *flags, *read]) == 0, "read as then: all skipped"
        assert len(emu.events()) == 3


def test_rows_that_look_new_only_because_of_how_they_are_read_are_refused(tmp_path, capsys):
    """A trial's file of n/a rows, sent with --na-values n/a and again without: no row looked
    changed ("n/a" is no missing value), so 23 went twice. Read another way, it is refused."""
    source = tmp_path / "na.csv"
    source.write_text("customer_id,event_name,total\nc1,e,n/a\nc2,e,n/a\n")
    with Emulator() as emu:
        flags = [
            "--base-url",
            emu.base_url,
            "--api-key",
            emu.api_key,
            "--no-progress",
            "--ledger",
            str(tmp_path / "l.db"),
            "--failures",
            str(tmp_path / "f.parquet"),
        ]
        assert main(["send", str(source), *flags, "--na-values", "n/a"]) == 0
        capsys.readouterr()
        assert main(["send", str(source), *flags, "--dry-run"]) == 2, "as the live run would"
        planned = " ".join(capsys.readouterr().out.split())
        assert (
            "a live send would be refused: this input was sent before read another way" in planned
        )
        assert main(["send", str(source), *flags]) == 2, "refused: the rows may be those sent"
        assert "read it as then, --na-values n/a" in capsys.readouterr().err
        assert len(emu.events()) == 2
        # A reading that was wrong is fixed on purpose: rows read as now are sent.
        assert main(["send", str(source), *flags, "--resend-changed"]) == 0
        assert len(emu.events()) == 4


def test_read_options_of_one_punctuation_mark_are_quoted_in_the_fix(tmp_path, capsys):
    """A trial read "read it as then, --decimal , --dtype ..." with the comma lost in the
    sentence's own punctuation."""
    source = tmp_path / "export.csv"
    source.write_text('customer_id;event_name;total\nc1;e;"1.299,50"\nc2;e;"2,5"\n')
    with Emulator() as emu:
        flags = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--sep", ";",
                 "--ledger", str(tmp_path / "l.db"), "--no-progress",
                 "--failures", str(tmp_path / "f.pq")]  # fmt: skip
        read = ["--dtype", "total=float", "--thousands", ".", "--decimal", ","]
        assert main(["send", str(source), *flags, *read]) == 0
        capsys.readouterr()
        assert main(["send", str(source), *flags, "--dry-run"]) == 2
    planned = " ".join(capsys.readouterr().out.split())
    assert "read it as then, --decimal ',' --dtype total=float --sep ';' --thousands '.'," in (
        planned
    ), planned
