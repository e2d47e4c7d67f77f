"""Between runs: what a ledger knows, and settling its unknown rows by hand.

A row whose request went out without an answer (a timeout, a lost connection, a crash) is
``unknown``: Gameball may or may not have it, and Gameball has no idempotency key, so no run
sends it again on its own. :func:`ledger_status` shows each such row as it was sent (customer,
event, metadata, when) so it can be looked up in Gameball; :func:`settle` records the answer::

    status = gb_backfill.ledger_status("events.ledger")
    status.unknown  # one row per unknown row: gb_key, customer_id, event, metadata, sent_at
    gb_backfill.settle("events.ledger", arrived=True, keys=["3fa4.../0"])  # Gameball has it
    gb_backfill.settle("events.ledger", arrived=False, keys="all")  # the next run sends them

A row settled as arrived is ``sent`` from then on (later runs skip it); one settled as not
arrived is ``failed`` and retryable (``not_arrived``): the next run sends it, once. Each
settlement is recorded in the ledger with its time (see :mod:`gb_backfill._store.ledger_extras`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ._errors import ConfigError
from ._faces import declared
from ._options import NoOptions, SettleOptions
from ._reports.ledger import LedgerReport, Settlement
from ._rows.keys import carried_keys
from ._store.ledger import Ledger, journal_rows, unknown_rows
from ._vocabulary import LedgerStatus, Status

__all__ = ["ledger_status", "settle"]


@declared(NoOptions)
def ledger_status(ledger: str | os.PathLike[str], options: NoOptions) -> LedgerReport:
    """What the ledger at ``ledger`` knows: rows per status, the rows whose outcome is unknown
    with what was sent for each, and the rows settled by hand. Reads only (a run may be using
    it). A ledger whose database is gone but whose journal remains is read from the journal."""
    path = Path(ledger)
    if path.exists():
        reader = Ledger(path, read_only=True)
        try:
            rows = reader.rows()
            # Rows in batch jobs a stopped run posted: the next run asks Gameball how each
            # job ended, so they are not for a person to settle.
            in_jobs = [row.key for job in reader.pending_jobs() for row in job.rows]
            counts = reader.counts(rows=rows)
            unknown = reader.unknown_rows(leaving_out=in_jobs)
            settled = reader.settlements()
            last_run = reader.last_run() or {}
        finally:
            reader.close()
        journal_only = False
    else:
        from ._store import journal as _journal

        rows = journal_rows(path)
        if rows.empty:
            raise ConfigError("{path}: no such ledger ({ledger=})", option="ledger", path=path)
        counts = {str(k): int(v) for k, v in rows["status"].value_counts().items()}
        requests = _journal.read(path.with_name(path.name + "-intents")).requests
        unknown, settled, journal_only = unknown_rows(rows, requests), {}, True
        in_jobs, last_run = [], {}
    every = {status.value: counts.get(status.value, 0) for status in LedgerStatus}
    return LedgerReport(
        path=path, counts=every, unknown=unknown, settled=settled, journal_only=journal_only,
        in_batch_jobs=len(in_jobs), never_reached=int(last_run.get("never_reached", 0)),
        last_run_rows=last_run.get("rows"),
        retryable_failed=int(((rows["status"] == "failed") & rows["retryable"].astype(bool)).sum()),
    )  # fmt: skip


@declared(SettleOptions)
def settle(ledger: str | os.PathLike[str], options: SettleOptions) -> Settlement:
    """Mark unknown rows of ``ledger`` as ``arrived`` (Gameball has them: ``sent`` from now on)
    or not (the next run sends each once). ``keys`` are ``gb_key`` values (a failures file's
    column, or ``ledger_status(...).unknown["gb_key"]``), or ``"all"`` for every unknown row.

    Raises :class:`ConfigError`, settling nothing, when a key is malformed or not in the ledger;
    keys of rows the ledger knows otherwise (sent, failed, ...) are left as they are and listed
    in the result. A run using the ledger holds it: :class:`LedgerError` says so.
    """
    arrived, keys = options.arrived, options.keys
    if not isinstance(arrived, bool):
        raise ConfigError("{arrived=} is True (Gameball has the rows) or False (it has not)",
                          option="arrived")  # fmt: skip
    path = Path(ledger)
    if not path.exists():
        raise ConfigError("{path}: no such ledger ({ledger=})", option="ledger", path=path)
    wanted = None if isinstance(keys, str) and keys == "all" else _parse(keys)
    opened = Ledger(path)
    try:
        done, others, missing = opened.settle_by_hand(
            None if wanted is None else list(wanted), arrived=arrived
        )
    finally:
        opened.close()
    if missing:
        texts = [wanted[key] for key in missing[:5]] if wanted is not None else []
        more = f" and {len(missing) - 5:,} more" if len(missing) > 5 else ""
        raise ConfigError(
            f"{len(missing):,} key(s) are not rows of {path}: {', '.join(texts)}{more}; nothing "
            "was settled. Keys are the gb_key column of the failures file or of "
            "`gb-backfill status --ledger PATH`"
        )
    named = wanted or {}
    return Settlement(
        arrived=arrived,
        settled=len(done),
        not_unknown=[named.get(key, key.hex()) for key in others],
    )


def _parse(keys: Iterable[str]) -> dict[bytes, str]:
    """Each ``gb_key`` text's ledger key: ``<hash>/<occurrence>`` (rows keyed by content) or
    ``<hash>`` (rows keyed by ``row_key=`` columns)."""
    if isinstance(keys, str):
        raise ConfigError('{keys=} is a list of gb_key values, or {keys="all"|all}', option="keys")
    found: dict[bytes, str] = {}
    for text in keys:
        text = str(text).strip()
        key = carried_keys([text])
        if key:
            found[key[0]] = text
            continue
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) != 16:
            raise ConfigError(
                f"{text!r} is not a gb_key (<32 hex digits>/<occurrence>, as in the failures "
                "file's gb_key column)"
            )
        found[raw] = text
    if not found:
        raise ConfigError('{keys=} names no row: give gb_key values, or {keys="all"|all}',
                          option="keys")  # fmt: skip
    return found


def keys_from_file(path: str | os.PathLike[str]) -> list[str]:
    """The ``gb_key`` values of a keys file: a Parquet or CSV file with a ``gb_key`` column (a
    failures file, or part of one: only its ``unknown`` rows when it has ``gb_status``), or a
    text file with one key per line (blank lines and ``#`` comments left out)."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            parquet = handle.read(4) == b"PAR1"
        if parquet or file.suffix.lower() == ".csv":
            frame = pd.read_parquet(file) if parquet else pd.read_csv(file, dtype=str)
            if "gb_key" not in frame.columns:
                raise ConfigError(f"{file} has no gb_key column; give a failures file, or keys")
            if "gb_status" in frame.columns:
                frame = frame[frame["gb_status"] == Status.UNKNOWN]
            return [str(key) for key in frame["gb_key"].dropna()]
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not text, CSV or Parquet"
        raise ConfigError(f"cannot read the keys file {file} ({reason or error})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
