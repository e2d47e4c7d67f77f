"""One line, never a traceback (issue 26, item 8): output paths are checked before anything is
spent, a damaged journal is named, Ctrl-C while starting up is one line, and a base URL that is
not a URL is a ConfigError."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from gb_backfill import ConfigError, Emulator, send
from gb_backfill._cli import main
from gb_backfill._store import journal as _journal
from gb_backfill._store.ledger import Ledger
from tests.conftest import sigint_as_in_a_terminal


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"customerId": [f"c{n}" for n in range(20)], "eventName": "e"}).to_csv(
        path, index=False
    )
    return path


def one_line(err):
    assert "Traceback" not in err, err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("where", ["missing-folder/preview.json", "."])
def test_preview_json_to_a_path_that_cannot_be_written_spends_no_quote(
    tmp_path, source, capsys, where
):
    with Emulator(existing_share=1.0, known_events=["e"]) as emu:
        code = main(["preview", str(source), "--base-url", emu.base_url, "--api-key",
                     emu.api_key, "--json", str(tmp_path / where), "--no-progress"])  # fmt: skip
        asked = emu.counters.get("preview_ok", 0)
    assert code == 2
    assert asked == 0, "no quote was spent"
    assert "--json" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "missing-folder").exists()


def test_a_preview_json_path_that_can_be_written_is_left_for_the_preview(tmp_path, source):
    out = tmp_path / "preview.json"
    with Emulator(existing_share=1.0, known_events=["e"]) as emu:
        code = main(["preview", str(source), "--base-url", emu.base_url, "--api-key",
                     emu.api_key, "--json", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    assert out.stat().st_size > 0


def test_emulator_record_to_a_path_that_cannot_be_written_is_refused_before_serving(tmp_path):
    record = tmp_path / "no" / "rec.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "gb_backfill", "emulator", "--port", "0", "--record", str(record)],
        capture_output=True, text=True, timeout=30,  # it would serve until stopped
    )  # fmt: skip
    assert done.returncode == 2
    assert "--record" in one_line(done.stderr)


def damaged_ledger(path):
    """A ledger killed with rows in its journal, then one outcome record damaged on disk."""
    ledger = Ledger(path)
    ledger.begin(b"a" * 16, "c0", 0)
    os.close(ledger._journal)
    os.close(ledger._lock)
    settle = _journal.Settle(b"a" * 16, "sent", False, 1, 200, None, None, 0.0)
    record = _journal.settle_record(settle)
    with open(ledger.journal_path, "ab") as journal:
        journal.write(record[:17] + bytes([99]) + record[18:])  # no such status


def test_a_damaged_journal_is_named_in_one_line_by_status_and_send(tmp_path, source, capsys):
    path = tmp_path / "run.ledger"
    damaged_ledger(path)
    assert main(["status", "--ledger", str(path)]) == 2
    assert "is damaged" in one_line(capsys.readouterr().err)
    with Emulator() as emu:
        code = main(["send", str(source), "--base-url", emu.base_url, "--api-key", emu.api_key,
                     "--ledger", str(path), "--no-progress",
                     "--failures", str(tmp_path / "f.parquet")])  # fmt: skip
        assert emu.counters.get("accepted", 0) == 0
    assert code == 2
    assert "run.ledger-intents is damaged" in one_line(capsys.readouterr().err)
    with pytest.raises(Exception, match="is damaged"):
        Ledger(path)
    Ledger(path, read_only=True).close()  # the refusal released the ledger's lock


def test_ctrl_c_while_starting_up_is_one_line(tmp_path, source):
    command = [sys.executable, "-m", "gb_backfill", "send", str(source), "--api-key", "k",
               "--base-url", "http://127.0.0.1:9", "--no-progress",
               "--failures", str(tmp_path / "f.parquet")]  # fmt: skip
    # From 0.1 s: before that, the interpreter itself may still be starting (no code of ours).
    interrupted = 0
    for delay in (0.12, 0.24, 0.36):
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            preexec_fn=sigint_as_in_a_terminal,
        )  # fmt: skip
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert "Traceback" not in err, f"after {delay} s: {err}"
        assert "Exception ignored" not in err, f"after {delay} s: {err}"
        if process.returncode in (1, 3) and "interrupted" not in err:
            # The run ended before the signal (nothing listens at port 9, so it stops at
            # once), or, rarely, the interrupt landed in C code that clears it while pandas
            # loads: no Python code ever saw it. Either way there was nothing to interrupt.
            continue
        assert process.returncode in (-signal.SIGINT, 130), err
        assert "interrupted" in err
        interrupted += 1
    assert interrupted, "no delay interrupted the start-up: the test measured nothing"


@pytest.mark.parametrize("url", ["http://[::1", "http://localhost:99999", "https://host:port/"])
def test_a_base_url_that_is_not_a_url_is_a_config_error(tmp_path, source, capsys, url):
    with pytest.raises(ConfigError, match="is not a URL"):
        send(pd.read_csv(source), base_url=url, api_key="k", progress=False)
    failures = str(tmp_path / "f.parquet")
    assert (
        main(["send", str(source), "--base-url", url, "--api-key", "k", "--failures", failures])
        == 2
    )
    assert "--base-url" in one_line(capsys.readouterr().err)
