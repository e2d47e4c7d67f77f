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
from collections.abc import Hashable, Mapping, Sequence
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
    "order_id": ("orderId", "order_id"),
    "order_date": ("orderDate", "order_date"),
    "total_paid": ("totalPaid", "total_paid"),
}

#: An order's optional fields a column may be mapped to (``order_fields={"totalTax": "tax"}``),
#: by Gameball's names. None is found by name: a column called ``channel`` in an export seldom
#: holds Gameball's channels (mobile, pos, web, callcenter).
ORDER_FIELDS = ("totalPrice", "totalDiscount", "totalShipping", "totalTax", "channel", "cartId",
                "guest")  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderMapping:
    """Which column is which part of a Gameball order (see :mod:`gb_backfill._rows.orders`)."""

    order_id: Hashable
    order_date: Hashable
    total_paid: Hashable
    #: columns sent as the order's ``extra`` (string values), by their names
    extra: tuple[Hashable, ...] = ()
    #: the optional fields mapped: (Gameball's name, column)
    fields: tuple[tuple[str, Hashable], ...] = ()

    @property
    def columns(self) -> list[Hashable]:
        """Every column an order is made of, beyond the customer's."""
        named = [self.order_id, self.order_date, self.total_paid, *self.extra]
        return named + [column for _, column in self.fields]


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
    #: set when rows are sent as orders: every row (``orders_from`` None), or the rows whose
    #: event name is ``orders_from`` (the rest are events)
    order: OrderMapping | None = None
    orders_from: str | None = None

    @property
    def all_orders(self) -> bool:
        """Every row is an order."""
        return self.order is not None and self.orders_from is None

    @property
    def mixed(self) -> bool:
        """Rows whose event name is ``orders_from`` are orders, the rest events."""
        return self.order is not None and self.orders_from is not None

    @property
    def metadata_keys(self) -> tuple[str, ...]:
        """The JSON key of each metadata column, in the order of ``metadata``."""
        return tuple(metadata_key(column) for column in self.metadata)

    @property
    def identifier_columns(self) -> list[Hashable]:
        """The mapped id, event name, email, mobile and session token columns (CSV reads them
        as text, exactly as written)."""
        roles = (self.customer_id, self.event_name, self.email, self.mobile, self.session_token)
        order_id = () if self.order is None else (self.order.order_id,)
        return [column for column in (*roles, *order_id) if column is not None]


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
            "no {what} column: pass {" + keyword + "=COL} or name a column {names}; the "
            "columns are: {columns}",
            option=keyword,
            what=keyword.replace("_", " "),
            names=names,
            columns=", ".join(map(str, available)) or "(none)",
        )
    return None


def _check_event(event_name: Hashable | None, event: str | None) -> None:
    if event_name is not None and event is not None:
        raise ConfigError("pass either {event_name=COL} or {event=NAME}, not both",
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


def _order_mapping(
    available: list[Hashable],
    *,
    order_id: Hashable | None,
    order_date: Hashable | None,
    total_paid: Hashable | None,
    extra: Sequence[Hashable] | None,
    order_fields: Mapping[str, Hashable] | None,
) -> OrderMapping:
    """The order's columns: those named, else (the required ones) found by their usual
    names."""
    picked = {
        keyword: _pick(keyword, given, available, required=True)
        for keyword, given in (
            ("order_id", order_id), ("order_date", order_date), ("total_paid", total_paid)
        )
    }  # fmt: skip
    if isinstance(extra, str):
        raise ConfigError("{extra=} takes a list of columns, e.g. {extra=*}",
                          option="extra", extra=[extra])  # fmt: skip
    for column in extra or ():
        if column not in set(available):
            raise ColumnNotFoundError("extra", column, available)
    extras = tuple(dict.fromkeys(extra or ()))
    _check_keys(extras)
    found = []
    for wire, column in (order_fields or {}).items():
        if wire not in ORDER_FIELDS:
            raise ConfigError(
                "{order_fields=} maps Gameball's order fields ({known}), not {wire!r}",
                option="order_fields", known=", ".join(ORDER_FIELDS), wire=wire,
            )  # fmt: skip
        if column not in set(available):
            raise ColumnNotFoundError("order_fields", column, available)
        found.append((wire, column))
    return OrderMapping(
        order_id=picked["order_id"], order_date=picked["order_date"],
        total_paid=picked["total_paid"], extra=extras, fields=tuple(found),
    )  # fmt: skip


def _check_kind(kind: str, orders_from: str | None, given: dict[str, object]) -> None:
    """The keywords that do not go with ``kind`` and ``orders_from``."""
    ordered = [name for name in ("order_id", "order_date", "total_paid", "extra", "order_fields")
               if given[name]]  # fmt: skip
    if kind == "orders":
        if orders_from is not None:
            raise ConfigError(
                "{kind='orders'|--orders} sends every row as an order; {orders_from=} sends "
                "some: pass one of them", option="orders_from",
            )  # fmt: skip
        wrong = [name for name in ("event_name", "event", "metadata", "session_token")
                 if given[name] is not None]  # fmt: skip
        if wrong:
            raise ConfigError(
                "{kind='orders'|--orders} sends orders, which have no {wrong}: leave it out "
                "(an order's own columns go in {extra=})",
                option=wrong[0],
                wrong=wrong[0] + "=",
            )
    elif orders_from is None and ordered:
        raise ConfigError(
            "{" + ordered[0] + "=} maps an order's column: pass {kind='orders'|--orders} to "
            "send every row as an order, or {orders_from=NAME} for the rows of one event name",
            option=ordered[0],
        )
    if orders_from is not None and (not isinstance(orders_from, str) or not orders_from.strip()):
        raise ConfigError("{orders_from=} must be an event name, got {value!r}",
                          option="orders_from", value=orders_from)  # fmt: skip
    if orders_from is not None and given["event"] is not None:
        raise ConfigError("{orders_from=} picks rows by their event name column: pass "
                          "{event_name=COL}, not {event=}", option="orders_from")  # fmt: skip


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
    kind: str = "events",
    order_id: Hashable | None = None,
    order_date: Hashable | None = None,
    total_paid: Hashable | None = None,
    extra: Sequence[Hashable] | None = None,
    order_fields: Mapping[str, Hashable] | None = None,
    orders_from: str | None = None,
) -> ColumnMapping:
    """Resolve the mapping keywords against ``columns``.

    Raises :class:`ColumnNotFoundError` for a keyword naming a missing column, and
    :class:`ConfigError` when no customer id or event name can be found, or when both
    ``event_name`` and ``event`` are given. With ``kind="orders"`` every row is an order (no
    event name); with ``orders_from=NAME`` the rows of that event name are (see
    :class:`OrderMapping`).
    """
    available = list(columns)
    _check_names(available)
    given = {"event_name": event_name, "event": event, "metadata": metadata,
             "session_token": session_token, "order_id": order_id, "order_date": order_date,
             "total_paid": total_paid, "extra": extra, "order_fields": order_fields}  # fmt: skip
    _check_kind(kind, orders_from, given)
    id_column = _pick("customer_id", customer_id, available, required=True)
    order = None
    if kind == "orders" or orders_from is not None:
        order = _order_mapping(
            available, order_id=order_id, order_date=order_date, total_paid=total_paid,
            extra=extra, order_fields=order_fields,
        )  # fmt: skip
    contacts: dict[str, Hashable | None] = {
        "email": _pick("email", email, available), "mobile": _pick("mobile", mobile, available)
    }  # fmt: skip
    if kind == "orders":
        assert order is not None
        return ColumnMapping(
            customer_id=id_column, event_name=None, event=None, metadata=(),
            email=contacts["email"], mobile=contacts["mobile"], order=order,
        )  # fmt: skip
    _check_event(event_name, event)
    if event is not None:
        _check_one_name(event, available, metadata)
    name_column = None if event is not None else _pick("event_name", event_name, available)
    if name_column is None and event is None:
        raise ConfigError(
            "no event name: pass {event_name=COL}, or {event=NAME} for one name for every "
            "row, or name a column 'eventName' or 'event_name'; the columns are: {columns}",
            option="event_name",
            columns=", ".join(map(str, available)) or "(none)",
        )
    token = _pick("session_token", session_token, available)
    mapped = {id_column, name_column, token, *contacts.values()} - {None}
    if order is not None:
        mapped |= {*order.columns}
    chosen = _metadata(metadata, available, mapped)
    _check_keys(chosen)
    return ColumnMapping(
        customer_id=id_column,
        event_name=name_column,
        event=event,
        metadata=chosen,
        email=contacts["email"],
        mobile=contacts["mobile"],
        session_token=token,
        order=order,
        orders_from=orders_from,
    )
