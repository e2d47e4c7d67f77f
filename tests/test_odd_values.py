"""Odd values go out exactly or fail with the right words (issue 26, item 7).

* CSV numbers a double cannot hold (``1e-400`` reads 0, ``1e400`` infinite) are
  ``metadata_out_of_range``, not sent as 0;
* a CSV header that names a column twice is a one-line error before anything is sent (pandas
  would rename it ``amount.1`` and send that as metadata);
* a timestamp keeps every digit or fails with ``timestamp_too_precise``; dates outside the
  years nanoseconds reach are read in microseconds;
* ids and event names holding a control, format or default-ignorable character (Unicode's own
  classes, not a hand list) are invalid, and the message names the character.
"""

import unicodedata

import pandas as pd
import pytest

import gb_backfill
from gb_backfill import ConfigError, Emulator, send_path, validate
from gb_backfill._cli import main


def write(tmp_path, text, name="in.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def codes(report):
    return report.failures.groupby("row")["code"].apply(list).to_dict()


def send_csv(tmp_path, path, **options):
    """Send ``path`` to the emulator: what arrived (customer -> metadata), and each row not sent
    (input row -> (code, message))."""
    failures = tmp_path / "f.parquet"
    with Emulator() as emu:
        send_path(path, base_url=emu.base_url, api_key=emu.api_key, failures_path=failures,
                  progress=False, **options)  # fmt: skip
        events = emu.events()
    arrived = dict(zip(events["customer_id"], events["metadata"], strict=True))
    rows = pd.read_parquet(failures)
    not_sent = {
        row: (code, message)
        for row, code, message in zip(
            rows["gb_row"], rows["gb_error_code"], rows["gb_error_message"], strict=True
        )
    }
    return arrived, not_sent


def test_csv_numbers_beyond_a_double_are_out_of_range_not_zero(tmp_path):
    path = write(tmp_path, "customerId,eventName,amount\na,e,1e-400\nb,e,2.5e-330\nc,e,1e400\n"
                           "d,e,12.5\ne,e,0.0\nf,e,0e5\ng,e,-1E-400\n")  # fmt: skip
    arrived, not_sent = send_csv(tmp_path, path)
    assert arrived == {"d": {"amount": 12.5}, "e": {"amount": 0}, "f": {"amount": 0}}
    assert {row: code for row, (code, _) in not_sent.items()} == dict.fromkeys(
        [0, 1, 2, 6], "metadata_out_of_range"
    )
    assert "'1e-400'" in not_sent[0][1]


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("customerId,eventName,amount,amount", "'amount'"),
        ("customerId,customerId,eventName", "'customerId'"),
        ("customerId,eventName,a,a,a.1", "'a'"),
    ],
)
def test_a_csv_header_naming_a_column_twice_is_an_error_before_anything_is_sent(
    tmp_path, capsys, header, named
):
    fields = header.count(",") + 1
    path = write(tmp_path, header + "\n" + ",".join(["c1", "e", "1", "2", "3"][:fields]) + "\n")
    with pytest.raises(ConfigError, match=f"names {named} more than once"):
        gb_backfill.plan_path(path, api_key="k")
    with Emulator() as emu:
        code = main(["send", str(path), "--base-url", emu.base_url, "--api-key", emu.api_key,
                     "--no-progress", "--failures", str(tmp_path / "f.parquet")])  # fmt: skip
        assert emu.counters.get("accepted", 0) == 0
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert "more than once" in err


def test_timestamps_keep_every_digit_or_fail_saying_why(tmp_path):
    path = write(tmp_path, "customerId,eventName,at\n"
                           "a,e,2024-01-01T00:00:00.123456789Z\n"
                           "b,e,2024-01-01T00:00:00.123456789012Z\n"
                           "c,e,2024-01-01T00:00:00.123456789000Z\n"
                           "d,e,not a time\n")  # fmt: skip
    arrived, not_sent = send_csv(tmp_path, path, dtype={"at": "datetime"})
    assert arrived == {"a": {"at": "2024-01-01T00:00:00.123456789Z"},
                       "c": {"at": "2024-01-01T00:00:00.123456789Z"}}  # fmt: skip
    assert not_sent.keys() == {1, 3}
    assert not_sent[1][0] == "timestamp_too_precise"
    assert "2024-01-01T00:00:00.123456789012Z" in not_sent[1][1]
    assert not_sent[3][0] == "dtype_unconvertible"


def test_dates_outside_the_nanosecond_years_are_read_in_microseconds(tmp_path):
    path = write(tmp_path, "customerId,eventName,at\n"
                           "a,e,0001-01-01T00:00:00Z\n"
                           "b,e,9999-12-31T23:59:59.999999Z\n"
                           "c,e,2024-06-01T12:00:00.5+02:00\n"
                           "d,e,2024-06-01T12:00:00.123456789Z\n")  # fmt: skip
    arrived, not_sent = send_csv(tmp_path, path, dtype={"at": "datetime"})
    assert arrived == {
        "a": {"at": "0001-01-01T00:00:00Z"},
        "b": {"at": "9999-12-31T23:59:59.999999Z"},
        "c": {"at": "2024-06-01T10:00:00.500Z"},
    }
    assert not_sent.keys() == {3}
    assert not_sent[3][0] == "timestamp_too_precise"
    assert "outside 1677-09-21 to 2262-04-11" in not_sent[3][1]


INVISIBLE = {
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\x00": "U+0000",
    "\x07": "U+0007",
    "\x7f": "U+007F",
    "\U000e0041": "TAG LATIN CAPITAL LETTER A",
    "\ufe0f": "VARIATION SELECTOR-16",
    "\U000e0100": "VARIATION SELECTOR-17",
    "\u3164": "HANGUL FILLER",
    "\u115f": "HANGUL CHOSEONG FILLER",
    "\u034f": "COMBINING GRAPHEME JOINER",
    "\u200b": "ZERO WIDTH SPACE",
    "\u00ad": "SOFT HYPHEN",
}


@pytest.mark.parametrize("character", INVISIBLE)
def test_ids_and_event_names_with_an_invisible_character_are_invalid_naming_it(character):
    df = pd.DataFrame(
        {"customerId": ["c1", f"c{character}1", "c2"], "eventName": ["e", "e", f"e{character}"]}
    )
    report = validate(df)
    assert codes(report) == {1: ["customer_id_whitespace"], 2: ["event_name_whitespace"]}
    for message in report.failures["message"]:
        assert f"U+{ord(character):04X}" in message
        assert INVISIBLE[character] in message


def test_visible_text_in_any_script_stays_valid():
    names = ["José", "Ñandú", "東京", "مرحبا", "שלום", "e\u0301", "🎉", "a b", "c-1_x.y"]
    report = validate(pd.DataFrame({"customerId": names, "eventName": names}))
    assert report.failures.empty, report.failures


def test_every_format_character_unicodedata_knows_is_refused():
    """The class is Unicode's own: every Cc and Cf code point of this Python's Unicode."""
    refused = [
        chr(point) for point in range(0x110000)
        if unicodedata.category(chr(point)) in ("Cc", "Cf") and chr(point) not in "\t\n\r"
    ]  # fmt: skip
    df = pd.DataFrame({"customerId": [f"c{ch}1" for ch in refused], "eventName": "e"})
    report = validate(df)
    assert report.invalid_rows == len(refused)
