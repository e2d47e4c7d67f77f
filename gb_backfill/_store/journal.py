"""The ledger's journal: an append-only file beside the database (``PATH-intents``).

A row is marked in flight here with one ``write()`` before its request goes out, so the mark
survives the process being killed; the ledger commits the marks to SQLite in groups and then
empties the journal (see :mod:`gb_backfill._store.ledger`).

The file starts with a header naming the ledger it belongs to, ``GBJ3 <ledger id>\\n``, so a
journal left beside another database (the ledger was deleted or replaced) is recognised.
Records follow, each a kind byte and a fixed part:

* ``B`` (begin): 16-byte key, input row, time, customer id length, then the customer id;
* ``L`` (loose identity): 16-byte key, the row's 16-byte loose key and its form mask (see
  :mod:`gb_backfill._rows.loose`);
* ``S`` (settle): key, status index, retryable, attempts, HTTP status (-1: none), text length,
  then the error code and message as a JSON list;
* ``J`` (a batch job): job id, key count, then the 16-byte keys;
* ``R`` (a request, see :mod:`gb_backfill._store.ledger_extras`): 16-byte key, time, the 16-byte
  content hash and occurrence its ``gb_key`` shows (-1: a ``row_key=`` key, shown as itself), body
  length, then the request body, so a row a crash leaves in flight can be shown as it was sent. A
  row in flight across commits has its request written again after each (see
  :mod:`gb_backfill._store.ledger`).

Journals of gb-backfill 0.1 hold only begins and no header; those of 0.2 start ``GBJ2\\n``.
A torn last record (a crash mid-write) is ignored; a whole record that cannot be read is
damage, and reading the journal raises :class:`LedgerError` saying so.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from .._errors import LedgerError
from .._vocabulary import LedgerStatus

__all__: list[str] = []

_HEADER = b"GBJ3 "
_HEADER_SIZE = len(_HEADER) + 32 + 1
_V2 = b"GBJ2\n"
_BEGIN = struct.Struct("<16sqdH")
_LOOSE = struct.Struct("<16s16sq")
_SETTLE = struct.Struct("<16sBBiiI")
_JOB = struct.Struct("<qI")
_REQUEST = struct.Struct("<16sd16sqI")
#: the statuses a settle record can hold, by index (never reorder: journals on disk use it)
STATUSES = tuple(status.value for status in LedgerStatus)


class Begin(NamedTuple):
    """A row marked in flight: its request may go out from now on."""

    key: bytes
    customer_id: str
    input_row: int
    at: float  #: ``time.time()`` when it was marked


class Mark(NamedTuple):
    """A row about to be sent, as the ledger marks it in flight: a ``B`` record, an ``L``
    record when it has a loose key, and an ``R`` record when its request is given (kept while
    its outcome is not known, for ``status``)."""

    key: bytes
    customer_id: str
    input_row: int
    loose: bytes | None = None  #: its loose key (see :mod:`gb_backfill._rows.loose`)
    form: int = 0  #: its form mask
    content: bytes = b""  #: the content hash its ``gb_key`` shows
    occurrence: int = 0  #: the occurrence its ``gb_key`` shows (-1: a ``row_key=`` key)
    body: bytes | None = None  #: its request body


class Loose(NamedTuple):
    """A row's loose key and form mask (see :mod:`gb_backfill._rows.loose`)."""

    key: bytes
    loose: bytes
    form: int


class Settle(NamedTuple):
    """A row's outcome."""

    key: bytes
    status: str
    retryable: bool
    attempts: int  #: requests made for it, added to those recorded before
    http_status: int | None
    error_code: str | None
    error_message: str | None
    at: float  #: ``time.time()`` when it was recorded


class Assign(NamedTuple):
    """A batch job carries rows (``job_id`` -1: their next job is being posted)."""

    job_id: int
    keys: Sequence[bytes]


class Request(NamedTuple):
    """A row's request, kept while its outcome is not known (the ``requests`` table's columns,
    in order)."""

    key: bytes
    content: bytes  #: the content hash its ``gb_key`` shows
    occurrence: int  #: the occurrence its ``gb_key`` shows (-1: a ``row_key=`` key)
    body: bytes
    sent_at: float


def header(identity: str) -> bytes:
    """The first line of a journal of the ledger ``identity`` (32 hex digits)."""
    return _HEADER + identity.encode("ascii") + b"\n"


def begin_record(begin: Begin) -> bytes:
    customer = begin.customer_id.encode("utf-8", "replace")[:65535]
    return b"B" + _BEGIN.pack(begin.key, begin.input_row, begin.at, len(customer)) + customer


def mark_records(marks: Sequence[Mark], at: float) -> tuple[list[bytes], dict[bytes, bytes]]:
    """The records of ``marks``, marked in flight at ``at``: their ``B`` and ``L`` records, and
    the ``R`` record of each mark given with its request, by key."""
    records, requests = [], {}
    for mark in marks:
        customer = mark.customer_id.encode("utf-8", "replace")[:65535]
        fixed = _BEGIN.pack(mark.key, mark.input_row, at, len(customer))
        records.append(b"B" + fixed + customer)
        if mark.loose is not None:
            records.append(b"L" + _LOOSE.pack(mark.key, mark.loose, mark.form))
        if mark.body is not None:
            size = len(mark.body)
            fixed = _REQUEST.pack(mark.key, at, mark.content, mark.occurrence, size)
            requests[mark.key] = b"R" + fixed + mark.body
    return records, requests


def loose_record(loose: Loose) -> bytes:
    return b"L" + _LOOSE.pack(loose.key, loose.loose, loose.form)


def settle_record(settle: Settle) -> bytes:
    text = json.dumps([settle.error_code, settle.error_message]).encode()
    http = -1 if settle.http_status is None else int(settle.http_status)
    fixed = _SETTLE.pack(
        settle.key,
        STATUSES.index(str(settle.status)),
        int(settle.retryable),
        int(settle.attempts),
        http,
        len(text),
    )
    return b"S" + fixed + text


def job_record(assign: Assign) -> bytes:
    return b"J" + _JOB.pack(assign.job_id, len(assign.keys)) + b"".join(assign.keys)


def request_record(request: Request) -> bytes:
    fixed = _REQUEST.pack(
        request.key, request.sent_at, request.content, request.occurrence, len(request.body)
    )
    return b"R" + fixed + request.body


def gb_key_text(key: bytes, content: bytes, occurrence: int) -> str:
    """The ``gb_key`` a request's row shows: ``<content hash>/<occurrence>``, or the key itself
    for rows keyed by ``row_key=`` columns."""
    return key.hex() if occurrence < 0 else f"{content.hex()}/{occurrence}"


@dataclass(slots=True)
class Journal:
    """What a journal file holds."""

    identity: str | None = None  #: the ledger it belongs to (None: no header, an older journal)
    begins: list[Begin] = field(default_factory=list)
    looses: list[Loose] = field(default_factory=list)
    settles: list[Settle] = field(default_factory=list)
    jobs: list[Assign] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)


def read(path: Path) -> Journal:
    """The journal at ``path`` (empty when there is none)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Journal()
    journal = Journal()
    if data.startswith(_HEADER) and len(data) >= _HEADER_SIZE:
        journal.identity = data[len(_HEADER) : _HEADER_SIZE - 1].decode("ascii", "replace")
        at = _HEADER_SIZE
    elif data.startswith(_V2):
        at = len(_V2)
    else:
        _read_legacy(data, journal)
        return journal
    try:
        for kind, record in _records(data, at):
            getattr(journal, kind).append(record)
    except ValueError as error:
        raise LedgerError(
            f"the ledger's journal {path} is damaged: {error}. It holds rows whose requests "
            "may have gone out, so it is not skipped: keep a copy of it, and restore it from a "
            "backup if you have one. Deleting it lets the ledger open without those rows, "
            "which could then be sent again."
        ) from None
    return journal


def _read_legacy(data: bytes, journal: Journal) -> None:
    at = 0
    while at + _BEGIN.size <= len(data):
        key, row, when, size = _BEGIN.unpack_from(data, at)
        end = at + _BEGIN.size + size
        if end > len(data):
            return
        journal.begins.append(
            Begin(key, data[at + _BEGIN.size : end].decode("utf-8", "replace"), row, when)
        )
        at = end


def _records(data: bytes, at: int) -> Iterator[tuple[str, object]]:
    """(list name, record) for each whole record from ``at``; stops at a torn one (the tail a
    crash cut short), and raises :class:`ValueError` at one that is whole but unreadable."""
    while at < len(data):
        kind = data[at : at + 1]
        found = _DECODERS.get(kind)
        if found is None:
            if not data[at:].strip(b"\x00"):
                return  # a tail of zeros: space a crashed file system had not filled yet
            raise ValueError(f"no record starts at byte {at} (kind {kind!r})")
        name, decode = found
        record, end = decode(data, at + 1)
        if record is None:
            return
        yield name, record
        at = end


#: a decoder's answer: the record and where the next one starts, or (None, _) when torn
_Decoded = tuple[object | None, int]


def _fits(data: bytes, end: int) -> bool:
    return end <= len(data)


def _begin(data: bytes, at: int) -> _Decoded:
    if not _fits(data, at + _BEGIN.size):
        return None, at
    key, row, when, size = _BEGIN.unpack_from(data, at)
    end = at + _BEGIN.size + size
    if not _fits(data, end):
        return None, at
    return Begin(key, data[at + _BEGIN.size : end].decode("utf-8", "replace"), row, when), end


def _loose(data: bytes, at: int) -> _Decoded:
    end = at + _LOOSE.size
    return (Loose(*_LOOSE.unpack_from(data, at)), end) if _fits(data, end) else (None, at)


def _settle(data: bytes, at: int) -> _Decoded:
    if not _fits(data, at + _SETTLE.size):
        return None, at
    key, status, retryable, attempts, http, size = _SETTLE.unpack_from(data, at)
    end = at + _SETTLE.size + size
    if not _fits(data, end):
        return None, at
    try:
        code, message = json.loads(data[at + _SETTLE.size : end])
        outcome = STATUSES[status], bool(retryable), attempts, None if http < 0 else http
    except (ValueError, TypeError, IndexError) as error:
        raise ValueError(f"an outcome record at byte {at - 1} ({error})") from None
    return Settle(key, *outcome, code, message, time.time()), end


def _job(data: bytes, at: int) -> _Decoded:
    if not _fits(data, at + _JOB.size):
        return None, at
    job_id, count = _JOB.unpack_from(data, at)
    end = at + _JOB.size + 16 * count
    if not _fits(data, end):
        return None, at
    keys = data[at + _JOB.size : end]
    return Assign(job_id, [keys[start : start + 16] for start in range(0, len(keys), 16)]), end


def _request(data: bytes, at: int) -> _Decoded:
    if not _fits(data, at + _REQUEST.size):
        return None, at
    key, when, content, occurrence, size = _REQUEST.unpack_from(data, at)
    end = at + _REQUEST.size + size
    if not _fits(data, end):
        return None, at
    return Request(key, content, occurrence, data[at + _REQUEST.size : end], when), end


_DECODERS = {
    b"B": ("begins", _begin), b"L": ("looses", _loose), b"S": ("settles", _settle),
    b"J": ("jobs", _job), b"R": ("requests", _request),
}  # fmt: skip


def request_of(record: bytes) -> Request:
    """The request a whole ``R`` record holds (see :func:`request_record`)."""
    request, _ = _request(record, 1)
    assert isinstance(request, Request)
    return request


def rows(journal: Journal) -> pd.DataFrame:
    """One row per key the journal knows, with its latest status (for ``gb-backfill status``):
    columns ``key``, ``customer_id``, ``input_row``, ``status``, ``retryable``, ``attempts``,
    ``error_code``, ``error_message``, ``updated_at``."""
    known: dict[bytes, dict[str, object]] = {}
    for begin in journal.begins:
        known[begin.key] = {
            "key": begin.key, "customer_id": begin.customer_id, "input_row": begin.input_row,
            "status": LedgerStatus.IN_FLIGHT.value, "retryable": 0, "attempts": 0,
            "error_code": None,
            "error_message": None, "updated_at": begin.at,
        }  # fmt: skip
    for settle in journal.settles:
        entry = known.get(settle.key)
        if entry is not None:
            entry.update(
                status=settle.status, retryable=int(settle.retryable), attempts=settle.attempts,
                error_code=settle.error_code,
                error_message=settle.error_message, updated_at=settle.at,
            )  # fmt: skip
    columns = [
        "key", "customer_id", "input_row", "status", "retryable", "attempts", "error_code",
        "error_message", "updated_at",
    ]  # fmt: skip
    return pd.DataFrame(list(known.values()), columns=columns)
