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
on the safe side.

When a write fails (a full disk, another connection holding the database's lock), nothing
pending is dropped: the marks stay in memory and in the journal, :class:`LedgerError` stops the
run, and :meth:`Ledger.close` writes the settled outcomes it could not commit to the journal
too, so the next run recovers them all. One run at a time may write a ledger: a lock is held on
the database file itself, which no run deletes; a run whose database or journal is deleted or
replaced under it stops at its next commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
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
_JOB_COLUMN = "ALTER TABLE rows ADD COLUMN job_id INTEGER"
_ASSIGN = "UPDATE rows SET job_id = ? WHERE key = ?"
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

# The journal starts with a magic line; then records, each a kind byte and a fixed part:
# b"B" (begin): 16-byte key, input row, time, customer id length, then the customer id;
# b"S" (settle): key, status index, retryable, attempts, HTTP status (-1: none), text length,
# then the error code and message as a JSON list; b"J" (a batch job): job id, key count, then
# the 16-byte keys. Journals of 0.1 have no magic, only begins.
_MAGIC = b"GBJ2\n"
_RECORD = struct.Struct("<16sqdH")
_SETTLE_RECORD = struct.Struct("<16sBBiiI")
_JOB_RECORD = struct.Struct("<qI")
_STATUSES = ("in_flight", "sent", "failed", "unknown", "aborted")
_BUSY_TIMEOUT_MS = 2000


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    status: str
    retryable: bool
    attempts: int
    http_status: int | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class EarlierJob:
    """A batch job an earlier run posted whose rows are still in flight."""

    job_id: int
    posted_at: float  #: ``time.time()`` when its rows were marked in flight
    rows: list[tuple[bytes, str]]  #: (key, customer id) of each row


_Begin = tuple[bytes, str, int, float]
_Settle = tuple[object, ...]  # the parameters of _SETTLE, in order


def _read_journal(path: Path) -> Iterator[tuple[str, _Begin | _Settle]]:
    """The records of a journal, in order, as ("B", begin) or ("S", settle); a torn tail is
    skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    legacy = not data.startswith(_MAGIC)
    at = 0 if legacy else len(_MAGIC)
    while at < len(data):
        kind = b"B" if legacy else data[at : at + 1]
        at += 0 if legacy else 1
        if kind == b"B":
            if at + _RECORD.size > len(data):
                return
            key, row, when, size = _RECORD.unpack_from(data, at)
            end = at + _RECORD.size + size
            if end > len(data):
                return
            customer = data[at + _RECORD.size : end].decode("utf-8", "replace")
            yield "B", (key, customer, row, when)
        elif kind == b"S":
            if at + _SETTLE_RECORD.size > len(data):
                return
            key, status, retryable, attempts, http, size = _SETTLE_RECORD.unpack_from(data, at)
            end = at + _SETTLE_RECORD.size + size
            if end > len(data):
                return
            code, message = json.loads(data[at + _SETTLE_RECORD.size : end])
            http_status = None if http < 0 else http
            settled = (_STATUSES[status], retryable, attempts, http_status, code, message)
            yield "S", (*settled, time.time(), key)
        elif kind == b"J":
            if at + _JOB_RECORD.size > len(data):
                return
            job_id, count = _JOB_RECORD.unpack_from(data, at)
            end = at + _JOB_RECORD.size + 16 * count
            if end > len(data):
                return
            keys = data[at + _JOB_RECORD.size : end]
            for start in range(0, len(keys), 16):
                yield "J", (job_id, keys[start : start + 16])
        else:
            return
        at = end


def _begins(path: Path) -> list[_Begin]:
    return [record for kind, record in _read_journal(path) if kind == "B"]  # type: ignore[misc]


class Ledger:
    """One ledger file. Not thread-safe: use it from one thread (one event loop).

    ``read_only=True`` opens it for reporting while another run may be writing it.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + "-intents")
        self.read_only = read_only
        self._journal = -1
        self._lock = -1
        self._broken: LedgerError | None = None
        self._begins: list[_Begin] = []
        self._settles: list[_Settle] = []
        self._jobs: list[tuple[int, bytes]] = []
        self._last_commit = time.monotonic()
        try:
            if read_only:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                self._db.execute("SELECT 1 FROM rows LIMIT 1")
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._take_lock()
                self._db = sqlite3.connect(
                    self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000
                )
                # WAL with synchronous=NORMAL survives a killed process (not a power cut).
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(rows)")}
                if "job_id" not in columns:
                    self._db.execute(_JOB_COLUMN)
        except sqlite3.DatabaseError as error:
            self._release_lock()
            raise LedgerError(f"{self.path}: not a usable ledger ({error})") from None
        except OSError as error:
            self._release_lock()
            raise LedgerError(f"{self.path}: cannot open the ledger ({error})") from None
        if not read_only:
            self._open_journal()

    def _take_lock(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LedgerError(
                f"{self.path} is in use by another run; wait for it, or use another ledger"
            ) from None
        self._lock = fd

    def _release_lock(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def _open_journal(self) -> None:
        try:
            fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as error:
            self._release_lock()
            raise LedgerError(f"{self.journal_path}: cannot open the journal ({error})") from None
        self._journal = fd
        # Marks (and outcomes) a killed or failed run left behind: its requests may have gone out.
        lists = {"B": self._begins, "S": self._settles, "J": self._jobs}
        for kind, record in _read_journal(self.journal_path):
            lists[kind].append(record)  # type: ignore[attr-defined]
        self.commit()
        if os.fstat(fd).st_size == 0:
            os.write(fd, _MAGIC)

    @staticmethod
    def _same_file(path: Path, fd: int) -> bool:
        try:
            return os.path.samestat(os.stat(path), os.fstat(fd))
        except FileNotFoundError:
            return False

    def _check_files(self, *, journal: bool = True) -> None:
        """Stop if the database (or the journal) was deleted or replaced under this run."""
        checks = [(self.path, self._lock)]
        if journal:
            checks.append((self.journal_path, self._journal))
        for path, fd in checks:
            if not self._same_file(path, fd):
                raise LedgerError(
                    f"{path} was deleted or replaced while this run was writing the ledger; the "
                    "run stopped so that no later run trusts a ledger that lost rows"
                )

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

    def has_rows(self) -> bool:
        """True when any row is recorded."""
        return self._db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, LedgerEntry]:
        """The recorded entry of each key that has one, outcomes not yet committed included."""
        if self._settles and not self.read_only and self._broken is None:
            self.commit()
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
            _begins(self.journal_path),
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
        """Record ``key`` as in flight; it is durable (against a crash) when this returns.

        Raises :class:`LedgerError` when the mark cannot be written: the request must not go out.
        """
        self._raise_if_broken()
        now = time.time()
        customer = customer_id.encode("utf-8", "replace")[:65535]
        record = b"B" + _RECORD.pack(key, input_row, now, len(customer)) + customer
        self._append(record)
        self._begins.append((key, customer_id, input_row, now))
        if time.monotonic() - self._last_commit > _COMMIT_EVERY:
            self.commit()

    def _append(self, record: bytes) -> None:
        """Append one record to the journal with one ``write()``; a failed or partial write
        breaks the ledger (the record is not durable, so its request must not go out)."""
        try:
            written = os.write(self._journal, record)
        except OSError as error:
            raise self._break(f"cannot write the journal {self.journal_path} ({error})") from None
        if written != len(record):
            raise self._break(f"the journal {self.journal_path} took a partial write (disk full?)")

    def assign_job(self, job_id: int, keys: Sequence[bytes]) -> None:
        """Record that a batch job carries ``keys`` (in flight); durable when this returns."""
        self._raise_if_broken()
        record = b"J" + _JOB_RECORD.pack(job_id, len(keys)) + b"".join(keys)
        self._append(record)
        self._jobs.extend((job_id, key) for key in keys)

    def pending_jobs(self) -> list[EarlierJob]:
        """Batch jobs whose rows are still in flight, oldest first."""
        jobs: dict[int, EarlierJob] = {}
        query = (
            "SELECT job_id, key, customer_id, updated_at FROM rows "
            "WHERE status = 'in_flight' AND job_id IS NOT NULL ORDER BY updated_at"
        )
        for job_id, key, customer, when in self._db.execute(query):
            job = jobs.setdefault(int(job_id), EarlierJob(int(job_id), float(when), []))
            job.rows.append((key, customer))
        return list(jobs.values())

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
        """Record a row's outcome; committed with the next group (soon).

        The outcome is kept even when the commit that follows fails (then this raises)."""
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
        if self._broken is None and time.monotonic() - self._last_commit > _COMMIT_EVERY:
            self.commit()

    def _break(self, reason: str) -> LedgerError:
        self._broken = LedgerError(
            f"{self.path}: {reason}. The run stopped; every row it knows of is kept in the "
            "journal, and the next run with this ledger recovers them."
        )
        return self._broken

    def _raise_if_broken(self) -> None:
        if self._broken is not None:
            raise self._broken

    def commit(self, *, final: bool = False) -> None:
        """Commit pending marks and outcomes in one transaction, then empty the journal.

        On failure nothing pending is dropped, and :class:`LedgerError` is raised. The
        ``final`` commit at close still writes to a database whose journal was deleted: the
        run has stopped already, and the database is what the next run reads.
        """
        self._last_commit = time.monotonic()
        if not self._begins and not self._settles and not self._jobs:
            return
        try:
            self._check_files(journal=not final)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_BEGIN, self._begins)
                self._db.executemany(_ASSIGN, self._jobs)
                self._db.executemany(_SETTLE, self._settles)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except LedgerError as error:
            self._broken = error
            raise
        except (sqlite3.Error, OSError) as error:
            raise self._break(f"cannot write the ledger ({error})") from None
        self._begins, self._settles, self._jobs = [], [], []
        # Every mark in the journal is in the database now.
        if self._same_file(self.journal_path, self._journal):
            os.ftruncate(self._journal, 0)
            os.write(self._journal, _MAGIC)

    def _journal_settles(self) -> None:
        """Write outcomes that could not be committed to the journal, for the next run."""
        records = []
        for status, retryable, attempts, http, code, message, _when, key in self._settles:
            text = json.dumps([code, message]).encode()
            fixed = _SETTLE_RECORD.pack(
                key,
                _STATUSES.index(str(status)),
                int(retryable),  # type: ignore[call-overload]
                int(attempts),  # type: ignore[call-overload]
                -1 if http is None else int(http),  # type: ignore[call-overload]
                len(text),
            )
            records.append(b"S" + fixed + text)
        if records:
            os.write(self._journal, b"".join(records))

    def close(self) -> None:
        """Commit what is pending and release the ledger.

        If the commit fails, the outcomes are appended to the journal instead (best effort) and
        :class:`LedgerError` is raised after the ledger is released.
        """
        failure: LedgerError | None = None
        if not self.read_only:
            try:
                # Also after a failure: its cause (another connection's lock) may have passed.
                self.commit(final=True)
            except LedgerError as error:
                failure = error
                with contextlib.suppress(OSError):
                    self._journal_settles()
            ours = self._same_file(self.journal_path, self._journal)
            if failure is None and ours and os.fstat(self._journal).st_size <= len(_MAGIC):
                self.journal_path.unlink()
            os.close(self._journal)
            self._journal = -1
            self._release_lock()
        self._db.close()
        if failure is not None:
            raise failure
