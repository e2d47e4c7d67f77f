"""The exceptions gb-backfill raises.

Problems with single rows are never exceptions: they are data (see ``ValidationReport.failures``
and the failures Parquet file). Exceptions are for misuse and for runs that cannot go on::

    GameballError
    ├── ConfigError            a bad argument: names the option and the fix
    │   └── ColumnNotFoundError  a mapping keyword names a column the DataFrame lacks
    ├── LedgerError            the ledger cannot be used for this input
    │   └── ChangedRowsError   rows look like rows an earlier run sent, written differently
    └── RunStopped             a send or preview stopped before its end (see gb_backfill._stops)
        ├── Interrupted          Ctrl-C, SIGTERM, or its task was cancelled
        ├── AuthenticationError  Gameball answered 401/403
        └── RepeatedFailureError every request failed the same way (wrong URL, nothing listening)

A :class:`ConfigError` names the option it is about (``option``), and its message names options
as fields of a template (``{api_key=...}``), so each face says them in its own terms: the Python
API as keywords (``api_key=...``), the command line as its flags (``--api-key ...``), with no
rewriting of the text.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ChangedRowsError",
    "ColumnNotFoundError",
    "ConfigError",
    "GameballError",
    "LedgerError",
]


@dataclass(frozen=True, slots=True)
class Mention:
    """An option named in a message, with the value or placeholder shown beside it (``text``
    as the Python API writes it, ``cli_text`` as a shell does; both "" for the bare name)."""

    option: str
    text: str = ""
    cli_text: str = ""

    def in_python(self) -> str:
        return f"{self.option}={self.text}"


#: How a face names an option: the Python API's keywords are the default.
Terms = Callable[[Mention], str]


@dataclass(frozen=True, slots=True)
class Written:
    """A value for ``{option=*}`` written as each face writes it (a tab: ``'\\t'`` both)."""

    python: str
    cli: str


def _shell_text(value: object) -> str:
    """A value as it is typed on a command line: lists comma-joined, quoted where the shell
    needs it."""
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return shlex.quote(str(value))


def render(template: str, values: dict[str, Any], terms: Terms) -> str:
    """``template`` with its fields filled: ``{name}`` is ``values[name]`` (``!r``, ``!s`` and
    format specs as in ``str.format``); ``{option=}``, ``{option=TEXT}`` (``TEXT|CLI-TEXT`` when
    the command line writes it otherwise) and ``{option=*}`` (with ``values[option]``) name an
    option, in ``terms``."""
    parts = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        parts.append(literal)
        if name is None:
            continue
        option, named, shown = name.partition("=")
        if not named:
            value = values[name]
            value = repr(value) if conversion == "r" else value
            parts.append(format(value, spec or ""))
        elif shown == "*":
            given = values[option]
            if isinstance(given, Written):
                parts.append(terms(Mention(option, given.python, given.cli)))
            else:
                parts.append(terms(Mention(option, repr(given), _shell_text(given))))
        else:
            text, _, cli_text = shown.partition("|")
            parts.append(terms(Mention(option, text, cli_text or text)))
    return "".join(parts)


class GameballError(Exception):
    """Root of every error gb-backfill raises.

    ``option`` is the keyword an error is about, so a face can point at it (the command line
    names its flag). With ``option``, the message is a template that names options as
    :func:`render` says (``{timeout=} must be ...``), and :meth:`in_terms` says it with each
    named as a face names it; ``str(error)`` says it in the Python API's terms. Without it,
    the message is plain text.
    """

    def __init__(self, message: str = "", *, option: str | None = None, **values: Any) -> None:
        self.option = option
        self.template = message if option is not None else None
        self.values = values
        text = message if self.template is None else render(message, values, Mention.in_python)
        super().__init__(text)

    def in_terms(self, terms: Terms) -> str:
        """The message with every option named as ``terms`` names it."""
        if self.template is None:
            return str(self)
        return render(self.template, self.values, terms)

    def put_first(self, template: str, **values: Any) -> None:
        """Say ``template`` first, the message after it in parentheses (a hint that is the
        fix)."""
        said = self.template if self.template is not None else _literal(str(self))
        assert not set(values) & set(self.values), "a hint's values have names of their own"
        self.template = f"{template} ({said})"
        self.values = {**self.values, **values}
        self.args = (render(self.template, self.values, Mention.in_python), *self.args[1:])

    def add_hint(self, template: str, **values: Any) -> None:
        """Say ``template`` (naming options as the message may) after the message."""
        said = self.template if self.template is not None else _literal(str(self))
        assert not set(values) & set(self.values), "a hint's values have names of their own"
        self.template = f"{said}; {template}"
        self.values = {**self.values, **values}
        self.args = (render(self.template, self.values, Mention.in_python), *self.args[1:])


class ConfigError(GameballError, ValueError):
    """An argument is wrong; the message says how to fix it, and ``option`` which keyword it
    is about (see :class:`GameballError`)."""


def _literal(text: str) -> str:
    """``text`` as a template that says it as it is."""
    return text.replace("{", "{{").replace("}", "}}")


class ColumnNotFoundError(ConfigError, KeyError):
    """A mapping keyword names a column that the DataFrame does not have."""

    def __init__(self, keyword: str, column: object, available: Iterable[object]) -> None:
        self.keyword = keyword
        self.column = column
        self.available = [str(c) for c in available]
        super().__init__(
            f"{{{keyword}=*}}: no such column; the columns are: {{listed}}",
            option=keyword,
            listed=", ".join(self.available) or "(none)",
            **{keyword: column},
        )

    def __str__(self) -> str:
        # KeyError would repr() the message; show it as written.
        return str(self.args[0])


class LedgerError(GameballError):
    """The ledger cannot be used: it is corrupt, its row keys do not fit this input, or it
    could not be written (a run that meets that stops with :class:`RunStopped` from this
    error; the ledger's journal keeps every row it knew of for the next run)."""


class ChangedRowsError(LedgerError):
    """Rows whose exact key is new but which look like rows an earlier run with the ledger
    sent: the same customer, event and values, written differently (text for numbers or
    timestamps, empty for missing). Nothing was sent. ``rows`` counts them, ``examples`` (a
    DataFrame) shows a few with the columns that differ, and ``every`` holds them all (e.g.
    ``error.every.to_csv(PATH)``); ``resend_changed=True`` (``--resend-changed``) sends them
    anyway."""

    def __init__(
        self, message: str, *, rows: int, examples: object, every: object = None,
        option: str | None = None, **values: Any,
    ) -> None:  # fmt: skip
        super().__init__(message, option=option, **values)
        self.rows = rows
        self.examples = examples
        self.every = examples if every is None else every
