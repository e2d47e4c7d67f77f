"""What a ledger keeps besides each row's status, in tables of its own, versioned apart.

The ``rows`` table of :mod:`gb_backfill._store.ledger` says what happened to each row a run sent.
These tables, added by gb-backfill 0.2 (``meta.extras_version``; a ledger written before them gains
them when a run, ``status`` or ``settle`` opens it), keep what the way back in needs:

* ``invalid_rows``: the key of each row a run found invalid (see :mod:`gb_backfill._rows.keys`), so
  a fixed copy of it from the failures file is known as that row, and sent once;
* ``requests``: the request body of each row whose outcome is not known (``unknown``, or in
  flight when its run stopped), with its ``gb_key`` and when it went out, so ``gb-backfill
  status`` can show its customer, event and metadata to look up in Gameball. While a run goes
  on, the request of a row in flight is in the journal (written with its mark, and again after
  each commit while it stays in flight): a row that ends sent costs no write here;
* ``settlements``: the marks a user made by hand (``gb-backfill settle``): which unknown row was
  said to have arrived or not, when, and what it was before.

The ``rows`` table is never changed here except by a settlement, which is its own transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple

import pandas as pd

from .. import _gameball as gameball
from .._errors import LedgerError
from .._vocabulary import LedgerStatus, SendErrorCode
from .journal import Request, gb_key_text
from .storage import select_in

__all__: list[str] = []

#: The version of these tables; a ledger with a later one was written by a newer gb-backfill.
EXTRAS_VERSION = 1
_TABLES = """
CREATE TABLE IF NOT EXISTS invalid_rows (
    key BLOB PRIMARY KEY, input_row INTEGER, recorded_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (
    key BLOB PRIMARY KEY, content BLOB NOT NULL, occurrence INTEGER NOT NULL,
    body BLOB NOT NULL, sent_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settlements (
    key BLOB NOT NULL, gb_key TEXT, verdict TEXT NOT NULL, previous TEXT NOT NULL,
    settled_at REAL NOT NULL
);
"""
_NAMES = ("invalid_rows", "requests", "settlements")
#: statuses whose row may or may not have reached Gameball: its request is kept
DOUBTFUL = (LedgerStatus.IN_FLIGHT.value, LedgerStatus.UNKNOWN.value)


class InvalidRow(NamedTuple):
    """A row a run found invalid (the ``invalid_rows`` table's columns, in order)."""

    key: bytes
    input_row: int
    recorded_at: float


def create(db: sqlite3.Connection) -> None:
    """Add the tables to a ledger open for writing (a no-op when it has them)."""
    found = db.execute("SELECT value FROM meta WHERE name = 'extras_version'").fetchone()
    if found is not None and int(found[0]) > EXTRAS_VERSION:
        raise LedgerError(
            "this ledger was written by a newer gb-backfill (its extras are version "
            f"{found[0]}, this one knows {EXTRAS_VERSION}): use that version, or a new ledger"
        )
    db.executescript(_TABLES)
    if found is None:
        db.execute(
            "INSERT INTO meta (name, value) VALUES ('extras_version', ?)", (str(EXTRAS_VERSION),)
        )


def present(db: sqlite3.Connection) -> bool:
    """Whether the ledger has the tables (one written before them, opened read-only, has not)."""
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return set(_NAMES) <= names


# --- during a run, in the ledger's commit group ------------------------------------------------


def write_group(
    db: sqlite3.Connection,
    *,
    keep: Sequence[Request],
    invalid: Sequence[InvalidRow],
) -> None:
    """One commit group's share (inside its transaction): the requests of rows whose outcome is
    not known, and invalid rows (never over a row the ledger knows otherwise: the ``rows``
    table wins in every lookup)."""
    by_key = attrgetter("key")
    if keep:
        db.executemany(
            "INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?)", sorted(keep, key=by_key)
        )
    if invalid:
        db.executemany(
            "INSERT OR IGNORE INTO invalid_rows VALUES (?, ?, ?)", sorted(invalid, key=by_key)
        )


def invalid_keys(db: sqlite3.Connection, keys: Sequence[bytes]) -> set[bytes]:
    """Which of ``keys`` a run found invalid."""
    query = "SELECT key FROM invalid_rows WHERE key IN ({marks})"
    return {row[0] for row in select_in(db, query, keys)}


def has_invalid(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM invalid_rows LIMIT 1").fetchone() is not None


def invalid_count(db: sqlite3.Connection) -> int:
    """Invalid rows not known otherwise since (a fixed copy sent is counted as sent)."""
    query = "SELECT count(*) FROM invalid_rows WHERE key NOT IN (SELECT key FROM rows)"
    return int(db.execute(query).fetchone()[0])


def tidy(db: sqlite3.Connection) -> None:
    """Drop invalid marks of rows whose fixed copy a run has recorded since, and the requests
    of rows whose outcome is known now (the table is small: only doubtful rows' requests)."""
    db.execute("DELETE FROM invalid_rows WHERE key IN (SELECT key FROM rows)")
    marks = ",".join("?" * len(DOUBTFUL))
    db.execute(
        f"DELETE FROM requests WHERE key NOT IN (SELECT key FROM rows WHERE status IN ({marks}))",
        DOUBTFUL,
    )


# --- for status and settle ---------------------------------------------------------------------


def stored_requests(db: sqlite3.Connection) -> list[Request]:
    query = "SELECT key, content, occurrence, body, sent_at FROM requests"
    return [Request(k, c, int(n), bytes(b), float(t)) for k, c, n, b, t in db.execute(query)]


_WHO = ("customerId", "email", "mobile")


def describe(requests: Sequence[Request]) -> pd.DataFrame:
    """What each request said, for a person to look it up in Gameball: ``key``, ``gb_key``,
    ``event``, ``metadata`` (JSON text), ``email``, ``mobile``, ``sent_at`` (UTC); for an order,
    ``place_order`` and the order's fields."""
    rows = []
    for request in requests:
        gb_key = gb_key_text(request.key, request.content, request.occurrence)
        try:
            sent = json.loads(request.body)
            if "orderId" in sent:  # an order: its place_order event, and the order itself
                metadata = {k: v for k, v in sent.items() if k not in _WHO}
                event = gameball.PLACE_ORDER_EVENT
            else:
                (event, metadata), *_ = sent["events"].items()
        except (ValueError, KeyError, AttributeError, TypeError):
            sent, event, metadata = {}, None, None
        rows.append(
            (request.key, gb_key or None, event,
             None if metadata is None else json.dumps(metadata, ensure_ascii=False),
             sent.get("email"), sent.get("mobile"), request.sent_at)
        )  # fmt: skip
    columns = ["key", "gb_key", "event", "metadata", "email", "mobile", "sent_at"]
    frame = pd.DataFrame(rows, columns=columns)
    sent_at = pd.to_datetime(frame["sent_at"].astype("float64"), unit="s", utc=True)
    frame["sent_at"] = sent_at.dt.round("ms")  # a float's nanoseconds are noise
    return frame


#: the columns of :func:`unknown_rows`, in order
UNKNOWN_COLUMNS = (
    "gb_key", "customer_id", "event", "metadata", "email", "mobile", "sent_at", "status",
    "error_code", "error_message", "input_row", "attempts", "updated_at",
)  # fmt: skip


def unknown_rows(rows: pd.DataFrame, requests: Sequence[Request] = ()) -> pd.DataFrame:
    """The rows whose outcome is not known (``unknown``, or ``in_flight`` at a crash), in input
    order, without their keys: each with its ``gb_key``, customer, event, metadata (JSON text),
    email and mobile, and when its request went out (``sent_at``, UTC), where the ledger has its
    request (a ledger written before gb-backfill 0.2 has not); ``updated_at`` is when its status
    was last written. ``rows``: the ledger's rows, as :meth:`Ledger.counts
    <gb_backfill._store.ledger.Ledger.counts>` reads them."""
    unknown = rows[rows["status"].isin(DOUBTFUL)].sort_values("input_row", kind="stable")
    unknown = unknown.assign(updated_at=pd.to_datetime(unknown["updated_at"], unit="s", utc=True))
    described = describe(requests).drop_duplicates("key", keep="last")
    unknown = unknown.merge(described, on="key", how="left")
    return unknown[list(UNKNOWN_COLUMNS)].reset_index(drop=True)


def settlement_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Rows settled by hand, per verdict (``arrived``, ``not_arrived``)."""
    query = "SELECT verdict, count(*) FROM settlements GROUP BY verdict"
    return {str(verdict): int(count) for verdict, count in db.execute(query)}


def settle_by_hand(
    db: sqlite3.Connection, keys: Sequence[bytes] | None, *, arrived: bool, now: float
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Mark unknown rows (``keys``, or every one held as unknown when None: not those in batch
    jobs the next run asks Gameball about) as arrived (``sent`` from now on) or not (``failed``
    and retryable: the next run sends it once), in one transaction.

    Returns (the keys settled, the keys the ledger knows but not as unknown, left as they are,
    the keys it does not know).
    """
    if keys is None:
        # Every row held as unknown: not those in a batch job a stopped run posted, which the
        # next run asks Gameball about (a verdict by hand could only be a guess there).
        marks = ",".join("?" * len(DOUBTFUL))
        query = (
            f"SELECT key, status FROM rows WHERE status IN ({marks}) AND NOT "
            "(status = 'in_flight' AND job_id IS NOT NULL AND job_id >= 0)"
        )
        found = dict(db.execute(query, DOUBTFUL))
    else:
        query = "SELECT key, status FROM rows WHERE key IN ({marks})"
        found = dict(select_in(db, query, keys))
    settle = [key for key, status in found.items() if status in DOUBTFUL]
    others = [key for key, status in found.items() if status not in DOUBTFUL]
    missing = [] if keys is None else [key for key in keys if key not in found]
    if missing:  # nothing is settled when a key is not the ledger's: a typo, another ledger
        return [], others, missing
    when = pd.Timestamp(now, unit="s", tz="UTC").isoformat(timespec="seconds")
    verdict = "arrived" if arrived else "not_arrived"
    if arrived:
        change = (
            "UPDATE rows SET status = 'sent', retryable = 0, error_code = NULL, "
            "error_message = ?, updated_at = ? WHERE key = ?"
        )
        message = f"marked arrived by hand at {when}"
    else:
        change = (
            "UPDATE rows SET status = 'failed', retryable = 1, error_code = "
            f"'{SendErrorCode.NOT_ARRIVED.value}', error_message = ?, updated_at = ? WHERE key = ?"
        )
        message = f"marked not arrived by hand at {when}: the next run sends it"
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(
            "INSERT INTO settlements SELECT r.key, CASE WHEN q.occurrence < 0 THEN "
            "lower(hex(r.key)) ELSE lower(hex(q.content)) || '/' || q.occurrence END, ?, "
            "r.status, ? FROM rows r LEFT JOIN requests q ON q.key = r.key WHERE r.key = ?",
            [(verdict, now, key) for key in settle],
        )
        db.executemany(change, [(message, now, key) for key in settle])
        db.executemany("DELETE FROM requests WHERE key = ?", [(key,) for key in settle])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return settle, others, missing
