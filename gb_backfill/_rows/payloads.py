"""Gameball v4 event payloads, built as JSON text a column at a time.

One row becomes one request body::

    {"customerId": "c-1", "events": {"purchase": {"amount": 9.5}}, "email": "a@b.co"}

The body is assembled from per-column JSON fragments with Arrow string kernels, so no dict is
built and no ``json.dumps`` runs per row. The text is strict JSON: never NaN or Infinity.

The text is canonical: metadata keys in sorted order, each value written by a rule that looks at
that value alone. So a row's body depends on the row only, never on its chunk, its neighbours or
the order of the columns, and the ledger can key rows by it (see :mod:`.keys`).

The public :func:`~gb_backfill.payloads` is in :mod:`gb_backfill._validate`.
"""

from __future__ import annotations

import decimal
import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .rules import CheckedFrame
from .values import json_strings, json_values

__all__ = ["EncodedRows", "encode_rows", "exact_number"]


@dataclass(frozen=True, slots=True)
class EncodedRows:
    """Request bodies for the valid rows of one frame, in input order.

    ``positions`` are the rows' positions in the frame, so every body maps back to its row.
    """

    positions: npt.NDArray[np.int64]
    customer_ids: list[str]
    bodies: list[bytes]
    session_tokens: list[str | None] | None
    #: True where the body is only ``customerId`` and ``events`` and no session token goes with
    #: it: what a batch item can carry
    plain: npt.NDArray[np.bool_]
    #: each row's order id where it is an order (see :mod:`.orders`), None for an event; None
    #: when every row is an event
    order_ids: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.bodies)


def _member(key: str, values: pa.Array) -> pa.Array:
    """``,"key":value`` for each present value, "" where it is missing."""
    prefix = "," + json.dumps(key, ensure_ascii=False) + ":"
    fragment = pc.binary_join_element_wise(prefix, values, "")
    return fragment.fill_null("")


def encode_rows(
    df: pd.DataFrame, checked: CheckedFrame, *, only: npt.NDArray[np.int64] | None = None
) -> EncodedRows:
    """Build the request body of every valid row of ``df``, or of the valid rows at positions
    ``only`` (the preview encodes just the rows it samples; a body does not depend on the
    other rows)."""
    mapping = checked.mapping
    positions = np.flatnonzero(~checked.invalid).astype(np.int64) if only is None else only
    take = pa.array(positions)
    valid = df.iloc[positions]

    # Each metadata member starts with a comma; the leading one is cut off after joining, so
    # missing values need no separator bookkeeping.
    ordered = sorted(zip(mapping.metadata_keys, mapping.metadata, strict=True))
    members = [_member(key, json_values(valid[column])) for key, column in ordered]
    metadata = (
        pc.utf8_slice_codeunits(pc.binary_join_element_wise(*members, ""), 1)
        if members
        else pa.array([""] * len(positions), pa.string())
    )
    if mapping.event is not None:
        names: pa.Array | str = json.dumps(mapping.event, ensure_ascii=False)
    else:
        assert checked.event_names is not None
        names = json_strings(checked.event_names.take(take))
    customer_ids = checked.customer_ids.take(take)
    parts: list[pa.Array | str] = [
        '{"customerId":',
        json_strings(customer_ids),
        ',"events":{',
        names,
        ":{",
        metadata,
        "}}",
    ]
    for key, values in (("email", checked.emails), ("mobile", checked.mobiles)):
        if values is not None:
            parts.append(_member(key, json_strings(values.take(take))))
    parts.append("}")
    bodies = pc.binary_join_element_wise(*parts, "")
    tokens = checked.session_tokens
    return EncodedRows(
        positions=positions,
        customer_ids=customer_ids.to_pylist(),
        bodies=bodies.cast(pa.binary()).to_pylist(),
        session_tokens=None if tokens is None else tokens.take(take).to_pylist(),
        plain=checked.plain(positions),
    )


def exact_number(text: str) -> float | decimal.Decimal:
    """A JSON number with a fraction or exponent as a float when a float holds exactly that
    number, else as a Decimal (``12345678901234567.89`` would read ``1.2345678901234568e+16``)."""
    number = float(text)
    if decimal.Decimal(repr(number)) == decimal.Decimal(text):
        return number
    return decimal.Decimal(text)
