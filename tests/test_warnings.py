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


@pytest.mark.parametrize("name", ["referred_customer_id", "orderId", "member_no", "zip"])
def test_identifiers_of_digits_are_text_on_purpose(name):
    """A sample's referred_customer_id was told to become a float; ids stay text."""
    assert warned(events(**{name: ["104280", "12"]})) == {}
    assert warned(events(paid=["104280", "12"])) == {"paid": "number_as_text"}


def test_a_spelling_of_one_row_is_said_in_the_singular():
    df = pd.DataFrame({"customerId": ["a", "b"], "eventName": ["buy", "Buy"]})
    [message] = validate(df).warnings["message"]
    assert "1 row, " in message, message
    assert "1 rows" not in message, message


def test_amounts_with_a_few_that_are_not_numbers_are_still_a_warning():
    """A trial's 8,817 amounts as text went unwarned because one of them was "n/a"."""
    amounts = ["1,299.50"] * 499 + ["n/a"]
    [row] = validate(events(amount=amounts)).warnings.to_dict("records")
    assert (row["code"], row["count"], row["example"]) == ("number_as_text", 499, "1,299.50")
    assert "1 other value is not a number (e.g. 'n/a')" in row["message"]
    assert "dtype_unconvertible" in row["message"]
    assert warned(events(amount=["1.5"] * 98 + ["n/a", "?"])) == {}, "2 in 100: not a few"


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
    said = validate(df).summary()
    assert "id_mixed_widths (customerId): 2 rows with a zero-padded id, e.g. '0012'" in said
    # The two customers it names are the input's (a trial's ids were '0077', not '0012').
    other = validate(df.replace({"0012": "0770"})).warnings
    assert "sees '0770' and '770' as two customers" in other["message"].iloc[0]
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
        "event_name_variants",
        "id_variants",
        "duplicate_rows",
    }


def test_summary_and_html_show_the_warnings():
    report = validate(events(amount=["7,029.78"], flag=["true"]))
    summary = report.summary()
    assert "number_as_text (amount): 1 value, e.g. '7,029.78'" in summary
    assert "warnings (about values Gameball accepts; no row is held back for them):" in summary
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


# --- spellings of one event name, of one customer id (issue 30.4) ------------------------------


def spelt(names, ids=None):
    return pd.DataFrame(
        {"customerId": ids or [f"c{n}" for n in range(len(names))], "eventName": names}
    )


WIDE = "\uff53\uff49\uff47\uff4e \uff55\uff50"  # "sign up" in full-width letters
NAMES = ["purchase"] * 5 + ["Purchase"] * 3 + ["PURCHASE"] * 2 + ["SIGN_UP", "Sign_Up", "review"]


def test_event_names_in_several_spellings_are_a_warning_with_the_rows_of_each():
    report = validate(spelt(NAMES))
    assert report.ok, "a warning is no failure"
    found = report.warnings[report.warnings["code"] == "event_name_variants"]
    rows = found.set_index("example").to_dict("index")
    assert set(rows) == {"Purchase", "Sign_Up"}
    purchase = rows["Purchase"]
    assert purchase["count"] == 5, "the rows in the spellings other than the most common"
    assert "3 spellings ('purchase' 5 rows, 'Purchase' 3, 'PURCHASE' 2)" in purchase["message"]
    assert "replace({'Purchase': 'purchase', 'PURCHASE': 'purchase'})" in purchase["message"]
    assert "'SIGN_UP' 1 row, 'Sign_Up' 1" in rows["Sign_Up"]["message"]


def test_spacing_and_width_make_variants_too_and_invalid_rows_are_left_out():
    names = ["sign up", "Sign  Up", WIDE, " sign up", "signup"]
    found = validate(spelt(names)).warnings
    [message] = found.loc[found["code"] == "event_name_variants", "message"]
    assert "3 spellings" in message, "' sign up' is invalid (not sent); 'signup' is another name"
    assert "'Sign  Up' 1" in message
    assert f"{WIDE!r} 1" in message


def test_customer_ids_that_differ_only_in_case_or_width_are_a_warning():
    wide = "\uff23" + "12"  # a full-width C
    ids = ["C12", "c12", wide, "C12", "d7", "D8"]
    found = validate(spelt(["e"] * 6, ids)).warnings
    [row] = found[found["code"] == "id_variants"].to_dict("records")
    assert row["count"] == 2
    assert "1 customer id(s)" in row["message"]
    assert f"'C12' 2 rows, 'c12' 1, {wide!r} 1" in row["message"]
    assert ".str.normalize('NFKC')" in row["message"]
    assert warned(spelt(["e", "e"], ["C12", "C13"])) == {}


def test_spellings_are_counted_over_every_chunk():
    """The first spelling in one chunk, the others later: every row is counted."""
    first, second = spelt(["purchase"] * 4), spelt(["Purchase", "purchase", "PURCHASE"])
    mapping = resolve_mapping(first.columns)
    tally = WarningTally(mapping)
    for frame in (first, second):
        tally.add(frame, check_frame(frame, mapping).customer_ids)
    [message] = tally.frame().query("code == 'event_name_variants'")["message"]
    assert "('purchase' 5 rows, 'PURCHASE' 1, 'Purchase' 1)" in message


def test_spellings_take_bounded_memory_and_never_invent_a_variant():
    """A table far smaller than the distinct values: some variants go unseen, none is false,
    and the counts of those found are right."""
    import numpy as np
    import pyarrow as pa

    from gb_backfill._rows.spellings import Spellings

    spellings = Spellings(slots=256, start=16)
    ids = [f"id{n}" for n in range(20_000)]
    variants = {f"ID{n}" for n in range(0, 20_000, 97)}
    rng = np.random.default_rng(0)
    for chunk in np.array_split(rng.permutation(ids + sorted(variants)), 40):
        spellings.add(pa.array(chunk.tolist()))
    found = spellings.variants()
    assert len(spellings._folded) == len(spellings._text) == 256, "grown to its bound, no more"
    assert spellings.unchecked > 0, "the table was too small for all of them"
    assert found, "those whose place was free are found"
    for variant in found:
        [upper] = {text for text, _ in variant.spellings} & variants
        assert {text for text, _ in variant.spellings} == {upper, upper.lower()}
        assert [rows for _, rows in variant.spellings] == [1, 1]


def test_validate_the_dry_run_the_preview_and_a_send_say_so_through_the_cli(tmp_path, capsys):
    from gb_backfill import Emulator

    path = tmp_path / "events.csv"
    spelt(NAMES).to_csv(path, index=False)
    said = "event_name_variants (eventName): 5 rows in other spellings, e.g. 'Purchase'"
    spellings = "('purchase' 5 rows, 'Purchase' 3, 'PURCHASE' 2)"
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert said in out
    assert spellings in out
    assert main(["send", str(path), "--dry-run", "--api-key", "k"]) == 0
    out = capsys.readouterr().out
    assert said in out
    assert spellings in out
    with Emulator(known_events=["purchase"], existing_share=1) as emu:
        flags = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--no-progress"]
        main(["preview", str(path), *flags])
        out = capsys.readouterr().out
        assert said in out
        assert spellings in out
        failures = ["--failures", str(tmp_path / "failures.parquet")]
        assert main(["send", str(path), *flags, *failures]) == 0
        out = capsys.readouterr().out
        assert said in out
        assert spellings in out


def test_amounts_with_a_decimal_comma_are_numbers_written_as_text():
    """A regional Excel's ';' CSV writes 570,30 and 1.299,50: a trial got no warning for them."""
    [row] = validate(events(amount=["570,30", "1.299,50", "12"])).warnings.to_dict("records")
    assert (row["code"], row["count"]) == ("number_as_text", 3)
    assert "--dtype amount=float --decimal , reads them" in row["message"]
    assert warned(events(amount=["1,299.50", "3"])) == {"amount": "number_as_text"}
    thousands = validate(events(amount=["1,299", "12"])).warnings["message"][0]
    assert "--thousands , reads them" in thousands, "1,299 alone is a thousands comma"
    assert warned(events(version=["1,2,3", "4,5"])) == {}, "not a number"


@pytest.mark.parametrize(
    ("values", "code"),
    [
        (["2024-01-01T10:00:00Z", "2024-01-02T10:00:00Z"], "timestamp_as_text"),
        (["true", "false"], "bool_as_text"),
        (["2024-01-01T10:00:00+02:00", "2024-01-02T10:00:00"], "mixed_offsets"),
    ],
)
def test_a_warnings_fix_is_named_for_each_face(values, code):
    """A trial's DataFrame send was told '--dtype ts=datetime', a flag it cannot pass."""
    found = validate(pd.DataFrame({"customerId": ["a", "b"], "eventName": "e", "ts": values}))
    messages = dict(zip(found.warnings["code"], found.warnings["message"], strict=True))
    message = messages[code]
    assert "--dtype ts=" in message, message
    assert "(in Python dtype={'ts': " in message, message
    assert "for a DataFrame in pandas: df['ts'] = " in message, message
