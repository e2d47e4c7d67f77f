"""The README and docs/ keep their promises: the two commands first, CI running the second, a
README that fits on a screen, every relative link and anchor landing, every option documented,
and the quickstarts running as written against the emulator."""

import ast
import inspect
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import gb_backfill

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_CHARACTERS = 12_000


# --- reading Markdown as GitHub does -----------------------------------------------------------


def prose(text):
    """The lines of ``text`` outside fenced code blocks (``#`` there is a comment)."""
    inside = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif not inside:
            yield line


def anchor(heading):
    """GitHub's anchor for a heading: its text as shown (link targets, backticks and emphasis
    dropped), lower case, punctuation dropped but hyphens and underscores, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    text = re.sub(r"[`*]", "", text).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text):
    """Every heading's anchor; a repeated one gets ``-1``, ``-2``, ... as on GitHub."""
    found, seen = set(), {}
    for line in prose(text):
        if match := re.match(r"#{1,6} (.+)", line):
            base = anchor(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text):
    """Every inline link's target outside code (code spans may hold ``[...](...)``-like text)."""
    for line in prose(text):
        yield from re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line))


def code_block(text, heading):
    """The first fenced block after ``heading``, without its fences."""
    after = text[text.index(f"\n{heading}\n") :]
    opening = re.search(r"^```\w*\n", after, re.MULTILINE)
    body = after[opening.end() :]
    return body[: body.index("\n```")]


# --- the README's shape -----------------------------------------------------------------------


def test_it_opens_with_the_two_commands_and_ci_runs_the_second():
    lines = README.splitlines()
    assert lines[2:6] == [
        "```bash",
        "python -m pip install '.[emulator]' && gb-backfill demo",
        "python -m pip install '.[test]' && python -m pytest",
        "```",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pip install '.[test]' && python -m pytest" in ci.splitlines()


def test_the_readme_fits_on_a_screen():
    assert len(README) <= MAX_README_CHARACTERS, f"{len(README):,} characters"


def test_the_readme_leads_to_every_page_of_the_docs():
    assert {path.name for path in DOCS} >= {
        "guide.md",
        "reference.md",
        "benchmarks.md",
        "architecture.md",
    }
    linked = {target.split("#")[0] for target in links(README)}
    assert [p.name for p in DOCS if f"docs/{p.name}" not in linked] == []


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_every_relative_link_and_anchor_lands(page):
    text = page.read_text(encoding="utf-8")
    relative = [t for t in links(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]
    broken = []
    for target in relative:
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists() or ROOT not in destination.parents:
            broken.append(f"{target}: no such file in the repository")
        elif fragment and fragment not in anchors(destination.read_text(encoding="utf-8")):
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_anchor_rule_is_githubs():
    assert anchor("Sending again: the loop") == "sending-again-the-loop"
    assert anchor("Pace, retries and outcomes") == "pace-retries-and-outcomes"
    assert anchor("The `emulator` extra (aiohttp)") == "the-emulator-extra-aiohttp"
    assert anchor("[The guide](docs/guide.md)") == "the-guide"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n### A") == {"a", "a-1", "a-2"}


def test_every_option_of_the_public_functions_is_in_the_reference():
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    options = reference[reference.index("\n## Options\n") :]
    options = options[: options.index("\n## ", 1)]
    faces = (gb_backfill.aplan_path, gb_backfill.apreview_path, gb_backfill.validate_path)
    keywords = {
        name
        for face in faces
        for name, parameter in inspect.signature(face).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert len(keywords) > 30
    assert sorted(k for k in keywords if f"`{k}=`" not in options) == []


# --- the quickstarts, run as written ----------------------------------------------------------


def test_the_notebook_quickstart_is_python_a_kernel_runs():
    """Top-level ``await`` and all: what a notebook cell accepts."""
    source = code_block(README, "### In a notebook")
    compile(source, "<notebook cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    assert "df.gameball.asend(" in source


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_the_python_quickstart_runs_against_the_emulator(tmp_path):
    """As written, from a folder holding the repository's ``sample_data/``."""
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    source = code_block(README, "### In Python")
    done = subprocess.run(
        [sys.executable, "-c", source], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "200 rows: " in done.stdout.splitlines()[0]
    assert "200 rows: " in done.stdout
    failures = pd.read_parquet(tmp_path / "events.failures.parquet")
    assert set(failures["gb_status"]) == {"invalid"}, "every valid row was sent"
    assert (tmp_path / "events.ledger").exists()


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_the_command_line_quickstart_runs_against_the_emulator(tmp_path):
    """Each line as written, ``gb-backfill`` as ``python -m gb_backfill``, on a slice of the
    sample as ``events.csv``; the emulator on a free port instead of 8787 (others may use it)."""
    csv = (ROOT / "sample_data" / "events.csv").read_text(encoding="utf-8")
    rows = 80
    (tmp_path / "events.csv").write_text("".join(csv.splitlines(True)[: rows + 1]), "utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("GAMEBALL_API_KEY", None)
    env.pop("GAMEBALL_SECRET_KEY", None)
    url, background, outputs = "http://127.0.0.1:8787", None, {}
    try:
        for line in code_block(README, "### On the command line").splitlines():
            words = shlex.split(line.replace("http://127.0.0.1:8787", url), comments=True)
            if words[0] == "export":
                env.update(word.split("=", 1) for word in words[1:])
            elif words == ["kill", "%1"]:
                background.send_signal(signal.SIGTERM)
                assert background.wait(timeout=30) == 0
                background.stdout.close()
                background = None
            elif words[-1] == "&":
                command = [sys.executable, "-m", "gb_backfill", *words[1:-1]]
                command[command.index("--port") + 1] = "0"
                background = subprocess.Popen(
                    command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
                )
                url = background.stdout.readline().split()[3]  # "Gameball emulator on URL ..."
            else:
                assert words[0] == "gb-backfill", line
                done = subprocess.run(
                    [sys.executable, "-m", "gb_backfill", *words[1:]], cwd=tmp_path, env=env,
                    capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
                assert done.returncode in (0, 1), f"{line}\n{done.stdout}\n{done.stderr}"
                outputs[line] = " ".join(done.stdout.split())
    finally:
        if background is not None:
            background.kill()
            background.wait()
            background.stdout.close()
    assert background is None, "the quickstart stops its emulator"
    invalid = len(pd.read_parquet(tmp_path / "invalid.parquet"))
    assert invalid > 0, "the slice has broken rows, as the sample does"
    said = {words.split()[1] + (" --dry-run" * ("--dry-run" in words)): out
            for words, out in outputs.items()}  # fmt: skip
    valid = rows - invalid
    assert f"rows: {rows} valid: {valid} invalid: {invalid}" in said["validate"]
    assert f"a send would send {valid} rows " in said["send --dry-run"], "the plan"
    assert f"{rows} rows: {valid} sent, {invalid} invalid, " in said["send"]
    assert f"sent: {valid} " in said["status"], "the ledger counts every row sent"


def test_every_code_of_a_row_not_sent_is_explained_in_the_reference():
    """A trial met unknown_earlier in its failures file and found it in no table."""
    from gb_backfill._vocabulary import SendErrorCode

    reference = (ROOT / "docs" / "reference.md").read_text()
    missing = [
        code.value for code in SendErrorCode
        if code is not SendErrorCode.ALREADY_THERE and f"`{code.value}`" not in reference
    ]  # fmt: skip
    assert not missing, missing
