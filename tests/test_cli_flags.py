"""The command line's flags are made from the options' declaration (issue 27, items 2 and 3), and
an error's options are named as flags through argparse's ``dest``, not by rewriting text."""

import re
from dataclasses import fields
from pathlib import Path

import pytest

from gb_backfill import ConfigError, RateLimits, RetryPolicy
from gb_backfill._cli import build_parser, main
from gb_backfill._cli.flags import keywords
from gb_backfill._config import BATCH_LIMITS, ORDERS_LIMITS, PREVIEW_LIMITS
from gb_backfill._options import (
    PlanPathOptions,
    PreviewPathOptions,
    ValidatePathOptions,
    about_of,
)

CLI = Path(__file__).resolve().parent.parent / "gb_backfill" / "_cli"
COMMANDS = {"send": PlanPathOptions, "preview": PreviewPathOptions, "validate": ValidatePathOptions}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_declared_option_is_a_flag_whose_default_is_the_declarations(command):
    args = build_parser().parse_args([command, "in.csv"])
    given = keywords(args, args.flags)
    declared = [o for o in fields(COMMANDS[command]) if about_of(o).group]
    assert {o.name for o in declared} == set(given), "every option with a flag, no other"
    composites = {"limits": RateLimits(), "retry": RetryPolicy(attempts=RetryPolicy().attempts),
                  "batch_limits": BATCH_LIMITS, "preview_limits": PREVIEW_LIMITS,
                  "order_limits": ORDERS_LIMITS}  # fmt: skip
    for option in declared:
        expected = composites.get(option.name, option.default)
        assert given[option.name] == expected, option.name


def test_the_flags_text_becomes_the_options_value_through_the_declaration(capsys):
    args = build_parser().parse_args(
        ["send", "in.csv", "--rate", "7", "--quota", "70", "--quota-window", "10", "--batch-rate",
         "3", "--attempts", "2", "--metadata", "a, b", "--dtype", "amount=float", "--dtype",
         "at=datetime", "--any-order", "--no-progress", "--failures", "f.pq", "--write-bodies",
         "b.jsonl", "--mode", "batch", "--timeout", "5"]
    )  # fmt: skip
    given = keywords(args, args.flags)
    assert given["limits"] == RateLimits(per_second=7, per_window=70, window=10)
    assert given["batch_limits"] == RateLimits(per_second=3, per_window=360, window=10)
    assert given["retry"] == RetryPolicy(attempts=2)
    assert given["metadata"] == ["a", "b"]
    assert given["dtype"] == {"amount": "float", "at": "datetime"}
    assert (given["keep_order"], given["progress"]) == (False, False)
    assert (given["failures_path"], given["bodies_path"]) == ("f.pq", "b.jsonl")
    assert (given["mode"], given["timeout"]) == ("batch", 5.0)
    with pytest.raises(SystemExit):
        main(["send", "in.csv", "--mode", "bulk"])  # a Literal's values are the choices
    assert "invalid choice: 'bulk'" in capsys.readouterr().err


def test_an_errors_option_is_named_as_its_flag_by_dest():
    args = build_parser().parse_args(["send", "in.csv"])
    terms = args.flags.terms
    said = {
        "{timeout=} must be above 0": "--timeout must be above 0",
        "choose {failures_path=PATH}": "choose --failures PATH",
        "with {bodies_path=PATH}": "with --write-bodies PATH",
        "{limits=} are counts": "--rate/--quota/--quota-window are counts",
        "{retry=RetryPolicy(attempts=6)}": "--attempts",
        "pass {allow_insecure_http=True}": "pass --allow-insecure-http",
        "{keep_order=False} or {progress=False}": "--any-order or --no-progress",
        "{event=*} has whitespace": "--event ' x' has whitespace",
        "{client=} is yours": "client= is yours",  # no flag: the keyword, as it is
    }
    for template, cli in said.items():
        error = ConfigError(template, option="x", event=" x")
        assert error.in_terms(terms) == cli
        assert "--" not in str(error), "the Python API says keywords"


def test_the_command_line_reads_no_private_argparse_attribute_and_rewrites_no_message():
    private = re.compile(r"\._(actions|group_actions|subparsers|option_string_actions)\b")
    found = []
    for path in sorted(CLI.glob("*.py")):
        text = path.read_text()
        found += [f"{path.name}: {m.group(0)}" for m in private.finditer(text)]
        assert "cli_terms" not in text
        lines = len(text.splitlines())
        assert lines <= 300, f"{path.name} has {lines} lines"
    assert found == []
    modules = {path.stem for path in CLI.glob("*.py")}
    assert {"demo", "validate", "preview", "send", "status", "settle", "emulator"} <= modules


def test_the_demo_finds_its_sample_in_the_source_tree_and_installed(tmp_path):
    """``gb-backfill = "gb_backfill._cli:main"``, and the wheel's copy of the sample inside the
    package (pyproject's force-include) when there is no source tree around it."""
    import shutil
    import subprocess
    import sys

    from gb_backfill._demo import sample_data_path

    root = CLI.parent.parent
    assert sample_data_path() == root / "sample_data" / "events.parquet"
    installed = tmp_path / "site-packages" / "gb_backfill"
    shutil.copytree(CLI.parent, installed, ignore=shutil.ignore_patterns("__pycache__"))
    (installed / "sample_data").mkdir()
    for name in ("events.parquet", "campaigns.json"):
        shutil.copy(root / "sample_data" / name, installed / "sample_data" / name)
    code = "import gb_backfill._cli, gb_backfill._demo as d; print(d.sample_data_path())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
        env={"PYTHONPATH": str(installed.parent), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.stdout.strip() == str(installed / "sample_data" / "events.parquet")


def test_status_and_settle_name_their_ledger_flag(tmp_path, capsys):
    for command in (["status"], ["settle", "--arrived", "--all"]):
        assert main([*command, "--ledger", str(tmp_path / "none")]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'none'}: no such ledger (--ledger)" in err
        assert "ledger=" not in err


@pytest.mark.parametrize(
    ("argv", "flag", "meant"),
    [
        (["send", "--customer_id", "cid", "in.csv"], "--customer_id", "--customer-id?"),
        (["send", "in.csv", "--event-col", "e"], "--event-col", "--event or --event-name?"),
        (["status", "--ledger", "x", "--json_out", "y"], "--json_out", "--json?"),
        (["validate", "in.csv", "--seperator", ";"], "--seperator", "--sep?"),
    ],
)
def test_a_mistyped_flag_is_refused_with_its_commands_usage_and_the_flag_meant(
    capsys, argv, flag, meant
):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.startswith(f"usage: gb-backfill {argv[0]} "), "the command's usage, not the top's"
    assert f"gb-backfill {argv[0]}: error: no flag {flag}; did you mean {meant}" in err


def test_an_argument_that_is_no_flag_is_refused_as_argparse_would(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["send", "in.csv", "extra.csv"])
    assert stopped.value.code == 2
    assert "gb-backfill send: error: unrecognized arguments: extra.csv" in capsys.readouterr().err


def test_a_mistyped_command_names_the_command_meant(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["sned", "in.csv"])
    assert stopped.value.code == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == "gb-backfill: error: no command 'sned'; did you mean send? (--help lists all)"


def test_a_flag_like_no_other_gets_no_suggestion(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--bogus"])  # "--bogus" and "--rows" share only their dashes
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gb-backfill demo: error: unrecognized arguments: --bogus (--help lists the flags)"
    )


def test_a_flag_is_written_whole(capsys):
    """'--thousand .' was taken for --thousands without a word (argparse's abbreviations)."""
    with pytest.raises(SystemExit):
        main(["validate", "in.csv", "--thousand", "."])
    assert "no flag --thousand; did you mean --thousands?" in capsys.readouterr().err
