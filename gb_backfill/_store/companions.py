"""A ledger's companion files, and when what is beside the database (or missing) refuses it.

A ledger ``PATH`` is its SQLite database and, while a run has it open or after a crash, its
journal ``PATH-intents`` (see :mod:`gb_backfill._store.journal`) and SQLite's write-ahead log
``PATH-wal``. The latest rows may be in those alone, so a database that is missing while they
are there, or that a killed run left without its journal (copied alone), is refused: a fresh or
stale database would not know the rows already sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from .._errors import LedgerError
from .storage import in_use, noted_in_use

__all__: list[str] = []


def journal_path(path: Path) -> Path:
    """The journal of the ledger at ``path``."""
    return path.with_name(path.name + "-intents")


def wal_path(path: Path) -> Path:
    """SQLite's write-ahead log of the ledger at ``path``."""
    return path.with_name(path.name + "-wal")


def leftovers(path: Path) -> list[Path]:
    """The files a ledger's database leaves beside it: its journal and SQLite's WAL."""
    return [found for found in (journal_path(path), wal_path(path)) if found.exists()]


def refuse_missing_ledger(path: Path) -> None:
    """Raise :class:`LedgerError` when ``path`` is missing but its journal or WAL is not, or
    when it is a file a killed run left without its journal (as a run would refuse it)."""
    found = leftovers(path)
    if not path.exists() and found:
        raise LedgerError(missing_message(path, found))
    if path.exists() and not journal_path(path).exists() and noted_in_use(path):
        raise LedgerError(lost_companions_message(path))


def refuse_lost_companions(db: sqlite3.Connection, path: Path, *, found: Sequence[Path]) -> None:
    """Refuse the database ``db`` at ``path`` when its run did not close it and its journal is
    missing (``found``: the companions there before SQLite opened it): the latest rows were in
    the journal and the WAL (a ledger file copied alone after a crash), and a run trusting the
    file alone would send those rows again. The database is closed, the folder left as it was."""
    # Only the journal says it reliably: any connection's clean close (a reader's, another
    # program's) folds the WAL into the file and removes it, but the journal stays until the
    # ledger is closed cleanly, and a crash leaves it.
    if journal_path(path) in found or not in_use(db):
        return
    db.close()
    # Opening made an empty WAL and its index.
    for made in (wal_path(path), path.with_name(path.name + "-shm")):
        if made not in found:
            made.unlink(missing_ok=True)
    raise LedgerError(lost_companions_message(path))


def missing_message(path: Path, found: Sequence[Path]) -> str:
    names = " and ".join(companion.name for companion in found)
    verb = "are" if len(found) > 1 else "is"
    return (
        f"{path} is missing, but {names} beside it {verb} still there: the ledger's database "
        "was deleted, and a new one would not know the rows already sent, so they could be "
        f"sent twice. `gb-backfill status --ledger {path}` shows what the journal holds; to "
        "rebuild the ledger from it, run again with --rebuild-ledger (rebuild_ledger=True). To "
        f"start afresh on purpose, delete {names} too."
    )


def lost_companions_message(path: Path) -> str:
    journal, wal = journal_path(path), wal_path(path)
    return (
        f"{path} was in use by a run that did not finish (it was killed or crashed), and its "
        f"journal {journal.name} is not beside it: a ledger file copied alone? Its latest rows "
        f"are in {journal.name} and {wal.name}: copy every file whose name starts with "
        f"{path.name} from where the run was into {path.parent}, then run again; without them, "
        "rows already sent would be sent again. If they are lost for good, --rebuild-ledger "
        "(rebuild_ledger=True) trusts this file alone."
    )


def another_database_message(path: Path) -> str:
    return (
        f"{journal_path(path)} belongs to another ledger database than {path} (the "
        "database was replaced): its rows would be lost. `gb-backfill status --ledger "
        f"{path}` shows them; to add them to this database, run again with "
        "--rebuild-ledger (rebuild_ledger=True), or put the right database back."
    )


def replaced_message(path: Path) -> str:
    return (
        f"{path} was deleted or replaced while this run was writing the ledger; the "
        "run stopped so that no later run trusts a ledger that lost rows"
    )
