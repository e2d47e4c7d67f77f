"""CSV input never moves a value to another column, and never turns a bad value into an error.

Issue 18: a trailing separator shifted every column (items 1 and 7), and a value ``--dtype``
could not convert recursed without end (item 4).
"""

import decimal
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gb_backfill
from gb_backfill import ConfigError, read_failures
from gb_backfill._cli import main
from gb_backfill._input.reader import CsvOptions, InputFile
from gb_backfill._rows.keys import RowKeyMaker
from gb_backfill._rows.mapping import READ_PROBLEMS, resolve_mapping
from gb_backfill._rows.payloads import encode_rows
from gb_backfill._rows.rules import check_frame

MAPPING = {"customer_id": "user_id", "event_name": "event"}


def read(path, *, csv=None, batch_rows=50_000, **mapping):
    """Every row's first failure code (None when valid) and every valid row's body."""
    mapping = mapping or MAPPING
    source = InputFile(path, text_columns=list(mapping.values()), csv=csv)
    resolved = resolve_mapping(source.columns, **mapping)
    codes, bodies = [], []
    for frame in source.frames(batch_rows=batch_rows):
        checked = check_frame(frame, resolved)
        first = checked.failures.groupby("position")["code"].first()
        codes += [first.get(n) for n in range(len(frame))]
        bodies += [json.loads(b) for b in encode_rows(frame, checked).bodies]
    return codes, bodies


def body(customer, event, **metadata):
    return {"customerId": customer, "events": {event: metadata}}


def test_a_trailing_separator_moves_no_value(tmp_path):
    """Issue 18.1: the body was {"customerId":"buy","events":{"1.5":{}}}."""
    path = tmp_path / "trailing.csv"
    path.write_text("user_id,event,amount\n0012,buy,1.5,\n0013,sell,2,\n")
    codes, bodies = read(path)
    assert codes == [None, None]
    assert bodies == [body("0012", "buy", amount=1.5), body("0013", "sell", amount=2)]


def test_a_line_with_more_fields_is_a_failure_that_keeps_its_line(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("user_id,event,amount\n1,buy,1.5\n2,sell,2,x,y\n3,buy,3,,\n")
    codes, bodies = read(path)
    assert codes == [None, "csv_extra_fields", None]
    assert bodies == [body("1", "buy", amount=1.5), body("3", "buy", amount=3)]
    frame = next(InputFile(path, text_columns=["user_id", "event"]).frames(batch_rows=10))
    failures = check_frame(frame, resolve_mapping(frame.columns, **MAPPING)).failures
    [message] = failures.loc[failures.code == "csv_extra_fields", "message"]
    assert message.endswith("as read: 2,sell,2,x,y"), "the fields the columns cannot hold"
    assert frame.loc[1, ["user_id", "event", "amount"]].tolist() == ["2", "sell", 2.0]


def test_a_line_with_fewer_fields_is_a_failure_and_empty_last_fields_are_not(tmp_path):
    path = tmp_path / "short.csv"
    lines = ["user_id,event,note", "1,buy,", "2,buy", "", '3,buy,"two\nlines"', "4", "5,buy,x"]
    path.write_text("\n".join(lines) + "\n")
    codes, bodies = read(path, batch_rows=2)
    assert codes == [None, "csv_missing_fields", None, "csv_missing_fields", None]
    assert [b["customerId"] for b in bodies] == ["1", "3", "5"]
    assert bodies[1] == body("3", "buy", note="two\nlines")


def test_a_header_with_a_trailing_separator_needs_none_on_its_lines(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("user_id,event,\n1,buy\n2,buy,\n")
    assert read(path) == ([None, None], [body("1", "buy"), body("2", "buy")])


def test_bom_and_semicolons_with_one_wide_line_shift_nothing(tmp_path):
    """Issue 18.1: a BOM + ';' file with a single 5-field line shifted all of its rows."""
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffuser_id;event;amount\n7;buy;1,5\n8;buy;2;x;y\n9;buy;3\n".encode())
    codes, bodies = read(path, csv=CsvOptions.make(sep=";"))
    assert codes == [None, "csv_extra_fields", None]
    assert bodies == [body("7", "buy", amount="1,5"), body("9", "buy", amount="3")]


@pytest.mark.parametrize(
    ("header", "sep", "shown"),
    [
        ("member_no;action;ts", ";", "';'"),
        ("member_no\taction", "\\t", "a tab"),
        ("a|b", "|", "'|'"),
    ],
)
def test_a_one_column_header_names_the_separator(tmp_path, capsys, header, sep, shown):
    """Issue 18.7: a wrong --sep gave one column named member_no;action;ts and no hint."""
    path = tmp_path / "wrong.csv"
    path.write_text(f"{header}\n1;2;3\n")
    assert main(["validate", str(path), "--event", "x"]) == 2
    err = capsys.readouterr().err
    first = err.split(" (", 1)[0]
    assert first.startswith("gb-backfill: error: the header is one column, "), "the fix first"
    assert first.endswith(f"is the separator {shown}? pass --sep '{sep}'"), err
    assert err.count("\n") == 1
    with pytest.raises(ConfigError, match=re.escape(f"pass sep='{sep}'")):
        gb_backfill.plan_path(path, event="x", api_key="k")


def test_a_one_column_header_that_can_be_mapped_is_read(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("id;x\na;1\n")
    assert main(["validate", str(path), "--customer-id", "id;x", "--event", "e"]) == 0
    with pytest.raises(ConfigError, match="sep= takes one character"):
        CsvOptions.make(sep="::")


def test_a_fixed_failures_file_is_sent_again_without_a_stale_mark(tmp_path, capsys):
    path = tmp_path / "ragged.csv"
    path.write_text("user_id,event,amount\n1,buy,1\n2,buy\n3,buy,3,x\n")
    failures = tmp_path / "failures.parquet"
    flags = ["--customer-id", "user_id", "--event-name", "event"]
    assert main(["validate", str(path), *flags, "--failures", str(failures)]) == 1
    written = read_failures(failures)
    assert READ_PROBLEMS not in written.columns
    assert written["gb_error_code"].tolist() == ["csv_missing_fields", "csv_extra_fields"]
    fixed = tmp_path / "fixed.parquet"
    written.assign(amount=["2", "3"]).to_parquet(fixed)
    capsys.readouterr()
    assert main(["validate", str(fixed), *flags]) == 0
    assert "valid: 2  invalid: 0" in capsys.readouterr().out


def keys(path, batch_rows):
    source = InputFile(path, text_columns=["user_id", "event"])
    counter = RowKeyMaker()
    found = {}
    for frame in source.frames(batch_rows=batch_rows):
        checked = check_frame(frame, resolve_mapping(frame.columns, **MAPPING))
        encoded = encode_rows(frame, checked)
        made = counter.keys(encoded.bodies)
        found.update(zip(frame["user_id"].iloc[encoded.positions], made.keys, strict=True))
    counter.close()
    return found


def test_a_ragged_line_changes_no_other_rows_key(tmp_path):
    rows = [f"{n},buy,{n}.5" for n in range(20)]
    clean, ragged = tmp_path / "clean.csv", tmp_path / "ragged.csv"
    clean.write_text("\n".join(["user_id,event,amount", *rows]) + "\n")
    ragged.write_text("\n".join(["user_id,event,amount", *rows[:7], "x,buy", *rows[7:]]) + "\n")
    before, after = keys(clean, 20), keys(ragged, 6)
    assert after == before, "the mark is no metadata and no part of a key"


@pytest.mark.parametrize(
    ("kind", "bad", "good", "sent"),
    [
        ("datetime", "yesterday", "2024-01-31T10:00:00", "2024-01-31T10:00:00"),
        ("float", "1,5", "+1.5", 1.5),
        ("float", "nan", "1e3", 1000),
        ("int", "4.5", "007", 7),
        ("bool", "yes", "FALSE", False),
    ],
)
def test_a_value_dtype_cannot_convert_is_a_failure_row(tmp_path, capsys, kind, bad, good, sent):
    """Issue 18.4: one unparsable value recursed without end (RecursionError)."""
    path = tmp_path / "typed.csv"
    path.write_text(f'user_id,event,v\n1,buy,"{good}"\n2,buy,"{bad}"\n')
    flags = ["--customer-id", "user_id", "--event-name", "event", "--dtype", f"v={kind}"]
    assert main(["validate", str(path), *flags]) == 1
    assert "dtype_unconvertible: 1" in capsys.readouterr().out
    csv = CsvOptions.make(dtype={"v": kind})
    codes, bodies = read(path, csv=csv)
    assert codes == [None, "dtype_unconvertible"]
    assert bodies == [body("1", "buy", v=sent)]
    plan = gb_backfill.plan_path(path, dtype={"v": kind}, api_key="k", **MAPPING)
    assert plan.failure_codes == {"dtype_unconvertible": 1}
    frame = next(InputFile(path, text_columns=["user_id", "event"], csv=csv).frames(batch_rows=9))
    message = check_frame(frame, resolve_mapping(frame.columns, **MAPPING)).failures["message"][0]
    assert f"column 'v' is read as {kind}" in message
    assert repr(bad) in message


def test_daylight_saving_offsets_are_converted_to_utc(tmp_path, capsys):
    """Issue 18.4: --dtype ts=datetime on +01:00 and +02:00 printed pandas' "Pass utc=True"."""
    path = tmp_path / "dst.csv"
    path.write_text(
        "user_id,event,ts\n"
        "1,buy,2024-03-30T10:00:00+01:00\n"
        "2,buy,2024-04-01T10:00:00.250+02:00\n"
        "3,buy,2024-04-01T08:00:00Z\n"
        "4,buy,2024-04-02T10:00:00\n"
    )
    flags = ["--customer-id", "user_id", "--event-name", "event", "--dtype", "ts=datetime"]
    assert main(["validate", str(path), *flags]) == 1
    out = capsys.readouterr()
    assert "utc=True" not in out.out + out.err
    assert "metadata_mixed_timezones: 1" in out.out
    codes, bodies = read(path, csv=CsvOptions.make(dtype={"ts": "datetime"}), batch_rows=1)
    assert codes == [None, None, None, "metadata_mixed_timezones"]
    assert [b["events"]["buy"]["ts"] for b in bodies] == [
        "2024-03-30T09:00:00Z",
        "2024-04-01T08:00:00.250Z",
        "2024-04-01T08:00:00Z",
    ]


def test_csv_numbers_a_double_cannot_hold_keep_their_digits(tmp_path):
    """Numbers are exact or flagged: 38 digits in a CSV are sent as written."""
    wide = "1234567890123456789012345678.1234567890"
    path = tmp_path / "wide.csv"
    path.write_text(f"user_id,event,amount,n\n1,buy,{wide},1\n2,buy,0.1,123456789012345678901\n")
    source = InputFile(path, text_columns=["user_id", "event"])
    assert source.types == {"user_id": "text", "event": "text", "amount": "decimal", "n": "bigint"}
    codes, _ = read(path)
    assert codes == [None, None]
    sent = [json.loads(b, parse_float=decimal.Decimal)["events"]["buy"] for b in _bodies(path)]
    assert sent == [
        {"amount": decimal.Decimal(wide), "n": 1},
        {"amount": decimal.Decimal("0.1"), "n": 123456789012345678901},
    ]


def _bodies(path):
    source = InputFile(path, text_columns=["user_id", "event"])
    mapping = resolve_mapping(source.columns, **MAPPING)
    frame = pd.concat(source.frames(batch_rows=10))
    return encode_rows(frame, check_frame(frame, mapping)).bodies


def test_floats_that_a_double_holds_stay_floats(tmp_path):
    path = tmp_path / "floats.csv"
    values = ["0.30000000000000004", "1e-7", "123.45", "-0.5", "5e300"]
    path.write_text("user_id,event,x\n" + "".join(f"{n},e,{v}\n" for n, v in enumerate(values)))
    source = InputFile(path, text_columns=["user_id", "event"])
    assert source.types["x"] == "float"
    frame = pd.concat(source.frames(batch_rows=10))
    assert frame["x"].tolist() == [float(v) for v in values]
    assert np.isfinite(frame["x"].to_numpy(dtype=float)).all()


def test_every_name_a_type_goes_by_is_said_where_the_types_are_listed(tmp_path, capsys):
    from gb_backfill._input.csv_types import CSV_TYPES

    path = tmp_path / "in.csv"
    pd.DataFrame({"customerId": ["c1"], "eventName": ["e"], "amount": ["1"]}).to_csv(path)
    for names in CSV_TYPES.values():
        for name in names:  # each is accepted ...
            assert main(["validate", str(path), "--dtype", f"amount={name}"]) in (0, 1)
    capsys.readouterr()
    assert main(["validate", str(path), "--dtype", "amount=decimal"]) == 2
    refusal = capsys.readouterr().err
    reference = (Path(__file__).parent.parent / "docs" / "reference.md").read_text()
    said = reference[reference.index("the types are") :].split(").", 1)[0]
    for names in CSV_TYPES.values():  # ... and said in the refusal and the reference
        for name in names:
            assert re.search(rf"\b{name}\b", refusal), name
            assert re.search(rf"\b{name}\b", said), name
