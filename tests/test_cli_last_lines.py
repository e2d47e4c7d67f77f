"""Every line the command line prints is in its own terms (issue 30, item 1): each exit path of
each command runs here, and its last line is checked, with all it printed: counts in words,
flags not keywords, no reprs, no library class names, no NaN or None."""

import argparse
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from gb_backfill import Emulator
from gb_backfill._cli import main
from gb_backfill._store.ledger import Ledger
from tests.conftest import sigint_as_in_a_terminal

#: What a person reading a terminal should never need Python to understand.
PYTHON = [
    (r"<[A-Z]\w+[ >]", "a repr"),
    (r"\b[A-Z][a-z]+[A-Z]\w*(Error|Exception|Timeout)\b", "a class name"),
    (r"\bNaN\b|\bNone\b|\bnan\b", "NaN or None"),
    (r"\b[a-z][a-z_]*=(True|False|None|report\.|\[|\{|')", "a keyword as Python writes it"),
    (r"busiest: None", "an empty busiest customer"),
]


def in_cli_terms(text):
    """Fail on the first thing of ``text`` only Python explains."""
    for pattern, what in PYTHON:
        found = re.search(pattern, text)
        assert found is None, f"{what}: {found.group(0)!r} in\n{text}"
    assert "Traceback" not in text, text
    return text


def last_line(text):
    return in_cli_terms(text).rstrip("\n").splitlines()[-1]


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    in_cli_terms(out)
    in_cli_terms(err)
    return code, out, err


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a failures file by default is written here
    good = pd.DataFrame({"customer_id": [f"c{n}" for n in range(12)], "event_name": "buy",
                         "amount": [n + 0.5 for n in range(12)]})  # fmt: skip
    good.to_csv(tmp_path / "good.csv", index=False)
    bad = good.copy()
    bad.loc[3, "customer_id"] = ""
    bad.to_csv(tmp_path / "bad.csv", index=False)
    empty = good.iloc[:0]
    empty.to_csv(tmp_path / "empty.csv", index=False)
    return tmp_path


# --- validate -----------------------------------------------------------------------------------


def test_validate_exit_paths(files, capsys):
    code, out, _ = run(capsys, "validate", files / "good.csv")
    assert (code, last_line(out)) == (0, "rows: 12  valid: 12  invalid: 0")
    code, out, _ = run(capsys, "validate", files / "bad.csv")
    assert (code, last_line(out)) == (
        1, "--failures PATH writes the invalid rows there, each with its columns and rules"
    )  # fmt: skip
    code, out, _ = run(capsys, "validate", files / "bad.csv", "--failures", files / "i.parquet")
    assert (code, last_line(out)) == (1, f"invalid rows written to {files / 'i.parquet'}")
    code, _, err = run(capsys, "validate", files / "good.csv", "--customer-id", "user")
    assert code == 2
    assert last_line(err).startswith("gb-backfill: error: --customer-id user: no such column")


# --- send and its dry run -----------------------------------------------------------------------


def send(files, emu, name, *more):
    return ["send", files / name, "--base-url", emu.base_url, "--api-key", emu.api_key,
            "--no-progress", "--failures", files / f"{name}.failures.parquet", *more]  # fmt: skip


def test_send_exit_paths(files, capsys):
    with Emulator() as emu:
        code, out, _ = run(capsys, *send(files, emu, "good.csv", "--ledger", files / "l"))
        assert code == 0
        assert re.fullmatch(
            r"12 rows: 12 sent, in [\d,.]+ (s|min) \(12 requests, [\d.]+ requests per second\)",
            out.splitlines()[0],
        ), out
        assert last_line(out) == "  HTTP answers: 200: 12"
        code, out, _ = run(capsys, *send(files, emu, "bad.csv"))
        assert code == 1
        assert out.startswith("12 rows: 11 sent, 1 invalid, in ")
        assert last_line(out) == f"  rows not sent are in {files / 'bad.csv.failures.parquet'}"
        code, _, err = run(capsys, *send(files, emu, "good.csv"), "--api-key", "wrong")
        assert code == 2, "Gameball rejected the key"
        assert "Gameball rejected the keys (HTTP 401" in err
        assert err.count("stopped") == 1, err
        # How to go on, said last: without a ledger, the failures file is the rest.
        assert last_line(err).endswith(
            f"rows not sent are in {files / 'good.csv.failures.parquet'}; without --ledger "
            "nothing knows which rows were sent: once that is fixed, send that file, not the "
            "input, for the rest"
        )
        _, _, kept = run(capsys, *send(files, emu, "bad.csv", "--ledger", files / "l2"),
                         "--api-key", "wrong")  # fmt: skip
        assert last_line(kept).endswith(
            f"rows not sent are in {files / 'bad.csv.failures.parquet'}; the ledger "
            f"{files / 'l2'} knows every row sent: once that is fixed, the same command again "
            "sends the rest"
        ), kept
        assert re.search(r"12 rows: 0 sent, \d+ failed, \d+ aborted;", err), err
    code, _, err = run(capsys, "send", files / "good.csv", "--base-url", "http://127.0.0.1:9",
                       "--api-key", "k", "--no-progress")  # fmt: skip
    assert code == 3, "nothing listens there"
    said = last_line(err)
    assert "could not connect (http://127.0.0.1:9)" in said, "the URL it tried"
    assert "Check --base-url" in said
    code, _, err = run(capsys, "send", files / "good.csv", "--no-progress")
    assert (code, last_line(err)) == (
        2, "gb-backfill: error: no API key: pass --api-key ... or set GAMEBALL_API_KEY"
    )  # fmt: skip


def test_a_send_without_base_url_says_it_goes_to_the_real_gameball(files, capsys):
    code, _, err = run(capsys, "send", files / "empty.csv", "--api-key", "k", "--no-progress")
    assert code == 0
    assert err.splitlines()[0].startswith(
        "gb-backfill: sending to the real Gameball, https://api.gameball.co (no --base-url given)"
    )


def test_dry_run_exit_paths(files, capsys):
    code, out, _ = run(capsys, "send", files / "good.csv", "--dry-run")
    assert code == 0
    assert out.splitlines()[0] == (
        "dry run, nothing was sent: 12 rows, 12 valid, 0 invalid; a send would send 12 rows in "
        "12 requests (events mode)"
    )
    assert last_line(out).startswith("  note: Gameball stamps events when it receives them")
    code, out, _ = run(capsys, "send", files / "bad.csv", "--dry-run")
    assert code == 1
    assert "  invalid rows, by their first broken rule (as gb_error_code):" in out
    code, out, _ = run(capsys, "send", files / "empty.csv", "--dry-run")
    assert code == 0
    assert "  customers: 0\n" in out, "no busiest customer when there is none"


def test_a_dry_run_with_the_api_key_is_held_to_the_keys_the_live_send_needs(
    files, capsys, monkeypatch
):
    """A trial's batch-mode dry run exited 0, and the live send was then refused for the
    secret key: a dry run made ready for a live send exits as that send would."""
    monkeypatch.delenv("GAMEBALL_SECRET_KEY", raising=False)
    monkeypatch.delenv("GAMEBALL_API_KEY", raising=False)
    batch = ("send", files / "good.csv", "--dry-run", "--mode", "batch")
    code, out, _ = run(capsys, *batch, "--api-key", "k")
    assert code == 2
    assert last_line(out) == (
        "a live send would be refused: --mode batch needs the secret key (Gameball's batch API "
        "requires it): pass --secret-key ... or set GAMEBALL_SECRET_KEY"
    )
    code, out, _ = run(capsys, *batch, "--api-key", "k", "--secret-key", "s")
    assert code == 0
    assert "live send would be refused" not in out
    code, out, _ = run(capsys, *batch)
    assert code == 0, "a dry run needs no key: one made without any is not held to them"
    assert "live send would be refused" not in out


# --- preview ------------------------------------------------------------------------------------


def test_preview_exit_paths(files, capsys):
    with Emulator(known_events=["buy"], existing_share=1.0) as emu:
        flags = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--no-progress"]
        code, out, err = run(capsys, "preview", files / "good.csv", *flags)
        assert (code, err) == (0, "")
        assert out.startswith("preview of 12 rows (12 valid): 12 of 12 sampled rows quoted")
        assert last_line(out).startswith("  note: A quote is what one event would award")
        code, _, err = run(capsys, "preview", files / "good.csv", *flags[:-3], "--api-key",
                           "wrong", "--no-progress")  # fmt: skip
        assert code == 2
        assert last_line(err).startswith("gb-backfill: the preview stopped: Gameball rejected")
    code, _, err = run(capsys, "preview", files / "good.csv", "--base-url", "http://127.0.0.1:9",
                       "--api-key", "k", "--no-progress")  # fmt: skip
    assert code == 3
    assert "could not connect (http://127.0.0.1:9)" in last_line(err)


def test_a_preview_without_base_url_says_it_asks_the_real_gameball(files, capsys):
    _, _, err = run(capsys, "preview", files / "empty.csv", "--api-key", "k", "--no-progress")
    assert err.splitlines()[0] == (
        "gb-backfill: asking the real Gameball, https://api.gameball.co (no --base-url given), "
        "for quotes; nothing is sent"
    )


# --- status and settle ---------------------------------------------------------------------------


def ledger_with_unknown(path):
    ledger = Ledger(path)
    for n, status in enumerate(["sent", "unknown"]):
        key = bytes([n]) * 16
        ledger.begin(key, f"c{n}", n)
        ledger.settle(key, status, retryable=False, attempts=1, http_status=None,
                      error_code=None, error_message=None)  # fmt: skip
    ledger.commit()
    ledger.close()
    return path


def test_status_and_settle_exit_paths(tmp_path, capsys):
    ledger = ledger_with_unknown(tmp_path / "l")
    code, out, _ = run(capsys, "status", "--ledger", ledger)
    assert (code, last_line(out)) == (
        1,
        "1 row is held as unknown until settled (gb-backfill settle)",
    )
    assert f"gb-backfill settle --ledger {ledger} --arrived" in out, "how to settle them"
    assert "  held as unknown: 1 (" in out
    assert (
        "  will be sent: 0 recorded (rows a stopped run never reached, aborted in its report, "
        "are not recorded: the next run sends them too)" in out
    ), "said beside the 0"
    code, out, _ = run(capsys, "settle", "--ledger", ledger, "--not-arrived", "--all")
    assert code == 0
    assert last_line(out) == (
        "settled 1 unknown row as not arrived: the next run with this ledger sends it once"
    )
    code, out, _ = run(capsys, "status", "--ledger", ledger)
    assert code == 0
    assert "  will be retried: 1 (" in out
    assert "keys Gameball refused (401, 403)" in out, "every way a row is retried is named"
    code, _, err = run(capsys, "status", "--ledger", tmp_path / "none")
    assert code == 2
    assert last_line(err).startswith("gb-backfill: error: ")
    code, _, err = run(capsys, "settle", "--ledger", ledger, "--arrived")
    assert (code, last_line(err)) == (
        2, "gb-backfill: error: name the rows to settle: --key GB_KEY, --keys-file PATH, or --all"
    )  # fmt: skip


# --- signals, the demo and the emulator, in a process of their own ------------------------------


def command(*args):
    return [sys.executable, "-m", "gb_backfill", *map(str, args)]


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
)
def test_a_stopped_send_says_so_in_words(tmp_path, sig, code, word):
    pd.DataFrame({"customer_id": [f"c{n}" for n in range(300)], "event_name": "buy"}).to_csv(
        tmp_path / "in.csv", index=False
    )
    with Emulator() as emu:
        process = subprocess.Popen(
            command("send", tmp_path / "in.csv", "--base-url", emu.base_url, "--api-key",
                    emu.api_key, "--rate", "30", "--failures", tmp_path / "f.parquet"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=sigint_as_in_a_terminal,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while len(emu.events()) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    said = last_line(err)
    assert re.fullmatch(
        rf"gb-backfill: {word}; 300 rows: [\d,]+ sent, (([\d,]+ unknown|[\d,]+ failed), )*"
        rf"[\d,]+ aborted; rows not sent are in {re.escape(str(tmp_path / 'f.parquet'))}; "
        "without --ledger nothing knows which rows were sent: send that file, not the input, "
        "for the rest",
        said,
    ), said
    in_cli_terms(out)


@pytest.mark.slow
def test_the_demo_ends_by_saying_why_it_exits_1(tmp_path):
    done = subprocess.run(command("demo", "--fast", "--rows", "200", "--no-progress"),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert last_line(done.stdout).startswith("exit code 1, as for any run that leaves rows unsent")
    in_cli_terms(done.stderr)


@pytest.mark.parametrize("ledger", [None, "demo.ledger"])
def test_the_demo_says_where_its_unknown_rows_are_listed(capsys, ledger):
    from gb_backfill._cli.demo import _tell

    args = argparse.Namespace(no_preview=True, ledger=ledger, failures="demo.failures.parquet")
    _tell(args, accepted=10, points=50, lost=2, code=1)
    said = capsys.readouterr().out
    assert "lists them as sent" not in said
    if ledger:
        assert "`gb-backfill status --ledger demo.ledger` lists them with what was sent" in said
    else:
        assert "With --ledger PATH the demo keeps a ledger" in said
    in_cli_terms(said)


def test_the_demos_refusals_name_its_own_flags(tmp_path, capsys, monkeypatch):
    """A demo's failures file of another input is refused naming --failures, not the keyword
    (a trial was told failures_path=PATH on the command line)."""
    other = tmp_path / "taken.parquet"
    df = pd.DataFrame({"customerId": ["c1", ""], "eventName": "e"})
    (tmp_path / "x.csv").write_text(df.to_csv(index=False))
    main(["validate", str(tmp_path / "x.csv"), "--failures", str(other)])
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    code = main(["demo", "--fast", "--rows", "20", "--no-preview", "--no-progress",
                 "--failures", str(other)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "choose another path with --failures PATH" in err, err
    in_cli_terms(err)


def test_the_emulator_says_it_stopped(tmp_path):
    process = subprocess.Popen(command("emulator", "--port", "0"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline().startswith("Gameball emulator on http://")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert (last_line(out), err) == ("the emulator stopped", "")


def test_a_value_that_does_not_convert_names_each_fix_in_its_face(tmp_path):
    """A trial read dtype={'amount': 'text'} on the command line, unlabelled, and no word of
    --na-values, which fixes an 'n/a'."""
    path = tmp_path / "in.csv"
    path.write_text("customerId,eventName,amount\nc1,e,12.5\nc2,e,n/a\n")
    failures = tmp_path / "f.parquet"
    assert (
        main(["validate", str(path), "--dtype", "amount=float", "--failures", str(failures)]) == 1
    )
    [message] = pd.read_parquet(failures)["gb_error_message"]
    assert "name it as missing (--na-values; in Python na_values=)" in message, message
    assert "(--dtype amount=text; in Python dtype={'amount': 'text'})" in message, message
    assert main(["validate", str(path), "--dtype", "amount=float", "--na-values", "n/a"]) == 0
