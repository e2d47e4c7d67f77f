"""The ledger's SQLite database: its schema, the statements a commit group runs, and its queries.

The ``rows`` table holds one row per key with its latest status (see
:mod:`gb_backfill._store.ledger`); ``meta`` holds the ledger's identity, how it keys rows, and
whether a run has it open. What the way back in needs besides (invalid rows, requests, settlements)
is in tables of its own: see :mod:`gb_backfill._store.ledger_extras`.

Every column of ``rows`` is named once, in :data:`ROW_COLUMNS`; the statements and the records
they take (:class:`Marked`, :class:`~gb_backfill._store.journal.Settle`, ...) name theirs, so a
new column is added here and in the record that carries it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from .._errors import LedgerError
from .._vocabulary import LedgerStatus
from . import journal as _journal
from .journal import Assign, Begin, Loose, Settle

__all__: list[str] = []


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the ledger says of one row."""

    status: str
    retryable: bool
    attempts: int
    http_status: int | None
    error_code: str | None
    error_message: str | None


class JobRow(NamedTuple):
    """A row of an :class:`EarlierJob`."""

    key: bytes
    customer_id: str


@dataclass(frozen=True, slots=True)
class EarlierJob:
    """A batch job an earlier run posted whose rows are still in flight."""

    job_id: int
    posted_at: float  #: ``time.time()`` when its rows were marked in flight
    rows: list[JobRow]


class JobOf(NamedTuple):
    """The batch job that carries a row."""

    key: bytes
    job_id: int


class Marked(NamedTuple):
    """A row marked in flight in a commit group, as one statement writes it: with its job id
    and loose key when the group has them (see :mod:`gb_backfill._store.merging`)."""

    key: bytes
    customer_id: str
    input_row: int
    updated_at: float  #: when it was marked
    job_id: int | None = None
    loose: bytes | None = None
    form: int = 0


#: SQLite's ``application_id`` of a ledger ("GBbf"), so other programs' files are told apart.
_APPLICATION_ID = 0x47426266
#: The ``rows`` table's columns and their types, in order.
ROW_COLUMNS = {
    "key": "BLOB PRIMARY KEY",
    "status": "TEXT NOT NULL",
    "retryable": "INTEGER NOT NULL DEFAULT 0",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "http_status": "INTEGER",
    "error_code": "TEXT",
    "error_message": "TEXT",
    "customer_id": "TEXT",
    "input_row": "INTEGER",
    "updated_at": "REAL NOT NULL",
    "job_id": "INTEGER",
    "loose": "BLOB",
    "form": "INTEGER",
}
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rows (
    {", ".join(f"{name} {kind}" for name, kind in ROW_COLUMNS.items())}
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INDEX = "CREATE INDEX IF NOT EXISTS rows_by_loose ON rows (loose) WHERE loose IS NOT NULL"
#: columns later versions added: ledgers written before them gain them
_ADDED_COLUMNS = ("job_id", "loose", "form")
_REQUIRED_COLUMNS = {"key", "status", "retryable", "attempts", "customer_id", "updated_at"}


def _numbered(record: Any, after: int = 0) -> dict[str, str]:
    """Each field of the NamedTuple class ``record`` as the SQL parameter that takes it
    (``?1``, ...; after ``after`` others): records are a statement's parameters as they are."""
    fields: tuple[str, ...] = record._fields
    return {name: f"?{after + n}" for n, name in enumerate(fields, start=1)}


_J, _L, _S, _M = _numbered(JobOf), _numbered(Loose), _numbered(Settle), _numbered(Marked)
#: the parameters of a :class:`Marked` row followed by its outcome (a
#: :class:`~gb_backfill._store.journal.Settle`, whose time is the row's ``updated_at``)
_W = {**_numbered(Settle, after=len(Marked._fields)), **_M}
_W["updated_at"] = _W.pop("at")
_ASSIGN = f"UPDATE rows SET job_id = {_J['job_id']} WHERE key = {_J['key']}"
_LOOSE = f"UPDATE rows SET loose = {_L['loose']}, form = {_L['form']} WHERE key = {_L['key']}"
_SETTLE = f"""
UPDATE rows SET status = {_S["status"]}, retryable = {_S["retryable"]},
    attempts = attempts + {_S["attempts"]}, http_status = {_S["http_status"]},
    error_code = {_S["error_code"]}, error_message = {_S["error_message"]},
    updated_at = {_S["at"]}
WHERE key = {_S["key"]}
"""
#: A row marked in flight and settled within one commit group, in one statement instead of
#: four (the mark, _ASSIGN, _LOOSE, _SETTLE); see :mod:`gb_backfill._store.merging`.
_WHOLE = f"""
INSERT INTO rows ({", ".join(ROW_COLUMNS)}) VALUES ({", ".join(_W[c] for c in ROW_COLUMNS)})
ON CONFLICT (key) DO UPDATE SET status = excluded.status, retryable = excluded.retryable,
    attempts = attempts + excluded.attempts, http_status = excluded.http_status,
    error_code = excluded.error_code, error_message = excluded.error_message,
    updated_at = excluded.updated_at, job_id = coalesce(excluded.job_id, job_id),
    form = CASE WHEN excluded.loose IS NULL THEN form ELSE excluded.form END,
    loose = coalesce(excluded.loose, loose)
"""
#: A row marked in flight in a commit group and not yet settled, with its job id and loose
#: key if the group has them, in one statement instead of three.
_MARK = f"""
INSERT INTO rows (status, {", ".join(_M)}) VALUES ('in_flight', {", ".join(_M.values())})
ON CONFLICT (key) DO UPDATE SET status = 'in_flight', updated_at = excluded.updated_at,
    job_id = coalesce(excluded.job_id, job_id),
    form = CASE WHEN excluded.loose IS NULL THEN form ELSE excluded.form END,
    loose = coalesce(excluded.loose, loose)
"""
#: A mark replayed from a journal a crash left: it may be older than the outcome the database
#: already holds (the crash came between the commit and the journal's truncation), and then it
#: must not turn a settled row back into one in flight.
_MARK_REPLAYED = _MARK + " WHERE rows.status = 'in_flight' OR rows.updated_at < excluded.updated_at"

#: The meta row that says how the ledger's loose keys read event names (see
#: :mod:`gb_backfill._rows.loose`).
_LOOSE_NAMES = "loose_names"
#: The meta row that says a run has this ledger open: its latest rows may be in the companion
#: files (the WAL and the journal) rather than in the database file itself.
_IN_USE = "in_use"
_KEYS_PER_QUERY = 5_000
_BUSY_TIMEOUT_MS = 2000
_CACHE_KIB = 16_384
#: statuses whose rows were, or may have been, processed by Gameball
_MAY_HAVE_ARRIVED = tuple(status.value for status in LedgerStatus if status.may_have_arrived)


def connect(path: Path) -> sqlite3.Connection:
    """A connection that writes the ledger at ``path`` (autocommit: transactions are explicit)."""
    return sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that only reads the ledger at ``path``, from whichever worker thread reads
    the input (the preview), one at a time; an empty file reads as an empty ledger."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    check_is_ledger(db, path)
    if not db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
        # An empty file is an empty ledger (a run creates its tables when it writes).
        db.close()
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.executescript(_SCHEMA)
    return db


def check_is_ledger(db: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite file that another program wrote, before anything is written to it."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    application = db.execute("PRAGMA application_id").fetchone()[0]
    columns = {row[1] for row in db.execute("PRAGMA table_info(rows)")}
    ours = application in (0, _APPLICATION_ID) and (
        not tables or ({"rows", "meta"} <= tables and columns >= _REQUIRED_COLUMNS)
    )
    if not ours:
        listed = ", ".join(sorted(tables)) or "none"
        raise LedgerError(
            f"{path} is an SQLite database but not a gb-backfill ledger (its tables: "
            f"{listed}); it was left as it is: give another ledger path (--ledger, ledger=)"
        )


def prepare(db: sqlite3.Connection) -> str:
    """Make the database a ledger open for writing (the tables, the columns later versions
    added, the settings); returns the ledger's identity."""
    # WAL with synchronous=NORMAL survives a killed process (not a power cut).
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    # Keys are random, so every write lands on another page: a larger cache than the
    # default 2 MB keeps more of the table's upper levels at hand (bounded: 16 MB).
    db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
    db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
    db.executescript(_SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(rows)")}
    for name in _ADDED_COLUMNS:
        if name not in columns:
            db.execute(f"ALTER TABLE rows ADD COLUMN {name} {ROW_COLUMNS[name]}")
    db.execute(_INDEX)
    found = db.execute("SELECT value FROM meta WHERE name = 'ledger_id'").fetchone()
    if found:
        return str(found[0])
    identity = uuid.uuid4().hex
    db.execute("INSERT INTO meta (name, value) VALUES ('ledger_id', ?)", (identity,))
    if db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is None:
        # A new ledger: every loose key it will hold is made with event names folded.
        db.execute(f"INSERT INTO meta (name, value) VALUES ('{_LOOSE_NAMES}', 'folded')")
    return identity


def keeps_names_as_written(db: sqlite3.Connection) -> bool:
    """True unless the ledger was created by a version that folds event names in loose keys:
    one created before may hold loose keys made with the names as written."""
    query = f"SELECT value FROM meta WHERE name = '{_LOOSE_NAMES}'"
    found = db.execute(query).fetchone()
    return found is None or found[0] != "folded"


# --- whether a run has the ledger open ---------------------------------------------------------


def in_use(db: sqlite3.Connection) -> bool:
    """Whether the database notes that a run has it open."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if "meta" not in tables:
        return False
    return db.execute("SELECT 1 FROM meta WHERE name = ?", (_IN_USE,)).fetchone() is not None


def noted_in_use(path: Path) -> bool:
    """Whether the database file itself says a run has it open (read as the file alone:
    ``immutable`` makes SQLite create no companion files)."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        ) as db:
            return in_use(db)
    except sqlite3.Error:
        return False  # not a ledger: opening it says so


def mark_in_use(db: sqlite3.Connection) -> None:
    """Note in the database file itself that a run has it open (checkpointed at once, so
    a copy of the file alone says so), until :func:`clear_in_use`."""
    db.execute(
        "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
        (_IN_USE, f"pid {os.getpid()} since {time.time():.0f}"),
    )
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def clear_in_use(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM meta WHERE name = ?", (_IN_USE,))


def keep_last_run(db: sqlite3.Connection, last_run: dict[str, int]) -> None:
    """Keep what the run closing the ledger noted of its input (for ``status``)."""
    _keep_json(db, "last_run", last_run)


def last_run(db: sqlite3.Connection) -> dict[str, int] | None:
    """What :func:`keep_last_run` kept (None: nothing, or a ledger that cannot say)."""
    found = _kept_json(db, "last_run")
    return None if found is None else dict(found)


def keep_read_with(db: sqlite3.Connection, name: str, given: str) -> None:
    """Keep how the input ``name`` was read (``given``: its read options, as JSON)."""
    _keep_json(db, "read_with", {**(_kept_json(db, "read_with") or {}), name: json.loads(given)})


def read_with(db: sqlite3.Connection, name: str) -> dict[str, object] | None:
    """How the input ``name`` was last read (None: never, as far as the ledger knows)."""
    found = (_kept_json(db, "read_with") or {}).get(name)
    return None if found is None else dict(found)


def _keep_json(db: sqlite3.Connection, name: str, value: object) -> None:
    db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, json.dumps(value)))


def _kept_json(db: sqlite3.Connection, name: str) -> Any:
    """A value :func:`_keep_json` kept (None: none, or a ledger whose meta cannot be read)."""
    try:
        found = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None
    return None if found is None else json.loads(found[0])


def use_keys(db: sqlite3.Connection, path: Path, scheme: str) -> None:
    """Record how rows are keyed; refuse a ledger whose rows were keyed another way.

    Keys made another way would match nothing, and every row would be sent again.
    """
    found = db.execute("SELECT value FROM meta WHERE name = 'row_keys'").fetchone()
    if found is None:
        db.execute("INSERT INTO meta (name, value) VALUES ('row_keys', ?)", (scheme,))
    elif found[0] == "content":
        raise LedgerError(
            f"{path} was written by an older gb-backfill whose row keys depended on the "
            "batch and the row's position, so its rows cannot be recognised now: use a new "
            "ledger (the old one's rows were sent; check them before sending the same input "
            "again), or pass row_key=[...] with your own unique columns and a new ledger"
        )
    elif found[0] != scheme:
        raise LedgerError(
            f"{path} keys rows by {found[0]}, this run by {scheme}: rows it sent would "
            "not be recognised and would be sent again. Use the same row_key=[...], or a new "
            "ledger."
        )


# --- reading ---------------------------------------------------------------------------------


def select_in(db: sqlite3.Connection, query: str, values: Sequence[Any]) -> Iterator[Any]:
    """Rows of ``query``, whose ``{marks}`` is filled with ``values`` a few thousand at a time."""
    for start in range(0, len(values), _KEYS_PER_QUERY):
        part = list(values[start : start + _KEYS_PER_QUERY])
        yield from db.execute(query.format(marks=",".join("?" * len(part))), part)


def has_rows(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None


def last_updated(db: sqlite3.Connection) -> float | None:
    last = db.execute("SELECT MAX(updated_at) FROM rows").fetchone()[0]
    return None if last is None else float(last)


def lookup(db: sqlite3.Connection, keys: Sequence[bytes]) -> dict[bytes, LedgerEntry]:
    """The entry of each of ``keys`` the ``rows`` table has."""
    query = (
        "SELECT key, status, retryable, attempts, http_status, error_code, "
        "error_message FROM rows WHERE key IN ({marks})"
    )
    found: dict[bytes, LedgerEntry] = {}
    for key, status, retryable, attempts, http, code, message in select_in(db, query, keys):
        found[key] = LedgerEntry(status, bool(retryable), attempts, http, code, message)
    return found


def has_loose_keys(db: sqlite3.Connection) -> bool:
    """True when a row sent (or perhaps sent) has a loose key to compare new rows with."""
    statuses = ",".join(f"'{status}'" for status in _MAY_HAVE_ARRIVED)
    query = f"SELECT 1 FROM rows WHERE loose IS NOT NULL AND status IN ({statuses}) LIMIT 1"
    return db.execute(query).fetchone() is not None


def loose_forms(db: sqlite3.Connection, looses: Sequence[bytes]) -> dict[bytes, int]:
    """The form mask of the row sent (or perhaps sent) with each of ``looses`` that one has."""
    statuses = ",".join(f"'{status}'" for status in _MAY_HAVE_ARRIVED)
    query = f"SELECT loose, form FROM rows WHERE loose IN ({{marks}}) AND status IN ({statuses})"
    return {loose: int(form or 0) for loose, form in select_in(db, query, looses)}


def pending_jobs(db: sqlite3.Connection) -> list[EarlierJob]:
    """Batch jobs whose rows are still in flight, oldest first (rows whose job was being
    posted, id unknown, are in none: they stay in flight)."""
    jobs: dict[int, EarlierJob] = {}
    if "job_id" not in {row[1] for row in db.execute("PRAGMA table_info(rows)")}:
        return []  # a ledger from before batch jobs, opened read-only (not migrated)
    query = (
        "SELECT job_id, key, customer_id, updated_at FROM rows "
        "WHERE status = 'in_flight' AND job_id IS NOT NULL AND job_id >= 0 "
        "ORDER BY updated_at"
    )
    for job_id, key, customer, when in db.execute(query):
        job = jobs.setdefault(int(job_id), EarlierJob(int(job_id), float(when), []))
        job.rows.append(JobRow(key, customer))
    return list(jobs.values())


def rows_frame(db: sqlite3.Connection) -> pd.DataFrame:
    """Every row (``key``, ``input_row``, ``customer_id``, ``status``, ``retryable``,
    ``attempts``, ``error_code``, ``error_message``, ``updated_at``), as :func:`journal.rows
    <gb_backfill._store.journal.rows>` gives a journal's."""
    columns = [
        "key", "input_row", "customer_id", "status", "retryable", "attempts", "error_code",
        "error_message", "updated_at",
    ]  # fmt: skip
    return pd.read_sql_query(f"SELECT {', '.join(columns)} FROM rows", db)


def journal_records(db: sqlite3.Connection) -> list[bytes]:
    """Every row as the journal records that rebuild it (for a ledger whose database is gone
    while a run had it open)."""
    records: list[bytes] = []
    for values in db.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM rows"):
        row = dict(zip(ROW_COLUMNS, values, strict=True))
        key, at = row["key"], row["updated_at"]
        begin = Begin(key, row["customer_id"] or "", row["input_row"] or 0, at)
        records.append(_journal.begin_record(begin))
        if row["loose"] is not None:
            records.append(_journal.loose_record(Loose(key, row["loose"], row["form"] or 0)))
        if row["job_id"] is not None:
            records.append(_journal.job_record(Assign(row["job_id"], [key])))
        if row["status"] != LedgerStatus.IN_FLIGHT:
            outcome = {name: row[name] for name in Settle._fields if name in row}
            records.append(_journal.settle_record(Settle(**outcome, at=at)))
    return records


# --- writing ---------------------------------------------------------------------------------


def write_rows(
    db: sqlite3.Connection,
    *,
    whole: Sequence[tuple[Marked, Settle]],
    marks: Sequence[Marked],
    jobs: Sequence[JobOf],
    looses: Sequence[Loose],
    settles: Sequence[Settle],
    replaying: bool = False,
) -> None:
    """One commit group's writes to ``rows`` (inside its transaction): rows marked and settled
    in the group (``whole``), rows marked in it (``marks``), and the job ids, loose keys and
    outcomes of rows marked before. ``replaying``: the marks come from a journal a crash left."""
    db.executemany(_WHOLE, [(*marked, *settle) for marked, settle in whole])
    db.executemany(_MARK_REPLAYED if replaying else _MARK, marks)
    db.executemany(_ASSIGN, jobs)
    db.executemany(_LOOSE, looses)
    db.executemany(_SETTLE, settles)
