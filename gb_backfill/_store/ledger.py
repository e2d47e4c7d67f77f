"""The ledger: a local SQLite file that remembers what happened to every row it was asked to send.

Gameball has no idempotency key, so this file is what makes re-runs and resumes safe. Each row
it is asked about is recorded by its stable key (see :mod:`gb_backfill._rows.keys`) with one status:

* ``in_flight``: its request went out and no outcome was recorded (a crash, a kill);
* ``sent``, ``failed`` (with ``retryable``), ``unknown``, ``aborted``: its latest outcome.

Each row also keeps its *loose key*, which ignores how values were written (text or typed,
empty or missing), so that the same rows sent again from another export are recognised.

The promise: a row is durably marked in flight *before* its request goes out, so a crash at any
instant leaves either no record (the request never went out), ``in_flight`` (it may have been
processed; the next run treats it as ``unknown``), or the settled outcome.

How, cheaply: a transaction per request would cost more than the request itself, so the
in-flight marks first go to an append-only journal beside the database (``PATH-intents``, see
:mod:`gb_backfill._store.journal`), one ``write()`` each, which survives the process being killed.
Every fraction of a second the marks and the settled outcomes are committed to SQLite in one
transaction and the journal is emptied. Opening a ledger replays a journal left by a crash into the
database. A settled outcome may thus wait a fraction of a second; a crash in that gap leaves the row
``in_flight``, which errs on the safe side.

When a write fails (a full disk, another connection holding the database's lock), nothing
pending is dropped: the marks stay in memory and in the journal, :class:`LedgerError` stops the
run, and :meth:`Ledger.close` writes what it could not commit to the journal too, so the next
run recovers it all. One run at a time may write a ledger: a lock is held on the database file
itself. A run whose database is deleted or replaced under it stops at its next commit and writes
everything the ledger knew into the journal. A ledger whose database is missing while its
journal or write-ahead log is still there, or whose journal belongs to another database, is
refused (a fresh database would not know the rows already sent): ``gb-backfill status`` shows
the journal's rows, and ``rebuild=True`` (``--rebuild-ledger``) rebuilds from the journal.
A SQLite file that is not a ledger is refused without being written to.

A ledger no run uses is one file: a run notes in the database itself (checkpointed at once)
that it has the ledger open, and a clean close clears the note, folds the WAL back into the
file and removes the journal, so the file can be copied alone. A file whose note is still there
while its journal is missing (copied alone after a crash: its latest rows are in the journal
and the WAL) is refused, never taken as new. A journal replayed after a crash never turns a
row the database holds as settled back into one in flight: the crash may have come between
the commit and the journal's truncation, and the marks are older than the outcomes.

What the way back in needs besides each row's status (invalid rows, the requests of rows whose
outcome is unknown, settlements by hand) is kept in tables of its own: see
:mod:`gb_backfill._store.ledger_extras`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .._errors import LedgerError
from .._vocabulary import LedgerStatus
from . import journal as _journal
from . import ledger_extras as _ledger_extras

__all__: list[str] = []

#: SQLite's ``application_id`` of a ledger ("GBbf"), so other programs' files are told apart.
_APPLICATION_ID = 0x47426266
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
    updated_at REAL NOT NULL,
    job_id INTEGER,
    loose BLOB,
    form INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INDEX = "CREATE INDEX IF NOT EXISTS rows_by_loose ON rows (loose) WHERE loose IS NOT NULL"
#: columns later versions added, and how ledgers written before them gain them
_ADDED_COLUMNS = {"job_id": "INTEGER", "loose": "BLOB", "form": "INTEGER"}
_REQUIRED_COLUMNS = {"key", "status", "retryable", "attempts", "customer_id", "updated_at"}
_ASSIGN = "UPDATE rows SET job_id = ? WHERE key = ?"
_LOOSE = "UPDATE rows SET loose = ?, form = ? WHERE key = ?"
_SETTLE = """
UPDATE rows SET status = ?, retryable = ?, attempts = attempts + ?, http_status = ?,
    error_code = ?, error_message = ?, updated_at = ?
WHERE key = ?
"""
#: A row marked in flight and settled within one commit group, in one statement instead of
#: four (the mark, _ASSIGN, _LOOSE, _SETTLE); see _merged.
_WHOLE = """
INSERT INTO rows (key, status, retryable, attempts, http_status, error_code, error_message,
    customer_id, input_row, updated_at, job_id, loose, form)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET status = excluded.status, retryable = excluded.retryable,
    attempts = attempts + excluded.attempts, http_status = excluded.http_status,
    error_code = excluded.error_code, error_message = excluded.error_message,
    updated_at = excluded.updated_at, job_id = coalesce(excluded.job_id, job_id),
    form = CASE WHEN excluded.loose IS NULL THEN form ELSE excluded.form END,
    loose = coalesce(excluded.loose, loose)
"""
#: A row marked in flight in a commit group and not yet settled, with its job id and loose
#: key if the group has them, in one statement instead of three; see _merged.
_MARK = """
INSERT INTO rows (key, status, customer_id, input_row, updated_at, job_id, loose, form)
VALUES (?, 'in_flight', ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET status = 'in_flight', updated_at = excluded.updated_at,
    job_id = coalesce(excluded.job_id, job_id),
    form = CASE WHEN excluded.loose IS NULL THEN form ELSE excluded.form END,
    loose = coalesce(excluded.loose, loose)
"""
#: A mark replayed from a journal a crash left: it may be older than the outcome the database
#: already holds (the crash came between the commit and the journal's truncation), and then it
#: must not turn a settled row back into one in flight.
_MARK_REPLAYED = _MARK + " WHERE rows.status = 'in_flight' OR rows.updated_at < excluded.updated_at"
#: The meta row that says a run has this ledger open: its latest rows may be in the companion
#: files (the WAL and the journal) rather than in the database file itself.
_IN_USE = "in_use"
_LOOKUP_BATCH = 5_000
_COMMIT_EVERY = 0.2  # seconds between commits of journalled marks and settled outcomes
_BUSY_TIMEOUT_MS = 2000
_CACHE_KIB = 16_384
#: The job id a row is recorded with while the POST of its next job is out: its earlier job
#: (one that answered 2001 for it) is left, and the new job's id is not known yet. A resume
#: cannot ask that job, so the row stays in flight (unknown) instead of being sent again.
POSTING_JOB = -1
#: statuses whose rows were, or may have been, processed by Gameball
_MAY_HAVE_ARRIVED = tuple(status.value for status in LedgerStatus if status.may_have_arrived)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    status: str
    retryable: bool
    attempts: int
    http_status: int | None
    error_code: str | None
    error_message: str | None


#: a request, and its journal record (written again after each commit while its row is in flight)
_Kept = tuple[_journal.Request, bytes]
#: what a lookup says of a row a run found invalid (and no run has recorded otherwise since)
_INVALID_ENTRY = LedgerEntry(LedgerStatus.INVALID.value, False, 0, None, None, None)


@dataclass(frozen=True, slots=True)
class EarlierJob:
    """A batch job an earlier run posted whose rows are still in flight."""

    job_id: int
    posted_at: float  #: ``time.time()`` when its rows were marked in flight
    rows: list[tuple[bytes, str]]  #: (key, customer id) of each row


def _leftovers(path: Path) -> list[Path]:
    """The files a ledger's database leaves beside it: its journal and SQLite's WAL."""
    names = ("-intents", "-wal")
    return [found for name in names if (found := path.with_name(path.name + name)).exists()]


def refuse_missing_ledger(path: Path) -> None:
    """Raise :class:`LedgerError` when ``path`` is missing but its journal or WAL is not, or
    when it is a file a killed run left without its journal (as a run would refuse it)."""
    leftovers = _leftovers(path)
    if not path.exists() and leftovers:
        raise LedgerError(_missing_message(path, leftovers))
    journal = path.with_name(path.name + "-intents")
    if path.exists() and not journal.exists() and _noted_in_use(path):
        raise LedgerError(
            _lost_companions_message(path, journal, path.with_name(path.name + "-wal"))
        )


def _noted_in_use(path: Path) -> bool:
    """Whether the database file itself says a run has it open (read as the file alone:
    ``immutable`` makes SQLite create no companion files)."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        ) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "meta" not in tables:
                return False
            found = db.execute("SELECT 1 FROM meta WHERE name = ?", (_IN_USE,)).fetchone()
            return found is not None
    except sqlite3.Error:
        return False  # not a ledger: opening it says so


def _missing_message(path: Path, leftovers: Sequence[Path]) -> str:
    names = " and ".join(found.name for found in leftovers)
    verb = "are" if len(leftovers) > 1 else "is"
    return (
        f"{path} is missing, but {names} beside it {verb} still there: the ledger's database "
        "was deleted, and a new one would not know the rows already sent, so they could be "
        f"sent twice. `gb-backfill status --ledger {path}` shows what the journal holds; to "
        "rebuild the ledger from it, run again with --rebuild-ledger (rebuild_ledger=True). To "
        f"start afresh on purpose, delete {names} too."
    )


def _lost_companions_message(path: Path, journal: Path, wal: Path) -> str:
    return (
        f"{path} was in use by a run that did not finish (it was killed or crashed), and its "
        f"journal {journal.name} is not beside it: a ledger file copied alone? Its latest rows "
        f"are in {journal.name} and {wal.name}: copy every file whose name starts with "
        f"{path.name} from where the run was into {path.parent}, then run again; without them, "
        "rows already sent would be sent again. If they are lost for good, --rebuild-ledger "
        "(rebuild_ledger=True) trusts this file alone."
    )


def journal_rows(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows a ledger's journal holds (for ``gb-backfill status`` when the database is gone);
    the columns of :meth:`Ledger.unknown_rows` plus ``status``."""
    base = Path(path)
    return _journal.rows(_journal.read(base.with_name(base.name + "-intents")))


class Ledger:
    """One ledger file. Not thread-safe: use it from one thread (one event loop).

    ``read_only=True`` opens it for reporting while another run may be writing it.
    ``rebuild=True`` opens a ledger whose database is missing or replaced by rebuilding it from
    what its journal holds.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, read_only: bool = False, rebuild: bool = False
    ) -> None:
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + "-intents")
        self.read_only = read_only
        self.identity = ""
        self._journal = -1
        self._lock = -1
        self._broken: LedgerError | None = None
        self._begins: list[_journal.Begin] = []
        self._looses: list[_journal.Loose] = []
        self._settles: list[_journal.Settle] = []
        self._jobs: list[_journal.Assign] = []
        self._replaying = False
        #: the requests of rows marked since the last commit (and, at open, those the journal
        #: had), of rows in flight across commits (journalled again after each), and invalid
        #: rows to record
        self._requests: dict[bytes, _Kept] = {}
        self._carried: dict[bytes, _Kept] = {}
        self._invalid: list[tuple[bytes, int, float]] = []
        self._extras = True  #: the extras tables are there (a read-only old ledger: not)
        self._has_invalid = False
        self._last_commit = time.monotonic()
        if read_only:
            self._open_read_only()
            return
        existed = self.path.exists() and self.path.stat().st_size > 0
        leftovers = _leftovers(self.path)
        if not existed and leftovers and not rebuild:
            raise LedgerError(_missing_message(self.path, leftovers))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._take_lock()
            if not existed:
                for stale in leftovers:  # a deleted database's WAL must not reach a new one
                    if stale != self.journal_path:
                        stale.rename(stale.with_name(stale.name + ".orphaned"))
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000
            )
            self._prepare_database(rebuild=rebuild, companions=leftovers)
        except sqlite3.DatabaseError as error:
            self._release_lock()
            raise LedgerError(f"{self.path}: not a usable ledger ({error})") from None
        except OSError as error:
            self._release_lock()
            raise LedgerError(f"{self.path}: cannot open the ledger ({error})") from None
        except LedgerError:
            self._release_lock()
            raise
        self._open_journal(rebuild=rebuild)

    def _open_read_only(self) -> None:
        # Read from whichever worker thread reads the input (the preview), one at a time.
        try:
            self._db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, check_same_thread=False
            )
            self._check_is_ledger()
            if not self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
                # An empty file is an empty ledger (a run creates its tables when it writes).
                self._db.close()
                self._db = sqlite3.connect(":memory:", check_same_thread=False)
                self._db.executescript(_SCHEMA)
            self._extras = _ledger_extras.present(self._db)
            self._has_invalid = self._extras and _ledger_extras.has_invalid(self._db)
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"{self.path}: not a usable ledger ({error})") from None

    def _check_is_ledger(self) -> None:
        """Refuse an SQLite file that another program wrote, before anything is written to it."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        application = self._db.execute("PRAGMA application_id").fetchone()[0]
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(rows)")}
        ours = application in (0, _APPLICATION_ID) and (
            not tables or ({"rows", "meta"} <= tables and columns >= _REQUIRED_COLUMNS)
        )
        if not ours:
            listed = ", ".join(sorted(tables)) or "none"
            raise LedgerError(
                f"{self.path} is an SQLite database but not a gb-backfill ledger (its tables: "
                f"{listed}); it was left as it is: give another ledger path (--ledger, ledger=)"
            )

    def _prepare_database(self, *, rebuild: bool, companions: Sequence[Path]) -> None:
        self._check_is_ledger()
        self._refuse_lost_companions(rebuild=rebuild, found=companions)
        # WAL with synchronous=NORMAL survives a killed process (not a power cut).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Keys are random, so every write lands on another page: a larger cache than the
        # default 2 MB keeps more of the table's upper levels at hand (bounded: 16 MB).
        self._db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        self._db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(rows)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in columns:
                self._db.execute(f"ALTER TABLE rows ADD COLUMN {name} {kind}")
        self._db.execute(_INDEX)
        _ledger_extras.create(self._db)
        self._has_invalid = _ledger_extras.has_invalid(self._db)
        found = self._db.execute("SELECT value FROM meta WHERE name = 'ledger_id'").fetchone()
        self.identity = found[0] if found else uuid.uuid4().hex
        if not found:
            self._db.execute(
                "INSERT INTO meta (name, value) VALUES ('ledger_id', ?)", (self.identity,)
            )

    def _refuse_lost_companions(self, *, rebuild: bool, found: Sequence[Path]) -> None:
        """Refuse a database whose run did not close it while its journal is missing (``found``:
        the companions there before SQLite opened it): the latest rows were in it and the WAL
        (a ledger file copied alone after a crash), and a run trusting the file alone would
        send those rows again."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if rebuild or "meta" not in tables:
            return
        in_use = self._db.execute("SELECT 1 FROM meta WHERE name = ?", (_IN_USE,)).fetchone()
        wal = self.path.with_name(self.path.name + "-wal")
        # Only the journal says it reliably: any connection's clean close (a reader's, another
        # program's) folds the WAL into the file and removes it, but the journal stays until
        # this ledger is closed cleanly, and a crash leaves it.
        if in_use and self.journal_path not in found:
            self._db.close()
            # Leave the folder as it was: opening made an empty WAL and its index.
            for made in (wal, self.path.with_name(self.path.name + "-shm")):
                if made not in found:
                    made.unlink(missing_ok=True)
            raise LedgerError(_lost_companions_message(self.path, self.journal_path, wal))

    def _mark_in_use(self) -> None:
        """Note in the database file itself that a run has it open (checkpointed at once, so
        a copy of the file alone says so), until :meth:`close` makes it one file again."""
        self._db.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
            (_IN_USE, f"pid {os.getpid()} since {time.time():.0f}"),
        )
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

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

    def _open_journal(self, *, rebuild: bool) -> None:
        try:
            found = _journal.read(self.journal_path)
        except LedgerError:
            self._db.close()
            self._release_lock()
            raise
        if found.identity not in (None, self.identity) and not rebuild:
            self._db.close()
            self._release_lock()
            raise LedgerError(
                f"{self.journal_path} belongs to another ledger database than {self.path} (the "
                "database was replaced): its rows would be lost. `gb-backfill status --ledger "
                f"{self.path}` shows them; to add them to this database, run again with "
                "--rebuild-ledger (rebuild_ledger=True), or put the right database back."
            )
        try:
            fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as error:
            self._db.close()
            self._release_lock()
            raise LedgerError(f"{self.journal_path}: cannot open the journal ({error})") from None
        self._journal = fd
        # What a killed or failed run left behind: its requests may have gone out.
        self._begins, self._looses = found.begins, found.looses
        self._settles, self._jobs = found.settles, found.jobs
        self._requests = {r[0]: (r, _journal.request_record(r)) for r in found.requests}
        self._replaying = True
        try:
            self.commit()
        finally:
            self._replaying = False
        if os.fstat(fd).st_size == 0:
            os.write(fd, _journal.header(self.identity))
        self._mark_in_use()

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
                "not be recognised and would be sent again. Use the same row_key=[...], or a new "
                "ledger."
            )

    # --- reading -------------------------------------------------------------------------

    def has_rows(self) -> bool:
        """True when any row is recorded."""
        return self._db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None

    def last_sent_at(self) -> float | None:
        """When (``time.time()``) a run with this ledger last marked a row in flight or
        recorded an outcome: no run with it sent later. None when it recorded no row."""
        self._commit_pending_outcomes()
        last = self._db.execute("SELECT MAX(updated_at) FROM rows").fetchone()[0]
        return None if last is None else float(last)

    def _commit_pending_outcomes(self) -> None:
        if self._settles and not self.read_only and self._broken is None:
            self.commit()

    def _select_in(self, query: str, values: Sequence[bytes]) -> Iterator[Any]:
        """Rows of ``query``, whose ``{marks}`` is filled with ``values`` a batch at a time."""
        for start in range(0, len(values), _LOOKUP_BATCH):
            batch = values[start : start + _LOOKUP_BATCH]
            yield from self._db.execute(query.format(marks=",".join("?" * len(batch))), batch)

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, LedgerEntry]:
        """The recorded entry of each key that has one, outcomes not yet committed included."""
        self._commit_pending_outcomes()
        query = (
            "SELECT key, status, retryable, attempts, http_status, error_code, "
            "error_message FROM rows WHERE key IN ({marks})"
        )
        found: dict[bytes, LedgerEntry] = {}
        for key, status, retryable, *rest in self._select_in(query, keys):
            found[key] = LedgerEntry(status, bool(retryable), *rest)
        if self._has_invalid or self._invalid:
            self._commit_pending_invalid()
            new = [key for key in keys if key not in found]
            for key in _ledger_extras.invalid_keys(self._db, new):
                found[key] = _INVALID_ENTRY
        return found

    def _commit_pending_invalid(self) -> None:
        if self._invalid and not self.read_only and self._broken is None:
            self.commit()

    def has_loose_keys(self) -> bool:
        """True when a row sent (or perhaps sent) has a loose key to compare new rows with."""
        statuses = ",".join(f"'{status}'" for status in _MAY_HAVE_ARRIVED)
        query = f"SELECT 1 FROM rows WHERE loose IS NOT NULL AND status IN ({statuses}) LIMIT 1"
        return self._db.execute(query).fetchone() is not None

    def changed(self, keys: Sequence[bytes], looses: Sequence[bytes]) -> dict[int, int]:
        """Rows that look sent but differ: for each index whose key the ledger does not know
        but whose loose key a row sent (or perhaps sent) has, that row's form mask."""
        known = self.lookup(keys)
        new = [index for index, key in enumerate(keys) if key not in known]
        if not new:
            return {}
        sent = self.loose_forms([looses[i] for i in new])
        return {i: sent[looses[i]] for i in new if looses[i] in sent}

    def loose_forms(self, looses: Sequence[bytes]) -> dict[bytes, int]:
        """The form mask of the row sent (or perhaps sent) with each of ``looses`` that one
        has."""
        statuses = ",".join(f"'{status}'" for status in _MAY_HAVE_ARRIVED)
        query = (
            f"SELECT loose, form FROM rows WHERE loose IN ({{marks}}) AND status IN ({statuses})"
        )
        return {loose: int(form or 0) for loose, form in self._select_in(query, looses)}

    def _rows(self) -> pd.DataFrame:
        rows = pd.read_sql_query(
            "SELECT key, input_row, customer_id, status, attempts, error_code, error_message, "
            "updated_at FROM rows",
            self._db,
        )
        # A running (or killed) run's marks may still be in the journal only.
        pending = _journal.rows(_journal.read(self.journal_path))
        if not pending.empty:
            rows = pd.concat([rows[~rows["key"].isin(set(pending["key"]))], pending])
        return rows

    def counts(self) -> dict[str, int]:
        """Rows per recorded status (``invalid`` too: rows a run found invalid, whose fixed
        copy no run has recorded since)."""
        statuses = self._rows()["status"].value_counts()
        counts = {str(status): int(count) for status, count in statuses.items()}
        invalid = _ledger_extras.invalid_count(self._db) if self._extras else 0
        if invalid:
            counts[LedgerStatus.INVALID.value] = invalid
        return counts

    def unknown_rows(self) -> pd.DataFrame:
        """Rows whose outcome is not known (``unknown``, or ``in_flight`` at a crash), with what
        their request said where the ledger has it (see :func:`unknown_rows`)."""
        stored = _ledger_extras.stored_requests(self._db) if self._extras else []
        pending = _journal.read(self.journal_path).requests
        return unknown_rows(self._rows(), [*stored, *pending])

    def settlements(self) -> dict[str, int]:
        """Rows settled by hand, per verdict."""
        return _ledger_extras.settlement_counts(self._db) if self._extras else {}

    def settle_by_hand(
        self, keys: Sequence[bytes] | None, *, arrived: bool
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """See :func:`~gb_backfill._store.ledger_extras.settle_by_hand`; the ledger must be open
        for writing."""
        if self.read_only:
            raise LedgerError(f"{self.path} is open read-only")
        self.commit()
        return _ledger_extras.settle_by_hand(self._db, keys, arrived=arrived, now=time.time())

    # --- writing -------------------------------------------------------------------------

    def begin(
        self,
        key: bytes,
        customer_id: str,
        input_row: int,
        *,
        loose: bytes | None = None,
        form: int = 0,
    ) -> None:
        """Record ``key`` as in flight (see :meth:`begin_many`)."""
        self.begin_many([(key, customer_id, input_row, loose, form)])

    def begin_many(
        self,
        marks: Sequence[tuple[bytes, str, int, bytes | None, int]],
        requests: Sequence[tuple[bytes, int, bytes]] = (),
    ) -> None:
        """Record rows as in flight, with one ``write()`` to the journal; they are durable
        (against a crash) when this returns. Each mark is the row's key, customer id, input row,
        loose key and form mask (see :mod:`gb_backfill._rows.loose`); ``requests``, when given, has
        each row's content hash and occurrence (its ``gb_key``; -1: a ``row_key=`` key) and request
        body, kept while its outcome is not known (for ``status``).

        Raises :class:`LedgerError` when the marks cannot be written: the requests must not go
        out.
        """
        self._raise_if_broken()
        now = time.time()
        records = []
        for key, customer_id, input_row, loose, form in marks:
            records.append(_journal.begin_record(key, customer_id, input_row, now))
            if loose is not None:
                records.append(_journal.loose_record(key, loose, form))
        made: list[_Kept] = []
        for mark, (content, occurrence, body) in zip(marks, requests, strict=False):  # or none
            request = (mark[0], content, occurrence, body, now)
            made.append((request, _journal.request_record(request)))
            records.append(made[-1][1])
        self._append(b"".join(records))
        for key, customer_id, input_row, loose, form in marks:
            self._begins.append((key, customer_id, input_row, now))
            if loose is not None:
                self._looses.append((loose, form, key))
        for kept in made:
            self._requests[kept[0][0]] = kept
        if time.monotonic() - self._last_commit > _COMMIT_EVERY:
            # The marks are durable now, so their requests may go: a commit that fails here
            # breaks the ledger, and the next begin stops the run instead.
            with contextlib.suppress(LedgerError):
                self.commit()

    def _append(self, record: bytes) -> None:
        """Append ``record`` to the journal with one ``write()``; a failed or partial write
        breaks the ledger (the record is not durable, so its request must not go out)."""
        try:
            written = os.write(self._journal, record)
        except OSError as error:
            raise self._break(f"cannot write the journal {self.journal_path} ({error})") from None
        if written != len(record):
            raise self._break(f"the journal {self.journal_path} took a partial write (disk full?)")

    def record_invalid(self, rows: Sequence[tuple[bytes, int]]) -> None:
        """Record rows a run found invalid, each ``(key, input row)``, with the next commit
        group. Never over a row the ledger knows otherwise; losing them (a crash) loses nothing
        that matters: the next run with the input finds them again."""
        if rows and not self.read_only:
            now = time.time()
            self._invalid.extend((key, row, now) for key, row in rows)
            self._has_invalid = True

    def assign_job(self, job_id: int, keys: Sequence[bytes]) -> None:
        """Record that a batch job carries ``keys`` (in flight); durable when this returns.

        ``job_id`` :data:`POSTING_JOB`: a job is being posted for ``keys`` (recorded before its
        POST goes out, so the ledger never points a row at a job it has left)."""
        self._raise_if_broken()
        self._append(_journal.job_record(job_id, keys))
        self._jobs.extend((job_id, key) for key in keys)

    def pending_jobs(self) -> list[EarlierJob]:
        """Batch jobs whose rows are still in flight, oldest first (rows whose job was being
        posted, id unknown, are in none: they stay in flight)."""
        jobs: dict[int, EarlierJob] = {}
        query = (
            "SELECT job_id, key, customer_id, updated_at FROM rows "
            "WHERE status = 'in_flight' AND job_id IS NOT NULL AND job_id >= 0 "
            "ORDER BY updated_at"
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
        self.settle_many(
            [(key, attempts)], status, retryable=retryable, http_status=http_status,
            error_code=error_code, error_message=error_message,
        )  # fmt: skip

    def settle_many(
        self,
        rows: Sequence[tuple[bytes, int]],
        status: str,
        *,
        retryable: bool,
        http_status: int | None,
        error_code: str | None,
        error_message: str | None,
    ) -> None:
        """Record one outcome for many rows, each ``(key, attempts)``; committed with the next
        group (soon), in one ``executemany`` with every other pending outcome.

        The outcomes are kept even when the commit that follows fails (then this raises)."""
        if not rows:
            return
        now, flag = time.time(), int(retryable)
        self._settles.extend(
            (status, flag, attempts, http_status, error_code, error_message, now, key)
            for key, attempts in rows
        )
        if self._broken is None and time.monotonic() - self._last_commit > _COMMIT_EVERY:
            self.commit()

    def retry_later(
        self,
        keys: Sequence[bytes],
        *,
        pacing: bool,
        http_status: int | None,
        error_code: str | None,
        error_message: str | None,
    ) -> None:
        """Record that the requests for ``keys`` were answered with a refusal the run will retry
        (a 429, a 5xx, a connection that never opened), as a stop would (see
        :meth:`~gb_backfill._engine.bookkeeping.Bookkeeper.stopped_early`): ``aborted`` when refused
        for the pace, else ``failed``; retryable either way, until they are marked again for the
        retry.

        Committed at once, with everything pending: a run killed while they wait (a
        ``Retry-After`` can be long, and nothing else commits meanwhile) leaves them to be sent
        by the next run, not ``in_flight``, and their next mark always lands in a later commit
        group than this outcome.
        """
        if not keys:
            return
        status = LedgerStatus.ABORTED if pacing else LedgerStatus.FAILED
        self.settle_many(
            [(key, 0) for key in keys], status.value, retryable=True, http_status=http_status,
            error_code=error_code, error_message=error_message,
        )  # fmt: skip
        self._raise_if_broken()
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
        pending = self._begins or self._settles or self._jobs or self._looses or self._invalid
        if not (pending or self._requests or (final and self._carried)):
            return
        try:
            self._check_files(journal=not final)
            whole, marks, jobs, looses, settles = _merged(
                self._begins, self._jobs, self._looses, self._settles
            )
            keep, carried = _request_changes(
                self._requests, self._carried, whole, marks, settles, final=final
            )
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # In key order: neighbouring keys share the B-tree's pages.
                self._db.executemany(_WHOLE, whole)
                self._db.executemany(_MARK_REPLAYED if self._replaying else _MARK, marks)
                self._db.executemany(_ASSIGN, jobs)
                self._db.executemany(_LOOSE, looses)
                self._db.executemany(_SETTLE, settles)
                _ledger_extras.write_group(self._db, keep=keep, invalid=self._invalid)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except LedgerError as error:
            self._broken = error
            raise
        except (sqlite3.Error, OSError) as error:
            raise self._break(f"cannot write the ledger ({error})") from None
        self._begins, self._settles, self._jobs, self._looses = [], [], [], []
        self._requests, self._carried, self._invalid = {}, carried, []
        # Every mark in the journal is in the database now; the requests of rows still in
        # flight stay in the journal (a row that ends sent never costs a database write).
        if self._same_file(self.journal_path, self._journal):
            os.ftruncate(self._journal, 0)
            records = [record for _, record in carried.values()]
            os.write(self._journal, b"".join([_journal.header(self.identity), *records]))

    def _save_to_journal(self) -> None:
        """Write what could not be committed to the journal, for the next run. When the
        database itself is gone, that is everything it held: a rebuild then loses nothing."""
        records: list[bytes] = []
        if not self._same_file(self.path, self._lock):
            query = (
                "SELECT key, customer_id, input_row, updated_at, status, retryable, attempts, "
                "http_status, error_code, error_message, job_id, loose, form FROM rows"
            )
            for key, customer, row, when, status, *outcome, job, loose, form in self._db.execute(
                query
            ):
                records.append(_journal.begin_record(key, customer or "", row or 0, when))
                if loose is not None:
                    records.append(_journal.loose_record(key, loose, form or 0))
                if job is not None:
                    records.append(_journal.job_record(job, [key]))
                if status != LedgerStatus.IN_FLIGHT:
                    records.append(_journal.settle_record((status, *outcome, when, key)))
            records += [_journal.begin_record(*begin) for begin in self._begins]
            records += [
                _journal.loose_record(key, loose, form) for loose, form, key in self._looses
            ]
            records += [_journal.job_record(job, [key]) for job, key in self._jobs]
            stored = _ledger_extras.stored_requests(self._db) if self._extras else []
            records += [_journal.request_record(request) for request in stored]
        pending = {**self._carried, **self._requests}
        records += [record for _, record in pending.values()]
        records += [_journal.settle_record(settle) for settle in self._settles]
        for start in range(0, len(records), 10_000):
            os.write(self._journal, b"".join(records[start : start + 10_000]))

    def close(self) -> None:
        """Commit what is pending and release the ledger.

        If the commit fails, what it held goes to the journal instead (best effort) and
        :class:`LedgerError` is raised after the ledger is released.
        """
        failure: LedgerError | None = None
        if not self.read_only:
            try:
                # Also after a failure: its cause (another connection's lock) may have passed.
                self.commit(final=True)
                if self._has_invalid:
                    with contextlib.suppress(sqlite3.Error):
                        _ledger_extras.tidy(self._db)
            except LedgerError as error:
                failure = error
                with contextlib.suppress(OSError, sqlite3.Error):
                    self._save_to_journal()
            ours = self._same_file(self.journal_path, self._journal)
            empty = os.fstat(self._journal).st_size <= len(_journal.header(self.identity))
            # (The final commit wrote the requests of rows still in flight to the database.)
            if failure is None:
                with contextlib.suppress(sqlite3.Error):  # the next open checks again
                    self._db.execute("DELETE FROM meta WHERE name = ?", (_IN_USE,))
            if failure is None and ours and empty:
                self.journal_path.unlink()
            os.close(self._journal)
            self._journal = -1
            if failure is None:
                with contextlib.suppress(sqlite3.Error):  # a reader holds it: kept in WAL
                    self._db.execute("PRAGMA journal_mode=DELETE")
            self._release_lock()
        self._db.close()
        if failure is not None:
            raise failure


def _merged(
    begins: Sequence[_journal.Begin],
    jobs: Sequence[_journal.Assign],
    looses: Sequence[_journal.Loose],
    settles: Sequence[_journal.Settle],
) -> tuple[list[Any], list[Any], list[Any], list[Any], list[Any]]:
    """One commit group's writes, one statement per row where it can be: ``_WHOLE`` rows
    (marked and settled in the group), ``_MARK`` rows (marked, not settled yet), and the job
    ids, loose keys and outcomes of rows marked in an earlier group; each list in key order.

    The merged statements do what the separate ones would in their order (marks, job ids,
    loose keys, outcomes): a new key gets the mark's customer and input row; on a key an
    earlier run wrote, the customer and input row stay, the attempts add up, the job id and
    the loose key change only when the group has one, and the status and error fields are the
    last outcome's (a mark's: in flight, the error fields kept).
    """
    marked: dict[bytes, list[Any]] = {}  # key, customer, input row, time, job, loose, form
    for key, customer, input_row, when in begins:
        marked[key] = [key, customer, input_row, when, None, None, 0]
    for job_id, key in jobs:
        if key in marked:
            marked[key][4] = job_id
    for loose, form, key in looses:
        if key in marked:
            marked[key][5:7] = [loose, form]
    settled: dict[object, list[Any]] = {}
    for settle in settles:
        which = settle[7]
        if which in marked:
            found = settled.get(which)
            attempts = settle[2] if found is None else found[2] + settle[2]
            settled[which] = [*settle[:2], attempts, *settle[3:]]
    whole, marks = [], []
    for key, row in marked.items():
        outcome = settled.get(key)
        if outcome is None:
            marks.append(tuple(row))
        else:
            status, retryable, attempts, http, code, message, when, _ = outcome
            whole.append(
                (key, status, retryable, attempts, http, code, message, *row[1:3], when, *row[4:])
            )
    latest_job = {key: job_id for job_id, key in jobs if key not in marked}  # the last one holds
    return (
        sorted(whole),
        sorted(marks),
        sorted(((job_id, key) for key, job_id in latest_job.items()), key=lambda j: j[1]),
        sorted((x for x in looses if x[2] not in marked), key=lambda x: x[2]),
        sorted((s for s in settles if s[7] not in marked), key=_settled_key),
    )


def _settled_key(settle: _journal.Settle) -> bytes:
    key = settle[7]
    assert isinstance(key, bytes)
    return key


_IN_FLIGHT, _UNKNOWN = LedgerStatus.IN_FLIGHT.value, LedgerStatus.UNKNOWN.value


def _request_changes(
    requests: dict[bytes, _Kept],
    carried: dict[bytes, _Kept],
    whole: Sequence[Any],
    marks: Sequence[Any],
    settles: Sequence[Any],
    *,
    final: bool,
) -> tuple[list[_journal.Request], dict[bytes, _Kept]]:
    """Which requests a commit group writes to the database, and which it carries on in the
    journal. A row's request is written once it ends ``unknown``; it is carried while the row
    is in flight; it goes when its outcome is known otherwise. Requests the journal had at open
    whose rows the group does not touch (in flight since an earlier commit) are written, and so
    is every carried one at the ``final`` commit (the journal goes then)."""
    status: dict[bytes, str] = dict.fromkeys((row[0] for row in marks), _IN_FLIGHT)
    status.update((row[0], row[1]) for row in whole)
    status.update((settle[7], settle[0]) for settle in settles)
    keep: list[_journal.Request] = []
    still: dict[bytes, _Kept] = {}
    for key, kept in carried.items():
        found = status.get(key, _IN_FLIGHT)
        if found == _IN_FLIGHT and key not in requests:
            still[key] = kept
        elif found == _UNKNOWN and key not in requests:
            keep.append(kept[0])
    for key, kept in requests.items():
        now = status.get(key)
        if now == _IN_FLIGHT:
            still[key] = kept
        elif now is None or now == _UNKNOWN:
            keep.append(kept[0])  # the journal's, from a run that stopped; or unknown now
    if final:
        keep += [kept[0] for kept in still.values()]
        still = {}
    return keep, still


#: the columns of :func:`unknown_rows`, in order
UNKNOWN_COLUMNS = (
    "gb_key", "customer_id", "event", "metadata", "email", "mobile", "sent_at", "status",
    "error_code", "error_message", "input_row", "attempts", "updated_at",
)  # fmt: skip


def unknown_rows(rows: pd.DataFrame, requests: Sequence[_journal.Request] = ()) -> pd.DataFrame:
    """The rows whose outcome is not known (``unknown``, or ``in_flight`` at a crash), in input
    order, without their keys: each with its ``gb_key``, customer, event, metadata (JSON text),
    email and mobile, and when its request went out (``sent_at``, UTC), where the ledger has its
    request (a ledger written before gb-backfill 0.2 has not); ``updated_at`` is when its status
    was last written."""
    doubtful = [LedgerStatus.UNKNOWN.value, LedgerStatus.IN_FLIGHT.value]
    unknown = rows[rows["status"].isin(doubtful)].sort_values("input_row", kind="stable")
    unknown = unknown.assign(updated_at=pd.to_datetime(unknown["updated_at"], unit="s", utc=True))
    described = _ledger_extras.describe(requests).drop_duplicates("key", keep="last")
    unknown = unknown.merge(described, on="key", how="left")
    return unknown[list(UNKNOWN_COLUMNS)].reset_index(drop=True)
