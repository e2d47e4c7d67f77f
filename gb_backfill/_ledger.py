"""The ledger: a local SQLite file that remembers what happened to every row it was asked to send.

Gameball has no idempotency key, so this file is what makes re-runs and resumes safe. A row is
written ``in_flight`` (and committed) before its request goes out, and settled to ``sent``,
``failed`` or ``unknown`` once its outcome is known. A crash at any instant therefore leaves
either no record (the request never went out), ``in_flight`` (it may have been processed: the
next run treats it as ``unknown``), or the settled outcome.

Settling is committed in small groups, a fraction of a second late at most; a crash in that gap
leaves the row ``in_flight``, which errs on the safe side.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Sequence
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
_SETTLE_DELAY = 0.2  # seconds a settled outcome may wait to be committed with others


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    status: str
    retryable: bool
    attempts: int
    http_status: int | None
    error_code: str | None
    error_message: str | None


class Ledger:
    """One SQLite ledger file. Not thread-safe; use it from one event loop."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            # WAL with synchronous=NORMAL survives a killed process (not a power cut) and
            # makes each commit cheap.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise LedgerError(f"{self.path}: not a usable ledger ({error})") from None
        self._begins: list[tuple[bytes, str, int, float]] = []
        self._settles: list[tuple[object, ...]] = []
        self._last_commit = time.monotonic()
        self._commit_task: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"

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

    def counts(self) -> dict[str, int]:
        """Rows per recorded status."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM rows GROUP BY status")
        return dict(rows.fetchall())

    def unknown_rows(self) -> pd.DataFrame:
        """Rows whose outcome is not known (``unknown``, or ``in_flight`` at a crash)."""
        query = (
            "SELECT input_row, customer_id, status, attempts, error_code, error_message, "
            "datetime(updated_at, 'unixepoch') AS updated_at FROM rows "
            "WHERE status IN ('unknown', 'in_flight') ORDER BY input_row"
        )
        return pd.read_sql_query(query, self._db)

    # --- writing -------------------------------------------------------------------------

    async def begin(self, key: bytes, customer_id: str, input_row: int) -> None:
        """Record ``key`` as in flight; returns once that is on disk."""
        self._begins.append((key, customer_id, input_row, time.time()))
        if self._commit_task is None:
            self._commit_task = asyncio.ensure_future(self._commit_soon())
        await asyncio.shield(self._commit_task)

    async def _commit_soon(self) -> None:
        # Yield once so every worker about to send joins this commit.
        await asyncio.sleep(0)
        self._commit_task = None
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
        if time.monotonic() - self._last_commit > _SETTLE_DELAY:
            self.commit()

    def commit(self) -> None:
        """Write every pending record in one transaction."""
        if not self._begins and not self._settles:
            return
        begins, self._begins = self._begins, []
        settles, self._settles = self._settles, []
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(_BEGIN, begins)
            self._db.executemany(_SETTLE, settles)
        self._last_commit = time.monotonic()

    def close(self) -> None:
        self.commit()
        self._db.close()
