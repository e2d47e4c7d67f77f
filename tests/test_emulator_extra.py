"""The emulator is an extra: ``pip install gb-backfill`` brings no aiohttp, the rest works
without it, and each way into the emulator says what to install in one line.

aiohttp is blocked in a fresh interpreter (``sys.modules["aiohttp"] = None`` makes every import
of it fail, as when it is not installed), so these tests need no second virtualenv.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "pip install 'gb-backfill[emulator]'"
WITHOUT_AIOHTTP = "import sys\nsys.modules['aiohttp'] = None  # as if it were not installed\n"
#: ``python -m gb_backfill ARGS`` in the same interpreter, after the block.
RUN_THE_CLI = """
import runpy

sys.argv = ["gb-backfill", *sys.argv[1:]]
runpy.run_module("gb_backfill", run_name="__main__", alter_sys=True)
"""


def run_without_aiohttp(code, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_AIOHTTP + code, *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


def test_aiohttp_is_in_the_emulator_extra_not_the_core():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = [requirement.split(">")[0].strip() for requirement in project["dependencies"]]
    assert "aiohttp" not in core
    extras = project["optional-dependencies"]
    assert [r for r in extras["emulator"] if r.startswith("aiohttp")], extras["emulator"]
    # The tests (and .ci/run's install line, '.[test]') need the emulator.
    assert any(r.startswith("gb-backfill[") and "emulator" in r for r in extras["test"])


def test_without_aiohttp_the_core_validates_and_sends_and_the_emulator_names_its_extra(tmp_path):
    code = """
import pydoc

import httpx
import pandas as pd

import gb_backfill as gb

df = pd.DataFrame({"customerId": ["a", "b", " "], "eventName": "purchase"})
print("invalid", gb.validate(df).invalid_rows)
paths = []


def gameball(request):
    paths.append(request.url.path)
    return httpx.Response(200, json={"success": True})


client = httpx.AsyncClient(transport=httpx.MockTransport(gameball))
report = gb.send(df, api_key="k", client=client, progress=False, failures_path="f.parquet")
print("sent", report.sent, "requests", len(paths))
print("accessor", df.iloc[:2].gameball.validate().valid_rows)
pydoc.render_doc(gb)  # help(gb_backfill) lists the emulator's names without starting it
print("named", gb.Emulator.__name__)
try:
    gb.Emulator()
except gb.ConfigError as error:
    print("error", error)
"""
    done = run_without_aiohttp(code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == ["invalid 1", "sent 2 requests 2", "accessor 2", "named Emulator"]
    assert len(lines) == 5, "the error is one line"
    assert lines[4].startswith("error the emulator needs aiohttp")
    assert lines[4].endswith(INSTALL)


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize("command", [["demo"], ["emulator", "--port", "0"]])
def test_without_aiohttp_the_emulator_commands_exit_2_with_one_line(command, tmp_path):
    done = run_without_aiohttp(RUN_THE_CLI, *command, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("gb-backfill: error: ")
    assert INSTALL in done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_without_aiohttp_the_emulators_help_still_works():
    """The emulator's flags and defaults come from modules that do not import aiohttp."""
    done = run_without_aiohttp(RUN_THE_CLI, "emulator", "--help")
    assert done.returncode == 0, done.stderr
    assert "--status-per-second" in done.stdout
    assert "--preview-per-window" in done.stdout
