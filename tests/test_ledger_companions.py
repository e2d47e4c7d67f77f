"""The ledger's companion files: the journal (``-intents``) and SQLite's WAL (issue 26, items 3-4).

* A crash between the database's commit and the journal's truncation leaves marks in the
  journal that are older than the outcomes committed: replaying them must not turn ``sent``
  rows back into rows in flight (``unknown_earlier``, and ``--retry-unknown`` would resend).
* A ledger no run is using is one file: a clean exit checkpoints it and removes its
  companions, so the file copied alone (to another machine) knows every row.
* A ledger file whose run was killed keeps its latest rows in its companions: copied alone, it
  is refused with a message naming the files to copy, never taken as a new ledger.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import gb_backfill
from gb_backfill import Emulator, LedgerError, RateLimits, send
from gb_backfill._cli import main
from gb_backfill._store.ledger import Ledger

KEYS = [bytes([n]) * 16 for n in range(3)]


def crash(ledger):
    """What kill -9 leaves: nothing more is written, and the lock dies with the descriptors."""
    os.close(ledger._journal)
    os.close(ledger._lock)


def test_replaying_a_journal_never_downgrades_rows_already_committed_as_sent(tmp_path):
    path = tmp_path / "run.ledger"
    ledger = Ledger(path)
    for n, key in enumerate(KEYS):
        ledger.begin(key, f"c{n}", n)
    marks = ledger.journal_path.read_bytes()
    for key in KEYS:
        ledger.settle(key, "sent", retryable=False, attempts=1, http_status=200,
                      error_code=None, error_message=None)  # fmt: skip
    ledger.commit()
    # The kill came after the commit, before the journal was emptied: it still holds the marks.
    ledger.journal_path.write_bytes(marks)
    crash(ledger)
    resumed = Ledger(path)
    assert resumed.counts() == {"sent": 3}
    assert resumed.unknown_rows().empty
    resumed.close()


def test_a_replayed_mark_newer_than_the_outcome_still_counts(tmp_path):
    """A row settled in one run and marked again by the next, killed: in flight, as before."""
    path = tmp_path / "run.ledger"
    ledger = Ledger(path)
    ledger.begin(KEYS[0], "c0", 0)
    ledger.settle(KEYS[0], "failed", retryable=True, attempts=1, http_status=503,
                  error_code="http_503", error_message=None)  # fmt: skip
    ledger.close()
    again = Ledger(path)
    again.begin(KEYS[0], "c0", 0)
    crash(again)
    resumed = Ledger(path)
    assert resumed.counts() == {"in_flight": 1}
    resumed.close()


def frame(rows=50):
    return pd.DataFrame(
        {"customerId": [f"c{n}" for n in range(rows)], "eventName": "e", "row_id": range(rows)}
    )


def test_a_finished_runs_ledger_is_one_file_and_copied_alone_knows_every_row(tmp_path):
    df = frame()
    path = tmp_path / "run.ledger"
    with Emulator() as emu:
        options = {"base_url": emu.base_url, "api_key": emu.api_key, "progress": False}
        assert send(df, ledger=path, **options).sent == len(df)
        assert main(["status", "--ledger", str(path)]) == 0  # a reader leaves nothing either
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ledger"], "one file"
        elsewhere = tmp_path / "moved"
        elsewhere.mkdir()
        shutil.copy(path, elsewhere / "run.ledger")
        again = send(df, ledger=elsewhere / "run.ledger", **options)
    assert again.requests == 0, again
    assert again.skipped == len(df), again


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_killed_runs_ledger_copied_alone_is_refused_naming_what_to_copy(tmp_path, capsys):
    source = tmp_path / "in.csv"
    frame(400).to_csv(source, index=False)
    path = tmp_path / "run.ledger"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        command = [
            sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url",
            emu.base_url, "--ledger", str(path), "--rate", "100", "--quota", "0",
            "--no-progress", "--failures", str(tmp_path / "f.parquet"),
        ]  # fmt: skip
        env = {"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while emu.counters.get("accepted", 0) < 50:
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        sent_before = emu.counters["accepted"]
        moved = tmp_path / "moved"
        moved.mkdir()
        shutil.copy(path, moved / "run.ledger")
        with pytest.raises(LedgerError) as refused:
            Ledger(moved / "run.ledger")
        with pytest.raises(LedgerError, match="copy every file"):  # the dry run says so too
            gb_backfill.plan_path(source, ledger=moved / "run.ledger", api_key="k")
        assert main(["send", str(source), "--base-url", emu.base_url, "--api-key", emu.api_key,
                     "--ledger", str(moved / "run.ledger"), "--no-progress",
                     "--failures", str(tmp_path / "f2.parquet")]) == 2  # fmt: skip
        assert emu.counters["accepted"] == sent_before, "nothing was sent"
    message = str(refused.value)
    assert "run.ledger-wal" in message, message
    assert "run.ledger-intents" in message, message
    assert "copy every file" in message.lower()
    assert sorted(p.name for p in moved.iterdir()) == ["run.ledger"], "left as it was"
    assert "run.ledger-wal" in capsys.readouterr().err
    # With its companions beside it, the same file resumes.
    for name in ("run.ledger-wal", "run.ledger-intents"):
        if (tmp_path / name).exists():
            shutil.copy(tmp_path / name, moved / name)
    Ledger(moved / "run.ledger").close()
