"""``dtype=``, ``thousands=``, ``decimal=`` and ``na_values=`` on Parquet (issue 30): they convert
a text column of a Parquet input exactly as they convert a CSV's, through the same first pass and
the same conversions, and are no longer silently ignored.

The trial: a Parquet export whose ``amount`` is text (``"1,299.50"``, one ``"n/a"``); the
``number_as_text`` warning names ``--dtype amount=float --thousands ,``, and those flags on
``validate``, ``send --dry-run`` and ``preview`` now do what it says.
"""

import json

import httpx
import pandas as pd
import pytest

from gb_backfill import ConfigError, Emulator, RateLimits, send_path, validate, validate_path
from gb_backfill._cli import main

FLAGS = ["--dtype", "amount=float", "--thousands", ","]


def trial(path, rows=200):
    """Amounts as text with thousands separators, one of them ``n/a`` (the warning tolerates
    1% of values that are no number)."""
    amounts = [f"{1 + n},{n % 1000:03d}.50" for n in range(rows)]
    amounts[7] = "n/a"
    pd.DataFrame(
        {
            "customer_id": [f"cust-{n:04d}" for n in range(rows)],
            "event_name": "purchase",
            "amount": amounts,
            "items": list(range(rows)),
        }
    ).to_parquet(path)
    return path


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_on_parquet_converts_the_amounts_the_warning_names(tmp_path, capsys):
    source = trial(tmp_path / "export.parquet")
    code, out, _ = cli(capsys, "validate", source)
    assert (code, out.splitlines()[0]) == (0, "rows: 200  valid: 200  invalid: 0")
    assert "--dtype amount=float --thousands , reads them" in out, "the warning before"
    assert "send_path(" not in out, "the command line is not told of a Python function"

    code, out, _ = cli(capsys, "validate", source, *FLAGS, "--failures", tmp_path / "f.pq")
    assert (code, out.splitlines()[0]) == (1, "rows: 200  valid: 199  invalid: 1")
    assert "dtype_unconvertible: 1" in out
    assert "number_as_text" not in out, "no warning after"
    assert "reads them" not in out
    failure = pd.read_parquet(tmp_path / "f.pq").iloc[0]
    assert failure["amount"] == "n/a"
    assert failure["gb_error_code"] == "dtype_unconvertible"
    assert "column 'amount' is read as float" in failure["gb_error_message"]

    code, out, _ = cli(capsys, "validate", source, *FLAGS, "--na-values", "n/a")
    assert (code, out.splitlines()[0]) == (0, "rows: 200  valid: 200  invalid: 0")


def test_the_decimal_comma_warning_names_flags_not_a_python_call(tmp_path, capsys):
    source = tmp_path / "regional.parquet"
    amounts = [f"{1 + n}.{n % 1000:03d},50" for n in range(50)]
    pd.DataFrame({"customer_id": [f"c{n}" for n in range(50)], "event_name": "e",
                  "amount": amounts}).to_parquet(source)  # fmt: skip
    code, out, _ = cli(capsys, "validate", source)
    assert "--dtype amount=float --decimal , reads them" in out
    assert "send_path(" not in out
    code, out, _ = cli(capsys, "validate", source, "--dtype", "amount=float", "--decimal", ",",
                       "--thousands", ".")  # fmt: skip
    assert (code, out.splitlines()[0]) == (0, "rows: 50  valid: 50  invalid: 0")
    assert "decimal comma" not in out


def test_a_dry_run_and_a_preview_on_parquet_take_the_flags(tmp_path, capsys):
    source = trial(tmp_path / "export.parquet")
    code, out, _ = cli(capsys, "send", source, "--dry-run")
    assert code == 0
    assert "200 valid, 0 invalid" in out
    code, out, _ = cli(capsys, "send", source, "--dry-run", *FLAGS)
    assert code == 1
    assert "199 valid, 1 invalid" in out
    assert "dtype_unconvertible: 1" in out
    small = trial(tmp_path / "small.parquet", rows=12)  # a preview quotes each row it samples
    with Emulator(known_events=["purchase"], existing_share=1.0) as emu:
        run = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--no-progress"]
        code, out, _ = cli(capsys, "preview", small, *run)
        assert out.startswith("preview of 12 rows (12 valid)")
        code, out, _ = cli(capsys, "preview", small, *run, *FLAGS)
        assert out.startswith("preview of 12 rows (11 valid)")


def test_the_failures_file_notes_the_type_as_for_a_csv(tmp_path):
    """The way back: the failures file keeps n/a as text, noted as float, so the row fixed with
    plain pandas sends a number, and one left as it was is dtype_unconvertible again."""
    source = trial(tmp_path / "export.parquet", rows=20)
    frame = pd.read_parquet(source)
    frame.loc[3, "amount"] = "also n/a"
    frame.to_parquet(source)
    validate_path(source, dtype={"amount": "float"}, thousands=",", failures_path=tmp_path / "f.pq")
    failures = pd.read_parquet(tmp_path / "f.pq")
    assert failures.attrs["gb_backfill"]["as_text"] == {"amount": "float"}
    failures.loc[failures["amount"] == "n/a", "amount"] = "12.5"
    again = validate(failures)
    assert again.failures[["code", "value"]].to_dict("records") == [
        {"code": "dtype_unconvertible", "value": "also n/a"}
    ]
    assert again.valid["amount"].tolist() == [12.5]


def test_dtype_naming_a_missing_column_is_the_csvs_one_line_error(tmp_path, capsys):
    parquet = trial(tmp_path / "export.parquet")
    pd.read_parquet(parquet).to_csv(tmp_path / "export.csv", index=False)
    said = []
    for source in (parquet, tmp_path / "export.csv"):
        code, _, err = cli(capsys, "validate", source, "--dtype", "nosuchcol=float")
        assert code == 2
        assert err.count("\n") == 1
        said.append(err)
    assert said[0] == said[1]
    assert "--dtype names missing column(s) nosuchcol; the columns are:" in said[0]


def test_a_send_from_parquet_carries_numbers(tmp_path):
    source = trial(tmp_path / "export.parquet", rows=30)
    with Emulator(limits=RateLimits.unlimited()) as emu:
        report = send_path(source, base_url=emu.base_url, api_key=emu.api_key, progress=False,
                           limits=RateLimits.unlimited(), dtype={"amount": "float"},
                           thousands=",", na_values=["n/a"])  # fmt: skip
        events = emu.events()
    assert report.sent == 30
    amounts = dict(zip(events["customer_id"], events["metadata"], strict=True))
    assert amounts["cust-0001"]["amount"] == 2001.5
    assert json.dumps(amounts["cust-0001"]["amount"]) == "2001.5", "a JSON number"
    assert "amount" not in amounts["cust-0007"], "n/a is missing, as in a CSV"
    assert amounts["cust-0002"]["items"] == 2, "a typed column is left as it is"


def test_a_row_from_csv_and_from_parquet_with_dtype_has_one_ledger_key(tmp_path):
    parquet = trial(tmp_path / "export.parquet", rows=40)
    pd.read_parquet(parquet).to_csv(tmp_path / "export.csv", index=False)
    read = {"dtype": {"amount": "float"}, "thousands": ",", "na_values": ["n/a"]}
    with Emulator(limits=RateLimits.unlimited()) as emu:
        run = {"base_url": emu.base_url, "api_key": emu.api_key, "progress": False,
               "limits": RateLimits.unlimited(), "ledger": tmp_path / "l"}  # fmt: skip
        first = send_path(tmp_path / "export.csv", **read, **run)
        second = send_path(parquet, **read, **run)
        arrived = len(emu.events())
    assert first.sent == 40
    assert (second.sent, second.skipped) == (0, 40), "the same rows, the same keys"
    assert arrived == 40


def bodies(path, **read):
    """The request bodies a send of ``path`` makes (in events mode, one event each)."""
    sent = []

    def gameball(request):
        sent.append(json.loads(request.content))
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(gameball))
    send_path(path, api_key="k", base_url="https://api.gameball.co", client=client,
              limits=RateLimits.unlimited(), progress=False, **read)  # fmt: skip
    return sorted(sent, key=lambda body: body["customerId"])


def test_a_numeric_parquet_column_with_dtype_is_unchanged(tmp_path):
    source = tmp_path / "typed.parquet"
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "event_name": "e",
                          "amount": [1.5, None, 3.0], "items": [1, 2, 3]})  # fmt: skip
    frame.to_parquet(source)
    plain = bodies(source)
    assert len(plain) == 3
    assert bodies(source, dtype={"amount": "float", "items": "float"}) == plain


@pytest.mark.parametrize("layout", ["directory", "glob"])
def test_dtype_reads_the_files_of_a_parquet_input_as_one(tmp_path, layout):
    """The first pass sees every file: a timestamp with an offset in one file makes the naive
    one in the other a guess of its zone (``metadata_mixed_timezones``), as in one CSV."""
    folder = tmp_path / "exports"
    folder.mkdir()
    one = {"customer_id": ["a", "b"], "event_name": "e", "at": ["2024-03-01T10:00:00+02:00"] * 2}
    two = {"customer_id": ["c"], "event_name": "e", "at": ["2024-03-02T10:00:00"]}
    pd.DataFrame(one).to_parquet(folder / "1.parquet")
    pd.DataFrame(two).to_parquet(folder / "2.parquet")
    path = folder if layout == "directory" else folder / "*.parquet"
    report = validate_path(path, dtype={"at": "datetime"}, failures_path=tmp_path / "f.pq")
    assert report.invalid_rows == 1
    failure = pd.read_parquet(tmp_path / "f.pq").iloc[0]
    assert (failure["customer_id"], failure["gb_error_code"]) == ("c", "metadata_mixed_timezones")
    sent = bodies(path, dtype={"at": "datetime"})
    assert [body["events"]["e"]["at"] for body in sent] == ["2024-03-01T08:00:00Z"] * 2


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"sep": ";"}, "sep=';' is for CSV files"),
        ({"encoding": "cp1252"}, "encoding='cp1252' is for CSV files"),
        (
            {"dtype": {"amount": "datetime"}},
            "asks column amount as datetime, but the Parquet "
            "file stores it as numbers (double); only text columns are converted (drop amount "
            "from dtype=)",
        ),
        (
            {"dtype": {"at": "int"}},
            "asks column at as int, but the Parquet file stores it as timestamps (",
        ),
        ({"dtype": {"items": "text"}}, "asks column items as text"),
    ],
)
def test_what_a_parquet_input_would_ignore_is_refused_before_anything_is_sent(
    tmp_path, given, said
):
    source = tmp_path / "typed.parquet"
    pd.DataFrame({"customer_id": ["a"], "event_name": "e", "amount": [1.5], "items": [1],
                  "at": pd.to_datetime(["2024-01-01"])}).to_parquet(source)  # fmt: skip
    with Emulator() as emu:
        with pytest.raises(ConfigError) as refused:
            send_path(source, base_url=emu.base_url, api_key=emu.api_key,
                      ledger=tmp_path / "l.db", progress=False, **given)  # fmt: skip
        assert len(emu.events()) == 0
    assert said in str(refused.value)
