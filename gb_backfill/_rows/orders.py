"""Rows as Gameball orders: checked against the Orders schema and encoded, a column at a time.

An order (``POST /integrations/orders``, and each item of ``/batch/orders``) is::

    {"customerId": "c-1", "orderId": "o-9", "orderDate": "2024-10-16T08:13:29.290Z",
     "totalPaid": 25.5, "totalTax": 2, "extra": {"store": "Cairo"}, "email": "a@b.co"}

The required fields are ``customerId``, ``orderId``, ``orderDate`` and ``totalPaid``; the
optional ones come from the columns :class:`~.mapping.OrderMapping` names (``extra``'s values
must be strings, its keys the columns' names). The date and totals are written as
:mod:`.order_values` says. The text is canonical (fixed member order, ``extra`` in key order), so
a body depends on its row alone. An order's identity is its ``orderId``: the ledger keys orders
by it (see :func:`~.keys.keys_for`), and Gameball refuses an ``orderId`` it already has.

A mixed export (``orders_from=NAME``) is checked and encoded in two parts, the rows of that
event name as orders and the rest as events, and put back in input order. :func:`check_rows` and
:func:`encode_checked` are what callers use, whatever the rows are.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import _gameball as gameball
from .._vocabulary import FailureCode
from .mapping import ColumnMapping, OrderMapping, metadata_key
from .order_values import amounts, order_dates
from .payloads import EncodedRows, _member, encode_rows
from .rules import (
    _CUSTOMER_CODES,
    CheckedFrame,
    _Broken,
    _contact_rules,
    _failure_frame,
    _read_failures,
    _required,
    check_frame,
)
from .values import BoolArray, identifier_strings, json_strings

__all__: list[str] = []

_ORDER_ID_CODES = (
    FailureCode.ORDER_ID_MISSING,
    FailureCode.ORDER_ID_EMPTY,
    FailureCode.ORDER_ID_TYPE,
    FailureCode.ORDER_ID_INEXACT,
    FailureCode.ORDER_ID_WHITESPACE,
)
_AMOUNTS = ("totalPrice", "totalDiscount", "totalShipping", "totalTax")
_TEXTS = ("channel", "cartId")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedOrders(CheckedFrame):
    """What the checks learn about a frame of orders: the event checks' findings, and each
    order field's JSON text (null where missing or refused), by wire name."""

    order_ids: pa.Array
    #: wire name -> JSON text of each row's value (orderDate, totals, channel, cartId, guest)
    members: dict[str, pa.Array] = field(default_factory=dict)
    #: ``extra``'s key -> JSON string of each row's value
    extras: list[tuple[str, pa.Array]] = field(default_factory=list)

    def event_names_at(self, positions: npt.NDArray[np.int64]) -> list[str]:
        """Each order's event: the ``place_order`` Gameball records for it."""
        return [gameball.PLACE_ORDER_EVENT] * len(positions)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedMixed(CheckedFrame):
    """A mixed export's checks: its events and its orders, each checked on its own rows."""

    events_at: npt.NDArray[np.int64]
    events: CheckedFrame
    orders_at: npt.NDArray[np.int64]
    orders: CheckedOrders


def _date_rules(column: Hashable, series: pd.Series) -> tuple[pa.Array, list[_Broken]]:
    dates = order_dates(series)
    return dates.text, [
        _Broken(column, FailureCode.ORDER_DATE_MISSING, "orderDate is missing", dates.missing),
        _Broken(column, FailureCode.ORDER_DATE_INVALID, "orderDate is not a date (a timestamp, "
                "a date, or ISO-8601 text such as 2024-10-16T08:13:29.290Z)", dates.not_a_date),
        _Broken(column, FailureCode.ORDER_DATE_TOO_PRECISE, "orderDate is finer than the "
                "millisecond, which Gameball's orderDate cannot hold: round it if that is "
                "meant (df[col].dt.floor('ms'))", dates.too_precise),
        _Broken(column, FailureCode.ORDER_DATE_FUTURE, "orderDate is in the future",
                dates.future),
    ]  # fmt: skip


def _amount_rules(wire: str, column: Hashable, series: pd.Series) -> tuple[pa.Array, list[_Broken]]:
    found = amounts(series)
    broken = [
        _Broken(column, FailureCode.ORDER_AMOUNT_TYPE, f"{wire} must be a number",
                found.wrong_type),
        _Broken(column, FailureCode.ORDER_AMOUNT_NEGATIVE, f"{wire} must not be negative",
                found.negative),
        _Broken(column, FailureCode.ORDER_AMOUNT_NOT_FINITE, f"{wire} must be a finite number",
                found.not_finite),
    ]  # fmt: skip
    if wire == "totalPaid":
        broken.insert(0, _Broken(column, FailureCode.TOTAL_PAID_MISSING, "totalPaid is missing",
                                 found.missing))  # fmt: skip
    return found.text, broken


def _text_rules(wire: str, column: Hashable, series: pd.Series) -> tuple[pa.Array, _Broken]:
    if wire == "guest":
        values = series.tolist()
        wrong = np.array(
            [not (pd.isna(v) or isinstance(v, bool | np.bool_)) for v in values], dtype=bool
        )
        text = [None if w or pd.isna(v) else ("true" if v else "false")
                for v, w in zip(values, wrong, strict=True)]  # fmt: skip
        message = "guest must be True or False"
        return pa.array(text, pa.string()), _Broken(column, FailureCode.ORDER_FIELD_TYPE,
                                                    message, wrong)  # fmt: skip
    ids = identifier_strings(series)
    wrong = ids.wrong_type | ids.inexact | ids.not_unicode
    message = f"{wire} must be a string"
    if wire == "channel":
        listed = pc.or_(pc.is_in(ids.text, pa.array(gameball.ORDER_CHANNELS)), ids.text.is_null())
        wrong |= ~np.asarray(listed.to_numpy(zero_copy_only=False), dtype=bool)
        message = f"channel must be one of {', '.join(gameball.ORDER_CHANNELS)}"
    broken = _Broken(column, FailureCode.ORDER_FIELD_TYPE, message, wrong)
    return pc.if_else(pa.array(wrong), None, json_strings(ids.text)), broken


def _extra_rules(column: Hashable, series: pd.Series) -> tuple[pa.Array, _Broken]:
    values = series.tolist()
    missing = np.asarray(series.isna(), dtype=bool)
    wrong = np.array([not isinstance(v, str) for v in values], dtype=bool) & ~missing
    text = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
    message = f"extra {str(column)!r} must be a string (Gameball takes text values only)"
    return json_strings(text), _Broken(column, FailureCode.EXTRA_NOT_TEXT, message, wrong)


def _order_members(
    df: pd.DataFrame, order: OrderMapping, broken: list[_Broken]
) -> tuple[dict[str, pa.Array], list[tuple[str, pa.Array]]]:
    """Each order field's JSON text, the rules it broke added to ``broken``."""
    members: dict[str, pa.Array] = {}
    members["orderDate"], found = _date_rules(order.order_date, df[order.order_date])
    broken += found
    members["totalPaid"], found = _amount_rules("totalPaid", order.total_paid, df[order.total_paid])
    broken += found
    for wire, column in order.fields:
        if wire in _AMOUNTS:
            members[wire], found = _amount_rules(wire, column, df[column])
            broken += found
        else:
            members[wire], problem = _text_rules(wire, column, df[column])
            broken.append(problem)
    extras = []
    for column in order.extra:
        text, problem = _extra_rules(column, df[column])
        extras.append((metadata_key(column), text))
        broken.append(problem)
    return members, extras


def check_orders(df: pd.DataFrame, mapping: ColumnMapping) -> CheckedOrders:
    """Run every order rule over ``df`` at once (every row an order)."""
    order = mapping.order
    assert order is not None
    customer = df[mapping.customer_id]
    customer_ids = identifier_strings(customer)
    broken = list(_required(mapping.customer_id, customer_ids, customer.isna().to_numpy(),
                            "customerId", _CUSTOMER_CODES))  # fmt: skip
    ids_column = df[order.order_id]
    order_ids = identifier_strings(ids_column)
    broken += _required(order.order_id, order_ids, ids_column.isna().to_numpy(), "orderId",
                        _ORDER_ID_CODES)  # fmt: skip
    members, extras = _order_members(df, order, broken)
    contacts = _contact_rules(df, mapping, broken)
    invalid = np.zeros(len(df), dtype=bool)
    for problem in broken:
        invalid |= problem.mask
    read = _read_failures(df)
    if read is not None:
        invalid[read["position"].to_numpy(dtype=np.int64)] = True
    return CheckedOrders(
        mapping=mapping, invalid=invalid, failures=_failure_frame(df, broken, read),
        customer_ids=customer_ids.text, event_names=None, emails=contacts["email"],
        mobiles=contacts["mobile"], session_tokens=None, order_ids=order_ids.text,
        members=members, extras=extras,
    )  # fmt: skip


Positions = npt.NDArray[np.int64]


def _in_order(parts: list[tuple[Positions, pa.Array | None]], size: int) -> pa.Array | None:
    """Arrays of parts of a frame (each at its positions) as one array in input order."""
    if all(values is None for _, values in parts):
        return None
    at = np.concatenate([positions for positions, _ in parts])
    joined = pa.concat_arrays([
        pa.nulls(len(positions), pa.string()) if values is None else values.cast(pa.string())
        for positions, values in parts
    ])  # fmt: skip
    order = np.empty(size, dtype=np.int64)
    order[at] = np.arange(size)
    return joined.take(pa.array(order))


def _moved(failures: pd.DataFrame, positions: npt.NDArray[np.int64]) -> pd.DataFrame:
    moved = failures.copy()
    moved["position"] = positions[failures["position"].to_numpy(dtype=np.int64)]
    return moved


def check_mixed(df: pd.DataFrame, mapping: ColumnMapping) -> CheckedMixed:
    """Check the rows of ``orders_from``'s event name as orders, the rest as events."""
    assert mapping.event_name is not None
    assert mapping.orders_from is not None
    names = identifier_strings(df[mapping.event_name]).text
    is_order = np.asarray(pc.equal(names, mapping.orders_from).fill_null(False)
                          .to_numpy(zero_copy_only=False), dtype=bool)  # fmt: skip
    events_at, orders_at = np.flatnonzero(~is_order), np.flatnonzero(is_order)
    events = check_frame(df.iloc[events_at], replace(mapping, order=None, orders_from=None))
    order_mapping = replace(mapping, event_name=None, metadata=(), session_token=None)
    orders = check_orders(df.iloc[orders_at], order_mapping)
    invalid = np.zeros(len(df), dtype=bool)
    invalid[events_at], invalid[orders_at] = events.invalid, orders.invalid
    failures = pd.concat([_moved(events.failures, events_at), _moved(orders.failures, orders_at)],
                         ignore_index=True).sort_values("position", kind="stable",
                                                         ignore_index=True)  # fmt: skip
    size = len(df)

    def joined(name: str) -> pa.Array | None:
        return _in_order([(events_at, getattr(events, name)), (orders_at, getattr(orders, name))],
                         size)  # fmt: skip

    ids = joined("customer_ids")
    assert ids is not None
    return CheckedMixed(
        mapping=mapping, invalid=invalid, failures=failures, customer_ids=ids,
        event_names=names, emails=joined("emails"), mobiles=joined("mobiles"),
        session_tokens=joined("session_tokens"), events_at=events_at, events=events,
        orders_at=orders_at, orders=orders,
    )  # fmt: skip


def check_rows(df: pd.DataFrame, mapping: ColumnMapping) -> CheckedFrame:
    """Check ``df``'s rows as what ``mapping`` says they are: events, orders, or both."""
    if mapping.mixed:
        return check_mixed(df, mapping)
    if mapping.all_orders:
        return check_orders(df, mapping)
    return check_frame(df, mapping)


def _extra_member(extras: list[tuple[str, pa.Array]], take: pa.Array, size: int) -> pa.Array | str:
    """``,"extra":{...}`` where a row has some extra value, "" where it has none."""
    members = [_member(key, values.take(take)) for key, values in sorted(extras)]
    if not members:
        return ""
    inner = pc.binary_join_element_wise(*members, "")
    wrapped = pc.binary_join_element_wise(',"extra":{', pc.utf8_slice_codeunits(inner, 1), "}", "")
    return pc.if_else(pc.equal(inner, ""), pa.array([""] * size, pa.string()), wrapped)


def encode_orders(
    checked: CheckedOrders, *, only: npt.NDArray[np.int64] | None = None
) -> EncodedRows:
    """The order body of every valid row (or of the valid rows at ``only``)."""
    positions = np.flatnonzero(~checked.invalid).astype(np.int64) if only is None else only
    take = pa.array(positions, pa.int64())
    members = checked.members
    customer_ids = checked.customer_ids.take(take)
    order_ids = checked.order_ids.take(take)
    parts: list[pa.Array | str] = [
        '{"customerId":', json_strings(customer_ids), ',"orderId":', json_strings(order_ids),
        ',"orderDate":"', members["orderDate"].take(take), '","totalPaid":',
        members["totalPaid"].take(take),
    ]  # fmt: skip
    parts += [
        _member(wire, members[wire].take(take))
        for wire in (*_AMOUNTS, *_TEXTS, "guest")
        if wire in members
    ]
    parts.append(_extra_member(checked.extras, take, len(positions)))
    for key, values in (("email", checked.emails), ("mobile", checked.mobiles)):
        if values is not None:
            parts.append(_member(key, json_strings(values.take(take))))
    parts.append("}")
    empty = pa.array([], pa.string())
    bodies = pc.binary_join_element_wise(*parts, "") if len(positions) else empty
    ids: list[str | None] = order_ids.to_pylist()
    return EncodedRows(
        positions=positions, customer_ids=customer_ids.to_pylist(),
        bodies=bodies.cast(pa.binary()).to_pylist(), session_tokens=None,
        plain=np.ones(len(positions), dtype=bool), order_ids=ids,
    )  # fmt: skip


def _split(only: Positions | None, at: Positions) -> Positions | None:
    """The positions of ``only`` within a part whose rows are at ``at``."""
    if only is None:
        return None
    return np.flatnonzero(np.isin(at, only)).astype(np.int64)


def _joined(pieces: Iterator[tuple[npt.NDArray[np.int64], EncodedRows]]) -> EncodedRows:
    """Encoded parts of a frame (each with its rows' positions in the frame) in input order."""
    positions, customers, bodies, tokens, plain, order_ids = [], [], [], [], [], []
    for at, part in pieces:
        positions.append(at[part.positions])
        customers += part.customer_ids
        bodies += part.bodies
        tokens += part.session_tokens or [None] * len(part)
        plain.append(part.plain)
        order_ids += part.order_ids or [None] * len(part)
    every = np.concatenate(positions).astype(np.int64)
    order = np.argsort(every, kind="stable").tolist()
    return EncodedRows(
        positions=every[order], customer_ids=[customers[i] for i in order],
        bodies=[bodies[i] for i in order], session_tokens=[tokens[i] for i in order],
        plain=np.concatenate(plain)[order], order_ids=[order_ids[i] for i in order],
    )  # fmt: skip


def encode_checked(
    df: pd.DataFrame, checked: CheckedFrame, *, only: npt.NDArray[np.int64] | None = None
) -> EncodedRows:
    """The request body of every valid row of ``df`` (or of those at ``only``), whatever the
    rows are: events, orders, or both (see :func:`check_rows`)."""
    if isinstance(checked, CheckedMixed):
        events = encode_rows(df.iloc[checked.events_at], checked.events,
                             only=_split(only, checked.events_at))  # fmt: skip
        orders = encode_orders(checked.orders, only=_split(only, checked.orders_at))
        return _joined(iter([(checked.events_at, events), (checked.orders_at, orders)]))
    if isinstance(checked, CheckedOrders):
        return encode_orders(checked, only=only)
    return encode_rows(df, checked, only=only)


def is_order(encoded: EncodedRows) -> BoolArray:
    """Which encoded rows are orders."""
    if encoded.order_ids is None:
        return np.zeros(len(encoded), dtype=bool)
    return np.array([order_id is not None for order_id in encoded.order_ids], dtype=bool)
