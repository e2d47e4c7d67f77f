"""A ledger that lost its database, or got another one, is refused rather than trusted.

A fresh database beside a left-over journal (or WAL) would not know the rows already sent, and
the same command would send them again. The refusal says what happened and how to recover:
``gb-backfill status`` shows the journal's rows, and ``--rebuild-ledger`` rebuilds from them.
"""

import sqlite3
import threading

import numpy as np
import pandas as pd
import pytest

from gb_backfill import Emulator, Faults, LedgerError, RateLimits, RetryPolicy, RunStopped, send
from gb_backfill._cli import main
from gb_backfill._store.ledger import Ledger

BOUND = 30


def orders(rows, customers):
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "customerId": [f"c{n}" for n in rng.integers(0, customers, rows)],
            "eventName": "purchase",
            "order_id": [f"o{n}" for n in range(rows)],
        }
    )


def run(emu, df, ledger, **options):
    return send(
        df,
        base_url=emu.base_url,
        api_key=emu.api_key,
        limits=RateLimits(per_second=150, per_window=0),
        retry=RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0),
        progress=False,
        ledger=ledger,
        **options,
    )


def arrivals(emu):
    return emu.events()["metadata"].map(lambda m: m["order_id"]).value_counts()


def delete_the_database_mid_run(emu, df, ledger):
    """Start a run in a thread, delete its database once some rows arrived; its stop (raised
    from a LedgerError)."""
    outcome = {}

    def first():
        try:
            run(emu, df, ledger)
        except RunStopped as stopped:
            outcome["error"] = stopped

    sender = threading.Thread(target=first)
    sender.start()
    while len(emu.events()) < 40 and sender.is_alive():
        pass
    ledger.unlink()
    sender.join(BOUND)
    assert not sender.is_alive()
    return outcome["error"]


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_ledger_deleted_mid_run_is_refused_then_rebuilt_and_nothing_is_sent_twice(
    tmp_path, capsys
):
    df = orders(300, 150)
    ledger = tmp_path / "l"
    with Emulator(limits=RateLimits.unlimited(), faults=Faults(latency=0.02)) as emu:
        error = delete_the_database_mid_run(emu, df, ledger)
        assert isinstance(error.__cause__, LedgerError), "raised from the ledger's error"
        assert "was deleted or replaced" in str(error)
        sent_before = len(emu.events())
        assert (tmp_path / "l-intents").exists(), "the journal keeps what the database knew"

        with pytest.raises(LedgerError) as refused:
            run(emu, df, ledger)
        message = str(refused.value)
        assert "is missing" in message
        assert "gb-backfill status" in message
        assert "--rebuild-ledger" in message
        assert len(emu.events()) == sent_before, "the refused run sent nothing"

        assert main(["status", "--ledger", str(ledger)]) == 0
        shown = capsys.readouterr().out
        assert "the database is missing" in shown
        assert f"sent: {sent_before:,}" in shown

        rebuilt = run(emu, df, ledger, rebuild_ledger=True)
        counts = arrivals(emu)
    assert rebuilt.skipped == sent_before
    assert counts.max() == 1, "nothing was sent twice"
    assert len(counts) == len(df)


def test_the_cli_refuses_a_missing_database_beside_its_journal_with_exit_2(tmp_path, capsys):
    source = tmp_path / "in.parquet"
    orders(50, 20).to_parquet(source)
    ledger = tmp_path / "l"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        run(emu, pd.read_parquet(source), ledger)
        (tmp_path / "l-intents").write_bytes(b"GBJ2\n")  # as a killed run leaves it
        ledger.unlink()
        code = main(
            ["send", str(source), "--base-url", emu.base_url, "--api-key", emu.api_key,
             "--ledger", str(ledger), "--no-progress"]
        )  # fmt: skip
        err = capsys.readouterr().err
        assert len(emu.events()) == 50
    assert code == 2
    assert "--rebuild-ledger" in err
    assert err.count("\n") == 1, "one line"
    assert not ledger.exists(), "no fresh database was left behind"


def test_a_write_ahead_log_without_its_database_is_refused(tmp_path):
    ledger = tmp_path / "l"
    (tmp_path / "l-wal").write_bytes(b"\0" * 32)
    with pytest.raises(LedgerError, match="l-wal"):
        Ledger(ledger)
    assert not ledger.exists()


def test_a_journal_that_belongs_to_another_database_is_refused(tmp_path):
    ledger = tmp_path / "l"
    first = Ledger(ledger)
    first.begin(b"k" * 16, "c1", 0)
    first.commit()
    journal = (tmp_path / "l-intents").read_bytes()
    first.close()
    other = Ledger(tmp_path / "other")
    other.close()
    # The database is replaced by another ledger while a journal of the first is left.
    (tmp_path / "other").replace(ledger)
    (tmp_path / "l-intents").write_bytes(journal + b"")
    with pytest.raises(LedgerError, match="belongs to another ledger database"):
        Ledger(ledger)
    rebuilt = Ledger(ledger, rebuild=True)
    rebuilt.close()


def test_a_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE rows (id INTEGER, name TEXT)")
        db.execute("INSERT INTO rows VALUES (1, 'a')")
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="not a gb-backfill ledger"):
        Ledger(path)
    assert path.read_bytes() == before, "nothing was written to it"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_file_that_is_not_sqlite_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    source = tmp_path / "in.csv"
    orders(5, 5).to_csv(source, index=False)
    code = main(
        ["send", str(source), "--api-key", "k", "--base-url", "http://127.0.0.1:9", "--ledger",
         str(path), "--no-progress"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "not a usable ledger" in err
    assert err.count("\n") == 1
