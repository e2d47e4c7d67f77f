"""The shape of the package: floors that import only downwards, no circles, short functions.

The library is a few private packages, one concept each, and the modules everything shares.
Each module is on its package's floor (or, outside the packages, its own), and imports only
from its own floor or below: inside a package anything goes but a circle.

Every import counts, inside functions and under ``TYPE_CHECKING`` too: hiding an import from the
type checker hides a circle, it does not remove it. A module that is not on a floor here fails
the test, so the layout is decided when a module is added, not later.
"""

import ast
import itertools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gb_backfill"

#: Each package's (or top-level module's) floor, lowest first.
FLOORS = {
    # the vocabulary, the facts, and tools with no knowledge of rows
    "_errors": 0, "_vocabulary": 0, "_clock": 0, "_sync": 0, "_interrupt": 0,
    "_gameball": 1, "_config": 1,
    # what a row is and says (no files, no run); Gameball on loopback
    "_rows": 2, "_emulator": 2,
    # what outlives a run: the ledger and the failures file
    "_store": 3,
    # reading the input; what a run returns
    "_input": 4, "_reports": 4,
    # one send, start to end, and its dry run
    "_engine": 5,
    # the reward preview, which runs on the engine's lanes; the options' declaration, the
    # faces' machinery and a stopped run's error, which see every report
    "_preview": 6, "_options": 6, "_faces": 6, "_stops": 6,
    # the faces
    "_sender": 7, "_validate": 7, "_settle": 7, "_demo": 7,
    "_accessor": 8, "_cli": 8, "__init__": 8, "__main__": 8,
}  # fmt: skip
MAX_FUNCTION_LINES = 60  # statements of a function's body, its docstring left out
MAX_SENDER_LINES = 300
MAX_CLI_LINES = 300  # a command's module: parsing and printing, the work is the library's
MAX_FILE_LINES = 600


def floor_of(module):
    """The floor of a module: its package's, or its own."""
    return FLOORS.get(module, FLOORS.get(module.split(".")[0]))


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), path


def imports_of(name, path, known):
    """The modules of the package that ``name`` imports (``known``: all of them)."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            if node.module:
                found.add(".".join(target))
            for alias in node.names:  # `from . import _journal`, `from .batch import X`
                candidate = ".".join([*target, alias.name])
                if candidate in known:
                    found.add(candidate)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gb_backfill."):
            found.add(node.module.removeprefix("gb_backfill."))
    return {module for module in found if module in known}


def graph():
    found = dict(modules())
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_every_module_has_a_floor():
    missing = [name for name, _ in modules() if floor_of(name) is None]
    assert not missing, f"put these (or their package) on a floor in FLOORS: {missing}"


def test_no_import_runs_up_a_floor():
    upward = [
        f"{name} (floor {floor_of(name)}) imports {target} (floor {floor_of(target)})"
        for name, targets in graph().items()
        for target in targets
        if floor_of(target) > floor_of(name)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    edges = graph()
    circles = []

    def visit(node, path):
        for target in edges.get(node, ()):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif target not in seen:
                seen.add(target)
                visit(target, [*path, target])

    for start in edges:
        seen = {start}
        visit(start, [start])
    assert not circles, f"import circles: {circles[:5]}"


def body_lines(function):
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def test_no_function_is_long():
    long = []
    for name, path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if function and (lines := body_lines(node)) > MAX_FUNCTION_LINES:
                long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, "\n".join(long)


def test_no_file_is_long():
    """One concept per module: no file of the package over MAX_FILE_LINES lines."""
    long = [
        f"{path.relative_to(PACKAGE)}: {lines} lines"
        for _, path in modules()
        if (lines := len(path.read_text().splitlines())) > MAX_FILE_LINES
    ]
    assert not long, "\n".join(long)


def test_the_command_line_is_thin():
    """Each command's module parses and prints; what it runs is the library's."""
    long = [
        f"{path.relative_to(PACKAGE)}: {lines} lines"
        for path in sorted((PACKAGE / "_cli").glob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MAX_CLI_LINES
    ]
    assert not long, "\n".join(long)


def test_the_sender_holds_only_the_public_send_functions():
    lines = len((PACKAGE / "_sender.py").read_text().splitlines())
    assert lines <= MAX_SENDER_LINES, f"_sender.py has {lines} lines"


def test_the_checker_sees_every_kind_of_import(tmp_path):
    """The graph above would be worthless if it missed function-level or TYPE_CHECKING imports."""
    edges = graph()
    assert "_emulator" in edges["_cli.emulator"], "imported inside a function"
    assert "_emulator" in edges["__init__"], "imported under TYPE_CHECKING"
    assert "_store.journal" in edges["_store.ledger"], "`from . import journal`"
    assert "_engine.lanes.base" in edges["_engine.lanes.events"], "`from .base import ...`"
    assert "_config" in edges["_engine.lanes.base"], "`from ..._config import ...`"


#: Gameball's error codes (see _gameball); 1000, also a plain thousand, is caught beside a status.
ERROR_CODES = {1001, 2001, 3000, 3003, 3013, 3016, 4000, 4290, 7000}


def spelled_codes(tree):
    """Where ``tree`` spells an error code: one of ERROR_CODES, or any code written next to
    an HTTP status (``_error(401, 1000, ...)``, ``return 422, 3003, ...``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in ERROR_CODES:
            yield node.lineno, node.value
        items = node.elts if isinstance(node, ast.Tuple) else getattr(node, "args", None)
        if isinstance(node, ast.Tuple | ast.Call) and items:
            for status, code in itertools.pairwise(items):
                numbers = [getattr(n, "value", None) for n in (status, code)]
                if all(type(n) is int for n in numbers) and 100 <= numbers[0] < 600 <= numbers[1]:
                    yield code.lineno, numbers[1]


def test_only_the_gameball_module_spells_an_error_code():
    """Gameball's error codes are spelled once: the client reads them and the emulator answers
    with them from :mod:`gb_backfill._gameball`."""
    spelled = [
        f"{name}:{line}: {code}"
        for name, path in modules()
        if name != "_gameball"
        for line, code in spelled_codes(ast.parse(path.read_text()))
    ]
    assert not spelled, "\n".join(spelled)
