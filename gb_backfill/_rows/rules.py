"""Gameball's event rules, checked a column at a time.

The rules come from Gameball's docs and SDKs: ``customerId`` is required and not empty, an event
name is required, metadata values are strings, numbers or booleans, ``email`` and ``mobile`` are
optional. Each broken rule is a failure row with a stable :class:`FailureCode`; a row is valid
when it has no failure, and no row is ever dropped. The report they make is in
:mod:`gb_backfill._reports.validation`.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._config import HEADER_VALUE
from .._vocabulary import FailureCode
from .mapping import READ_PROBLEMS, ColumnMapping
from .values import BoolArray, Identifiers, identifier_strings, metadata_problems

__all__: list[str] = []

#: The fixed columns of ``ValidationReport.failures``.
FAILURE_COLUMNS = ("row", "column", "code", "message", "value")

# Loose on purpose: these catch values that are clearly not an address or a phone number (a
# missing "@", a word, a date), not every address a mail server would refuse.
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
_MOBILE_SEPARATORS = r"[\s().\-]"
_MOBILE = r"^\+?[0-9]{5,15}$"  # E.164 allows at most 15 digits

_VALUE_TEXT_LIMIT = 120

# Whitespace at either end, or an invisible character anywhere, would make Gameball see another
# customer or event than the one on screen ("c-1" and "c-1\u200b" look the same).
_SPACES = r"\s\x{0B}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
_UNTRIMMED = f"^[{_SPACES}]|[{_SPACES}]$"
# Default_Ignorable_Code_Point is derived (Unicode's DerivedCoreProperties.txt) from the
# general category Cf, Variation_Selector and Other_Default_Ignorable_Code_Point, less some
# Cf characters; unicodedata gives only the categories. These two lists are the other parts,
# as Unicode 15's PropList.txt gives them (inclusive ranges): together with every Cc and Cf
# character they make up every invisible character an id may not hold.
_VARIATION_SELECTORS = ((0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
_OTHER_DEFAULT_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x2065, 0x2065), (0x3164, 0x3164),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xE0000, 0xE0000), (0xE0002, 0xE001F),
    (0xE0080, 0xE00FF), (0xE01F0, 0xE0FFF),
)  # fmt: skip
_KINDS = {"Cc": "a control character", "Cf": "an invisible format character"}


@functools.cache
def _invisible_class() -> str:
    """An RE2 character class of every control (Cc), format (Cf) and default-ignorable code point
    (built once, on first need: a pass over all code points takes a tenth of a second)."""
    points = [c for c in range(0x110000) if unicodedata.category(chr(c)) in _KINDS]
    for first, last in _VARIATION_SELECTORS + _OTHER_DEFAULT_IGNORABLE:
        points.extend(range(first, last + 1))
    points = sorted(set(points))
    ranges: list[list[int]] = []
    for point in points:
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    return "[" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


def _describe(character: str) -> str:
    """``U+200E LEFT-TO-RIGHT MARK, an invisible format character``."""
    point = ord(character)
    name = unicodedata.name(character, "")
    kind = _KINDS.get(unicodedata.category(character), "a default-ignorable (invisible) character")
    return f"U+{point:04X}{' ' + name if name else ''}, {kind}"


# A session token travels as a header value: visible ASCII only (a JWE is base64url and dots).
_HEADER_TOKEN = f"^{HEADER_VALUE}$"


@dataclass(frozen=True, slots=True)
class _Broken:
    column: Hashable
    code: FailureCode
    message: str
    mask: BoolArray


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedFrame:
    """What the checks learn about a frame; shared by validation, payloads and sending."""

    mapping: ColumnMapping
    invalid: BoolArray
    failures: pd.DataFrame  # FAILURE_COLUMNS plus "position"
    customer_ids: pa.Array
    event_names: pa.Array | None
    emails: pa.Array | None
    mobiles: pa.Array | None
    session_tokens: pa.Array | None

    def event_names_at(self, positions: npt.NDArray[np.int64]) -> list[str]:
        """The event name of each row at ``positions`` (a column's, or the one ``event=``
        gives)."""
        if self.mapping.event is not None:
            return [self.mapping.event] * len(positions)
        assert self.event_names is not None
        names: list[str] = self.event_names.take(pa.array(positions)).to_pylist()
        return names

    def plain(self, positions: npt.NDArray[np.int64] | None = None) -> BoolArray:
        """Whether each row (or each row at ``positions``) is plain: no email, mobile or
        session token, so a batch item, which holds only ``customerId`` and ``events``, can
        carry it (see :func:`~gb_backfill._gameball.lane_for`)."""
        size = len(self.invalid) if positions is None else len(positions)
        plain = np.ones(size, dtype=bool)
        for extra in (self.emails, self.mobiles, self.session_tokens):
            if extra is not None:
                given = extra if positions is None else extra.take(pa.array(positions))
                plain &= ~np.asarray(given.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        return plain


def _blank(text: pa.Array) -> BoolArray:
    trimmed = pc.utf8_trim_whitespace(text)
    return np.asarray(pc.equal(trimmed, "").fill_null(False).to_numpy(zero_copy_only=False))


def _matches(text: pa.Array, pattern: str, *, missing: bool = True) -> BoolArray:
    """Where ``text`` matches ``pattern``; ``missing`` for null cells."""
    return np.asarray(
        pc.match_substring_regex(text, pattern).fill_null(missing).to_numpy(zero_copy_only=False)
    )


def _required(
    column: Hashable,
    ids: Identifiers,
    missing: BoolArray,
    label: str,
    codes: tuple[FailureCode, ...],
) -> Iterator[_Broken]:
    missing_code, empty_code, type_code, inexact_code, whitespace_code = codes
    blank = _blank(ids.text)
    yield _Broken(
        column, missing_code, f"{label} is missing", missing & ~ids.wrong_type & ~ids.not_unicode
    )
    yield _Broken(column, empty_code, f"{label} is empty", blank)
    yield _Broken(column, type_code, f"{label} must be a string or a whole number", ids.wrong_type)
    yield _Broken(
        column,
        inexact_code,
        f"{label} is a number whose digits are not exact (not whole, or a float above 2**53, "
        "which has lost digits): read the column as text or as an integer type",
        ids.inexact,
    )
    invisible = _invisible_characters(ids.text)
    shown = np.zeros(len(blank), dtype=bool)
    for character, mask in invisible:
        yield _Broken(
            column,
            whitespace_code,
            f"{label} holds {_describe(character)}, so Gameball would see another value than "
            "the one shown: remove it if that is what you mean",
            mask & ~blank,
        )
        shown |= mask
    yield _Broken(
        column,
        whitespace_code,
        f"{label} has whitespace at an end, so Gameball would see another value than the one "
        "shown: strip it (df[col].str.strip()) if that is what you mean",
        _matches(ids.text, _UNTRIMMED, missing=False) & ~blank & ~shown,
    )
    yield _unicode_failure(column, ids.not_unicode)


def _invisible_characters(text: pa.Array) -> list[tuple[str, BoolArray]]:
    """Each invisible character (control, format, default-ignorable) found in ``text``, and the
    values whose first such character it is."""
    if not len(text) or not _matches(text, r"[^\x{20}-\x{7E}]", missing=False).any():
        return []  # printable ASCII alone, the usual ids: no need for the full class
    found = pc.extract_regex(text, f"(?P<c>{_invisible_class()})")
    first = pc.if_else(found.is_valid(), found.field("c"), None)
    return [
        (character, _matches(first, "^" + _literal(character) + "$", missing=False))
        for character in pc.unique(first).drop_null().to_pylist()
    ]


def _literal(character: str) -> str:
    return f"\\x{{{ord(character):X}}}"


def _unicode_failure(column: Hashable, mask: BoolArray) -> _Broken:
    return _Broken(
        column,
        FailureCode.TEXT_NOT_UNICODE,
        f"{str(column)!r} holds text that is not valid Unicode (a lone surrogate), which cannot "
        "be sent",
        mask,
    )


def _optional_text(series: pd.Series) -> Identifiers:
    ids = identifier_strings(series)
    # An empty email or mobile is as good as none: it is simply left out.
    blank = _blank(ids.text)
    if blank.any():
        text = pc.if_else(pa.array(blank), None, ids.text)
        return Identifiers(text, ids.wrong_type, ids.inexact, ids.not_unicode)
    return ids


_CUSTOMER_CODES = (
    FailureCode.CUSTOMER_ID_MISSING,
    FailureCode.CUSTOMER_ID_EMPTY,
    FailureCode.CUSTOMER_ID_TYPE,
    FailureCode.CUSTOMER_ID_INEXACT,
    FailureCode.CUSTOMER_ID_WHITESPACE,
)
_EVENT_NAME_CODES = (
    FailureCode.EVENT_NAME_MISSING,
    FailureCode.EVENT_NAME_EMPTY,
    FailureCode.EVENT_NAME_TYPE,
    FailureCode.EVENT_NAME_TYPE,
    FailureCode.EVENT_NAME_WHITESPACE,
)


def _metadata_rules(df: pd.DataFrame, column: Hashable) -> list[_Broken]:
    problems = metadata_problems(df[column])
    name = repr(str(column))
    return [
        _Broken(
            column,
            FailureCode.METADATA_TYPE,
            f"metadata {name} must be a string, number or boolean",
            problems.wrong_type,
        ),
        _Broken(
            column,
            FailureCode.METADATA_NOT_FINITE,
            f"metadata {name} must be a finite number",
            problems.not_finite,
        ),
        _Broken(
            column,
            FailureCode.METADATA_OUT_OF_RANGE,
            f"metadata {name} is beyond what a JSON reader holds as a number (about 1.8e308)",
            problems.out_of_range,
        ),
        _Broken(
            column,
            FailureCode.METADATA_MIXED_TIMEZONES,
            f"metadata {name} mixes naive and time-zone-aware timestamps; which zone the naive "
            "ones mean is a guess: tz_localize them",
            problems.mixed_timezones,
        ),
        _unicode_failure(column, problems.not_unicode),
    ]


def _contact_rules(
    df: pd.DataFrame, mapping: ColumnMapping, broken: list[_Broken]
) -> dict[str, pa.Array | None]:
    """Email and mobile: optional, and clearly malformed values refused. Their text, by role."""
    optional: dict[str, pa.Array | None] = {}
    for role, code, pattern, cleanup in (
        ("email", FailureCode.EMAIL_MALFORMED, _EMAIL, None),
        ("mobile", FailureCode.MOBILE_MALFORMED, _MOBILE, _MOBILE_SEPARATORS),
    ):
        column = getattr(mapping, role)
        if column is None:
            optional[role] = None
            continue
        ids = _optional_text(df[column])
        checked = ids.text if cleanup is None else pc.replace_substring_regex(ids.text, cleanup, "")
        malformed = ~_matches(checked, pattern) | ids.wrong_type | ids.inexact
        broken.append(_Broken(column, code, f"{role} is malformed", malformed))
        broken.append(_unicode_failure(column, ids.not_unicode))
        optional[role] = ids.text
    return optional


def _token_rules(column: Hashable, tokens: Identifiers) -> list[_Broken]:
    return [
        _Broken(
            column,
            FailureCode.SESSION_TOKEN_TYPE,
            "the session token must be a string",
            tokens.wrong_type | tokens.inexact,
        ),
        _Broken(
            column,
            FailureCode.SESSION_TOKEN_MALFORMED,
            "the session token must be visible ASCII (it travels as the X-GB-TOKEN header)",
            ~_matches(tokens.text, _HEADER_TOKEN) | tokens.not_unicode,
        ),
    ]


def _named(field: str, column: Hashable, usual: str) -> str:
    """A field in a message, with the user's column when it is not the ``usual`` one (a trial
    read 'customerId is missing' of its column user_id)."""
    return field if str(column) == usual else f"{field} (column {column})"


def check_frame(df: pd.DataFrame, mapping: ColumnMapping) -> CheckedFrame:
    """Run every rule over ``df`` at once (no per-row Python loop for the checks)."""
    customer = df[mapping.customer_id]
    customer_ids = identifier_strings(customer)
    broken = list(
        _required(mapping.customer_id, customer_ids, customer.isna().to_numpy(),
                  _named("customerId", mapping.customer_id, "customerId"), _CUSTOMER_CODES)
    )  # fmt: skip
    event_names = None
    if mapping.event_name is not None:
        names = df[mapping.event_name]
        event_ids = identifier_strings(names)
        event_names = event_ids.text
        missing = names.isna().to_numpy()
        broken += _required(
            mapping.event_name, event_ids, missing,
            _named("the event name", mapping.event_name, "eventName"), _EVENT_NAME_CODES,
        )  # fmt: skip
    for column in mapping.metadata:
        broken += _metadata_rules(df, column)
    optional = _contact_rules(df, mapping, broken)
    session_tokens = None
    if mapping.session_token is not None:
        tokens = _optional_text(df[mapping.session_token])
        session_tokens = tokens.text
        broken += _token_rules(mapping.session_token, tokens)
    invalid = np.zeros(len(df), dtype=bool)
    for problem in broken:
        invalid |= problem.mask
    read = _read_failures(df)
    if read is not None:
        invalid[read["position"].to_numpy(dtype=np.int64)] = True
    return CheckedFrame(
        mapping=mapping,
        invalid=invalid,
        failures=_failure_frame(df, broken, read),
        customer_ids=customer_ids.text,
        event_names=event_names,
        emails=optional["email"],
        mobiles=optional["mobile"],
        session_tokens=session_tokens,
    )


def first_failures(failures: pd.DataFrame) -> pd.DataFrame:
    """One row per invalid input row (indexed by position): its first code and every message."""
    grouped = failures.groupby("position", sort=True)
    return pd.DataFrame(
        {"code": grouped["code"].first(), "message": grouped["message"].agg("; ".join)}
    )


def _kind(value: object) -> str:
    """A value's type as a user knows it: pandas reads a Parquet list as a numpy array."""
    if isinstance(value, np.ndarray):
        return "a list (numpy array)"
    return type(value).__name__


def _value_text(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_TEXT_LIMIT else text[: _VALUE_TEXT_LIMIT - 1] + "…"


def _read_failures(df: pd.DataFrame) -> pd.DataFrame | None:
    """The problems a reader marked in :data:`READ_PROBLEMS`, as failure rows placed before
    every other failure of their row (so a row's first code says why it could not be read)."""
    if READ_PROBLEMS not in df.columns:
        return None
    rows: list[tuple[int, int, str, str, str, str]] = []
    marks = df[READ_PROBLEMS]
    for position in np.flatnonzero(marks.notna().to_numpy()).tolist():
        try:
            for code, column, message, value in json.loads(marks.iloc[position]):
                rows.append((position, -1, str(column), str(code), str(message), str(value)))
        except (TypeError, ValueError):
            continue  # not a reader's mark: no gb-backfill reader writes this
    if not rows:
        return None
    columns = ["position", "order", "column", "code", "message", "value"]
    return pd.DataFrame(rows, columns=columns).astype({"position": np.int64, "order": np.int64})


def _failure_frame(
    df: pd.DataFrame, broken: list[_Broken], read: pd.DataFrame | None
) -> pd.DataFrame:
    pieces = [] if read is None else [read]
    for order, problem in enumerate(broken):
        positions = np.flatnonzero(problem.mask)
        if not len(positions):
            continue
        if problem.column in df.columns:
            cells = df[problem.column].iloc[positions]
            values = [_value_text(v) for v in cells]
            kinds = [_kind(v) for v in cells]
        else:
            values = kinds = ["None"] * len(positions)
        message = problem.message
        if problem.code in (FailureCode.METADATA_TYPE, FailureCode.CUSTOMER_ID_TYPE):
            messages = [f"{message}, not {kind}" for kind in kinds]
        else:
            messages = [message] * len(positions)
        pieces.append(
            pd.DataFrame(
                {
                    "position": positions,
                    "order": order,
                    "column": str(problem.column),
                    "code": str(problem.code),
                    "message": messages,
                    "value": values,
                }
            )
        )
    if not pieces:
        empty = pd.DataFrame({name: pd.Series(dtype=object) for name in FAILURE_COLUMNS})
        empty["position"] = pd.Series(dtype=np.int64)
        return empty
    frame = pd.concat(pieces, ignore_index=True).sort_values(
        ["position", "order"], kind="stable", ignore_index=True
    )
    positions_array: npt.NDArray[np.int64] = frame["position"].to_numpy()
    frame.insert(0, "row", df.index[positions_array])
    return frame.drop(columns="order")
