"""The command line: summaries, exit codes and the failures file."""

import pandas as pd
import pytest

import gb_backfill
from gb_backfill._cli import main


@pytest.fixture
def events_csv(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user": ["a", "", "c", "d"],
            "kind": ["purchase", "purchase", None, "review"],
            "amount": ["1.5", "2", "inf", "4"],
            "email": ["a@b.co", None, None, "bad"],
        }
    ).to_csv(path, index=False)
    return path


def test_validate_all_valid_exits_0(tmp_path, capsys):
    path = tmp_path / "ok.parquet"
    pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}).to_parquet(path)
    assert main(["validate", str(path)]) == 0
    assert "rows: 1  valid: 1  invalid: 0" in capsys.readouterr().out


def test_validate_writes_invalid_rows_with_their_columns(events_csv, tmp_path, capsys):
    failures = tmp_path / "out" / "failures.parquet"
    code = main(
        [
            "validate",
            str(events_csv),
            "--customer-id",
            "user",
            "--event-name",
            "kind",
            "--failures",
            str(failures),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "rows: 4  valid: 1  invalid: 3" in out
    assert "customer_id_missing: 1" in out
    written = pd.read_parquet(failures)
    assert written["gb_row"].tolist() == [1, 2, 3]
    assert written["gb_status"].tolist() == ["invalid"] * 3
    assert written["gb_error_code"].tolist() == [
        "customer_id_missing",
        "event_name_missing",
        "email_malformed",
    ]
    assert "metadata 'amount' must be a finite number" in written["gb_error_message"][1]
    assert {"user", "kind", "amount", "email"} <= set(written.columns)


def test_failures_file_validates_again_without_the_gb_columns_as_metadata(events_csv, tmp_path):
    failures = tmp_path / "failures.parquet"
    main(
        [
            "validate",
            str(events_csv),
            "--customer-id",
            "user",
            "--event",
            "x",
            "--failures",
            str(failures),
        ]
    )
    df = pd.read_parquet(failures)
    fixed = df.assign(user="fixed", email=None, amount="1")
    assert fixed.gameball.validate(customer_id="user", event="x").ok


def test_missing_column_is_usage_error(events_csv, capsys):
    assert main(["validate", str(events_csv), "--customer-id", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--customer-id nope: no such column" in err
    assert "user, kind, amount, email" in err
    assert err.count("\n") == 1, "one line"


def test_missing_file_is_usage_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_flags_exit_2():
    with pytest.raises(SystemExit) as caught:
        main(["validate", "x.csv", "--event", "a", "--event-name", "b"])
    assert caught.value.code == 2


# --- a CLI a newcomer can drive ---------------------------------------------------------------


def test_version(capsys):
    from gb_backfill import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"gb-backfill {__version__}"


def test_help_names_every_default_and_that_send_targets_the_real_api(capsys):
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: https://api.gameball.co)" in text
    for default in ("(default: 100)", "(default: 1200)", "(default: 32)", "(default: events)"):
        assert default in text
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    emulator = " ".join(capsys.readouterr().out.split())
    assert "added to every answer (default: 0.0)" in emulator, "its flags are documented"


def test_every_flag_of_every_command_says_what_it_does():
    import argparse

    from gb_backfill._cli import build_parser

    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    silent = [
        f"{name} {action.option_strings[0]}"
        for name, command in commands.choices.items()
        for action in command._actions
        if action.option_strings and action.help is not argparse.SUPPRESS
        if not (action.help or "").strip() or action.help.startswith("(default")
    ]
    assert silent == []


def test_commands_are_listed_in_the_order_of_the_work(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    order = [out.index(f"\n    {name} ") for name in ("demo", "validate", "send", "status")]
    assert order == sorted(order)


@pytest.mark.slow
def test_without_a_terminal_a_summary_line_comes_every_few_seconds(tmp_path):
    import subprocess
    import sys

    from gb_backfill import Emulator, RateLimits

    source = tmp_path / "in.csv"
    pd.DataFrame({"customerId": [f"c{n}" for n in range(120)], "eventName": "e"}).to_csv(
        source, index=False
    )
    with Emulator(limits=RateLimits.unlimited()) as emu:
        done = subprocess.run(
            [sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url",
             emu.base_url, "--rate", "20", "--quota", "0", "--failures", str(tmp_path / "f.pq")],
            env={"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("gameball: ")]
    assert lines, done.stderr
    assert " of 120 rows (" in lines[0]
    assert "sent=" in lines[0]
    assert "\r" not in done.stderr, "no progress bar in a log"


def test_one_exit_code_rule_for_every_command_stated_in_help_and_readme(tmp_path, capsys):
    from pathlib import Path

    from gb_backfill._cli import EXIT_CODES

    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    pd.DataFrame({"customerId": ["a", "b"], "eventName": "e"}).to_csv(good, index=False)
    pd.DataFrame({"customerId": ["a", ""], "eventName": "e"}).to_csv(bad, index=False)
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(bad)]) == 1
    # A dry run needs no key, and follows the same rule: invalid rows make it 1.
    assert main(["send", str(good), "--dry-run"]) == 0
    assert main(["send", str(bad), "--dry-run"]) == 1
    assert main(["send", str(bad), "--dry-run", "--mode", "batch"]) == 1
    capsys.readouterr()
    for command in ([], ["send"], ["validate"], ["demo"], ["status"], ["emulator"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert "0 everything asked was done, with nothing invalid or unsent" in shown, command
        assert "143 terminated (SIGTERM)" in shown
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for code, meaning in (("0", "everything asked was done"), ("1", "it finished with rows")):
        assert f"| {code} | {meaning}" in readme
    assert "130 interrupted" in EXIT_CODES


def test_a_dry_run_needs_no_key(tmp_path):
    df = pd.DataFrame({"customerId": ["a", "b"], "eventName": "e"})
    plan = gb_backfill.plan(df, mode="batch")
    assert plan.valid == 2


def test_the_default_failures_file_keeps_the_inputs_full_name_and_never_overwrites_anothers(
    tmp_path, capsys, monkeypatch
):
    from gb_backfill import read_failures

    monkeypatch.chdir(tmp_path)
    df = pd.DataFrame({"customerId": ["a", ""], "eventName": "e"})
    df.to_csv("export.csv", index=False)
    df.to_parquet("export.parquet")
    assert main(["validate", "export.csv", "--failures", "export.csv.failures.parquet"]) == 1
    written = (tmp_path / "export.csv.failures.parquet").read_bytes()
    code = main(["validate", "export.parquet", "--failures", "export.csv.failures.parquet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "holds the failures of another input" in err
    assert (tmp_path / "export.csv.failures.parquet").read_bytes() == written, "untouched"
    # The same input again may replace its own failures.
    assert main(["validate", "export.csv", "--failures", "export.csv.failures.parquet"]) == 1
    assert len(read_failures("export.csv.failures.parquet")) == 1
    # send's default names both inputs apart (nothing listens at port 9: every row fails).
    for name in ("export.csv", "export.parquet"):
        nowhere = ["--base-url", "http://127.0.0.1:9", "--attempts", "1", "--no-progress"]
        assert main(["send", name, "--api-key", "k", *nowhere]) == 1
        assert len(read_failures(f"{name}.failures.parquet")) == 2
    from gb_backfill._cli.send import default_failures_path

    assert default_failures_path("export.csv") == "export.csv.failures.parquet"
    assert default_failures_path("exports/*.csv") == "_.csv.failures.parquet"
    assert default_failures_path("exports/") == "exports.failures.parquet"


def test_status_lists_every_status_so_its_lines_add_up(tmp_path, capsys):
    import re

    from gb_backfill._store.ledger import Ledger

    ledger = Ledger(tmp_path / "l")
    for n, status in enumerate(["sent", "failed", "unknown", "aborted", "aborted"]):
        key = bytes([n]) * 16
        ledger.begin(key, f"c{n}", n)
        ledger.settle(
            key, status, retryable=True, attempts=1, http_status=None, error_code=None,
            error_message=None,
        )  # fmt: skip
    ledger.begin(b"x" * 16, "c9", 9)  # in flight, as a crash leaves it
    ledger.commit()
    ledger.close()
    assert main(["status", "--ledger", str(tmp_path / "l")]) == 1, "rows are held as unknown"
    out = capsys.readouterr().out
    lines = dict(re.findall(r"^  ([a-z ]+): ([\d,]+)\b", out, flags=re.MULTILINE))
    assert lines == {
        "sent": "1", "will be sent": "2", "will be retried": "1", "failed for good": "0",
        "held as unknown": "2", "invalid": "0",
    }  # fmt: skip
    assert (
        "6 rows recorded by the runs that used it, each as the last run to reach it left it" in out
    ), "not the last run's alone"
    assert "1 of them in flight when a run was killed" in out
    assert out.splitlines()[-1] == "2 rows are held as unknown until settled (gb-backfill settle)"
    assert "NaN" not in out, "empty cells, not Python's words"
    assert "None" not in out, "empty cells, not Python's words"
