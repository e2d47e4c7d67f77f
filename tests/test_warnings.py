"""Warnings about columns: valid values that are almost never what was meant (issue 18.3)."""

import json

import pandas as pd
import pytest

from gb_backfill import validate
from gb_backfill._cli import main
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.rules import check_frame
from gb_backfill._rows.warnings import WARNING_COLUMNS, WarningCode, WarningTally


def warned(df, **mapping):
    warnings = validate(df, **mapping).warnings
    return dict(zip(warnings["column"], warnings["code"], strict=True))


def events(**columns):
    size = len(next(iter(columns.values())))
    return pd.DataFrame({"customerId": [f"c{n}" for n in range(size)], "eventName": "e", **columns})


def test_amounts_written_as_text_are_a_warning_that_says_the_fix():
    """Issue 18.3: "7,029.78" went out as a string in all 3,044 bodies, unannounced."""
    report = validate(events(amount=["7,029.78", "1 234", "12.5", None]))
    assert report.ok, "a warning is no failure: the rows are still sent"
    [row] = report.warnings.to_dict("records")
    assert row["column"] == "amount"
    assert row["code"] == "number_as_text"
    assert (row["count"], row["example"]) == (3, "7,029.78")
    assert "pd.to_numeric(df['amount'].str.replace(" in row["message"]
    plain = validate(events(amount=["12.5", "3"])).warnings["message"][0]
    assert "--dtype amount=float" in plain


@pytest.mark.parametrize(
    ("values", "code"),
    [
        (["true", "FALSE"], "bool_as_text"),
        (["2024-01-01", "2024-01-02T10:00:00"], "timestamp_as_text"),
        (["2024-03-30T10:00:00+01:00", "2024-04-01T10:00:00+02:00"], "mixed_offsets"),
        (["2024-03-30T10:00:00Z", "2024-04-01T10:00:00"], "mixed_offsets"),
        (["12", "n/a"], None),
        (["0012", "0013"], None),
        (["ORD-1", "ORD-2"], None),
    ],
)
def test_text_that_looks_like_another_type_is_a_warning(values, code):
    assert warned(events(m=values)) == ({"m": code} if code else {})


def test_ids_of_digits_in_mixed_widths_are_a_warning():
    df = pd.DataFrame({"customerId": ["0012", "12345", "0012", "77"], "eventName": "e"})
    found = validate(df).warnings
    [row] = found[found["code"] == "id_mixed_widths"].to_dict("records")
    assert (row["code"], row["count"], row["example"]) == ("id_mixed_widths", 2, "0012")
    assert "'0012' next to '77'" in row["message"]
    same_width = pd.DataFrame({"customerId": ["0012", "1234"], "eventName": "e"})
    assert warned(same_width) == {}
    assert warned(pd.DataFrame({"customerId": [12, 12345], "eventName": "e"})) == {}


def test_warnings_are_gathered_over_every_batch():
    """Every value is over the whole input: one text value in a later batch ends a warning."""
    first = events(amount=["1.5", "2"], zone=["2024-01-01T10:00:00+01:00"] * 2)
    first["customerId"] = ["0012", "0013"]
    second = events(amount=["n/a", "3"], zone=["2024-06-01T10:00:00+02:00"] * 2)
    second["customerId"] = ["12345", "12346"]
    mapping = resolve_mapping(first.columns)
    tally = WarningTally(mapping)
    for frame in (first, second):
        tally.add(frame, check_frame(frame, mapping).customer_ids)
    found = tally.frame()
    assert dict(zip(found["column"], found["code"], strict=True)) == {
        "zone": "mixed_offsets",
        "customerId": "id_mixed_widths",
    }
    assert found.set_index("column").loc["zone", "count"] == 4


def test_the_warnings_frame_has_fixed_columns_and_codes():
    assert list(validate(events(m=["x"])).warnings.columns) == list(WARNING_COLUMNS)
    assert list(validate(events(m=["1"])).warnings.columns) == list(WARNING_COLUMNS)
    assert {code.value for code in WarningCode} == {
        "number_as_text",
        "bool_as_text",
        "timestamp_as_text",
        "mixed_offsets",
        "id_mixed_widths",
        "duplicate_rows",
    }


def test_summary_and_html_show_the_warnings():
    report = validate(events(amount=["7,029.78"], flag=["true"]))
    summary = report.summary()
    assert "number_as_text (amount): 1 values, e.g. '7,029.78'" in summary
    assert "bool_as_text (flag)" in summary
    html = report._repr_html_()
    assert "warning: number_as_text (amount)" in html
    assert "report.warnings" in html


def test_cli_validate_prints_warnings_after_the_counts(tmp_path, capsys):
    path = tmp_path / "amounts.csv"
    lines = ["customerId,eventName,amount", *(f'c{n},buy,"7,0{n:02d}.78"' for n in range(30))]
    path.write_text("\n".join([*lines, "c99,buy\n"]))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    counts, _, warnings = out.partition("warnings (")
    assert "csv_missing_fields: 1" in counts
    assert "number_as_text (amount): 30 values, e.g. '7,000.78'" in warnings
    assert "pd.to_numeric" in warnings


def test_the_dry_run_and_the_preview_warn_as_validate_does(tmp_path, capsys):
    """Amounts written as text are sent, and quoted, as text: a campaign on them awards
    nothing. The dry run and the preview, where a user looks before sending, say so."""
    from gb_backfill import Emulator, RateLimits, preview_path

    path = tmp_path / "amounts.csv"
    lines = ["customerId,eventName,amount", *(f'c{n},buy,"7,0{n:02d}.78"' for n in range(30))]
    path.write_text("\n".join(lines) + "\n")
    assert main(["send", str(path), "--dry-run", "--api-key", "k"]) == 0
    out = capsys.readouterr().out
    assert "number_as_text (amount): 30 values, e.g. '7,000.78'" in out
    assert "pd.to_numeric" in out
    with Emulator(known_events=["buy"], existing_share=1) as emu:
        report = preview_path(
            path, base_url=emu.base_url, api_key=emu.api_key, sample=10, progress=False,
            preview_limits=RateLimits.unlimited(),
        )  # fmt: skip
    assert report.warnings[["column", "code", "count"]].values.tolist() == [
        ["amount", "number_as_text", 30]
    ]
    assert "number_as_text (amount)" in report.summary()
    assert "number_as_text (amount)" in report._repr_html_()
    assert [w["code"] for w in json.loads(json.dumps(report.to_dict()))["warnings"]] == [
        "number_as_text"
    ]
