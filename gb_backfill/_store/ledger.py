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

This module is what a run calls: :class:`Ledger`. The database's schema, statements and queries
are :mod:`gb_backfill._store.storage`; a commit group's merging, :mod:`gb_backfill._store.merging`;
the companion files and the refusals they ground, :mod:`gb_backfill._store.companions`. What the
way back in needs besides each row's status (invalid rows, the requests of rows whose outcome is
unknown, settlements by hand) is kept in tables of its own: see
:mod:`gb_backfill._store.ledger_extras`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Collection, Sequence
from pathlib import Path

import pandas as pd

from .._errors import LedgerError
from .._vocabulary import LedgerStatus
from . import journal as _journal
from . import ledger_extras as _ledger_extras
from . import storage as _storage
from .companions import (
    another_database_message,
    journal_path,
    leftovers,
    missing_message,
    refuse_lost_companions,
    replaced_message,
)
from .journal import Assign, Begin, Loose, Mark, Settle
from .ledger_extras import InvalidRow
from .ledger_extras import unknown_rows as unknown_rows  # status reads it here
from .merging import MarkGroup, merged, request_changes
from .storage import EarlierJob, LedgerEntry

__all__: list[str] = []

_COMMIT_EVERY = 0.2  # seconds between commits of journalled marks and settled outcomes
#: The job id a row is recorded with while the POST of its next job is out: its earlier job
#: (one that answered 2001 for it) is left, and the new job's id is not known yet. A resume
#: cannot ask that job, so the row stays in flight (unknown) instead of being sent again.
POSTING_JOB = -1
#: what a lookup says of a row a run found invalid (and no run has recorded otherwise since)
_INVALID_ENTRY = LedgerEntry(LedgerStatus.INVALID.value, False, 0, None, None, None)


def journal_rows(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The rows a ledger's journal holds (for ``gb-backfill status`` when the database is gone);
    the columns of :meth:`Ledger.unknown_rows` plus ``status``."""
    return _journal.rows(_journal.read(journal_path(Path(path))))


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
        self.journal_path = journal_path(self.path)
        self.read_only = read_only
        self.identity = ""
        self._journal = -1
        self._lock = -1
        self._broken: LedgerError | None = None
        # What is pending since the last commit: the marks of each begin_many (a journal a
        # crash left gives begins and loose keys of its own), outcomes, job ids.
        self._marked: list[MarkGroup] = []
        self._begins: list[Begin] = []
        self._looses: list[Loose] = []
        self._settles: list[Settle] = []
        self._jobs: list[Assign] = []
        self._replaying = False
        #: the requests (their journal records) of rows marked since the last commit (and, at
        #: open, those the journal had), of rows in flight across commits (journalled again
        #: after each), and invalid rows to record
        self._requests: dict[bytes, bytes] = {}
        self._carried: dict[bytes, bytes] = {}
        self._invalid: list[InvalidRow] = []
        self._extras = True  #: the extras tables are there (a read-only old ledger: not)
        self._last_run: dict[str, int] | None = None
        self._read_with: tuple[str, str] | None = None
        self._has_invalid = False
        self._last_commit = time.monotonic()
        if read_only:
            self._open_read_only()
            return
        existed = self.path.exists() and self.path.stat().st_size > 0
        companions = leftovers(self.path)
        if not existed and companions and not rebuild:
            raise LedgerError(missing_message(self.path, companions))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._take_lock()
            if not existed:
                for stale in companions:  # a deleted database's WAL must not reach a new one
                    if stale != self.journal_path:
                        stale.rename(stale.with_name(stale.name + ".orphaned"))
            self._db = _storage.connect(self.path)
            self._prepare_database(rebuild=rebuild, companions=companions)
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
        try:
            self._db = _storage.connect_read_only(self.path)
            self._extras = _ledger_extras.present(self._db)
            self._has_invalid = self._extras and _ledger_extras.has_invalid(self._db)
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"{self.path}: not a usable ledger ({error})") from None

    def _prepare_database(self, *, rebuild: bool, companions: Sequence[Path]) -> None:
        _storage.check_is_ledger(self._db, self.path)
        if not rebuild:
            refuse_lost_companions(self._db, self.path, found=companions)
        self.identity = _storage.prepare(self._db)
        _ledger_extras.create(self._db)
        self._has_invalid = _ledger_extras.has_invalid(self._db)

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
            raise LedgerError(another_database_message(self.path))
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
        self._requests = {r.key: _journal.request_record(r) for r in found.requests}
        self._replaying = True
        try:
            self.commit()
        finally:
            self._replaying = False
        if os.fstat(fd).st_size == 0:
            os.write(fd, _journal.header(self.identity))
        _storage.mark_in_use(self._db)

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
                raise LedgerError(replaced_message(path))

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"

    def use_keys(self, scheme: str) -> None:
        """Record how rows are keyed; refuse a ledger keyed another way (``storage.use_keys``)."""
        _storage.use_keys(self._db, self.path, scheme)

    # --- reading -------------------------------------------------------------------------

    def has_rows(self) -> bool:
        return _storage.has_rows(self._db)

    def last_sent_at(self) -> float | None:
        """When (``time.time()``) a run with this ledger last marked a row in flight or
        recorded an outcome: no run with it sent later. None when it recorded no row."""
        self._commit_if(self._settles)
        return _storage.last_updated(self._db)

    def _commit_if(self, pending: object) -> None:
        """Commit when ``pending`` is not empty, so what this run recorded is read back."""
        if pending and not self.read_only and self._broken is None:
            self.commit()

    def lookup(self, keys: Sequence[bytes]) -> dict[bytes, LedgerEntry]:
        """The recorded entry of each key that has one, outcomes not yet committed included."""
        self._commit_if(self._settles)
        found = _storage.lookup(self._db, keys)
        if self._has_invalid or self._invalid:
            self._commit_if(self._invalid)
            new = [key for key in keys if key not in found]
            for key in _ledger_extras.invalid_keys(self._db, new):
                found[key] = _INVALID_ENTRY
        return found

    def has_loose_keys(self) -> bool:
        """True when a row sent (or perhaps sent) has a loose key to compare new rows with."""
        return _storage.has_loose_keys(self._db)

    def keeps_names_as_written(self) -> bool:
        """True when loose keys made with event names as written may be in the ledger (it
        was created before names were folded): rows need their former keys looked up too."""
        return _storage.keeps_names_as_written(self._db)

    def loose_forms(self, looses: Sequence[bytes]) -> dict[bytes, int]:
        """The form mask of the row sent (or perhaps sent) with each loose key that has one."""
        return _storage.loose_forms(self._db, looses)

    def _rows(self) -> pd.DataFrame:
        rows = _storage.rows_frame(self._db)
        # A running (or killed) run's marks may still be in the journal only.
        pending = _journal.rows(_journal.read(self.journal_path))
        if pending.empty:
            return rows
        kept = rows[~rows["key"].isin(set(pending["key"]))]
        # pandas 2.2 warns (FutureWarning) when an empty frame takes part in a concat.
        return pending if kept.empty else pd.concat([kept, pending])

    def counts(self, *, rows: pd.DataFrame | None = None) -> dict[str, int]:
        """Rows per recorded status (``invalid`` too: rows a run found invalid, whose fixed
        copy no run has recorded since); of ``rows`` when given (:meth:`rows`)."""
        statuses = (self._rows() if rows is None else rows)["status"].value_counts()
        counts = {str(status): int(count) for status, count in statuses.items()}
        invalid = _ledger_extras.invalid_count(self._db) if self._extras else 0
        if invalid:
            counts[LedgerStatus.INVALID.value] = invalid
        return counts

    def rows(self) -> pd.DataFrame:
        """Every row the ledger records, with its latest status (the journal's too)."""
        return self._rows()

    def unknown_rows(self, *, leaving_out: Collection[bytes] = ()) -> pd.DataFrame:
        """Rows whose outcome is not known (``unknown``, or ``in_flight`` at a crash), with what
        their request said where the ledger has it (see :func:`unknown_rows`); the rows of
        ``leaving_out`` keys are left out."""
        stored = _ledger_extras.stored_requests(self._db) if self._extras else []
        pending = _journal.read(self.journal_path).requests
        rows = self._rows()
        if leaving_out:
            rows = rows[~rows["key"].isin(set(leaving_out))]
        return unknown_rows(rows, [*stored, *pending])

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
        self.begin_many([Mark(key, customer_id, input_row, loose=loose, form=form)])

    def begin_many(self, marks: Sequence[Mark]) -> None:
        """Record rows as in flight, with one ``write()`` to the journal; they are durable
        (against a crash) when this returns. A mark's request, when given, is kept while its
        outcome is not known.

        Raises :class:`LedgerError` when the marks cannot be written: the requests must not go
        out.
        """
        self._raise_if_broken()
        now = time.time()
        records, made = _journal.mark_records(marks, now)
        self._append(b"".join([*records, *made.values()]))
        self._marked.append(MarkGroup(now, marks))
        self._requests.update(made)
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
            self._invalid.extend(InvalidRow(key, row, now) for key, row in rows)
            self._has_invalid = True

    def assign_job(self, job_id: int, keys: Sequence[bytes]) -> None:
        """Record that a batch job carries ``keys`` (in flight); durable when this returns.

        ``job_id`` :data:`POSTING_JOB`: a job is being posted for ``keys`` (recorded before its
        POST goes out, so the ledger never points a row at a job it has left)."""
        self._raise_if_broken()
        assign = Assign(job_id, keys)
        self._append(_journal.job_record(assign))
        self._jobs.append(assign)

    def pending_jobs(self) -> list[EarlierJob]:
        """Batch jobs whose rows are still in flight, oldest first (rows whose job was being
        posted, id unknown, are in none: they stay in flight)."""
        return _storage.pending_jobs(self._db)

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
        now = time.time()
        self._settles.extend(
            Settle(key, status, retryable, attempts, http_status, error_code, error_message, now)
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
        pending = self._marked or self._begins or self._settles or self._jobs or self._invalid
        if not (pending or self._requests or (final and self._carried)):
            return
        try:
            self._check_files(journal=not final)
            group = merged(self._marked, self._begins, self._jobs, self._looses, self._settles)
            keep, carried = request_changes(self._requests, self._carried, group, final=final)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                _storage.write_rows(self._db, **group._asdict(), replaying=self._replaying)
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
        self._marked, self._begins, self._looses, self._settles, self._jobs = [], [], [], [], []
        self._requests, self._carried, self._invalid = {}, carried, []
        # Every mark in the journal is in the database now; the requests of rows still in
        # flight stay in the journal (a row that ends sent never costs a database write).
        if self._same_file(self.journal_path, self._journal):
            os.ftruncate(self._journal, 0)
            records = list(carried.values())
            os.write(self._journal, b"".join([_journal.header(self.identity), *records]))

    def _save_to_journal(self) -> None:
        """Write what could not be committed to the journal, for the next run. When the
        database itself is gone, that is everything it held: a rebuild then loses nothing."""
        records: list[bytes] = []
        if not self._same_file(self.path, self._lock):
            records += _storage.journal_records(self._db)
            records += [_journal.begin_record(begin) for begin in self._begins]
            records += [_journal.loose_record(loose) for loose in self._looses]
            for group in self._marked:  # (their requests are among those pending below)
                records += _journal.mark_records(group.marks, group.at)[0]
            records += [_journal.job_record(assign) for assign in self._jobs]
            stored = _ledger_extras.stored_requests(self._db) if self._extras else []
            records += [_journal.request_record(request) for request in stored]
        records += {**self._carried, **self._requests}.values()
        records += [_journal.settle_record(settle) for settle in self._settles]
        for start in range(0, len(records), 10_000):
            os.write(self._journal, b"".join(records[start : start + 10_000]))

    def note_last_run(
        self, *, rows: int, never_reached: int, input_name: str | None = None, read_with: str = ""
    ) -> None:
        """Keep, at :meth:`close`, the ending run's rows and the ``aborted`` ones it never
        reached (no record of their own: ``status`` counts them), and a path input's read
        options (JSON), so that the same input read another way is told how."""
        self._last_run = {"rows": rows, "never_reached": never_reached}
        self._read_with = (input_name, read_with) if input_name is not None else None

    def read_with(self, input_name: str) -> dict[str, object] | None:
        return _storage.read_with(self._db, input_name)

    def last_run(self) -> dict[str, int] | None:
        """What :meth:`note_last_run` kept (None: nothing: an older ledger, a killed run)."""
        return _storage.last_run(self._db)

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
                    _storage.clear_in_use(self._db)
                if self._last_run is not None:
                    with contextlib.suppress(sqlite3.Error):  # advice only: best effort
                        _storage.keep_last_run(self._db, self._last_run)
                        if self._read_with is not None:
                            _storage.keep_read_with(self._db, *self._read_with)
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
