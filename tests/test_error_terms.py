"""Every error in the caller's own terms: the Python API names its keywords, the CLI its flags.

Each case makes the same mistake through both faces and checks what each one says.
"""

import re
from dataclasses import fields

import httpx
import pandas as pd
import pytest

from gb_backfill import ConfigError, send, send_path, validate
from gb_backfill._cli import main
from gb_backfill._options import PlanPathOptions, PreviewPathOptions, ValidatePathOptions

#: Every keyword of the Python API that a command has a flag for.
KEYWORDS = {
    option.name
    for declaration in (PlanPathOptions, PreviewPathOptions, ValidatePathOptions)
    for option in fields(declaration)
}


@pytest.fixture
def files(tmp_path):
    df = pd.DataFrame({"customerId": ["a", "b"], "eventName": "e", "amount": [1, 2]})
    df.to_csv(tmp_path / "in.csv", index=False)
    df.drop(columns="eventName").to_csv(tmp_path / "no_event.csv", index=False)
    (tmp_path / "semi.csv").write_text("member_no;action;ts\n1;buy;2024\n")
    return tmp_path


def frame(files, name="in.csv"):
    return pd.read_csv(files / name, dtype=str)


K = {"api_key": "k"}
CASES = {
    # name: (python call, CLI arguments, what Python says, what the CLI says)
    "missing column": (
        lambda f: validate(frame(f), customer_id="nope"),
        ["validate", "{in}", "--customer-id", "nope"],
        "customer_id='nope'",
        "--customer-id nope",
    ),
    "no event name": (
        lambda f: validate(frame(f, "no_event.csv")),
        ["validate", "{no_event}"],
        "pass event_name=COL",
        "pass --event-name COL",
    ),
    "no API key": (
        lambda f: send(frame(f)),
        ["send", "{in}"],
        "pass api_key=...",
        "pass --api-key ...",
    ),
    "batch needs the secret key": (
        lambda f: send(frame(f), mode="batch", **K),
        ["send", "{in}", "--api-key", "k", "--mode", "batch"],
        "secret_key=...",
        "--secret-key ...",
    ),
    "v4.1 needs the secret key": (
        lambda f: send(frame(f), api_version="4.1", **K),
        ["send", "{in}", "--api-key", "k", "--api-version", "4.1"],
        "secret_key=...",
        "--secret-key ...",
    ),
    "a timeout of 0": (
        lambda f: send(frame(f), timeout=0, **K),
        ["send", "{in}", "--api-key", "k", "--timeout", "0"],
        "timeout= must be",
        "--timeout must be",
    ),
    "no concurrency": (
        lambda f: send(frame(f), concurrency=0, **K),
        ["send", "{in}", "--api-key", "k", "--concurrency", "0"],
        "concurrency= must be",
        "--concurrency must be",
    ),
    "no batch rows": (
        lambda f: send(frame(f), batch_rows=0, **K),
        ["send", "{in}", "--api-key", "k", "--batch-rows", "0"],
        "batch_rows= must be",
        "--batch-rows must be",
    ),
    "a job timeout of 0": (
        lambda f: send(frame(f), job_timeout=0, **K),
        ["send", "{in}", "--api-key", "k", "--job-timeout", "0"],
        "job_timeout= must be",
        "--job-timeout must be",
    ),
    "a key with a space": (
        lambda f: send(frame(f), api_key="a b"),
        ["send", "{in}", "--api-key", "a b"],
        "where you set api_key=",
        "where you set --api-key",
    ),
    "plain http to a remote host": (
        lambda f: send(frame(f), base_url="http://example.com", **K),
        ["send", "{in}", "--api-key", "k", "--base-url", "http://example.com"],
        "allow_insecure_http=True",
        "--allow-insecure-http",
    ),
    "not a URL": (
        lambda f: send(frame(f), base_url="ftp://example.com", **K),
        ["send", "{in}", "--api-key", "k", "--base-url", "ftp://example.com"],
        "base_url= must be",
        "--base-url must be",
    ),
    "row key names a missing column": (
        lambda f: send(frame(f), row_key=["nope"], **K),
        ["send", "{in}", "--api-key", "k", "--row-key", "nope"],
        "row_key=['nope'] names missing",
        "--row-key nope names missing",
    ),
    "unwritable failures file": (
        lambda f: send(frame(f), failures_path="/proc/nope/f.parquet", **K),
        ["send", "{in}", "--api-key", "k", "--failures", "/proc/nope/f.parquet"],
        "failures_path=PATH",
        "--failures PATH",
    ),
    "unknown encoding": (
        lambda f: send_path(f / "in.csv", encoding="nope", **K),
        ["send", "{in}", "--api-key", "k", "--encoding", "nope"],
        "unknown encoding 'nope'",
        "unknown encoding 'nope'",
    ),
    "missing metadata column": (
        lambda f: validate(frame(f), metadata=["nope"]),
        ["validate", "{in}", "--metadata", "nope"],
        "metadata='nope'",
        "--metadata nope",
    ),
    "an event name with whitespace": (
        lambda f: validate(frame(f), event=" x"),
        ["validate", "{in}", "--event", " x"],
        "event=' x'",
        "--event ' x'",
    ),
    "the wrong separator": (
        lambda f: send_path(f / "semi.csv", **K),
        ["send", "{semi}", "--api-key", "k"],
        "sep=",
        "--sep",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_error_in_the_terms_of_each_face(files, capsys, case):
    call, arguments, python_says, cli_says = CASES[case]
    with pytest.raises(ConfigError) as raised:
        call(files)
    assert python_says in str(raised.value)
    paths = {"in": files / "in.csv", "no_event": files / "no_event.csv", "semi": files / "semi.csv"}
    arguments = [a.format(**paths) for a in arguments]
    if arguments[0] == "send" and "--base-url" not in arguments:
        arguments += ["--base-url", "http://127.0.0.1:9"]  # not the real API: no live warning
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert cli_says in err
    assert err.count("\n") == 1, "one line"
    python_forms = [f"{word}=" for word in KEYWORDS if re.search(rf"\b{word}=", err)]
    assert not python_forms, f"the CLI named Python keywords: {python_forms}"


def test_an_error_from_the_sync_face_carries_no_chained_loop_error():
    """``send(df, ledgr=...)`` outside a loop: the ConfigError alone, not "no running event
    loop" chained before it in the traceback."""
    with pytest.raises(ConfigError) as raised:
        send(pd.DataFrame({"customerId": ["a"], "eventName": "e"}), ledgr="x")
    assert raised.value.__context__ is None


def test_what_to_do_with_unknown_rows_is_said_in_the_callers_terms(tmp_path, capsys):
    """The Python API's summaries name Python calls; ``gb-backfill status`` names commands."""
    from gb_backfill import ledger_status, plan
    from tests.conftest import MockGameball, send_fast, send_options
    from tests.test_cli_last_lines import ledger_with_unknown

    ledger = ledger_with_unknown(tmp_path / "l")
    said = ledger_status(ledger).summary()
    assert "gb_backfill.settle(ledger, keys=[...], arrived=True)" in said
    assert "--" not in said, said
    assert "gb-backfill " not in said, said
    assert main(["status", "--ledger", str(ledger)]) == 1
    assert f"gb-backfill settle --ledger {ledger} --arrived" in capsys.readouterr().out

    # A dry run over a row an earlier run left unknown (its request timed out).
    def timed_out(request, body, n):
        raise httpx.ReadTimeout("no answer", request=request)

    rows = pd.DataFrame({"customerId": ["c9"], "eventName": ["e"], "city": ["São Paulo"]})
    other = tmp_path / "other"
    sent = send_fast(rows, **send_options(MockGameball(timed_out), ledger=other, progress=False))
    assert sent.unknown == 1
    dry = plan(rows, ledger=other)
    assert dry.unknown == 1
    assert "gb_backfill.ledger_status(ledger).unknown lists it" in dry.summary()
    # The row to look up is shown as it was written, not as JSON escapes.
    assert '"city": "São Paulo"' in ledger_status(other).summary()
