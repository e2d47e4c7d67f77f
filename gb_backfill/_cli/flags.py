"""Flags made from the options' declaration, and an error's options named as flags.

Each option of a declaration (:mod:`gb_backfill._options`) becomes a flag: ``--`` and its name
with dashes (or the flag its declaration names), its help, its default, its type (choices for a
``Literal``), ``dest`` the option's name. Options built from several flags (``limits=`` from
``--rate``, ``--quota`` and ``--quota-window``) get one flag per part. :class:`Flags` keeps what
was made, so that :func:`keywords` turns the parsed flags back into the keywords of the Python
API, and :meth:`Flags.terms` names an option in an error as its flag.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, Field, fields
from typing import Any, Literal

from .._errors import Mention
from .._options import About, about_of

__all__: list[str] = []

#: The groups of flags in ``--help``, in order.
GROUPS = {
    "mapping": "column mapping (default: found by name)",
    "orders": "orders (purchases at their real dates; default columns found by name)",
    "csv": "CSV input (ids, emails and mobiles are always read as text); --dtype, --na-values, "
    "--thousands and --decimal also convert a Parquet input's text columns",
    "gameball": "Gameball",
    "pace": "pace and retries",
    "sample": "sample",
    "batch": "batch mode",
    "bookkeeping": "bookkeeping",
}


def add_flag(group: Any, *names: str, **settings: Any) -> argparse.Action:
    """``group.add_argument``, with the default in the help (argparse's formatter says nothing
    of it) when there is one to say."""
    default = settings.get("default")
    quiet = default is None or default is False or settings.get("action") in _SWITCHES
    help_text = settings.get("help") or ""
    if not quiet and "default:" not in help_text:
        settings["help"] = f"{help_text} (default: %(default)s)".strip()
    action: argparse.Action = group.add_argument(*names, **settings)
    return action


_SWITCHES = ("store_true", "store_false", "store_const")


class Flags:
    """The flags a command made from a declaration: each option's flag, and whether it takes
    a value (an option of several flags names them all, with no value)."""

    def __init__(self) -> None:
        self.of: dict[str, tuple[str, bool]] = {}
        self.declared: list[Field[Any]] = []
        #: the groups of flags made, by :data:`GROUPS`' names (a command adds its own to them)
        self.groups: dict[str, Any] = {}

    def record(self, action: argparse.Action, *, option: str | None = None) -> None:
        """A flag added by hand: the option its ``dest`` (or ``option``) names is this flag."""
        self.of[option or action.dest] = (action.option_strings[0], action.nargs != 0)

    def terms(self, mention: Mention) -> str:
        """An option named in a message, as this command's flag (the keyword when it has
        none)."""
        if mention.option not in self.of:
            return mention.in_python()
        flag, takes_value = self.of[mention.option]
        return f"{flag} {mention.cli_text}" if takes_value and mention.cli_text else flag


def _kind(option: Field[Any]) -> tuple[Any, tuple[str, ...] | None]:
    """How a flag's text becomes the option's value (by its type), and its choices."""
    types = typing.get_args(option.type) or (option.type,)
    choices = next((typing.get_args(t) for t in types if typing.get_origin(t) is Literal), None)
    parse = next((t for t in (int, float) if t in types), str)
    return parse, choices


def _default(option: Field[Any]) -> Any:
    return None if option.default is MISSING else option.default


def add_options(
    parser: argparse.ArgumentParser,
    declaration: type,
    *,
    face: str = "send",
    skip: tuple[str, ...] = (),
) -> Flags:
    """A flag for each option of ``declaration`` that has one (help as ``face`` says it)."""
    made = Flags()
    groups = made.groups
    exclusive: dict[str, Any] = {}
    options = [o for o in fields(declaration) if about_of(o).group and o.name not in skip]
    for name in GROUPS:
        if any(about_of(o).group == name for o in options):
            groups[name] = parser.add_argument_group(GROUPS[name])
    for option in options:
        about = about_of(option)
        group = groups[about.group or ""]
        if about.exclusive:
            if about.exclusive not in exclusive:
                exclusive[about.exclusive] = group.add_mutually_exclusive_group()
            group = exclusive[about.exclusive]
        if about.parts:
            _add_parts(made, group, option, about, face)
        else:
            made.record(add_flag(group, about.flag or _flag(option.name), dest=option.name,
                                 **_settings(option, about, face)))  # fmt: skip
        made.declared.append(option)
    return made


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _settings(option: Field[Any], about: About, face: str) -> dict[str, Any]:
    """``add_argument``'s settings for an option of one flag."""
    help_text = about.help_for.get(face, about.help)
    default = _default(option)
    if about.switch is not None or option.type is bool:
        const = True if about.switch is None else about.switch
        return {"action": "store_const", "const": const, "default": default, "help": help_text}
    parse, choices = _kind(option)
    settings = {"type": about.parse or parse, "default": default, "help": help_text,
                "metavar": about.metavar, "choices": choices}  # fmt: skip
    if about.repeated:
        settings["action"] = "append"
    return settings


def _add_parts(made: Flags, group: Any, option: Field[Any], about: About, face: str) -> None:
    """The flags of an option built from several, each added once (``--quota-window`` is
    shared by every kind of limits)."""
    for part in about.parts:
        flag = _flag(part.dest)
        if not any(flag in flags for flags, _ in made.of.values()):
            kind = type(getattr(about.defaults, part.attribute))
            metavar = "SECONDS" if kind is float else "N"
            add_flag(group, flag, dest=part.dest, type=kind, metavar=metavar,
                     default=getattr(about.defaults, part.attribute),
                     help=part.help_for.get(face, part.help))  # fmt: skip
            made.of[part.dest] = (flag, True)
    made.of[option.name] = ("/".join(_flag(part.dest) for part in about.parts), False)


def keywords(args: argparse.Namespace, made: Flags) -> dict[str, Any]:
    """The Python API's keywords for what the flags ``made`` were given (their defaults
    included)."""
    found: dict[str, Any] = {}
    for option in made.declared:
        about = about_of(option)
        if about.parts and about.composite is not None:
            parts = {part.attribute: getattr(args, part.dest) for part in about.parts}
            found[option.name] = about.composite(**parts)
        elif about.repeated:
            given = getattr(args, option.name)
            found[option.name] = dict(given) if given else None
        else:
            found[option.name] = getattr(args, option.name)
    return found
