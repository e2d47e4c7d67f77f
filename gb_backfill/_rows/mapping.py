"""Which DataFrame column plays which part of a Gameball event.

Callers name columns by keyword (``customer_id="user"``); without keywords the usual names are
found (``customerId`` or ``customer_id``, ``eventName`` or ``event_name``, ``email``, ``mobile``,
``sessionToken`` or ``session_token``). Metadata defaults to every other column whose name does
not start with ``gb_`` (our own status columns, so a failures file can be sent again as it is).

A metadata column's JSON key is its name as text: strings as they are, numbers and booleans as
``str()`` gives them (``0`` becomes ``"0"``). Names that are missing (None, NaN) or not scalars
(tuples of a MultiIndex) are refused, and so are two columns whose keys would be the same, and
duplicate column names: each would silently lose values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import pandas as pd

from .._errors import ColumnNotFoundError, ConfigError

__all__ = ["ColumnMapping", "resolve_mapping"]

#: Columns gb-backfill writes itself start with this; they are never metadata.
RESERVED_PREFIX = "gb_"

#: The column a reader adds to rows it could not read as written (a ragged CSV line, a value
#: ``dtype=`` cannot convert): JSON text, a list of ``[code, column, message, value]``, null on
#: every other row. :func:`check_frame` makes each entry a failure. It is never metadata (its
#: name starts with ``gb_``), never part of a row key, and never written to a failures file (the
#: failure's code and message are), so a fixed row sent again carries no stale marker.
READ_PROBLEMS = "gb_read_problems"


def read_problems_text(problems: Sequence[tuple[str, str, str, str]]) -> str:
    """One row's :data:`READ_PROBLEMS` value."""
    return json.dumps([list(problem) for problem in problems])


def unconverted_texts(marks: Sequence[object]) -> dict[str, dict[int, str]]:
    """The values a reader could not convert (``dtype_unconvertible``) in rows whose
    :data:`READ_PROBLEMS` values are ``marks``, as written: ``{column: {row: text}}``."""
    found: dict[str, dict[int, str]] = {}
    for at, text in enumerate(marks):
        if not isinstance(text, str):
            continue
        try:
            for code, column, _message, value in json.loads(text):
                if code == "dtype_unconvertible":
                    found.setdefault(str(column), {})[at] = str(value)
        except (TypeError, ValueError):
            continue
    return found


_DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "customer_id": ("customerId", "customer_id"),
    "event_name": ("eventName", "event_name"),
    "email": ("email",),
    "mobile": ("mobile",),
    "session_token": ("sessionToken", "session_token"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnMapping:
    """The resolved roles of a DataFrame's columns. Build it with :func:`resolve_mapping`."""

    customer_id: Hashable
    event_name: Hashable | None
    event: str | None
    metadata: tuple[Hashable, ...]
    email: Hashable | None = None
    mobile: Hashable | None = None
    session_token: Hashable | None = None

    @property
    def metadata_keys(self) -> tuple[str, ...]:
        """The JSON key of each metadata column, in the order of ``metadata``."""
        return tuple(metadata_key(column) for column in self.metadata)

    @property
    def identifier_columns(self) -> list[Hashable]:
        """The mapped id, event name, email, mobile and session token columns (CSV reads them
        as text, exactly as written)."""
        roles = (self.customer_id, self.event_name, self.email, self.mobile, self.session_token)
        return [column for column in roles if column is not None]


def metadata_key(column: Hashable) -> str:
    """The JSON key a column name becomes; :class:`ConfigError` for names that cannot be one."""
    if isinstance(column, str):
        key = column
    elif isinstance(column, (bool, int, float)) and not (
        isinstance(column, float) and math.isnan(column)
    ):
        key = str(column)
    else:
        raise ConfigError(
            "column name {column!r} cannot be a metadata key: rename the column to a string "
            "(for a MultiIndex, join its levels), or leave it out with {metadata=[...]|COL,COL}",
            option="metadata",
            column=column,
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"column name {column!r} is not valid Unicode text and cannot be a metadata key"
        ) from None
    return key


def _check_names(available: list[Hashable]) -> None:
    seen: dict[Hashable, int] = {}
    for column in available:
        seen[column] = seen.get(column, 0) + 1
    repeated = [f"{column!r} ({count} times)" for column, count in seen.items() if count > 1]
    if repeated:
        raise ConfigError(
            f"duplicate column names: {', '.join(repeated)}; rename them so each is unique "
            "(e.g. df.columns = [...])"
        )


def _check_keys(metadata: tuple[Hashable, ...]) -> None:
    owners: dict[str, Hashable] = {}
    for column in metadata:
        key = metadata_key(column)
        if key in owners:
            raise ConfigError(
                "columns {first!r} and {column!r} would both be the metadata key {key!r}, and "
                "one value would be lost: rename one, or leave one out with "
                "{metadata=[...]|COL,COL}",
                option="metadata",
                first=owners[key],
                column=column,
                key=key,
            )
        owners[key] = column


def _pick(
    keyword: str, given: Hashable | None, available: list[Hashable], *, required: bool = False
) -> Hashable | None:
    """The column ``keyword`` names, else the first usual name present."""
    if given is not None:
        if given not in set(available):
            raise ColumnNotFoundError(keyword, given, available)
        return given
    for name in _DEFAULT_NAMES[keyword]:
        if name in set(available):
            return name
    if required:
        names = " or ".join(repr(n) for n in _DEFAULT_NAMES[keyword])
        raise ConfigError(
            "no {what} column: pass {" + keyword + "=COLUMN} or name a column {names}; the "
            "columns are: {columns}",
            option=keyword,
            what=keyword.replace("_", " "),
            names=names,
            columns=", ".join(map(str, available)) or "(none)",
        )
    return None


def _check_event(event_name: Hashable | None, event: str | None) -> None:
    if event_name is not None and event is not None:
        raise ConfigError("pass either {event_name=COLUMN} or {event=NAME}, not both",
                          option="event")  # fmt: skip
    if event is not None and (not isinstance(event, str) or not event.strip()):
        raise ConfigError("{event=} must be a non-empty event name, got {value!r}",
                          option="event", value=event)  # fmt: skip
    if event is not None and event != event.strip():
        raise ConfigError("{event=*} has whitespace at an end: pass {stripped!r}",
                          option="event", event=event, stripped=event.strip())  # fmt: skip


def _names_events(column: Hashable) -> bool:
    """True for a column named as event names are (``event``, ``eventName``, ``Event name``)."""
    return re.sub(r"[^a-z]", "", str(column).lower()) in ("event", "eventname")


def _check_one_name(event: str, available: list[Hashable], metadata: object) -> None:
    """``event=`` names every row one event: refuse it where it surely is not what was meant (a
    column of that name, or a column of event names whose names would go out as metadata)."""
    if event in set(available):
        raise ConfigError(
            "{event=*} names a column, but {event=} is one event name for every row (they would "
            "all be called {event!r}); to read each row's event name from the column, pass "
            "{event_name=*}",
            option="event", event=event, event_name=event,
        )  # fmt: skip
    named = next((c for c in available if _names_events(c)), None)
    if named is not None and metadata is None:
        raise ConfigError(
            "{event=*} would call every row {event!r}, but column {column!r} holds event names "
            "(they would go out as metadata): pass {event_name=*} to use it, or list the "
            "metadata columns with {metadata=...} to call every row {event!r}",
            option="event", event=event, column=str(named), event_name=named,
        )  # fmt: skip


def _metadata(
    metadata: Sequence[Hashable] | None, available: list[Hashable], mapped: set[Hashable]
) -> tuple[Hashable, ...]:
    """The metadata columns: those named, or every column not mapped and not ``gb_``."""
    if metadata is None:
        return tuple(
            c for c in available if c not in mapped and not str(c).startswith(RESERVED_PREFIX)
        )
    if isinstance(metadata, str):
        raise ConfigError("{metadata=} takes a list of columns, e.g. {metadata=*}",
                          option="metadata", metadata=[metadata])  # fmt: skip
    for column in metadata:
        if column not in set(available):
            raise ColumnNotFoundError("metadata", column, available)
    return tuple(dict.fromkeys(metadata))


def resolve_mapping(
    columns: Sequence[Hashable] | pd.Index,
    *,
    customer_id: Hashable | None = None,
    event_name: Hashable | None = None,
    event: str | None = None,
    metadata: Sequence[Hashable] | None = None,
    email: Hashable | None = None,
    mobile: Hashable | None = None,
    session_token: Hashable | None = None,
) -> ColumnMapping:
    """Resolve the mapping keywords against ``columns``.

    Raises :class:`ColumnNotFoundError` for a keyword naming a missing column, and
    :class:`ConfigError` when no customer id or event name can be found, or when both
    ``event_name`` and ``event`` are given.
    """
    available = list(columns)
    _check_names(available)
    _check_event(event_name, event)
    id_column = _pick("customer_id", customer_id, available, required=True)
    if event is not None:
        _check_one_name(event, available, metadata)
    name_column = None if event is not None else _pick("event_name", event_name, available)
    if name_column is None and event is None:
        raise ConfigError(
            "no event name: pass {event_name=COLUMN}, or {event=NAME} for one name for every "
            "row, or name a column 'eventName' or 'event_name'; the columns are: {columns}",
            option="event_name",
            columns=", ".join(map(str, available)) or "(none)",
        )
    roles = {
        "email": _pick("email", email, available),
        "mobile": _pick("mobile", mobile, available),
        "session_token": _pick("session_token", session_token, available),
    }
    chosen = _metadata(metadata, available, {id_column, name_column, *roles.values()} - {None})
    _check_keys(chosen)
    return ColumnMapping(
        customer_id=id_column,
        event_name=name_column,
        event=event,
        metadata=chosen,
        email=roles["email"],
        mobile=roles["mobile"],
        session_token=roles["session_token"],
    )
