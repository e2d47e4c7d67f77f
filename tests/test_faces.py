"""The public functions' faces (issue 27, items 2 and 6; issue 30, item 8): keywords declared once
and checked the same way by every function, help() that shows them, the dry run as plan(), and
one typed error for a stopped run."""

import ast
import asyncio
import inspect
import pydoc
from dataclasses import fields
from pathlib import Path

import httpx
import pandas as pd
import pytest

import gb_backfill as gb
from gb_backfill import ConfigError
from gb_backfill._options import PlanPathOptions, SendOptions
from tests.conftest import API_KEY, FAST_RETRY

PACKAGE = Path(gb.__file__).parent


@pytest.fixture
def frame():
    return pd.DataFrame({"customerId": ["a", "b"], "eventName": "e", "amount": [1, 2]})


@pytest.fixture
def files(tmp_path, frame):
    frame.to_csv(tmp_path / "in.csv", index=False)
    return tmp_path


def every_public_call(frame, files):
    """(name, a call with the given keywords) for every public function that takes keywords."""
    path = files / "in.csv"
    ledger = files / "l"
    gb.send(
        frame,
        api_key="k",
        ledger=ledger,
        progress=False,
        client=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))),
    )
    return {
        "validate": lambda **kw: gb.validate(frame, **kw),
        "payloads": lambda **kw: gb.payloads(frame, **kw),
        "validate_path": lambda **kw: gb.validate_path(path, **kw),
        "send": lambda **kw: gb.send(frame, **kw),
        "send_path": lambda **kw: gb.send_path(path, **kw),
        "asend": lambda **kw: asyncio.run(gb.asend(frame, **kw)),
        "asend_path": lambda **kw: asyncio.run(gb.asend_path(path, **kw)),
        "plan": lambda **kw: gb.plan(frame, **kw),
        "plan_path": lambda **kw: gb.plan_path(path, **kw),
        "aplan": lambda **kw: asyncio.run(gb.aplan(frame, **kw)),
        "aplan_path": lambda **kw: asyncio.run(gb.aplan_path(path, **kw)),
        "preview": lambda **kw: gb.preview(frame, **kw),
        "preview_path": lambda **kw: gb.preview_path(path, **kw),
        "apreview": lambda **kw: asyncio.run(gb.apreview(frame, **kw)),
        "apreview_path": lambda **kw: asyncio.run(gb.apreview_path(path, **kw)),
        "settle": lambda **kw: gb.settle(ledger, arrived=True, keys="all", **kw),
        "ledger_status": lambda **kw: gb.ledger_status(ledger, **kw),
        "df.gameball.validate": lambda **kw: frame.gameball.validate(**kw),
        "df.gameball.payloads": lambda **kw: frame.gameball.payloads(**kw),
        "df.gameball.send": lambda **kw: frame.gameball.send(**kw),
        "df.gameball.plan": lambda **kw: frame.gameball.plan(**kw),
        "df.gameball.preview": lambda **kw: frame.gameball.preview(**kw),
        "df.gameball.asend": lambda **kw: asyncio.run(frame.gameball.asend(**kw)),
        "df.gameball.aplan": lambda **kw: asyncio.run(frame.gameball.aplan(**kw)),
        "df.gameball.apreview": lambda **kw: asyncio.run(frame.gameball.apreview(**kw)),
    }


def test_every_public_function_refuses_an_unknown_keyword_with_one_config_error(frame, files):
    calls = every_public_call(frame, files)
    assert len(calls) == 25
    misspellings = {"settle": ("arived", "arrived"), "ledger_status": ("all", None)}
    for name, call in calls.items():
        function = name.rsplit(".", 1)[-1]
        # The mapping keywords belong to every function that reads rows.
        misspelt, nearest = misspellings.get(function, ("customr_id", "customer_id"))
        with pytest.raises(ConfigError) as raised:
            call(**{misspelt: "x"})
        said = str(raised.value)
        assert said.startswith(f"{function}() got an unknown keyword {misspelt}="), said
        if nearest:
            assert said.endswith(f"did you mean {nearest}=?"), said
        assert raised.value.option == misspelt
        assert "\n" not in said


def test_a_misspelt_keyword_names_the_nearest_option_of_its_own_function(frame):
    with pytest.raises(ConfigError, match=r"did you mean api_key=\?"):
        gb.send(frame, api_kye="k")
    with pytest.raises(ConfigError, match=r"did you mean sample=\?"):
        gb.preview(frame, sampel=3)
    with pytest.raises(ConfigError, match="the keywords are customer_id, email, event, "):
        gb.validate(frame, api_key="k")  # validate takes the mapping only


def test_send_refuses_dry_run_naming_plan_and_plan_takes_sends_keywords(frame, files):
    calls = (
        lambda: gb.send(frame, dry_run=True),
        lambda: gb.send_path(files / "in.csv", dry_run=True),
        lambda: asyncio.run(gb.asend(frame, dry_run=True)),
    )
    for call in calls:
        with pytest.raises(ConfigError) as raised:
            call()
        assert "takes no dry_run=: the dry run is its own function, plan()" in str(raised.value)
    with pytest.raises(ConfigError, match=r"takes no bodies_path=.*plan\(\.\.\., bodies_path"):
        gb.send(frame, bodies_path=files / "b.jsonl")
    sending = {option.name for option in fields(SendOptions)}
    planning = set(inspect.signature(gb.plan).parameters) - {"df"}
    assert sending <= planning, "a send's keywords move to plan() unchanged"
    assert planning - sending == {"bodies_path"}
    planned = gb.plan(frame, mode="batch", ledger=files / "none.ledger", failures_path="x")
    assert isinstance(planned, gb.SendPlan)
    assert planned.valid == 2


def test_help_shows_the_declared_keywords_and_no_module_assigns_a_signature(frame):
    shown = pydoc.render_doc(gb.send_path, renderer=pydoc.plaintext)
    for keyword in ("api_key: str | None = None", "dtype:", "limits:", "customer_id:"):
        assert keyword in shown, keyword
    shown = pydoc.render_doc(frame.gameball.preview, renderer=pydoc.plaintext)
    assert "sample: int = 360" in shown
    assert set(inspect.signature(gb.plan_path).parameters) == {
        "path",
        *(option.name for option in fields(PlanPathOptions)),
    }
    patched = [
        f"{path.name}: {ast.unparse(target)}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.parse(path.read_text()).body  # module level only
        for target in (node.targets if isinstance(node, ast.Assign) else [])
        if isinstance(target, ast.Attribute) and target.attr == "__signature__"
    ]
    assert patched == []


def test_a_value_is_checked_by_its_options_check_in_the_callers_terms(frame):
    cases = {
        "concurrency": ("8", "concurrency= must be a whole number of at least 1, not '8'"),
        "reserve": (1.5, "reserve= must be a share from 0 to below 1"),
        "sample": (0, "sample= is a number of rows to quote, at least 1, e.g. sample=360"),
        "mode": ("bulk", "mode= must be 'events' or 'batch', not 'bulk'"),
        "row_key": ("order_id", "row_key= takes a list of columns, e.g. row_key=['order_id']"),
    }
    for option, (value, message) in cases.items():
        face = gb.preview if option == "sample" else gb.send
        with pytest.raises(ConfigError) as raised:
            face(frame, api_key="k", **{option: value})
        assert str(raised.value).startswith(message), raised.value
        assert raised.value.option == option


# --- one stop, typed ---------------------------------------------------------------------------


def slow_gameball():
    async def answer(request):
        await asyncio.sleep(0.01)
        return httpx.Response(200, json={})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def test_a_cancelled_send_raises_interrupted_from_its_cancellation_with_its_typed_report(tmp_path):
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(400)], "eventName": "e"})

    async def cancelled():
        task = asyncio.create_task(
            gb.asend(df, api_key=API_KEY, client=slow_gameball(), progress=False, concurrency=4,
                     retry=FAST_RETRY, failures_path=tmp_path / "f.parquet")
        )  # fmt: skip
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(gb.Interrupted) as raised:
            await task
        return raised.value

    stopped = asyncio.run(cancelled())
    assert isinstance(stopped, gb.RunStopped)
    assert isinstance(stopped, gb.GameballError)
    assert isinstance(stopped.__cause__, asyncio.CancelledError), "raised from its cause"
    assert isinstance(stopped.report, gb.SendReport)
    assert stopped.report.interrupted
    assert 0 < stopped.report.sent < 400
    assert stopped.report.sent + stopped.report.aborted + stopped.report.unknown == 400
    assert not hasattr(stopped.__cause__, "report"), "nothing patched onto the CancelledError"
    line = stopped.summary()
    assert line.startswith("gb-backfill: the send was interrupted: ")
    assert f"{stopped.report.sent:,} sent" in line
    assert f"rows not sent are in {tmp_path / 'f.parquet'}" in line
    assert "\n" not in line
    # A script's traceback ends with the message: it says as much, of how many rows (a trial's
    # said only 'the run was interrupted').
    assert str(stopped) == line.removeprefix("gb-backfill: ")
    assert " of 400 rows; " in line, line


def test_the_errors_that_stop_a_run_are_one_documented_type():
    for kind in (gb.Interrupted, gb.AuthenticationError, gb.RepeatedFailureError):
        assert issubclass(kind, gb.RunStopped)
    assert inspect.get_annotations(gb.RunStopped.__init__)["report"] == "StoppedReport"
    assert "__cause__" in (gb.RunStopped.__doc__ or "")


SCRIPT = """
import sys
import pandas as pd
import gb_backfill as gb

base_url, api_key, failures = sys.argv[1:]
df = pd.DataFrame({"customerId": [f"c{n}" for n in range(3000)], "eventName": "e"})
gb.send(df, base_url=base_url, api_key=api_key, failures_path=failures, progress=False,
        limits=gb.RateLimits(per_second=100, per_window=0))
print("not reached")
"""


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_ctrl_c_in_a_plain_script_prints_one_line_then_the_interrupt_goes_on(tmp_path):
    """Issue 27, item 6: a real SIGINT during send(), in a script of the user's own."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import sigint_as_in_a_terminal

    script, failures = tmp_path / "backfill.py", tmp_path / "failed.parquet"
    script.write_text(SCRIPT)
    with gb.Emulator(limits=gb.RateLimits.unlimited()) as emu:
        process = subprocess.Popen(
            [sys.executable, str(script), emu.base_url, emu.api_key, str(failures)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=sigint_as_in_a_terminal,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(emu.events()) < 50:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the send never started"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        sent = len(emu.events())
    assert process.returncode == -signal.SIGINT, "KeyboardInterrupt went on, as Ctrl-C does"
    assert "not reached" not in out
    lines = err.splitlines()
    # The traceback's last line says what the run did (a trial's said only KeyboardInterrupt).
    assert lines[-1].startswith("KeyboardInterrupt: the send was interrupted: "), lines
    assert f"{sent:,} sent" in lines[-1]
    assert " of 3,000 rows; " in lines[-1]
    assert f"rows not sent are in {failures}" in lines[-1]
    assert len(lines) <= 10, "a short traceback, not one through asyncio"
    assert sent + len(gb.read_failures(failures)) == 3000, "every row is sent or written"
