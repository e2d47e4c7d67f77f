"""Warnings: values that are valid but almost never what was meant, and rows that repeat.

A row with a warning is still sent. Each warning names the column, a stable code from
:class:`WarningCode`, how many values it is about, one of them, and the fix in words:

* ``number_as_text``: every value of a text metadata column is a number (``"7,029.78"``,
  ``"1 234"``, ``"12.5"``), so Gameball gets strings; or all but at most 1% of them, which the
  warning names (``"n/a"`` among thousands of amounts);
* ``bool_as_text``: every value is ``true`` or ``false`` as text;
* ``timestamp_as_text``: every value is an ISO-8601 date or timestamp, sent as written;
* ``mixed_offsets``: those timestamps have different UTC offsets (``+02:00`` and ``+03:00`` across
  a daylight-saving change), or some have one and some not, so equal instants read differently;
* ``id_mixed_widths``: the customer ids are digits of different widths with zero-padded ones
  among them (``0012`` next to ``12345``): Gameball sees ``0012`` and ``12`` as two customers;
* ``event_name_variants``: one event name in several spellings that differ only in case, spaces
  or character width (``purchase``, ``Purchase``, ``PURCHASE ``): Gameball's campaigns count
  them as different events. One warning per name, with the rows of each spelling;
* ``id_variants``: customer ids in several such spellings (``C12``, ``c12``): Gameball sees
  different customers. One warning for the column, with the ids' count and examples (counted in
  fixed memory, see :mod:`gb_backfill._rows.spellings`);
* ``duplicate_rows`` (about rows, not a column): valid rows that repeat an earlier row in every
  column sent. Each is still sent, as an event of its own (two identical purchases may be two
  purchases), but an export's duplicates would be counted twice: the warning gives the count
  and the first positions (as ``gb_row``). Rows that carry a ``gb_key`` are copies of one row
  (see :mod:`gb_backfill._engine.fate`), not duplicates, and are left out. A send and its dry run
  know them from the row keys (identical request bodies, counted anyway); ``validate`` and the
  preview compare the values of the sent columns, which agree but for values written two ways that
  send alike (``3`` and ``3.0`` in one object column).

"Every value" is over the whole input: :class:`WarningTally` gathers the warnings chunk by
chunk. The checks are Arrow kernels over whole columns, and a column is first tried on a small
sample, so columns that are plainly text cost next to nothing; rows are compared by a 64-bit hash
of their sent columns, counted in fixed memory (:class:`~gb_backfill._rows.keys.RowKeyMaker`, with
an 8 MB filter).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._vocabulary import WarningCode
from .keys import RowKeyMaker, carried_flags
from .mapping import ColumnMapping
from .spellings import Spellings, Variants
from .values import identifier_strings, plain_column, to_arrow

__all__: list[str] = []

#: The fixed columns of ``ValidationReport.warnings``.
WARNING_COLUMNS = ("column", "code", "count", "example", "message")

_SAMPLE = 200  # values a column is first tried on
_SEPARATED = r"[,\s\x{a0}\x{202f}]"  # thousands separators: comma, space, no-break spaces
_POINT_NUMBER = (
    r"^[-+]?(0|[1-9][0-9]{0,2}(" + _SEPARATED + r"[0-9]{3})+|[1-9][0-9]*)?(\.[0-9]+)?"
    r"([eE][-+]?[0-9]+)?$"
)
#: A decimal comma, as much of Europe writes numbers (``570,30``, ``1.299,50``, ``1 299,50``);
#: ``1,299`` alone is read as a thousands comma.
_COMMA_NUMBER = (
    r"^[-+]?((0|[1-9][0-9]{0,2})([.\s\x{a0}\x{202f}][0-9]{3})+,[0-9]+"
    r"|(0|[1-9][0-9]*),([0-9]{1,2}|[0-9]{4,}))$"
)
_NUMBER = f"({_POINT_NUMBER})|({_COMMA_NUMBER})"
_BOOL = r"(?i)^(true|false)$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?"
    r"\s*(Z|z|[-+][0-9]{2}(:?[0-9]{2})?)?)?$"
)
_OFFSET = r"(?P<offset>[Zz]|[-+][0-9]{2}:?[0-9]{2}|[-+][0-9]{2})$"
_TIME = r"[T ][0-9]{2}:[0-9]{2}"


_LOOKS = {
    WarningCode.NUMBER_AS_TEXT: _NUMBER,
    WarningCode.BOOL_AS_TEXT: _BOOL,
    WarningCode.TIMESTAMP_AS_TEXT: _TIMESTAMP,
}


#: The share of a column's values that may be something else and the column still be warned
#: about: an export's amounts with one "n/a" among thousands are still amounts written as text.
_TOLERATED = {WarningCode.NUMBER_AS_TEXT: 0.01}
_MISSES_KEPT = 10_000


@dataclass(slots=True)
class _Look:
    """Whether the values of a text column seen so far look like one kind of value: every one,
    or all but a tolerated few (``misses``)."""

    code: WarningCode
    alive: bool = True
    count: int = 0  # the values that look like it
    example: str | None = None
    misses: int = 0  # the values that do not
    miss_example: str | None = None

    @property
    def tolerated(self) -> int:
        """The misses allowed among the values seen so far."""
        return int((self.count + self.misses) * _TOLERATED.get(self.code, 0.0))

    def look(self, present: pa.Array, *, sample: bool) -> None:
        """Look at the present values of a chunk (or of its first few, ``sample``, which only
        ends a look that cannot hold: more than half of them something else)."""
        matched = pc.match_substring_regex(present, _LOOKS[self.code])
        hits = int(pc.sum(matched).as_py() or 0)
        if sample:
            self.alive = hits == len(present) or (
                self.code in _TOLERATED and 2 * hits > len(present)
            )
            return
        self.count += hits
        self.misses += len(present) - hits
        if hits and self.example is None:
            self.example = str(pc.filter(present, matched)[0].as_py())
        if hits < len(present) and self.miss_example is None:
            self.miss_example = str(pc.filter(present, pc.invert(matched))[0].as_py())
        if self.code not in _TOLERATED:
            self.alive = self.misses == 0
        else:
            # A share above the tolerated one may fall back under it as more values come;
            # past _MISSES_KEPT, looking on is not worth a regex per chunk.
            self.alive = self.misses <= max(self.tolerated, _MISSES_KEPT)

    @property
    def holds(self) -> bool:
        """Whether the values seen make a warning."""
        return self.alive and self.count > 0 and self.misses <= self.tolerated


@dataclass(slots=True)
class _TextColumn:
    looks: dict[WarningCode, _Look] = field(
        default_factory=lambda: {code: _Look(code) for code in _LOOKS}
    )
    separated: bool = False  # a number with thousands separators (--thousands reads it)
    decimal_comma: bool = False  # a number with a decimal comma (--decimal reads it)
    offsets: dict[str, str] = field(default_factory=dict)  # offset -> an example
    naive: str | None = None  # a timestamp with a time and no offset

    @property
    def alive(self) -> list[WarningCode]:
        return [code for code, look in self.looks.items() if look.alive]


#: Column names of identifiers, whose digits are text on purpose (``referred_customer_id``,
#: ``orderId``, ``member_no``, ``zip``): never "numbers written as text".
_IDENTIFIER_WORD = re.compile(
    r"(?i)(?:^|[_\W])(?:id|ids|no|nr|num|number|code|zip|postcode|postal|phone|mobile|sku|ean"
    r"|upc)$"
)
_IDENTIFIER_CAMEL = re.compile(r"[a-z0-9](?:Id|ID|Ids|No|Nr|Number|Code|Zip|Phone|Mobile|Sku)$")


def _text_column(column: Hashable) -> _TextColumn:
    state = _TextColumn()
    name = str(column)
    if _IDENTIFIER_WORD.search(name) or _IDENTIFIER_CAMEL.search(name):
        del state.looks[WarningCode.NUMBER_AS_TEXT]
    return state


@dataclass(slots=True)
class _Widths:
    """The widths of all-digit ids, and a zero-padded one."""

    narrowest: int | None = None
    widest: int | None = None
    padded: int = 0
    padded_example: str | None = None
    examples: dict[int, str] = field(default_factory=dict)  # width -> an id of that width


class WarningTally:
    """Gathers the warnings over the chunks of one input, given in input order; :meth:`frame`
    gives them."""

    def __init__(self, mapping: ColumnMapping) -> None:
        self.mapping = mapping
        self._text = {column: _text_column(column) for column in mapping.metadata}
        self._ids = _Widths()
        self._repeats = _Repeats(mapping)
        self._id_spellings = Spellings()
        self._event_spellings = Spellings(1 << 12) if mapping.event_name is not None else None

    def add(
        self,
        frame: pd.DataFrame,
        customer_ids: pa.Array,
        invalid: npt.NDArray[np.bool_] | None = None,
        repeated: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Look at one chunk (its valid and invalid rows alike for the columns; its valid rows,
        ``invalid`` left out, for repeats); ``customer_ids`` are the ids as the checks read them
        (``CheckedFrame.customer_ids``). ``repeated``: the positions of the rows that repeat an
        earlier one, when the caller knows them already (a send's row keys count identical
        request bodies), else the rows' sent columns are compared here."""
        for column, state in self._text.items():
            if state.alive:
                self._add_text(plain_column(frame[column]), state)
        self._add_ids(customer_ids)
        self._add_spellings(frame, customer_ids, invalid)
        self._repeats.add(frame, invalid, repeated)

    def _add_spellings(
        self, frame: pd.DataFrame, ids: pa.Array, invalid: npt.NDArray[np.bool_] | None
    ) -> None:
        """The spellings of the ids and event names of the rows sent (the valid ones)."""
        valid = None if invalid is None or not invalid.any() else pa.array(~np.asarray(invalid))
        self._id_spellings.add(ids if valid is None else ids.filter(valid))
        if self._event_spellings is not None:
            names = identifier_strings(frame[self.mapping.event_name]).text
            self._event_spellings.add(names if valid is None else names.filter(valid))

    def _add_text(self, series: pd.Series, state: _TextColumn) -> None:
        sample = to_arrow(series.iloc[:_SAMPLE])
        if sample is None or not pa.types.is_string(sample.type):
            state.looks = {}  # not a text column: nothing to warn about
            return
        present = pc.drop_null(sample)
        for code in state.alive:
            state.looks[code].look(present, sample=True)
        if not state.alive:
            return
        whole = to_arrow(series)
        present = pc.drop_null(whole) if whole is not None else pa.array([], pa.string())
        if not pa.types.is_string(present.type):
            state.looks = {}
            return
        for code in state.alive:
            state.looks[code].look(present, sample=False)
        number = state.looks.get(WarningCode.NUMBER_AS_TEXT)
        if number is not None and number.alive and len(present):
            comma = pc.match_substring_regex(present, _COMMA_NUMBER)
            point = pc.filter(present, pc.invert(comma))
            state.decimal_comma |= bool(pc.any(comma).as_py())
            state.separated |= bool(pc.any(pc.match_substring_regex(point, _SEPARATED)).as_py())
        if state.looks[WarningCode.TIMESTAMP_AS_TEXT].alive and len(present):
            _add_offsets(present, state)

    def _add_ids(self, ids: pa.Array) -> None:
        digits = pc.filter(ids, pc.ascii_is_decimal(ids).fill_null(False))
        if not len(digits):
            return
        widths = pc.binary_length(digits)
        extremes = pc.min_max(widths)
        low, high = int(extremes["min"].as_py()), int(extremes["max"].as_py())
        state = self._ids
        for width in {low, high} - set(state.examples):
            state.examples[width] = str(pc.filter(digits, pc.equal(widths, width))[0].as_py())
        state.narrowest = low if state.narrowest is None else min(low, state.narrowest)
        state.widest = high if state.widest is None else max(high, state.widest)
        padded = pc.and_(pc.starts_with(digits, "0"), pc.greater(widths, 1))
        found = int(pc.sum(padded).as_py() or 0)
        if found:
            state.padded += found
            state.padded_example = state.padded_example or str(pc.filter(digits, padded)[0].as_py())

    def frame(self) -> pd.DataFrame:
        """The warnings so far: one row per column and code (see ``WARNING_COLUMNS``)."""
        rows = [row for column, state in self._text.items() for row in _text_rows(column, state)]
        rows += _id_rows(self.mapping.customer_id, self._ids)
        if self._event_spellings is not None:
            name = self.mapping.event_name
            rows += [_event_variant_row(name, v) for v in self._event_spellings.variants()]
        rows += _id_variant_rows(self.mapping.customer_id, self._id_spellings)
        rows += self._repeats.warning_rows()
        frame = pd.DataFrame(rows, columns=list(WARNING_COLUMNS))
        return frame.astype({"count": "int64"}) if len(frame) else empty_warnings()


def warning_lines(warnings: pd.DataFrame) -> list[str]:
    """Lines for a terminal: a heading, then each warning with its count, example and fix."""
    if not len(warnings):
        return []
    lines = ["warnings (about values Gameball accepts; no row is held back for them):"]
    for row in warnings.to_dict("records"):
        code, column, example, count = (
            str(row["code"]),
            str(row["column"]),
            str(row["example"]),
            int(row["count"]),
        )
        rows = "1 row" if count == 1 else f"{count:,} rows"
        if code == WarningCode.DUPLICATE_ROWS:
            lines.append(f"  {code}: {rows}, at {example}")
        elif code in (WarningCode.EVENT_NAME_VARIANTS, WarningCode.ID_VARIANTS):
            lines.append(f"  {code} ({column}): {rows} in other spellings, e.g. {example!r}")
        elif code == WarningCode.ID_MIXED_WIDTHS:  # a trial took "1,199 values" for ids
            lines.append(f"  {code} ({column}): {rows} with a zero-padded id, e.g. {example!r}")
        else:
            values = "1 value" if count == 1 else f"{count:,} values"
            lines.append(f"  {code} ({column}): {values}, e.g. {example!r}")
        lines.append(f"    {row['message']}")
    return lines


def empty_warnings() -> pd.DataFrame:
    """A warnings frame with no rows."""
    return _EMPTY.copy()


_EMPTY = pd.DataFrame(
    {name: pd.Series(dtype="int64" if name == "count" else object) for name in WARNING_COLUMNS}
)


def _add_offsets(present: pa.Array, state: _TextColumn) -> None:
    """Record the UTC offsets the timestamps carry, and whether a timed one has none."""
    timed = pc.filter(present, pc.match_substring_regex(present, _TIME))
    if not len(timed):
        return
    offsets = pc.struct_field(pc.extract_regex(timed, _OFFSET), "offset").fill_null("")
    for offset in pc.unique(offsets).to_pylist():
        if offset in state.offsets or (offset == "" and state.naive is not None):
            continue
        example = str(pc.filter(timed, pc.equal(offsets, offset))[0].as_py())
        if offset == "":
            state.naive = example
        elif len(state.offsets) < 3:
            state.offsets[offset] = example


def _text_rows(column: Hashable, state: _TextColumn) -> list[tuple[str, str, int, str, str]]:
    name = str(column)
    rows = []
    for code, look in state.looks.items():
        if not look.holds or look.example is None:
            continue
        if code is WarningCode.TIMESTAMP_AS_TEXT and _mixed(state):
            examples = [*state.offsets.values(), *([state.naive] if state.naive else [])]
            message = _mixed_message(name, examples[:2])
            rows.append((name, str(WarningCode.MIXED_OFFSETS), look.count, examples[0], message))
            continue
        if code is WarningCode.NUMBER_AS_TEXT and state.decimal_comma:
            message = _decimal_comma_message(name)
        else:
            message = _MESSAGES[code](name, state.separated)
        if look.misses:
            others = "1 other value is" if look.misses == 1 else f"{look.misses:,} other values are"
            message += (
                f". {others} not a number (e.g. {look.miss_example!r}): --dtype makes their "
                "rows invalid (dtype_unconvertible), to fix, unless --na-values names them as "
                f"missing (--na-values {look.miss_example}); pd.to_numeric needs errors='coerce'"
            )
        rows.append((name, str(code), look.count, look.example, message))
    return rows


def _mixed(state: _TextColumn) -> bool:
    return len(state.offsets) + (state.naive is not None and bool(state.offsets)) > 1


def _number_message(name: str, separated: bool) -> str:
    text = f"{name!r} holds numbers written as text, which go out as JSON strings: "
    if separated:
        return text + (
            f"with thousands separators, --dtype {name}=float --thousands , reads them (or "
            "--thousands with the separator they use; with a decimal comma also --decimal ,), "
            f"in Python dtype={{{name!r}: 'float'}}, thousands=','; for a DataFrame in pandas: "
            f"df[{name!r}] = pd.to_numeric(df[{name!r}].str.replace(r'[,\\s]', '', regex=True))"
        )
    # Shown on the command line and in Python alike: each face's words, said as such.
    return text + (
        f"--dtype {name}=float reads them, in Python dtype={{{name!r}: 'float'}}; for a "
        f"DataFrame in pandas: df[{name!r}] = pd.to_numeric(df[{name!r}])"
    )


def _decimal_comma_message(name: str) -> str:
    return (
        f"{name!r} holds numbers written with a decimal comma, which go out as JSON strings: "
        f"--dtype {name}=float --decimal , reads them (with --thousands . when they group "
        f"thousands with a dot), in Python dtype={{{name!r}: 'float'}}, decimal=',' (and "
        "thousands='.'); for a DataFrame in pandas: "
        f"df[{name!r}] = pd.to_numeric(df[{name!r}].str.replace('.', '').str.replace(',', '.'))"
    )


def _bool_message(name: str, separated: bool) -> str:
    del separated
    return (
        f"{name!r} holds true/false as text, which goes out as JSON strings: --dtype "
        f"{name}=bool (in Python dtype={{{name!r}: 'bool'}}) reads a file's; for a DataFrame in "
        f"pandas: df[{name!r}] = df[{name!r}].str.lower().map({{'true': True, 'false': False}})"
    )


def _timestamp_message(name: str, separated: bool) -> str:
    del separated
    return (
        f"{name!r} holds timestamps as text, which go out exactly as written: --dtype "
        f"{name}=datetime (in Python dtype={{{name!r}: 'datetime'}}) sends a file's as ISO-8601 "
        f"(in UTC where a value has an offset); for a DataFrame in pandas: "
        f"df[{name!r}] = pd.to_datetime(df[{name!r}], format='ISO8601')"
    )


def _mixed_message(name: str, examples: list[str]) -> str:
    shown = " and ".join(repr(e) for e in examples)
    return (
        f"{name!r} holds timestamps with different UTC offsets or none ({shown}), which go out "
        f"as written, so one instant reads differently: --dtype {name}=datetime (in Python "
        f"dtype={{{name!r}: 'datetime'}}) converts a file's to UTC; for a DataFrame in pandas: "
        f"df[{name!r}] = pd.to_datetime(df[{name!r}], utc=True, format='ISO8601'); give the "
        "ones without an offset one"
    )


_MESSAGES = {
    WarningCode.NUMBER_AS_TEXT: _number_message,
    WarningCode.BOOL_AS_TEXT: _bool_message,
    WarningCode.TIMESTAMP_AS_TEXT: _timestamp_message,
}


_MIX = np.uint64(0x100000001B3)
_SHOWN = 5  # positions of repeated rows a warning names


class _Repeats:
    """Valid rows that repeat an earlier row in every column sent (see the module docstring)."""

    def __init__(self, mapping: ColumnMapping) -> None:
        roles = (mapping.customer_id, mapping.event_name, *mapping.metadata, mapping.email,
                 mapping.mobile, mapping.session_token)  # fmt: skip
        self.columns = sorted({str(c): c for c in roles if c is not None}.items())
        self.mapping = mapping
        self.seen = RowKeyMaker(bloom_bits=1 << 26)
        self.read = self.count = 0  #: rows looked at so far, and repeats among them
        self.first: list[int] = []

    def add(
        self,
        frame: pd.DataFrame,
        invalid: npt.NDArray[np.bool_] | None,
        repeated: npt.NDArray[np.int64] | None = None,
    ) -> None:
        offset, self.read = self.read, self.read + len(frame)
        if repeated is not None:
            self._note(repeated, offset)
            return
        looked = np.ones(len(frame), dtype=bool) if invalid is None else ~np.asarray(invalid)
        if "gb_key" in frame.columns:
            looked &= ~carried_flags(frame["gb_key"].tolist())
        # Orders are left out: Gameball refuses a repeated orderId, so none is counted twice.
        if self.mapping.all_orders:
            return
        if self.mapping.mixed and self.mapping.event_name is not None:
            looked &= (frame[self.mapping.event_name] != self.mapping.orders_from).to_numpy(bool)
        if not looked.any():
            return
        positions = np.flatnonzero(looked)
        part = frame.iloc[positions]
        hashes = np.zeros(len(part), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for _name, column in self.columns:
                hashes = hashes * _MIX ^ _column_hashes(part[column])
        self._note(positions[self.seen.repeats(hashes) > 0], offset)

    def _note(self, repeated: npt.NDArray[np.int64], offset: int) -> None:
        self.count += len(repeated)
        self.first += [offset + int(p) for p in repeated[: _SHOWN - len(self.first)]]

    def warning_rows(self) -> list[tuple[str, str, int, str, str]]:
        if not self.count:
            return []
        shown = ", ".join(map(str, self.first)) + (", ..." if self.count > len(self.first) else "")
        rows = "1 valid row repeats" if self.count == 1 else f"{self.count:,} valid rows repeat"
        at = "position" if self.count == 1 else "positions"
        message = (
            f"{rows} an earlier row in every column sent ({at} {shown}, as gb_row counts): each "
            "is sent as an event of its own, so Gameball counts it again; if they are an "
            "export's duplicates, drop them first (df.drop_duplicates(subset="
            f"{[name for name, _ in self.columns]!r}))"
        )
        return [("(rows)", str(WarningCode.DUPLICATE_ROWS), self.count, f"{at} {shown}",
                 message)]  # fmt: skip


def _column_hashes(series: pd.Series) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each value of a column (values pandas cannot hash, by their text)."""
    try:
        found = pd.util.hash_pandas_object(series, index=False)
    except TypeError:  # dicts, lists: unhashable
        found = pd.util.hash_pandas_object(series.map(repr).astype(object), index=False)
    return np.asarray(found.to_numpy(), dtype=np.uint64)


def _id_rows(column: Hashable, state: _Widths) -> list[tuple[str, str, int, str, str]]:
    if not state.padded or state.padded_example is None or state.narrowest == state.widest:
        return []
    name = str(column)
    padded = state.padded_example
    other = next(e for w, e in sorted(state.examples.items()) if w != len(padded))
    unpadded = padded.lstrip("0") or "0"
    message = (
        f"{name!r} has ids of digits in different widths, zero-padded ones among them "
        f"({padded!r} next to {other!r}), and Gameball sees {padded!r} and {unpadded!r} as two "
        "customers: "
        f"if they are one, make them one width, e.g. df[{name!r}] = "
        f"df[{name!r}].str.zfill({state.widest}) or .str.lstrip('0'); if two, nothing to do"
    )
    return [(name, str(WarningCode.ID_MIXED_WIDTHS), state.padded, padded, message)]


def _event_variant_row(column: Hashable, variants: Variants) -> tuple[str, str, int, str, str]:
    name = str(column)
    main = variants.spellings[0][0]
    others = variants.spellings[1:]
    fix = ", ".join(f"{text!r}: {main!r}" for text, _ in others[:4])
    message = (
        f"{name!r} holds one event name in {len(variants.spellings)} spellings "
        f"({variants.words()}), which Gameball's campaigns count as different events: if they "
        f"are one event, make them one before sending, e.g. df[{name!r}] = "
        f"df[{name!r}].replace({{{fix}}}) (or the spelling your campaigns use)"
    )
    return (name, str(WarningCode.EVENT_NAME_VARIANTS), variants.others, others[0][0], message)


def _id_variant_rows(
    column: Hashable, spellings: Spellings
) -> list[tuple[str, str, int, str, str]]:
    found = spellings.variants()
    if not found:
        return []
    name = str(column)
    shown = "; ".join(v.words(3) for v in found[:2])
    more = " (at least: more spellings were not counted)" if spellings.full else ""
    message = (
        f"{name!r} has {len(found):,} customer id(s){more} written in several spellings that "
        f"differ only in case, spaces or character width ({shown}), and Gameball sees each "
        f"spelling as a customer of its own: if they are one customer, make them one, e.g. "
        f"df[{name!r}] = df[{name!r}].str.normalize('NFKC').str.strip().str.upper() (or "
        "whichever spelling Gameball knows them by)"
    )
    others = sum(v.others for v in found)
    return [(name, str(WarningCode.ID_VARIANTS), others, found[0].spellings[1][0], message)]
