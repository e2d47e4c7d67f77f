"""Every way a row comes back (issue 25): the failures file read, fixed and sent again with
plain pandas and the CLI, concatenated with its export or another failures file, edited in
bulk; the unknown rows it leaves, settled by hand. Nothing arrives twice, nothing is lost, and
the dry run and the preview say what the live run does.

A :class:`Shop` is a mock Gameball whose answer depends on each row's ``n``; it counts every
request Gameball may have processed (answered 200, or timed out) per row, so "nothing twice"
is checked against what may really have arrived.
"""

import decimal
import json
import re
from collections import Counter

import httpx
import numpy as np
import pandas as pd
import pytest

import gb_backfill as gb
from gb_backfill import AuthenticationError, RetryPolicy, read_failures, send, send_path
from gb_backfill._cli import main
from tests.conftest import MockGameball, send_options

ONE_TRY = RetryPolicy(attempts=1, wait_initial=0.001, wait_max=0.001, wait_jitter=0.0)


class Shop(MockGameball):
    """Answers each row by its ``n``: 200 unless ``outcomes`` says ``"timeout"`` (the request
    may have been processed), or an HTTP status. ``arrived[n]``: times row n may have been
    processed."""

    def __init__(self, outcomes=None):
        super().__init__(self._answer)
        self.outcomes = dict(outcomes or {})
        self.arrived = Counter()

    def _answer(self, request, body, _n):
        (_name, metadata), *_ = body["events"].items()
        n = metadata.get("n")
        outcome = self.outcomes.get(n, 200)
        if outcome == "timeout":
            self.arrived[n] += 1
            raise httpx.ReadTimeout("no answer", request=request)
        if outcome == 200:
            self.arrived[n] += 1
            return httpx.Response(200, json={})
        return httpx.Response(outcome, json={"message": f"refused {n}", "code": 0})

    def sent_ns(self, since=0):
        return [
            body["events"][next(iter(body["events"]))]["n"] for _, body in self.requests[since:]
        ]


def orders(rows=30, customers=10):
    return pd.DataFrame(
        {
            "customerId": [f"c{n % customers}" for n in range(rows)],
            "eventName": "purchase",
            "n": range(rows),
            "amount": [10.0 + n for n in range(rows)],
        }
    )


def options(shop, **more):
    return send_options(shop, **{"retry": ONE_TRY, "concurrency": 1, **more})


def stopped_run(df, shop, tmp_path, *, stop_at, name="f.parquet", ledger=None):
    """A send that Gameball stops at row ``stop_at`` (401): the rows after it are aborted."""
    shop.outcomes[stop_at] = 401
    failures = tmp_path / name
    with pytest.raises(AuthenticationError) as stopped:
        send(df, **options(shop), ledger=ledger or tmp_path / "l", failures_path=failures)
    del shop.outcomes[stop_at]
    return stopped.value.report, failures


# --- 1. the export and its own failures file together ------------------------------------------


def test_the_export_and_its_failures_file_together_send_no_row_twice(tmp_path):
    df = orders()
    shop = Shop()
    first, failures = stopped_run(df, shop, tmp_path, stop_at=12)
    assert first.aborted > 10
    both = pd.concat([df, pd.read_parquet(failures)], ignore_index=True)
    again = send(both, **options(shop), ledger=tmp_path / "l")
    assert max(shop.arrived.values()) == 1, "no row arrived twice"
    assert set(shop.arrived) == set(range(30)) - {12} | {12}, "every row arrived"
    assert again.folded == first.aborted + first.failed, "each copy was folded, and counted"
    assert again.sent == first.aborted + first.failed


def test_copies_whose_key_ends_in_a_zero_byte_are_folded_too(tmp_path):
    # One key in 256 ends in a zero byte; a bytes array drops it, and such copies were sent twice.
    df = orders(1000, 100)
    _, failures = stopped_run(df, Shop(), tmp_path, stop_at=0)
    carried = pd.read_parquet(failures)
    zero_ended = carried[carried["gb_key"].str.endswith("00/0")]
    assert len(zero_ended) >= 2, "the test needs rows whose key ends in a zero byte"
    picked = pd.concat([zero_ended, carried.iloc[1:4]])
    both = pd.concat([df.iloc[picked["gb_row"]], picked], ignore_index=True)
    shop = Shop()
    again = send(both, **options(shop), ledger=tmp_path / "l")
    assert max(shop.arrived.values()) == 1, "no row arrived twice"
    assert sorted(shop.arrived) == sorted(picked["n"])
    assert again.folded == len(picked)


def test_two_failures_files_together_send_no_row_twice(tmp_path):
    df = orders()
    shop = Shop()
    stopped_run(df, shop, tmp_path, stop_at=8, name="f1.parquet")
    f1 = pd.read_parquet(tmp_path / "f1.parquet")
    _, f2_path = stopped_run(f1, shop, tmp_path, stop_at=20, name="f2.parquet")
    f2 = pd.read_parquet(f2_path)
    assert set(f2["gb_key"]) < set(f1["gb_key"]), "the second stop left a part of the first's"
    report = send(pd.concat([f1, f2]), **options(shop), ledger=tmp_path / "l")
    assert max(shop.arrived.values()) == 1
    assert set(shop.arrived) == set(range(30))
    assert report.folded == len(f2)


def test_the_cli_sends_an_export_and_its_failures_file_once(tmp_path, capsys):
    df = orders()
    shop = Shop()
    _, failures = stopped_run(df, shop, tmp_path, stop_at=12)
    both = tmp_path / "both.parquet"
    pd.concat([df, pd.read_parquet(failures)], ignore_index=True).to_parquet(both)
    with gb.Emulator(limits=gb.RateLimits.unlimited()) as emu:
        code = main(
            ["send", str(both), "--base-url", emu.base_url, "--api-key", emu.api_key,
             "--ledger", str(tmp_path / "l"), "--failures", str(tmp_path / "f2.parquet"),
             "--no-progress", "--rate", "0"]
        )  # fmt: skip
        arrived = emu.events()["metadata"].map(lambda m: m["n"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "folded: copies of a row met elsewhere" in out
    total = Counter(shop.arrived) + Counter(arrived.tolist())
    assert max(total.values()) == 1
    assert set(total) == set(range(30))


# --- 2. a bulk fix of a failures file holding unknown rows -------------------------------------


def test_a_bulk_edit_of_a_failures_file_with_unknown_rows_sends_none_twice(tmp_path):
    df = orders().assign(eventName=" Purchase")  # invalid: the space
    df.loc[[3, 4, 5], "eventName"] = "Purchase"  # valid; they time out: unknown
    df.loc[[6, 7, 8], "eventName"] = "purchase"
    shop = Shop({3: "timeout", 4: "timeout", 5: "timeout"})
    first = send(df, **options(shop), ledger=tmp_path / "l", failures_path=tmp_path / "f.parquet")
    assert (first.unknown, first.invalid, first.sent) == (3, 24, 3)
    fixed = pd.read_parquet(tmp_path / "f.parquet")
    fixed["eventName"] = fixed["eventName"].str.strip().str.lower()  # over the whole file
    fixed.to_parquet(tmp_path / "fixed.parquet")
    again = send_path(tmp_path / "fixed.parquet", **options(shop), ledger=tmp_path / "l")
    assert max(shop.arrived.values()) == 1, "no unknown row became a new row"
    assert (again.sent, again.unknown) == (24, 3)
    held = again.failures
    assert held["n"].tolist() == [3, 4, 5]
    assert set(held["gb_error_code"]) == {"unknown_earlier"}
    # The file is read by command-line and Python users alike: each finds its own words.
    (message,) = set(held["gb_error_message"])
    assert "gb-backfill settle" in message, message
    assert "gb_backfill.settle" in message, message
    assert "--retry-unknown (retry_unknown=True)" in message, message


def test_the_cli_sends_a_bulk_edited_failures_file_without_its_unknown_rows(tmp_path, capsys):
    df = orders().assign(eventName=" Purchase")
    df.loc[[3, 4], "eventName"] = "Purchase"  # valid, unknown, and changed by the edit below
    shop = Shop({3: "timeout", 4: "timeout"})
    send(df, **options(shop), ledger=tmp_path / "l", failures_path=tmp_path / "f.parquet")
    fixed = pd.read_parquet(tmp_path / "f.parquet")
    fixed["eventName"] = fixed["eventName"].str.strip().str.lower()
    fixed.to_parquet(tmp_path / "fixed.parquet")
    with gb.Emulator(limits=gb.RateLimits.unlimited()) as emu:
        code = main(
            ["send", str(tmp_path / "fixed.parquet"), "--base-url", emu.base_url, "--api-key",
             emu.api_key, "--ledger", str(tmp_path / "l"), "--no-progress", "--rate", "0",
             "--failures", str(tmp_path / "f2.parquet")]
        )  # fmt: skip
        arrived = emu.events()["metadata"].map(lambda m: m["n"]).tolist()
    assert code == 1, "the unknown rows are still unknown"
    assert sorted(arrived) == [n for n in range(30) if n not in (3, 4)]
    assert "unknown_earlier: 2" in capsys.readouterr().out


def test_a_gb_key_that_is_not_one_is_no_identity(tmp_path):
    """Hand-made or damaged gb_key values (not hex, an occurrence beyond any input, a number)
    name no row: those rows are keyed by their content, as any new row."""
    df = orders(4, 4).assign(
        gb_key=pd.Series(["zz" * 16 + "/0", "ab" * 16 + "/" + "9" * 25, 7, None], dtype=object)
    )
    shop = Shop()
    report = send(df, **options(shop), ledger=tmp_path / "l")
    assert (report.sent, report.folded) == (4, 0)
    again = send(df.drop(columns="gb_key"), **options(shop), ledger=tmp_path / "l")
    assert again.skipped == 4, "keyed by content: the same rows without the column"


# --- 3. a fixed row can be lost -----------------------------------------------------------------


def test_a_fixed_row_that_matches_a_sent_row_arrives_once(tmp_path, capsys):
    df = pd.DataFrame({"customerId": ["42", "42 "], "eventName": "buy", "amount": [10, 10]})
    shop = Shop()
    first = send(df, **options(shop), ledger=tmp_path / "l", failures_path=tmp_path / "f.parquet")
    assert (first.sent, first.invalid) == (1, 1)
    fixed = pd.read_parquet(tmp_path / "f.parquet")
    assert fixed["gb_key"].notna().all(), "an invalid row has a key of its own"
    fixed["customerId"] = fixed["customerId"].str.strip()
    fixed.to_parquet(tmp_path / "fixed.parquet")
    gameball = MockGameball()
    again = send_path(tmp_path / "fixed.parquet", **options(gameball), ledger=tmp_path / "l")
    assert (again.sent, again.skipped) == (1, 0), "the fix is sent, not taken for the first row"
    assert [body for _, body in gameball.requests] == [
        {"customerId": "42", "events": {"buy": {"amount": 10}}}
    ]
    # Once sent, it is that row: the fixed file, and the export itself, are skipped now.
    for source in (tmp_path / "fixed.parquet", tmp_path / "export.parquet"):
        df.to_parquet(tmp_path / "export.parquet")
        assert main(
            ["send", str(source), "--dry-run", "--ledger", str(tmp_path / "l")]
        ) == 0  # fmt: skip
        assert " and send 0 rows in no requests" in capsys.readouterr().out
    again = send(fixed, **options(gameball), ledger=tmp_path / "l")
    assert (again.skipped, len(gameball.requests)) == (1, 1)


def test_validates_failures_file_keys_invalid_rows_as_a_send_does(tmp_path, capsys):
    """The fixed row of item 3 through `gb-backfill validate --failures`: the same keys as a
    send's failures file, so the fix is that row."""
    df = pd.DataFrame({"customerId": ["42", "42 ", "42 "], "eventName": "buy", "amount": 10})
    df.to_parquet(tmp_path / "export.parquet")
    send_path(tmp_path / "export.parquet", **options(Shop()), ledger=tmp_path / "l",
              failures_path=tmp_path / "sent.pq")  # fmt: skip
    assert main(["validate", str(tmp_path / "export.parquet"), "--failures",
                 str(tmp_path / "bad.pq")]) == 1  # fmt: skip
    bad = pd.read_parquet(tmp_path / "bad.pq")
    assert bad["gb_key"].tolist() == pd.read_parquet(tmp_path / "sent.pq")["gb_key"].tolist()
    assert bad["gb_key"].nunique() == 2, "identical invalid rows are told apart"
    bad["customerId"] = bad["customerId"].str.strip()
    gameball = MockGameball()
    again = send(bad, **options(gameball), ledger=tmp_path / "l")
    assert (again.sent, len(gameball.requests)) == (2, 2), "both fixes, neither lost"
    capsys.readouterr()


def test_a_failures_files_invalid_row_sent_again_as_it_was_stays_invalid(tmp_path):
    """A CSV line with too many fields is invalid for the reader; its first fields are in the
    failures file, which would pass the rules: sent again unchanged, it is not sent."""
    path = tmp_path / "in.csv"
    path.write_text("customerId,eventName\nc1,buy\nc2,buy,oops\n")
    shop = Shop()
    first = send_path(path, **options(shop), ledger=tmp_path / "l", failures_path=tmp_path / "f.pq")
    assert (first.sent, first.invalid) == (1, 1)
    again = send_path(tmp_path / "f.pq", **options(shop), ledger=tmp_path / "l")
    assert (again.sent, again.invalid) == (0, 1)
    [row] = again.failures.to_dict("records")
    assert row["gb_error_code"] == "csv_extra_fields"
    assert "sent again unchanged" in row["gb_error_message"]
    edited = read_failures(tmp_path / "f.pq").assign(customerId="c3")
    assert send(edited, **options(shop), ledger=tmp_path / "l").sent == 1, "a fix is sent"


# --- 4. values through plain pandas -----------------------------------------------------------


def test_a_decimal_column_arrives_as_fixed_through_plain_pandas(tmp_path):
    df = pd.DataFrame(
        {
            "customerId": ["a ", "b"],
            "eventName": "buy",
            "amount": [decimal.Decimal("4.25"), decimal.Decimal("12345678901234567.89")],
        }
    )
    shop = Shop()
    send(df, **options(shop), ledger=tmp_path / "l", failures_path=tmp_path / "f.parquet")
    plain = pd.read_parquet(tmp_path / "f.parquet")
    assert plain["amount"].tolist() == [decimal.Decimal("4.25")], "pandas reads a Decimal back"
    plain["customerId"] = plain["customerId"].str.strip()
    plain.to_parquet(tmp_path / "fixed.parquet")
    gameball = MockGameball()
    report = send_path(tmp_path / "fixed.parquet", **options(gameball), ledger=tmp_path / "l")
    assert report.sent == 1
    [(request, _)] = gameball.requests
    assert request.content == b'{"customerId":"a","events":{"buy":{"amount":4.25}}}'


def test_a_value_that_failed_dtype_is_kept_as_text_and_arrives_as_fixed(tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_text('customerId,eventName,amount\nc1,buy,12.50\nc2,buy,"1,299.50"\nc3,buy,7\n')
    failures = tmp_path / "in.csv.failures.parquet"
    with gb.Emulator(limits=gb.RateLimits.unlimited()) as emu:
        cli = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--no-progress",
               "--rate", "0", "--ledger", str(tmp_path / "l")]  # fmt: skip
        assert main(["send", str(path), "--dtype", "amount=float", "--failures",
                     str(failures), *cli]) == 1  # fmt: skip
        plain = pd.read_parquet(failures)
        assert plain["amount"].tolist() == ["1,299.50"], "the value as it was, not missing"
        # Sent again as it is, it is still invalid: never sent without its amount.
        assert main(["send", str(failures), "--failures", str(tmp_path / "f2.pq"), *cli]) == 1
        assert len(emu.events()) == 2
        plain["amount"] = plain["amount"].str.replace(",", "")  # the fix, in plain pandas
        plain.to_parquet(tmp_path / "fixed.parquet")
        assert main(["send", str(tmp_path / "fixed.parquet"), "--failures",
                     str(tmp_path / "f3.pq"), *cli]) == 0  # fmt: skip
        amounts = emu.events()["metadata"].map(lambda m: m["amount"]).tolist()
    assert amounts == [12.5, 7, 1299.5], "as fixed: a number, not text, not missing"
    capsys.readouterr()


def test_typed_values_of_a_text_column_come_back_as_the_reader_read_them(tmp_path):
    """The column of a value that failed is text in the file; the other values' text converts
    back to exactly what the reader read (rows that failed to send, in the same file)."""
    path = tmp_path / "in.csv"
    path.write_text(
        "customerId,eventName,amount,at\n"
        "c1,buy,0.1,2024-03-01T10:00:00+02:00\n"
        'c2,buy,"1,5",2024-03-01T10:00:00Z\n'
        "c3,buy,1e21,2024-03-01T10:00:00.123456789Z\n"
        "c4,buy,3,yesterday\n"
    )
    dtype = {"amount": "float", "at": "datetime"}
    refused = MockGameball(lambda request, body, n: httpx.Response(503))
    report = send_path(path, **options(refused), dtype=dtype, failures_path=tmp_path / "f.pq")
    assert (report.failed, report.invalid) == (2, 2)
    back = pd.read_parquet(tmp_path / "f.pq").sort_values("gb_row", ignore_index=True)
    assert back["amount"].tolist() == ["0.1", "1,5", "1e+21", "3.0"]
    assert back["at"].tolist()[3] == "yesterday"
    assert back.attrs == {"gb_backfill": {"as_text": {"amount": "float", "at": "datetime"}}}

    def bodies(source, **more):
        out = tmp_path / "bodies.jsonl"
        gb.plan_path(source, bodies_path=out, **more)
        return [json.loads(line)["body"] for line in out.read_text().splitlines()]

    assert bodies(tmp_path / "f.pq") == bodies(path, dtype=dtype), "the same values, exactly"
    back.to_parquet(tmp_path / "again.pq")  # plain pandas keeps the note
    assert bodies(tmp_path / "again.pq") == bodies(path, dtype=dtype)
    assert gb.validate(back).failures["code"].tolist() == ["dtype_unconvertible"] * 2


def test_zoned_timestamps_and_lists_come_back_through_plain_pandas(tmp_path):
    """An object column of timestamps of one zone, and one of lists, are Parquet types, not
    tagged text: plain pandas reads them back as values to fix, and the fix is what arrives."""
    at = pd.Timestamp("2024-03-01 10:00:00.123456789", tz="Africa/Cairo")
    df = pd.DataFrame(
        {
            "customerId": ["a", "b"],
            "eventName": "buy",
            "at": pd.Series([at, None], dtype=object),
            "tags": pd.Series([["x", "y"], ["z"]], dtype=object),
        }
    )
    report = send(df, **options(Shop()), failures_path=tmp_path / "f.parquet")
    assert report.invalid == 2, "lists are no metadata"
    plain = pd.read_parquet(tmp_path / "f.parquet")
    assert plain["at"].tolist()[0] == at
    assert str(plain["at"].dtype) == "datetime64[ns, Africa/Cairo]"
    assert [list(tags) for tags in plain["tags"]] == [["x", "y"], ["z"]]
    assert read_failures(tmp_path / "f.parquet")["tags"].tolist() == [["x", "y"], ["z"]]
    plain["tags"] = plain["tags"].map(",".join)
    plain.to_parquet(tmp_path / "fixed.parquet")
    gameball = MockGameball()
    assert send_path(tmp_path / "fixed.parquet", **options(gameball)).sent == 2
    sent = [body["events"]["buy"] for _, body in gameball.requests]
    assert sent[0] == {"at": "2024-03-01T08:00:00.123456789Z", "tags": "x,y"}
    assert sent[1] == {"tags": "z"}


# --- 5. the dry run and the preview say what the live run does ----------------------------------


def test_only_the_fate_module_asks_the_ledger_about_rows():
    """One rule, in one place: the live run, the dry run and the preview decide nothing from
    the ledger themselves (no lookup, no ledger status), so they cannot drift apart again."""
    import ast
    from pathlib import Path

    package = Path(gb.__file__).parent
    asking = {}
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        calls = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "codecs")
        }
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        if calls & {"lookup", "loose_forms", "changed"} or "LedgerStatus" in names:
            name = path.relative_to(package).as_posix()
            asking[name] = sorted(calls & {"lookup", "loose_forms", "changed"})
    assert set(asking) <= {"_engine/fate.py", "_store/ledger.py", "_store/ledger_extras.py",
                           "_store/journal.py", "_store/storage.py", "_store/merging.py",
                           "_settle.py", "_vocabulary.py"}, asking  # fmt: skip


def ledger_of_every_state(tmp_path):
    """A ledger holding rows sent, unknown, failed for good, failed and retryable, aborted and
    invalid, and the input to send again: the export with its failures file, fixed."""
    df = orders(40, 40)
    df.loc[[30, 31], "customerId"] = ""  # invalid
    shop = Shop({1: "timeout", 2: "timeout", 3: 400, 4: 400, 5: 503, 6: 503})
    _first, failures = stopped_run(df, shop, tmp_path, stop_at=25)
    statuses = read_failures(failures).groupby("gb_status")["n"].apply(set).to_dict()
    assert statuses["unknown"] == {1, 2}
    assert statuses["invalid"] == {30, 31}
    assert {3, 4, 5, 6} <= statuses["failed"]
    assert len(statuses["aborted"]) > 5
    fixed = pd.read_parquet(failures)
    fixed.loc[fixed["n"] == 30, "customerId"] = "c30"  # a fix
    fixed.loc[fixed["n"] == 3, "amount"] = 1.0  # a fix of a row Gameball refused
    # An aborted row left in flight, as a run killed with its request out leaves it.
    from gb_backfill._rows.keys import carried_keys
    from gb_backfill._store.ledger import Ledger

    [key] = carried_keys(fixed.loc[fixed["n"] == 26, "gb_key"])
    ledger = Ledger(tmp_path / "l")
    ledger.begin(key, "c26", 26)
    ledger.close()
    return pd.concat([df, fixed], ignore_index=True)


def test_the_dry_run_equals_the_live_run_on_a_ledger_in_every_state(tmp_path):
    again = ledger_of_every_state(tmp_path)
    bodies = tmp_path / "bodies.jsonl"
    plan = gb.plan(again, **options(Shop()), ledger=tmp_path / "l",
                bodies_path=bodies)  # fmt: skip
    live = Shop()
    report = send(again, **options(live), ledger=tmp_path / "l")
    planned = sorted(json.dumps(json.loads(line)["body"], sort_keys=True)
                     for line in bodies.read_text().splitlines())  # fmt: skip
    made = sorted(json.dumps(body, sort_keys=True) for _, body in live.requests)
    assert planned == made, "the dry run's bodies are the live run's requests, row for row"
    assert plan.sending == report.sent == len(made)
    assert (plan.skipped, plan.folded) == (report.skipped, report.folded)
    assert (plan.unknown, plan.invalid) == (report.unknown, report.invalid)
    assert plan.failed == report.failed == 1, "row 4 failed for good; row 3 was fixed"
    assert plan.rows == report.rows
    assert not plan.ok
    assert not report.ok
    assert {3, 30} <= set(live.sent_ns())
    assert not {1, 2, 4, 26} & set(live.sent_ns()), "unknown, in flight, failed for good"
    assert report.unknown == 3


def test_the_preview_quotes_what_the_live_run_sends(tmp_path):
    again = ledger_of_every_state(tmp_path)
    with gb.Emulator(limits=gb.RateLimits.unlimited(), existing_share=1.0) as emu:
        estimate = gb.preview(
            again, base_url=emu.base_url, api_key=emu.api_key, ledger=tmp_path / "l",
            sample=200, progress=False,
        )  # fmt: skip
    live = Shop()
    report = send(again, **options(live), ledger=tmp_path / "l")
    assert estimate.valid - estimate.skipped == report.sent, "it samples what a send sends"
    quoted = estimate.quotes["n"].tolist()
    assert sorted(quoted) == sorted(live.sent_ns()), "every row the send sends"
    assert len(quoted) == len(set(quoted)), "once each: copies of a row are folded"
    assert {3, 30} <= set(quoted), "the fixed rows are quoted"
    assert not {1, 2, 4, 26, 31} & set(quoted), "unknown, in flight, failed and invalid are not"


# --- 6. unknown rows settled, both ways -----------------------------------------------------------


def test_unknown_rows_are_shown_and_settled_both_ways_and_the_run_then_exits_0(tmp_path, capsys):
    df = orders(12, 12)
    shop = Shop({2: "timeout", 5: "timeout", 9: "timeout"})
    path = tmp_path / "in.parquet"
    df.to_parquet(path)
    ledger = str(tmp_path / "l")
    first = send_path(path, **options(shop), ledger=ledger, failures_path=tmp_path / "f.pq")
    assert first.unknown == 3
    # status shows each unknown row as sent: customer, event, metadata, when.
    assert main(["status", "--ledger", ledger, "--json", str(tmp_path / "s.json")]) == 1
    out = capsys.readouterr().out
    assert "c5" in out
    assert "purchase" in out
    assert '"n": 5' in out
    shown = json.loads((tmp_path / "s.json").read_text())
    assert [row["customer_id"] for row in shown["unknown"]] == ["c2", "c5", "c9"]
    assert json.loads(shown["unknown"][1]["metadata"]) == {"amount": 15.0, "n": 5}
    assert all(row["sent_at"] for row in shown["unknown"])
    status = gb.ledger_status(ledger)
    assert list(status.unknown["event"]) == ["purchase"] * 3
    keys = dict(zip(status.unknown["customer_id"], status.unknown["gb_key"], strict=True))
    # c2 arrived (found in Gameball); c5 and c9 did not, named in a file of keys.
    assert main(["settle", "--ledger", ledger, "--arrived", "--key", keys["c2"]]) == 0
    (tmp_path / "keys.txt").write_text(f"# not in Gameball\n{keys['c5']}\n{keys['c9']}\n")
    assert main(["settle", "--ledger", ledger, "--not-arrived", "--keys-file",
                 str(tmp_path / "keys.txt")]) == 0  # fmt: skip
    assert "settled 2 unknown rows as not arrived" in capsys.readouterr().out
    before = len(shop.requests)
    shop.outcomes.clear()  # Gameball answers now
    again = send_path(path, **options(shop), ledger=ledger)
    assert sorted(shop.sent_ns(before)) == [5, 9], "the rows not arrived are sent once"
    assert (again.sent, again.skipped, again.unknown) == (2, 10, 0)
    assert again.ok
    last = send_path(path, **options(shop), ledger=ledger)
    assert last.ok
    assert len(shop.requests) == before + 2, "and never again"
    counts = gb.ledger_status(ledger).counts
    assert (counts["sent"], counts["unknown"]) == (12, 0)
    assert main(["status", "--ledger", ledger]) == 0, "no row held as unknown any more"


def test_settling_every_unknown_row_as_arrived_makes_the_cli_exit_0(tmp_path, capsys):
    df = orders(6, 6)
    path = tmp_path / "in.parquet"
    df.to_parquet(path)
    ledger = str(tmp_path / "l")
    send_path(path, **options(Shop({1: "timeout", 4: "timeout"})), ledger=ledger,
              failures_path=tmp_path / "f.pq")  # fmt: skip
    with gb.Emulator(limits=gb.RateLimits.unlimited()) as emu:
        cli = [
            "send",
            str(path),
            "--base-url",
            emu.base_url,
            "--api-key",
            emu.api_key,
            "--ledger",
            ledger,
            "--no-progress",
            "--failures",
            str(tmp_path / "f2.pq"),
        ]
        assert main(cli) == 1, "unknown rows left: incomplete"
        assert main(["settle", "--ledger", ledger, "--arrived", "--keys-file",
                     str(tmp_path / "f.pq")]) == 0  # fmt: skip
        assert main(cli) == 0, "no unknown rows left"
        assert emu.events().empty
    assert (
        "settled 2 unknown rows as arrived: the ledger counts them as sent, and runs skip "
        "them" in capsys.readouterr().out
    )


def test_settling_refuses_keys_the_ledger_does_not_have_and_settles_nothing(tmp_path, capsys):
    shop = Shop({0: "timeout"})
    send(orders(3, 3), **options(shop), ledger=tmp_path / "l")
    [key] = gb.ledger_status(tmp_path / "l").unknown["gb_key"]
    wrong = "0" * 32 + "/0"
    with pytest.raises(gb.ConfigError, match="not rows of"):
        gb.settle(tmp_path / "l", arrived=True, keys=[key, wrong])
    assert gb.ledger_status(tmp_path / "l").counts["unknown"] == 1, "nothing was settled"
    assert main(["settle", "--ledger", str(tmp_path / "l"), "--arrived", "--key", "zz"]) == 2
    assert "is not a gb_key" in capsys.readouterr().err
    done = gb.settle(tmp_path / "l", arrived=True, keys="all")
    assert (done.settled, gb.ledger_status(tmp_path / "l").settled) == (1, {"arrived": 1})


# --- 8. duplicates named ------------------------------------------------------------------------


def test_duplicate_rows_are_named_everywhere_and_still_sent(tmp_path, capsys):
    df = orders(10, 10)
    twins = pd.concat([df, df.iloc[[2, 7]], df.iloc[[2]]], ignore_index=True)
    path = tmp_path / "in.csv"
    twins.to_csv(path, index=False)

    def named(warnings):
        [row] = warnings[warnings["code"] == "duplicate_rows"].to_dict("records")
        return row["count"], row["example"]

    assert named(gb.validate(twins).warnings) == (3, "positions 10, 11, 12")
    assert named(gb.plan(twins, **options(Shop())).warnings) == (
        3,
        "positions 10, 11, 12",
    )
    shop = Shop()
    report = send(twins, **options(shop))
    assert named(report.warnings) == (3, "positions 10, 11, 12")
    assert report.sent == 13
    assert shop.arrived[2] == 3, "each is still sent as its own event"
    assert "duplicate_rows: 3 rows, at positions 10, 11, 12" in report.summary()
    with gb.Emulator(limits=gb.RateLimits.unlimited()) as emu:
        estimate = gb.preview(twins, base_url=emu.base_url, api_key=emu.api_key, progress=False)
    assert named(estimate.warnings) == (3, "positions 10, 11, 12")
    assert main(["validate", str(path)]) == 0
    assert "duplicate_rows: 3 rows, at positions 10, 11, 12" in capsys.readouterr().out


def test_copies_that_carry_a_gb_key_are_folded_not_named_duplicates(tmp_path):
    df = orders(10, 10)
    shop = Shop()
    _, failures = stopped_run(df, shop, tmp_path, stop_at=4)
    both = pd.concat([df, pd.read_parquet(failures)], ignore_index=True)
    plan = gb.plan(both, **options(Shop()), ledger=tmp_path / "l")
    assert "duplicate_rows" not in set(plan.warnings["code"])
    assert plan.folded > 0


# --- 9. one count per thing -----------------------------------------------------------------------


def test_a_row_breaking_two_rules_is_counted_once_per_rule_alike_everywhere(tmp_path, capsys):
    df = pd.DataFrame(
        {
            "customerId": ["a ", "b ", "c", "  "],
            "eventName": [" buy", "buy", " buy", "buy"],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    path = tmp_path / "in.csv"
    df.to_csv(path, index=False)
    report = gb.validate(df)
    by_code = report.failures.groupby("code").size().to_dict()
    assert by_code == {
        "customer_id_whitespace": 2, "event_name_whitespace": 2, "customer_id_empty": 1
    }  # fmt: skip
    assert report.counts().to_dict() == by_code
    assert report.invalid_rows == 4
    summary = report.summary()
    assert re.search(r"event_name_whitespace \(eventName\) +2$", summary, flags=re.MULTILINE)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "invalid: 4" in out
    assert "a row that breaks two rules counts under each" in out
    for code, count in by_code.items():
        assert f"  {code}: {count}" in out
    sent = send(df, **options(Shop()))
    assert sent.failures.groupby("gb_error_code").size().to_dict() == sent.error_codes
    assert sum(sent.error_codes.values()) == sent.invalid == 4


# --- 7. every message that says where rows are is true ---------------------------------------


def test_the_breaker_on_timeouts_says_the_rows_are_unknown_not_retryable(tmp_path):
    shop = Shop(dict.fromkeys(range(40), "timeout"))
    for ledger in (tmp_path / "l", None):
        with pytest.raises(gb.RepeatedFailureError) as stopped:
            send(orders(40, 40), **options(shop, concurrency=1), ledger=ledger)
        message, report = str(stopped.value), stopped.value.report
        assert report.unknown >= 8
        assert report.failed == 0
        assert "stay retryable" not in message
        assert "ready to send again" not in message
        assert f"{report.unknown:,} rows are unknown" in message
        assert f"{report.aborted:,} rows were not sent (aborted: {report.aborted:,}" in message
        if ledger is None:
            assert "without a ledger nothing holds them back" in message
        else:
            assert "gb-backfill settle" in message


def test_an_interrupt_before_the_run_starts_says_nothing_was_sent(tmp_path, monkeypatch, capsys):
    import gb_backfill._cli.send as cli

    async def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    path = tmp_path / "in.csv"
    orders(3, 3).to_csv(path, index=False)
    failures = tmp_path / "f.parquet"
    monkeypatch.setattr(cli, "asend_path", interrupted)
    assert main(["send", str(path), "--api-key", "k", "--failures", str(failures)]) == 130
    err = capsys.readouterr().err
    assert "nothing was sent" in err
    assert str(failures) not in err
    assert not failures.exists()


def test_a_failures_file_that_could_not_be_written_is_not_named(tmp_path, monkeypatch, capsys):
    """A full disk when the parts are merged: the line names the parts written, and the
    ledger, never the file."""
    import errno

    from gb_backfill._store.failures import FailureWriter

    real_close = FailureWriter.close

    def full(self, columns=()):
        self.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "in.csv"
    orders(20, 5).assign(customerId=[""] * 3 + [f"c{n}" for n in range(17)]).to_csv(
        path, index=False
    )
    failures = tmp_path / "f.parquet"
    monkeypatch.setattr(FailureWriter, "close", full)
    with gb.Emulator(limits=gb.RateLimits.unlimited()) as emu:
        code = main(
            ["send", str(path), "--base-url", emu.base_url, "--api-key", emu.api_key,
             "--failures", str(failures), "--ledger", str(tmp_path / "l"), "--no-progress"]
        )  # fmt: skip
    monkeypatch.setattr(FailureWriter, "close", real_close)
    err = capsys.readouterr().err
    assert code == 3
    assert not failures.exists()
    assert f"rows not sent are in {failures}" not in err
    assert f"the failures file {failures} was not written" in err
    assert f"{failures}.parts/" in err
    assert "the ledger" in err
    assert len(pd.read_parquet(f"{failures}.parts")) == 3, "the parts hold the rows not sent"


def test_where_rows_are_after_a_second_signal_names_what_is_on_disk(tmp_path):
    """A second Ctrl-C can stop the run before its report: the line then says what the files
    on disk hold."""
    from gb_backfill._cli.send import where_rows_are
    from gb_backfill._store.failures import write_parquet

    failures = str(tmp_path / "f.parquet")
    parts = tmp_path / "f.parquet.parts"
    parts.mkdir()
    assert where_rows_are(failures, None, None) == f"the failures file {failures} was not written"
    write_parquet(pd.DataFrame({"gb_row": [1]}), parts / "part-000000.parquet")
    said = where_rows_are(failures, str(tmp_path / "l"), None)
    assert f"found so far are in {parts}/" in said
    assert "the ledger" in said
    assert "rows not sent are in" not in said


def test_a_dry_run_with_an_unwritable_bodies_path_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "in.csv"
    orders(3, 3).to_csv(path, index=False)
    blocked = tmp_path / "file"
    blocked.write_text("")
    code = main(["send", str(path), "--dry-run", "--write-bodies", str(blocked / "b.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "cannot write the request bodies" in err
    assert "--write-bodies PATH" in err
    assert "rows not sent" not in err


# --- the loop the README teaches -------------------------------------------------------------


def test_the_readme_loop_ends_with_every_row_accounted_for_and_nothing_twice(tmp_path, capsys):
    """The README's steps, as a new user follows them: send, read the failures file with
    pandas, fix in bulk, send again, settle what is unknown (looked up in "Gameball"), send
    once more."""
    rng = np.random.default_rng(3)
    export = pd.DataFrame(
        {
            "customer_id": [f"c{n}" for n in rng.integers(0, 60, 240)],
            "event_name": rng.choice(["purchase", " Purchase", "review "], 240),
            "order_id": [f"o{n}" for n in range(240)],
        }
    )
    path = tmp_path / "export.parquet"
    export.to_parquet(path)
    failures = tmp_path / "export.parquet.failures.parquet"
    faults = gb.Faults(lost_responses=0.05, dropped_connections=0.05, seed=11)
    with gb.Emulator(limits=gb.RateLimits.unlimited(), faults=faults) as emu:
        flags = [
            "--ledger", str(tmp_path / "export.ledger"), "--base-url", emu.base_url,
            "--api-key", emu.api_key, "--rate", "0", "--no-progress", "--failures",
        ]  # fmt: skip
        # 1. Send, with a ledger.
        assert main(["send", str(path), *flags, str(failures)]) == 1
        # 2. Read the failures file with pandas; 3. fix in bulk, over the whole file.
        f = pd.read_parquet(failures)
        assert {"invalid", "unknown"} <= set(f["gb_status"])
        f["event_name"] = f["event_name"].str.strip().str.lower()
        f.to_parquet(tmp_path / "fixed.parquet")
        # 4. Send again, with the same ledger.
        main(["send", str(tmp_path / "fixed.parquet"), *flags, str(tmp_path / "f2.parquet")])
        # 5. Settle what is unknown, as looked up in Gameball.
        assert main(["status", "--ledger", str(tmp_path / "export.ledger"), "--json",
                     str(tmp_path / "status.json")]) == 1  # fmt: skip
        unknown = json.loads((tmp_path / "status.json").read_text())["unknown"]
        assert unknown, "the faults left rows unknown"
        received = {json.dumps(m, sort_keys=True) for m in emu.events()["metadata"]}
        arrived = [r["gb_key"] for r in unknown if
                   json.dumps(json.loads(r["metadata"]), sort_keys=True) in received]  # fmt: skip
        missing = [r["gb_key"] for r in unknown if r["gb_key"] not in arrived]
        assert arrived, "answers lost after processing: those rows arrived"
        assert missing, "connections dropped before processing: those did not"
        ledger = ["--ledger", str(tmp_path / "export.ledger")]
        if arrived:
            assert main(["settle", *ledger, "--arrived", *(f"--key={k}" for k in arrived)]) == 0
        if missing:
            (tmp_path / "missing.txt").write_text("\n".join(missing))
            assert main(["settle", *ledger, "--not-arrived", "--keys-file",
                         str(tmp_path / "missing.txt")]) == 0  # fmt: skip
        # 6. Send once more: what was not arrived goes once; the run ends clean, unless a
        # fault struck again (then the loop goes round once more).
        emu.faults = gb.Faults()
        code = main(["send", str(tmp_path / "fixed.parquet"), *flags, str(tmp_path / "f3.pq")])
        orders_received = emu.events()["metadata"].map(lambda m: m["order_id"])
    assert code == 0
    counts = orders_received.value_counts()
    assert counts.max() == 1, "nothing twice"
    assert len(counts) == len(export), "every row arrived"
    status = gb.ledger_status(tmp_path / "export.ledger")
    assert status.counts["sent"] == len(export)
    assert status.counts["unknown"] == status.counts["in_flight"] == status.counts["invalid"] == 0
    capsys.readouterr()


# --- what the ledger keeps for the way back -------------------------------------------------------


def test_a_row_in_flight_at_a_kill_is_shown_as_it_was_sent(tmp_path):
    """The request goes to the journal with its mark, so status shows it even when no commit
    came between (a kill -9 a moment after the request went out), and after one did."""
    import os

    from gb_backfill._store.journal import Mark
    from gb_backfill._store.ledger import Ledger

    body = b'{"customerId":"c7","events":{"purchase":{"order_id":"o7"}}}'
    ledger = Ledger(tmp_path / "l")
    ledger.begin_many([Mark(b"a" * 16, "c7", 7, content=b"\xab" * 16, occurrence=3, body=body)])
    ledger.begin_many([Mark(b"b" * 16, "c8", 8, content=b"\xcd" * 16, occurrence=0, body=body)])
    ledger.settle(b"b" * 16, "sent", retryable=False, attempts=1, http_status=200,
                  error_code=None, error_message=None)  # fmt: skip
    ledger.commit()  # a7 stays in flight across the commit; b8 is sent: no request kept
    os.close(ledger._journal)  # killed: the lock dies with the descriptor
    os.close(ledger._lock)
    [row] = gb.ledger_status(tmp_path / "l").unknown.to_dict("records")
    assert (row["gb_key"], row["customer_id"], row["event"]) == ("ab" * 16 + "/3", "c7", "purchase")
    assert json.loads(row["metadata"]) == {"order_id": "o7"}
    assert row["status"] == "in_flight"
    resumed = Ledger(tmp_path / "l")  # replays the journal into the database
    resumed.close()
    assert not (tmp_path / "l-intents").exists(), "every mark is in the database now"
    [again] = gb.ledger_status(tmp_path / "l").unknown.to_dict("records")
    assert (again["event"], again["sent_at"]) == ("purchase", row["sent_at"])


def test_a_ledger_written_before_the_extras_opens_and_gains_them(tmp_path):
    """An older ledger (no extras tables) is read as it is, and gains them when a run opens it."""
    import sqlite3

    ledger = tmp_path / "l"
    shop = Shop({1: "timeout"})
    send(orders(4, 4), **options(shop), ledger=ledger)
    with sqlite3.connect(ledger) as db:  # as gb-backfill before these tables wrote it
        db.executescript(
            "DROP TABLE invalid_rows; DROP TABLE requests; DROP TABLE settlements; "
            "DELETE FROM meta WHERE name = 'extras_version';"
        )
    old = gb.ledger_status(ledger)
    assert (old.counts["sent"], old.counts["unknown"]) == (3, 1)
    assert old.unknown["customer_id"].tolist() == ["c1"]
    assert old.unknown["event"].isna().all(), "what was sent was not kept then"
    again = send(orders(4, 4), **options(Shop()), ledger=ledger)
    assert (again.skipped, again.unknown) == (3, 1), "its rows are known as before"
    with sqlite3.connect(ledger) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        version = db.execute("SELECT value FROM meta WHERE name = 'extras_version'").fetchone()
    assert {"invalid_rows", "requests", "settlements"} <= tables
    assert version == ("1",)
    assert gb.settle(ledger, arrived=False, keys="all").settled == 1


@pytest.mark.slow
@pytest.mark.parametrize("gap", [0.0, 0.3])
def test_after_a_second_ctrl_c_the_line_names_only_what_is_on_disk(tmp_path, gap):
    """Two SIGINTs, at once or a moment apart: wherever the second lands, the line it prints
    names a failures file only if it is there, parts only if they are, and says nothing was
    sent only if nothing arrived."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import sigint_as_in_a_terminal

    source = tmp_path / "in.csv"
    orders(600, 600).to_csv(source, index=False)
    failures = tmp_path / "f.parquet"
    with gb.Emulator(faults=gb.Faults(latency=0.3)) as emu:
        process = subprocess.Popen(
            [sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url",
             emu.base_url, "--failures", str(failures), "--ledger", str(tmp_path / "l"),
             "--rate", "40", "--no-progress"],
            env={"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=sigint_as_in_a_terminal,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(emu.events()) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        time.sleep(gap)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        arrived = len(emu.events())
    said = [text for text in err.splitlines() if text.startswith("gb-backfill: interrupted")]
    assert said, f"exit {process.returncode}; stderr: {err}"
    line = said[0]
    assert process.returncode == 130, err
    if f"rows not sent are in {failures}" in line:
        written = read_failures(failures)
        # Rows in flight when the second signal cut the wait short are unknown: they may have
        # arrived. Every other row in the file was not delivered.
        not_delivered = written[written["gb_status"] != "unknown"]
        assert len(not_delivered) + arrived <= 600
        assert len(written) + arrived >= 600, "every row arrived or is in the file"
    elif f"{failures}.parts/" in line:
        assert any((tmp_path / "f.parquet.parts").glob("part-*.parquet"))
    else:
        assert f"the failures file {failures} was not written" in line, line
    assert "nothing was sent" not in line, "rows had arrived"
    assert arrived > 0
