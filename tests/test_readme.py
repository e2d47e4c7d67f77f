"""The README keeps its promises: the two commands first, CI running the second, and links
that land on a heading."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_it_opens_with_the_two_commands_and_ci_runs_the_second():
    lines = README.splitlines()
    assert lines[2:6] == [
        "```bash",
        "python -m pip install . && gb-backfill demo",
        "python -m pip install '.[test]' && python -m pytest",
        "```",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pip install '.[test]' && python -m pytest" in ci.splitlines()


def test_every_link_inside_the_readme_lands_on_a_heading():
    headings = {anchor(line.lstrip("#")) for line in README.splitlines() if line.startswith("#")}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links, "the contents table links to the sections"
    assert [link for link in links if link not in headings] == []
