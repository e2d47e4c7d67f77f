"""Check that the environment runs exactly the versions a constraints file pins (the floor step
of .ci/run must not quietly test newer ones), and that every range pyproject.toml declares for
the library and its extras has its floor pinned there."""

import re
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

pins = {}
for line in Path(sys.argv[1]).read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
        name, pinned = line.split("==")
        pins[name.strip().lower()] = pinned.strip()
project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
declared = list(project["dependencies"])
for extra in ("emulator", "plot"):
    declared += project["optional-dependencies"][extra]
problems = []
for requirement in declared:
    name, low = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement).groups()
    pinned = pins.get(name.lower())
    if pinned is None or [int(p) for p in pinned.split(".")[: low.count(".") + 1]] != [
        int(p) for p in low.split(".")
    ]:
        problems.append(f"{requirement}: its floor is not pinned ({pinned=})")
for name, pinned in pins.items():
    if version(name) != pinned:
        problems.append(f"{name} {version(name)} is installed, not {pinned}")
if problems:
    sys.exit("\n".join(problems))
print(f"the floor: {', '.join(f'{n} {v}' for n, v in pins.items())}")
