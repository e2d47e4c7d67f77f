"""A row's loose identity: what it says, whatever way its values were written.

A row's ledger key hashes exactly what would be sent (see :mod:`gb_backfill._rows.keys`), so the
same event exported twice in different formats gets two keys: a CSV keeps timestamps and numbers as
text (``"2024-01-01 00:06:21+00:00"``, ``"12.50"``), and writes an empty string as an empty field.
Sending the second export would award every event twice. The loose identity makes them meet:

* the customer id, exactly, and the event name folded (:func:`folded_names`: ``Purchase``,
  ``PURCHASE`` and ``purchase`` in full-width letters are one name), so a row sent again under
  another spelling of its event is refused as changed, never sent twice;
* each metadata value reduced to a canonical form: numbers (typed, or text such as ``12.50``,
  ``1e3``, ``7,029.78`` or, with a decimal comma, ``2.277,83``) as one float text where float64
  carries them exactly, else as their exact digits (an int64 or uint64 id beyond 2**53, a
  decimal with more than 17 digits: the wire carries them exactly, so they are told apart
  exactly); booleans (typed, or ``true``/``false`` in any case); timestamps (typed, or
  ISO-8601 text) as the instant in UTC, a naive one read as UTC; dates; any other text as it
  is;
* empty text and missing values alike: left out;
* email and mobile are not part of it: they say who the customer is, not what happened.

The metadata values are combined in the order of their keys, not of the columns. Each row also
gets a *form mask*: one bit per metadata key (its name hashed to 0-63) set where the value was
written loosely (text read as a number, boolean or timestamp, or empty text), and one for an
event name that folding changes. Comparing two rows' masks says which columns differ in form,
to show the user.

Like the exact keys, loose keys tell apart identical rows by their occurrence (the first, the
second, ...), so a third identical event is not mistaken for the second one sent again.

Ledgers created before names were folded hold loose keys made with the name as written. A name
folding leaves as it is hashes the same both ways, so only a row whose name folding changes
gets a second, *former* key (the name as written) to look up as well (:func:`loose_keys`), and
only with such a ledger (a new one notes that it reads names folded). Which rows old ledgers
match is thus unchanged, and no ledger is rewritten.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import shlex
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import Written
from .keys import RowKeyMaker
from .mapping import ColumnMapping
from .payloads import EncodedRows
from .rules import CheckedFrame
from .spellings import folded
from .values import to_arrow

__all__: list[str] = []

Hashes = npt.NDArray[np.uint64]  # shape (rows, 2)

_SALTS = ("gb-backfill-lse1", "gb-backfill-lse2")  # pandas wants 16-character hash keys
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
# Thousands grouped by commas or spaces: 7,029.78, 1 234 567.
_GROUPED = r"^\s*[-+]?\d{1,3}([, \x{a0}\x{202f}]\d{3})+(\.\d+)?\s*$"
# A decimal comma, as regional Excel writes: 99,16, 2.277,83, 1 234,5. (Three digits after a
# lone comma, 1,234, read as thousands above.)
_DECIMAL_COMMA = r"^\s*[-+]?(\d+|\d{1,3}([. \x{a0}\x{202f}]\d{3})+),\d+\s*$"
_BOOL = r"(?i)^\s*(true|false)\s*$"
_DATE = r"^\s*\d{4}-\d{2}-\d{2}\s*$"
_TIMESTAMP = r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
_MICROS = {"s": 10**6, "ms": 10**3, "us": 1, "ns": 1}
_FLOAT_EXACT = 2**53  # integers up to this size are exact in float64


def key_bit(key: str) -> int:
    """The bit of a metadata key in a form mask."""
    return 1 << (zlib.crc32(key.encode("utf-8", "surrogatepass")) % 64)


#: The form mask's bit of an event name that folding changes (``Purchase``); it may share its
#: bit with a metadata key, as keys may with each other: a message names one column more.
NAME_BIT = key_bit("\x00event name")


def _numbers(array: pa.Array) -> pa.Array:
    floats = pc.add(pc.cast(array, pa.float64()), 0.0)  # -0.0 reads as 0
    return pc.binary_join_element_wise("n:", pc.cast(floats, pa.string()), "")


def _number_text(value: decimal.Decimal) -> str | None:
    """The canonical text of the number whose exact value is ``value``: its float text when
    float64 carries it exactly (the float's shortest text is this value), else its exact
    digits. Never through float64 alone: 2**53 + 1 and 2**53 are two numbers."""
    if value.is_nan():
        return None
    number = float(value)
    if math.isfinite(number) and decimal.Decimal(repr(number)) == value:
        return _numbers(pa.array([number], pa.float64()))[0].as_py()  # type: ignore[no-any-return]
    # Not normalize(): it rounds to the context's 28 digits.
    sign, digits, exponent = value.as_tuple()
    text = "".join(map(str, digits)).lstrip("0")
    stripped = text.rstrip("0")
    assert isinstance(exponent, int)  # finite
    return f"n:{'-' if sign else ''}{stripped}e{exponent + len(text) - len(stripped)}"


def _replaced(out: pa.Array, where: npt.NDArray[np.bool_], texts: list[str | None]) -> pa.Array:
    return pc.replace_with_mask(out, pa.array(where), pa.array(texts, pa.string()))


def _integers(array: pa.Array) -> pa.Array:
    """Canonical text of an integer array: beyond 2**53 (rare: ids), exactly."""
    if array.type not in (pa.int64(), pa.uint64()):
        return _numbers(array)  # narrower integers are all exact in float64
    big = pc.greater(array, pa.scalar(_FLOAT_EXACT, array.type))
    if array.type == pa.int64():
        big = pc.or_(big, pc.less(array, pa.scalar(-_FLOAT_EXACT, array.type)))
    where = _where(big)
    if not where.any():
        return _numbers(array)
    exact = [_number_text(decimal.Decimal(v)) for v in array.filter(pa.array(where)).to_pylist()]
    small = pc.if_else(pa.array(where), pa.scalar(0, array.type), array)
    return _replaced(_numbers(small), where, exact)


def _numeric_texts(digits: pa.Array) -> pa.Array:
    """Canonical text of numbers written as text (no grouping): through float64 when they have
    at most 15 significant digits (float64 tells every such number apart), else exactly."""
    mantissa = pc.replace_substring_regex(digits, r"[eE].*$", "")
    significant = pc.replace_substring_regex(
        pc.replace_substring_regex(mantissa, r"[^0-9]", ""), r"^0+|0+$", ""
    )
    long = _where(pc.greater(pc.utf8_length(significant), 15))
    if not long.any():
        return _numbers(digits)
    exact = [
        _number_text(decimal.Decimal(text.strip()))
        for text in digits.filter(pa.array(long)).to_pylist()
    ]
    short = pc.if_else(pa.array(long), "0", digits)
    return _replaced(_numbers(short), long, exact)


def _instants(micros: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise("t:", pc.cast(micros, pa.string()), "")


def _typed(array: pa.Array) -> pa.Array:
    """Canonical text of a typed Arrow array (null where there is no value)."""
    kind = array.type
    if pa.types.is_boolean(kind):
        return pc.if_else(array, "b:true", "b:false")
    if pa.types.is_integer(kind):
        return _integers(array)
    if pa.types.is_decimal(kind):
        return _numeric_texts(pc.cast(array, pa.string()))  # a decimal's text is exact
    if pa.types.is_floating(kind):
        return _numbers(array)
    if pa.types.is_timestamp(kind):
        ticks = pc.cast(pc.cast(array, pa.timestamp(kind.unit)), pa.int64())
        scale = _MICROS[kind.unit]
        micros = pc.divide(ticks, 1000) if kind.unit == "ns" else pc.multiply(ticks, scale)
        return _instants(micros)
    if pa.types.is_date(kind):
        return pc.binary_join_element_wise("d:", pc.cast(array, pa.string()), "")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text(array.cast(pa.string()))[0]
    return pc.binary_join_element_wise("x:", pc.cast(array, pa.string()), "")


def _text(text: pa.Array) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Canonical text of strings, and where a value was reread (written loosely)."""
    size = len(text)
    out = pc.binary_join_element_wise("s:", text, "")
    loose = np.zeros(size, dtype=bool)
    blank = _where(pc.equal(pc.utf8_trim_whitespace(text), ""))
    grouped = _where(pc.match_substring_regex(text, _GROUPED))
    plain = _where(pc.match_substring_regex(text, _NUMBER))
    comma = _where(pc.match_substring_regex(text, _DECIMAL_COMMA)) & ~grouped
    if plain.any() or grouped.any() or comma.any():
        digits = pc.replace_substring_regex(text, r"[, \x{a0}\x{202f}]", "")
        # A decimal comma's number: its grouping marks out, its comma a point.
        regional = pc.replace_substring(
            pc.replace_substring_regex(text, r"[. \x{a0}\x{202f}]", ""), ",", "."
        )
        digits = pc.if_else(pa.array(comma), regional, digits)
        numeric = plain | grouped | comma
        parsed = _numeric_texts(pc.if_else(pa.array(numeric), digits, "0"))
        out = pc.if_else(pa.array(numeric), parsed, out)
        loose |= numeric
    booleans = _where(pc.match_substring_regex(text, _BOOL))
    if booleans.any():
        lower = pc.utf8_lower(pc.utf8_trim_whitespace(text))
        out = pc.if_else(pa.array(booleans), pc.binary_join_element_wise("b:", lower, ""), out)
        loose |= booleans
    dates = _where(pc.match_substring_regex(text, _DATE))
    if dates.any():
        day = pc.binary_join_element_wise("d:", pc.utf8_trim_whitespace(text), "")
        out = pc.if_else(pa.array(dates), day, out)
        loose |= dates
    stamps = _where(pc.match_substring_regex(text, _TIMESTAMP))
    if stamps.any():
        where = np.flatnonzero(stamps)
        parsed_stamps = pd.to_datetime(
            pd.Series(text.take(pa.array(where)).to_pylist()),
            utc=True,
            format="ISO8601",
            errors="coerce",
        )
        good = parsed_stamps.notna().to_numpy()
        micros = parsed_stamps.dt.as_unit("us").astype("int64").to_numpy()
        values = out.to_pylist()
        for position, ok, value in zip(where, good, micros, strict=True):
            if ok:
                values[position] = f"t:{value}"
                loose[position] = True
        out = pa.array(values, pa.string())
    out = pc.if_else(pa.array(blank), pa.nulls(size, pa.string()), out)
    return out, loose | blank


def _where(mask: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _python_value(value: Any) -> tuple[str | None, bool]:
    """Canonical text of one Python value (mixed object columns), and whether it was reread."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None, False
    if isinstance(value, str):
        text, loose = _text(pa.array([value], pa.string()))
        return text[0].as_py(), bool(loose[0])
    if isinstance(value, bool | np.bool_):
        return ("b:true" if value else "b:false"), False
    if isinstance(value, int | np.integer | decimal.Decimal):
        exact = decimal.Decimal(int(value) if isinstance(value, np.integer) else value)
        return _number_text(exact), False
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None, False
        return _numbers(pa.array([number], pa.float64()))[0].as_py(), False
    if isinstance(value, dt.datetime | np.datetime64):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return f"t:{stamp.value // 1000}", False
    if isinstance(value, dt.date):
        return f"d:{value.isoformat()}", False
    return f"x:{value!r}", False


def canonical(series: pd.Series) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Each value of a metadata column in its canonical form (null: no value), and where the
    value was written loosely."""
    array = to_arrow(series)
    if array is not None:
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            return _text(array.cast(pa.string()))
        return _typed(array), np.zeros(len(series), dtype=bool)
    pairs = [_python_value(value) for value in series]
    texts = pa.array([text for text, _ in pairs], pa.string())
    return texts, np.fromiter((loose for _, loose in pairs), dtype=bool, count=len(pairs))


def _hash(texts: npt.NDArray[np.object_]) -> Hashes:
    return np.stack([pd.util.hash_array(texts, hash_key=salt) for salt in _SALTS], axis=1)


def folded_names(written: pa.Array) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Event names as the loose identity reads them: folded as the ``event_name_variants``
    warning folds them (:func:`~gb_backfill._rows.spellings.folded`: NFKC, lower case, spaces
    trimmed and runs of them one); and where that differs from the name as written."""
    names = folded(written)
    return names, _where(pc.not_equal(names, written))


def loose_hashes(
    frame: pd.DataFrame,
    positions: npt.NDArray[np.int64],
    mapping: ColumnMapping,
    customer_ids: Sequence[str],
    event_names: Sequence[str],
    *,
    former: bool = True,
) -> tuple[Hashes, npt.NDArray[np.int64], Hashes, npt.NDArray[np.bool_]]:
    """The loose identity hash (rows x 2) and the form mask of the rows at ``positions``, and
    (``former``) the former hashes (the event name as written) of the rows whose name folding
    changes, with where they are.

    Each row's canonical text is its customer and folded event name, then one member per
    metadata key in sorted order (empty where there is no value), hashed once.
    """
    rows = frame.iloc[positions]
    size = len(positions)
    forms = np.zeros(size, dtype=np.uint64)
    parts: list[pa.Array | str] = []
    for key, column in sorted(zip(mapping.metadata_keys, mapping.metadata, strict=True)):
        texts, loose = canonical(rows[column])
        parts.append(pc.binary_join_element_wise(f"\x1d{key}\x1f", texts, "").fill_null(""))
        forms[loose] |= np.uint64(key_bit(key))
    if not size:
        empty = np.zeros((0, 2), dtype=np.uint64)
        return empty, forms.view(np.int64), empty, np.zeros(0, dtype=bool)
    customers = pa.array(list(customer_ids), pa.string())
    written = pa.array(list(event_names), pa.string())
    folded, refolded = folded_names(written)
    forms[refolded] |= np.uint64(NAME_BIT)
    who = pc.binary_join_element_wise(customers, folded, "\x1e")
    text = pc.binary_join_element_wise(who, *parts, "")
    earlier = np.zeros((0, 2), dtype=np.uint64)
    if former and refolded.any():
        where = pa.array(np.flatnonzero(refolded))
        who = pc.binary_join_element_wise(customers.take(where), written.take(where), "\x1e")
        members = [part.take(where) for part in parts if isinstance(part, pa.Array)]
        earlier = _hash(
            pc.binary_join_element_wise(who, *members, "").to_numpy(zero_copy_only=False)
        )
    hashes = _hash(text.to_numpy(zero_copy_only=False))
    return hashes, forms.view(np.int64), earlier, refolded


@dataclass(frozen=True, slots=True)
class LooseKeys:
    """The loose keys and form masks of a chunk's keyed rows, and the former keys (made with
    the event name as written, as ledgers written before names were folded hold them) of the
    rows whose name folding changes: key index -> former key."""

    keys: list[bytes]
    forms: npt.NDArray[np.int64]
    former: dict[int, bytes] = field(default_factory=dict)


def loose_keys(
    frame: pd.DataFrame,
    checked: CheckedFrame,
    encoded: EncodedRows,
    maker: RowKeyMaker,
    *,
    former: bool = True,
) -> LooseKeys:
    """The loose keys of the encoded rows of ``frame``, counted by ``maker`` (the run's, so
    that occurrences number across the whole input); their former keys only with ``former``
    (a ledger created before names were folded: :meth:`Ledger.keeps_names_as_written`)."""
    hashes, forms, earlier_hashes, refolded = loose_hashes(
        frame,
        encoded.positions,
        checked.mapping,
        encoded.customer_ids,
        checked.event_names_at(encoded.positions),
        former=former,
    )
    keys = maker.occurrence_keys(hashes)
    # A name as written hashes apart from every folded one: its occurrences count as before.
    earlier = maker.occurrence_keys(earlier_hashes)
    where = np.flatnonzero(refolded).tolist() if former else []
    return LooseKeys(keys, forms, dict(zip(where, earlier, strict=True)))


def differing_columns(mapping: ColumnMapping, now: int, then: int) -> list[str]:
    """The event name's and metadata columns whose form differs between two rows with these
    form masks. None may: the values are the same as far as they show (the exact text, an
    email or a mobile may differ; or the row is an export's copy of a row whose fixed copy,
    from a failures file, was sent)."""
    differ = now ^ then
    named = [str(mapping.event_name)] if differ & NAME_BIT and mapping.event_name else []
    columns = [
        str(c)
        for k, c in zip(mapping.metadata_keys, mapping.metadata, strict=True)
        if differ & key_bit(k)
    ]
    return named + columns


@dataclass(slots=True)
class ChangedRows:
    """Rows that look like rows an earlier run sent, but differ in how they are written."""

    count: int = 0
    columns: dict[str, None] = field(default_factory=dict)  #: columns that differ, in order
    alike: int = 0  #: rows that differ in no column's form (see :func:`differing_columns`)
    examples: list[dict[str, object]] = field(default_factory=list)
    #: every changed row, a frame per chunk: its position, customer, event and the columns
    #: that differ
    parts: list[pd.DataFrame] = field(default_factory=list)
    #: per differing column, the types its values (as text) would read as: what ``dtype=``
    #: would make them match the rows sent (None: a value that is not text of one type)
    kinds: dict[str, set[str | None]] = field(default_factory=dict)
    event_name: str | None = None  #: the event name's column, when a row's spelling differs

    def add(
        self,
        frame: pd.DataFrame,
        offset: int,
        mapping: ColumnMapping,
        rows: dict[int, tuple[int, int]],
    ) -> None:
        """Note rows of ``frame``: ``rows`` maps each one's position to (its form mask, the
        form mask of the earlier row it looks like)."""
        named = [c for c in (mapping.customer_id, mapping.event_name) if c is not None]
        seen: dict[str, None] = {}
        for position, (now, then) in rows.items():
            self.count += 1
            differ = differing_columns(mapping, now, then)
            self.alike += not differ
            if mapping.event_name is not None and str(mapping.event_name) in differ:
                self.event_name = str(mapping.event_name)
            self.columns.update(dict.fromkeys(differ))
            seen.update(dict.fromkeys(differ))
            shown = named + [c for c in mapping.metadata if str(c) in differ]
            for column in shown[len(named) :]:
                self.kinds.setdefault(str(column), set()).add(
                    text_kind(frame[column].iloc[position])
                )
            if len(self.examples) < _SHOWN:
                example: dict[str, object] = {"row": offset + position}
                for column in shown:
                    example[str(column)] = frame[column].iloc[position]
                self.examples.append(example)
        if rows:
            columns = named + [c for c in mapping.metadata if str(c) in seen]
            part = frame.iloc[list(rows)][columns].copy()
            part.columns = [str(c) for c in columns]
            part.insert(0, "row", [offset + position for position in rows])
            self.parts.append(part)

    def frame(self) -> pd.DataFrame:
        """A few of the rows, with their customer, event and the columns that differ."""
        return pd.DataFrame(self.examples)

    def every(self) -> pd.DataFrame:
        """Every changed row, with its customer, event and the columns that differ."""
        if not self.parts:
            return self.frame()
        return pd.concat(self.parts, ignore_index=True)

    def dtype_fix(self) -> dict[str, str]:
        """The ``dtype=`` that reads every differing column as the earlier run sent it, when
        one does: each column's values all text of one type (else empty)."""
        fix: dict[str, str] = {}
        if self.alike:  # no reading makes rows alike in every column match
            return fix
        for column in self.columns:
            kinds = self.kinds.get(column, {None})
            if kinds == {"int", "float"}:
                kinds = {"float"}
            kind = next(iter(kinds)) if len(kinds) == 1 else None
            if kind is None:
                return {}
            fix[column] = kind
        return fix

    def message(
        self, read_before: Mapping[str, object] | None = None, *, sending: int = 0
    ) -> tuple[str, dict[str, object]]:
        """The refusal: a template naming ``resend_changed=`` (and ``dtype=`` when it would
        make them match, or every read option this input was sent with, ``read_before``, when
        it was read another way now: then the ``sending`` rows it would send are suspect too),
        as each face names them, and its values."""
        values: dict[str, object] = {"count": self.count, "columns": ", ".join(self.columns)}
        template = self._what() if self.count else ""
        if read_before:
            # The whole fix: a trial re-sent its export without the flags it was sent with,
            # dropped the rows refused, and sent its n/a rows twice (n/a had been missing, so
            # they looked new, not changed).
            rows = (
                "row it would send now may be a row"
                if sending == 1
                else "rows it would send now may be rows"
            )
            template += (
                "this input was sent before read another way, so the {sending:,} " + rows + " it "
                "sent then, read otherwise (a text such as n/a that was missing). "
                + ("Read" if self.count else "Nothing was sent: read")  # said once
                + " it as then, "
                + " ".join("{" + name + "=*}" for name in read_before)
                + ", and the run skips the rows it sent; or, if that reading was wrong, send the "
                "rows as read now with {resend_changed=True} (rows that read the same either "
                "way are skipped still)."
            )
            values["sending"] = sending
            values.update({name: written_option(name, v) for name, v in read_before.items()})
            return template, values
        fix = self.dtype_fix()
        if fix:
            template += (
                "read them as the earlier run sent them, and the run skips them as sent: "
                "{dtype=*}; or "
            )
            python = f"{fix!r} (a file's; a DataFrame's columns converted in pandas)"
            values["dtype"] = Written(python, written_option("dtype", fix).cli)
        template += (
            "drop them from the input (the examples show which), or send them anyway with "
            "{resend_changed=True}."
        )
        return template, values

    def _what(self) -> str:
        """What the changed rows are, and why they are not sent."""
        twice = ". Sending them would award them twice, so nothing was sent: "
        # No column differs in form: a trial's export, sent after its fixed failures file, was
        # told its rows were "written differently" when they were not.
        alike = (
            "the same customer, event and values as rows an earlier run with this ledger sent, "
            "under other keys: as an export's row and its fixed copy from a failures file do, "
            "or rows that differ only in email, mobile or the exact text of a value"
        )
        if not self.columns:
            return "{count:,} " + ("row has " if self.count == 1 else "rows have ") + alike + twice
        named = ", or with the event name spelt otherwise (case, spaces, width)"
        # Said apart from the columns (a trial read "(email, mobile, or how a value is
        # written, activity)" as one list of columns).
        also = f"; {self.alike:,} of them have {alike}" if self.alike else ""
        return (
            rows_look_like(self.count)
            + " an earlier run with this ledger sent, written differently "
            "({columns}): the same customer, event and values, but as text, or empty where "
            "they were missing" + (named if self.event_name is not None else "") + also + twice
        )  # fmt: skip


def rows_look_like(count: int) -> str:
    """``count`` changed rows, said as the refusal, the dry run and its headline say them."""
    return f"{count:,} " + ("row looks like a row" if count == 1 else "rows look like rows")


def written_option(name: str, value: object) -> Written:
    """A read option's value as each face writes it."""
    if name == "dtype" and isinstance(value, Mapping):
        cli = " --dtype ".join(shlex.quote(f"{c}={k}") for c, k in value.items())
    elif isinstance(value, list):
        cli = shlex.quote(",".join(map(str, value)))
    elif isinstance(value, str) and len(value) == 1 and not value.isalnum() and value != "'":
        # Quoted though the shell needs no quotes: a bare , or . ran into the sentence's own
        # punctuation ("read it as then, --decimal , --dtype ...").
        cli = f"'{value}'"
    else:
        cli = shlex.quote(str(value))
    return Written(repr(value), cli)


_TEXT_KINDS = (
    ("int", r"^[-+]?[0-9]+$"),
    ("float", r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"),
    ("bool", r"(?i)^(true|false)$"),
    ("datetime", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.,]+\s*(Z|z|[-+][0-9:]+)?)?$"),
)


def text_kind(value: object) -> str | None:
    """The type a text value reads as (``"datetime"`` for ``2024-01-01T10:00:00Z``); None for
    a value that is not text or reads as none."""
    if not isinstance(value, str):
        return None
    return next((kind for kind, pattern in _TEXT_KINDS if re.match(pattern, value)), None)


_SHOWN = 5  # example rows a refusal shows
