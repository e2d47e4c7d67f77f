"""A row sent again under another spelling of its event name is refused as changed, never sent
twice (a new user's trial: the failures file's copy lower-cased, the export sent again).

The exact ledger key is untouched: ``Purchase`` and ``purchase`` are two bodies. The loose
identity reads event names folded (case, spacing, character width), so the ledger
recognises the row; a row whose event really differs is still a new row.
"""

import contextlib
import sqlite3
import warnings
from collections import Counter

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gb_backfill import ChangedRowsError, Emulator, RateLimits, send, send_path
from gb_backfill._rows.keys import RowKeyMaker
from gb_backfill._rows.loose import folded_names, loose_keys
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.orders import check_rows, encode_checked


def trial_export(path):
    """25 rows: 6 ``Purchase`` and 19 ``purchase`` whose amount is ``n/a``, and 20 good ones."""
    rows = []
    for n in range(45):
        name = "Purchase" if n < 6 or n >= 25 else "purchase"
        amount = "n/a" if n < 25 else f"{n}.50"
        rows.append({"customer_id": f"cust-{n:03d}", "event_name": name, "amount": amount,
                     "occurred_at": f"2024-03-{1 + n % 28:02d}T10:00:00Z"})  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)


def arrivals(emu):
    """Events received per customer (each customer has one row in the export)."""
    return Counter(emu.events()["customer_id"])


def test_the_trial_refuses_the_export_row_sent_under_its_other_spelling(tmp_path):
    export, failures, ledger = tmp_path / "export.csv", tmp_path / "f.parquet", tmp_path / "l"
    trial_export(export)
    with Emulator(limits=RateLimits.unlimited()) as emu:
        run = {"base_url": emu.base_url, "api_key": emu.api_key, "progress": False,
               "limits": RateLimits.unlimited(), "ledger": ledger}  # fmt: skip
        first = send_path(export, dtype={"amount": "float"}, failures_path=failures, **run)
        assert (first.sent, first.invalid) == (20, 25), "n/a is dtype_unconvertible"

        # The fix, as the guide does for a whole file: lower-case the names; n/a is missing.
        fixed = pd.read_parquet(failures)
        assert sorted(fixed["gb_error_code"].unique()) == ["dtype_unconvertible"]
        fixed["event_name"] = fixed["event_name"].str.lower()
        fixed["amount"] = None
        assert send(fixed, **run).sent == 25

        # Later: the export read with plain pandas (n/a is NaN, so its rows are valid now),
        # with the fixed rows, sent with the same ledger.
        with warnings.catch_warnings():  # pandas 2.2 on concat with the all-missing amount
            warnings.simplefilter("ignore", FutureWarning)
            again = pd.concat([pd.read_csv(export), fixed], ignore_index=True)
        with pytest.raises(ChangedRowsError) as refused:
            send(again, **run)
        seen = arrivals(emu)
    assert refused.value.rows == 25, "the 6 Purchase rows are refused like the 19 purchase ones"
    assert max(seen.values()) == 1, "no row reached Gameball twice"
    assert sum(seen.values()) == 45
    message = str(refused.value)
    assert message.startswith(
        "25 rows look like rows an earlier run with this ledger sent, written differently "
        "(event_name"
    ), "the spelling is named as the difference"
    # The 19 already spelt so differ in no column: said apart, not as a column (a trial read
    # "(email, mobile, or how a value is written, activity)" as one list).
    assert "(event_name): the same customer" in message
    assert (
        "or with the event name spelt otherwise (case, spaces, width); 19 of them have the same "
        "customer, event and values as rows an earlier run with this ledger sent, under other "
        "keys: as an export's row and its fixed copy from a failures file do"
    ) in message, message
    assert "resend_changed=True" in message
    shown = set(refused.value.every["event_name"])
    assert shown == {"Purchase", "purchase"}, "the rows are shown as written"


def keys_of(frame, maker):
    checked = check_rows(frame, resolve_mapping(frame.columns))
    return loose_keys(frame, checked, encode_checked(frame, checked), maker)


def full_width(text):
    return "".join(chr(ord(c) + 0xFEE0) for c in text)  # as some CJK keyboards type it


@pytest.mark.parametrize(
    "spelling", ["Purchase", "PURCHASE", full_width("purchase"), full_width("Purchase")]
)
def test_spellings_of_one_event_meet_and_another_event_does_not(spelling):
    row = {"customer_id": ["c1"], "amount": [5.0]}
    base = keys_of(pd.DataFrame({**row, "event_name": ["purchase"]}), RowKeyMaker())
    other = keys_of(pd.DataFrame({**row, "event_name": [spelling]}), RowKeyMaker())
    review = keys_of(pd.DataFrame({**row, "event_name": ["review"]}), RowKeyMaker())
    assert other.keys == base.keys
    assert review.keys != base.keys, "purchase and review are two events"
    assert base.former == {}, "a folded name needs no former key"
    assert other.former[0] != base.keys[0], "as written, as older ledgers keep it"


def test_names_fold_by_case_width_and_surrounding_spaces():
    names = ["purchase", "Purchase", " a  b ", full_width("a"), "order placed"]
    folded, changed = folded_names(pa.array(names))
    assert folded.to_pylist() == ["purchase", "purchase", "a b", "a", "order placed"]
    assert changed.tolist() == [False, True, True, True, False]


def test_a_ledger_from_before_the_folding_still_refuses_a_changed_row(tmp_path, monkeypatch):
    """Loose keys a ledger already holds were made with the name as written: a row sent as
    ``Purchase`` then, written differently now, is still refused."""
    import gb_backfill._rows.loose as loose

    df = pd.DataFrame({"customer_id": ["c1", "c2"], "event_name": ["Purchase", "Review"],
                       "amount": [12.5, 7.0]})  # fmt: skip
    bodies = []

    def gameball(request):
        bodies.append(request.content)
        return httpx.Response(200)

    def run():
        client = httpx.AsyncClient(transport=httpx.MockTransport(gameball))
        return {"api_key": "k", "base_url": "https://api.gameball.co", "client": client,
                "limits": RateLimits.unlimited(), "progress": False,
                "ledger": tmp_path / "l"}  # fmt: skip

    # The earlier version: no folding, and no note of it in the ledger.
    with monkeypatch.context() as earlier:
        earlier.setattr(loose, "folded_names", lambda names: (names, np.zeros(len(names), bool)))
        assert send(df, **run()).sent == 2
    with contextlib.closing(sqlite3.connect(tmp_path / "l")) as db, db:
        assert db.execute("DELETE FROM meta WHERE name = 'loose_names'").rowcount == 1
    with pytest.raises(ChangedRowsError) as refused:
        send(df.assign(amount=["12.50", "7"]), **run())
    assert refused.value.rows == 2
    assert len(bodies) == 2
    assert "written differently (amount)" in str(refused.value), "the same name: not named"


def test_a_new_ledger_needs_no_former_keys_and_an_older_one_does(tmp_path):
    from gb_backfill._store.ledger import Ledger

    with contextlib.closing(Ledger(tmp_path / "new")) as ledger:
        assert not ledger.keeps_names_as_written()
    with contextlib.closing(sqlite3.connect(tmp_path / "new")) as db, db:
        db.execute("DELETE FROM meta WHERE name = 'loose_names'")
    with contextlib.closing(Ledger(tmp_path / "new")) as ledger:
        assert ledger.keeps_names_as_written(), "a ledger an older version created"
