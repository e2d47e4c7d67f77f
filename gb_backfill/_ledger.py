"""The ledger: a local SQLite file that remembers what happened to every row it was asked to send.

Gameball has no idempotency key, so this file is what makes re-runs and resumes safe. Each row
it is asked about is recorded by its stable key (see :mod:`._row_keys`) with one status:

* ``in_flight``: its request went out and no outcome was recorded (a crash, a kill);
* ``sent``, ``failed`` (with ``retryable``), ``unknown``: the outcome of its last attempt.

The promise: a row is durably marked in flight *before* its request goes out, so a crash at any
instant leaves either no record (the request never went out), ``in_flight`` (it may have been
processed; the next run treats it as ``unknown``), or the settled outcome.

How, cheaply: a transaction per request would cost more than the request itself, so the
in-flight marks first go to an append-only journal beside the database (``PATH-intents``), one
``write()`` each, which survives the process being killed. Every fraction of a second the marks
and the settled outcomes are committed to SQLite in one transaction and the journal is emptied.
Opening a ledger replays a journal left by a crash into the database. A settled outcome may
thus wait a fraction of a second; a crash in that gap leaves the row ``in_flight``, which errs
on the safe side. One run at a time may write a ledger (a lock on the journal enforces it).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ._errors import LedgerError

__all__: list[str] = []

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    key BLOB PRIMARY KEY,
    status TEXT NOT NULL,
    retryable INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    error_code TEXT,
    error_message TEXT,
    customer_id TEXT,
    input_row INTEGER,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_BEGIN = """
INSERT INTO rows (key, status, customer_id, input_row, updated_at) VALUES (?, 'in_flight', ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET status = 'in_flight', updated_at = excluded.updated_at
"""
_SETTLE = """
UPDATE rows SET status = ?, retryable = ?, attempts = attempts + ?, http_status = ?,
    error_code = ?, error_message = ?, updated_at = ?
WHERE key = ?
"""
_LOOKUP_BATCH = 5_000
_COMMIT_EVERY = 0.2  # seconds between commits of journalled marks and settled outcomes

# A journal record: 16-byte key, input row, time, customer id length, then the customer id.
_RECORD = struct.Struct("<16sqdH")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    status: str
    retryable: bool
    attempts: int
    http_status: int | None
    error_code: str | None
    error_message: str | None


def _read_journal(path: Path) -> Iterator[tuple[bytes, str, int, float]]:
    """The marks in a journal, as (key, customer id, input row, time); a torn tail is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    at = 0
    while at + _RECORD.size <= len(data):
        key, row, when, size = _RECORD.unpack_from(data, at)
        end = at + _RECORD.size + size
        if end > len(data):
            return
        customer = data[at + _RECORD.size : end].decode("utf-8", "replace")
        yield key, customer, row, when
        at = end


class Ledger:
    """One ledger file. Not thread-safe: use it from one thread (one event loop).

    ``read_only=True`` opens it for reporting while another run may be writing it.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + "-intents")
        self.read_only = read_only
        self._journal = -1
        try:
            if read_only:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                self._db.execute("SELECT 1 FROM rows LIMIT 1")
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None)
                # WAL with synchronous=NORMAL survives a killed process (not a power cut).
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"{self.path}: not a usable ledger ({error})") from None
        self._begins: list[tuple[bytes, str, int, float]] = []
        self._settles: list[tuple[object, ...]] = []
        self._last_commit = time.monotonic()
        if not read_only:
            self._open_journal()

    def _open_journal(self) -> None:
        fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LedgerError(
                f"{self.path} is in use by another run; wait for it, or use another ledger"
            ) from None
        self._journal = fd
        # Marks a killed run left behind: its requests may have gone out.
        self._begins.extend(_read_journal(self.journal_path))
        self.commit()

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"

    def use_keys(self, scheme: str) -> None:
        """Record how rows are keyed; refuse a ledger whose rows were keyed another way.

        Keys made another way would match nothing, and every row would be sent again.
        """
        found = self._db.execute("SELECT value FROM meta WHERE name = 'row_keys'").fetchone()
        if found is None:
            self._db.execute("INSERT INTO meta (name, value) VALUES ('row_keys', ?)", (scheme,))
        elif found[0] == "content":
            raise LedgerError(
                f"{self.path} was written by an older gb-backfill whose row keys depended on the "
                "batch and the row's position, so its rows cannot be recognised now: use a new "
                "ledger (the old one's rows were sent; check them before sending the same input "
                "again), or pass row_key=[...] with your own unique columns and a new ledger"
            )
        elif found[0] != scheme:
            raise LedgerError(
                f"{self.path} keys rows by {found[0]}, this run by {scheme}: rows it sent would "
                "not be recognised and would be sent again. Use the same row_key, or a new ledger."
            )

    # --- reading -------------------------------------------------------------------------

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, LedgerEntry]:
        """The recorded entry of each key that has one."""
        found: dict[bytes, LedgerEntry] = {}
        for start in range(0, len(keys), _LOOKUP_BATCH):
            batch = keys[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(batch))
            query = (
                "SELECT key, status, retryable, attempts, http_status, error_code, "
                f"error_message FROM rows WHERE key IN ({marks})"
            )
            for key, *entry in self._db.execute(query, batch):
                found[key] = LedgerEntry(entry[0], bool(entry[1]), *entry[2:])
        return found

    def _rows(self) -> pd.DataFrame:
        rows = pd.read_sql_query(
            "SELECT key, input_row, customer_id, status, attempts, error_code, error_message, "
            "updated_at FROM rows",
            self._db,
        )
        # A running (or killed) run's marks may still be in the journal only.
        journal = pd.DataFrame(
            list(_read_journal(self.journal_path)),
            columns=["key", "customer_id", "input_row", "updated_at"],
        )
        if not journal.empty:
            rows = rows[~rows["key"].isin(set(journal["key"]))]
            rows = pd.concat([rows, journal.assign(status="in_flight", attempts=0)])
        return rows

    def counts(self) -> dict[str, int]:
        """Rows per recorded status."""
        statuses = self._rows()["status"].value_counts()
        return {str(status): int(count) for status, count in statuses.items()}

    def unknown_rows(self) -> pd.DataFrame:
        """Rows whose outcome is not known (``unknown``, or ``in_flight`` at a crash)."""
        rows = self._rows()
        unknown = rows[rows["status"].isin(["unknown", "in_flight"])].sort_values("input_row")
        unknown = unknown.assign(updated_at=pd.to_datetime(unknown["updated_at"], unit="s"))
        return unknown.drop(columns="key").reset_index(drop=True)

    # --- writing -------------------------------------------------------------------------

    def begin(self, key: bytes, customer_id: str, input_row: int) -> None:
        """Record ``key`` as in flight; it is durable (against a crash) when this returns."""
        now = time.time()
        customer = customer_id.encode("utf-8")[:65535]
        os.write(self._journal, _RECORD.pack(key, input_row, now, len(customer)) + customer)
        self._begins.append((key, customer_id, input_row, now))
        if time.monotonic() - self._last_commit > _COMMIT_EVERY:
            self.commit()

    def settle(
        self,
        key: bytes,
        status: str,
        *,
        retryable: bool,
        attempts: int,
        http_status: int | None,
        error_code: str | None,
        error_message: str | None,
    ) -> None:
        """Record a row's outcome; committed with the next group (soon)."""
        self._settles.append(
            (
                status,
                int(retryable),
                attempts,
                http_status,
                error_code,
                error_message,
                time.time(),
                key,
            )
        )
        if time.monotonic() - self._last_commit > _COMMIT_EVERY:
            self.commit()

    def commit(self) -> None:
        """Commit pending marks and outcomes in one transaction, then empty the journal."""
        self._last_commit = time.monotonic()
        if not self._begins and not self._settles:
            return
        begins, self._begins = self._begins, []
        settles, self._settles = self._settles, []
        self._db.execute("BEGIN")
        try:
            self._db.executemany(_BEGIN, begins)
            self._db.executemany(_SETTLE, settles)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        # Every mark in the journal is in the database now.
        os.ftruncate(self._journal, 0)

    def close(self) -> None:
        if not self.read_only:
            self.commit()
            os.close(self._journal)
            self._journal = -1
            if self.journal_path.stat().st_size == 0:
                self.journal_path.unlink()
        self._db.close()
