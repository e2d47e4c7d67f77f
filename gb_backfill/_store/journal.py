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

Begin = tuple[bytes, str, int, float]  #: key, customer id, input row, time
Loose = tuple[bytes, int, bytes]  #: loose key, form mask, key (the order of the ledger's UPDATE)
Settle = tuple[object, ...]  #: status, retryable, attempts, HTTP status, code, message, time, key
Assign = tuple[int, bytes]  #: job id, key
#: key, content hash, occurrence (-1: a row_key key), request body, time sent
Request = tuple[bytes, bytes, int, bytes, float]


def header(identity: str) -> bytes:
    """The first line of a journal of the ledger ``identity`` (32 hex digits)."""
    return _HEADER + identity.encode("ascii") + b"\n"


def begin_record(key: bytes, customer_id: str, input_row: int, when: float) -> bytes:
    customer = customer_id.encode("utf-8", "replace")[:65535]
    return b"B" + _BEGIN.pack(key, input_row, when, len(customer)) + customer


def loose_record(key: bytes, loose: bytes, form: int) -> bytes:
    return b"L" + _LOOSE.pack(key, loose, form)


def settle_record(settle: Settle) -> bytes:
    status, retryable, attempts, http, code, message, _when, key = settle
    text = json.dumps([code, message]).encode()
    fixed = _SETTLE.pack(
        key,
        STATUSES.index(str(status)),
        int(retryable),  # type: ignore[call-overload]
        int(attempts),  # type: ignore[call-overload]
        -1 if http is None else int(http),  # type: ignore[call-overload]
        len(text),
    )
    return b"S" + fixed + text


def job_record(job_id: int, keys: Sequence[bytes]) -> bytes:
    return b"J" + _JOB.pack(job_id, len(keys)) + b"".join(keys)


def request_record(request: Request) -> bytes:
    key, content, occurrence, body, when = request
    return b"R" + _REQUEST.pack(key, when, content, occurrence, len(body)) + body


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

    def __len__(self) -> int:
        return len(self.begins) + len(self.settles) + len(self.jobs)


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
            (key, data[at + _BEGIN.size : end].decode("utf-8", "replace"), row, when)
        )
        at = end


def _records(data: bytes, at: int) -> Iterator[tuple[str, object]]:
    """(list name, record) for each whole record from ``at``; stops at a torn one (the tail a
    crash cut short), and raises :class:`ValueError` at one that is whole but unreadable."""
    while at < len(data):
        kind = data[at : at + 1]
        at += 1
        if kind == b"B":
            if at + _BEGIN.size > len(data):
                return
            key, row, when, size = _BEGIN.unpack_from(data, at)
            end = at + _BEGIN.size + size
            if end > len(data):
                return
            customer = data[at + _BEGIN.size : end].decode("utf-8", "replace")
            yield "begins", (key, customer, row, when)
        elif kind == b"L":
            end = at + _LOOSE.size
            if end > len(data):
                return
            key, loose, form = _LOOSE.unpack_from(data, at)
            yield "looses", (loose, form, key)
        elif kind == b"S":
            if at + _SETTLE.size > len(data):
                return
            key, status, retryable, attempts, http, size = _SETTLE.unpack_from(data, at)
            end = at + _SETTLE.size + size
            if end > len(data):
                return
            try:
                code, message = json.loads(data[at + _SETTLE.size : end])
                settled = (STATUSES[status], retryable, attempts, None if http < 0 else http,
                           code, message)  # fmt: skip
            except (ValueError, TypeError, IndexError) as error:
                raise ValueError(f"an outcome record at byte {at - 1} ({error})") from None
            yield "settles", (*settled, time.time(), key)
        elif kind == b"J":
            if at + _JOB.size > len(data):
                return
            job_id, count = _JOB.unpack_from(data, at)
            end = at + _JOB.size + 16 * count
            if end > len(data):
                return
            keys = data[at + _JOB.size : end]
            for start in range(0, len(keys), 16):
                yield "jobs", (job_id, keys[start : start + 16])
        elif kind == b"R":
            if at + _REQUEST.size > len(data):
                return
            key, when, content, occurrence, body_size = _REQUEST.unpack_from(data, at)
            end = at + _REQUEST.size + body_size
            if end > len(data):
                return
            yield "requests", (key, content, occurrence, data[at + _REQUEST.size : end], when)
        elif not data[at - 1 :].strip(b"\x00"):
            return  # a tail of zeros: space a crashed file system had not filled yet
        else:
            raise ValueError(f"no record starts at byte {at - 1} (kind {kind!r})")
        at = end


def rows(journal: Journal) -> pd.DataFrame:
    """One row per key the journal knows, with its latest status (for ``gb-backfill status``):
    columns ``key``, ``customer_id``, ``input_row``, ``status``, ``attempts``, ``error_code``,
    ``error_message``, ``updated_at``."""
    known: dict[bytes, dict[str, object]] = {}
    for key, customer, row, when in journal.begins:
        known[key] = {
            "key": key, "customer_id": customer, "input_row": row,
            "status": LedgerStatus.IN_FLIGHT.value, "attempts": 0, "error_code": None,
            "error_message": None, "updated_at": when,
        }  # fmt: skip
    for status, _retryable, attempts, _http, code, message, settled_at, settled in journal.settles:
        entry = known.get(settled)  # type: ignore[call-overload]
        if entry is not None:
            entry.update(
                status=status, attempts=attempts, error_code=code, error_message=message,
                updated_at=settled_at,
            )  # fmt: skip
    columns = [
        "key", "customer_id", "input_row", "status", "attempts", "error_code", "error_message",
        "updated_at",
    ]  # fmt: skip
    return pd.DataFrame(list(known.values()), columns=columns)
