"""Names that match (issue 30, item 8): a report's repr names its attributes, every public
function refuses an unknown keyword alike, one event name for every row is refused where it
surely is not meant, and a row key tells rows without a key from rows that repeat one."""

import asyncio
import re

import pandas as pd
import pytest

import gb_backfill as gb
from gb_backfill._cli import main


def frame(rows=6):
    return pd.DataFrame(
        {"customer_id": [f"c{n}" for n in range(rows)], "event_name": "buy", "amount": 1.0}
    )


def shown(report):
    """The ``name=value`` pairs of a report's repr, values as numbers."""
    return {k: int(v.replace(",", "")) for k, v in re.findall(r"(\w+)=([\d,]+)\b", repr(report))}


def test_a_validation_reports_repr_names_its_attributes():
    bad = frame()
    bad.loc[0, "customer_id"] = ""
    report = gb.validate(bad)
    pairs = shown(report)
    assert pairs == {"rows": 6, "valid_rows": 5, "invalid_rows": 1}
    assert {name: getattr(report, name) for name in pairs} == pairs


def test_a_send_reports_and_a_plans_reprs_name_their_attributes(tmp_path):
    bad = frame()
    bad.loc[0, "customer_id"] = ""
    plan = gb.plan(bad, progress=False)
    pairs = shown(plan)
    assert {"rows", "valid", "invalid", "skipped", "sending"} <= set(pairs)
    assert {name: getattr(plan, name) for name in pairs if name != "events"} == {
        k: v for k, v in pairs.items() if k != "events"
    }, "requests: events=N is the requests dict's item"
    with gb.Emulator() as emu:
        report = gb.send(bad, base_url=emu.base_url, api_key=emu.api_key, progress=False)
    pairs = shown(report)
    assert pairs["sent"] == 5
    assert {name: getattr(report, name) for name in pairs} == pairs


def test_a_ledger_reports_repr_shows_its_counts(tmp_path):
    with gb.Emulator() as emu:
        gb.send(frame(), base_url=emu.base_url, api_key=emu.api_key, progress=False,
                ledger=tmp_path / "l")  # fmt: skip
    report = gb.ledger_status(tmp_path / "l")
    assert "counts={'sent': 6}" in repr(report)
    assert report.counts["sent"] == 6


PUBLIC = ["validate", "payloads", "send", "plan", "preview"]


@pytest.mark.parametrize("name", PUBLIC + [f"{n}_path" for n in ["validate", *PUBLIC[2:]]])
def test_every_public_function_refuses_an_unknown_keyword_alike(tmp_path, name):
    source = tmp_path / "in.csv"
    frame().to_csv(source, index=False)
    first = source if name.endswith("_path") else frame()
    with pytest.raises(gb.ConfigError, match=rf"^{name}\(\) got an unknown keyword customer=; "
                       r"did you mean customer_id=\?$"):  # fmt: skip
        getattr(gb, name)(first, customer="customer_id")
    if name not in ("validate", "payloads", "validate_path"):
        with pytest.raises(gb.ConfigError, match=rf"^a{name}\(\) got an unknown keyword"):
            asyncio.run(getattr(gb, f"a{name}")(first, customer="customer_id"))
    if not name.endswith("_path"):
        with pytest.raises(gb.ConfigError, match=rf"^{name}\(\) got an unknown keyword"):
            getattr(first.gameball, name)(customer="customer_id")


def events_file(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("customer_id,event,amount\nc1,purchase,1\nc2,sign_up,2\n", "utf-8")
    return source


def test_one_event_name_that_is_a_column_is_refused(tmp_path, capsys):
    source = events_file(tmp_path)
    with pytest.raises(gb.ConfigError, match=r"event='event' names a column.*event_name='event'"):
        gb.validate(pd.read_csv(source), event="event")
    assert main(["validate", str(source), "--event", "event"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--event event names a column" in err
    assert err.rstrip().endswith("pass --event-name event")


def test_one_event_name_for_a_file_with_an_event_name_column_is_refused(tmp_path, capsys):
    source = events_file(tmp_path)
    assert main(["send", str(source), "--event", "purchase", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "column 'event' holds event names" in err
    assert "--event-name event" in err
    # Listing the metadata says which columns go out: every row is then a purchase, as asked.
    assert main(["validate", str(source), "--event", "purchase", "--metadata", "amount"]) == 0


def test_a_row_key_tells_rows_without_a_key_from_rows_that_repeat_one(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text("customer_id,event_name,order_id\nc1,p,1\nc2,p,\nc3,p,\nc4,p,2\n", "utf-8")
    assert main(["send", str(source), "--row-key", "order_id", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "2 rows have no key (an empty order_id; first at row 1)" in err
    assert "repeat" not in err
    source.write_text("customer_id,event_name,order_id\nc1,p,1\nc2,p,2\nc3,p,2\nc4,p,\n", "utf-8")
    assert main(["send", str(source), "--row-key", "order_id", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "1 row(s) repeat a key given in an earlier row (first at row 2)" in err
    assert "no key" not in err, "one row without a key is a key of its own"
