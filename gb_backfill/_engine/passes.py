"""The passes over the input before anything is sent, each of which may refuse the run.

:func:`open_ledger` (a ledger that keys rows another way is refused), :func:`find_folds` (the
keys the input's rows carry), :func:`refuse_changed_rows` (rows that look sent but differ) and
:func:`route_customers` (the busiest customers' rows to the events lane, in batch mode). Each
reads the input anew, a chunk at a time and off the event loop, and says on the progress bar
what it does, as it may take a while on a large file.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Hashable, Iterator, Sequence

import pandas as pd

from .._config import Settings
from .._errors import ChangedRowsError, LedgerError
from .._rows.keys import CONTENT_SCHEME, carried_keys
from .._rows.loose import ChangedRows
from .._rows.mapping import ColumnMapping
from .._store.ledger import Ledger
from .._sync import off_loop
from .fate import Fate, Folds, Judge, Verdicts, carries_keys
from .makespan import Routing, assumed_costs, route
from .prepare import LoadCounter, Prepared, Preparer
from .progress import Progress

__all__ = ["Reader", "find_folds", "open_ledger", "refuse_changed_rows", "route_customers"]

#: The input, read anew on each call: a DataFrame's or a file's chunks.
Reader = Callable[[], Iterator[pd.DataFrame]]


def open_ledger(path: str | os.PathLike[str], settings: Settings) -> Ledger:
    """The run's ledger, refused if it keys rows another way than this run."""
    ledger = Ledger(path, rebuild=settings.rebuild_ledger)
    scheme = f"columns {list(map(str, settings.row_key))}" if settings.row_key else CONTENT_SCHEME
    try:
        ledger.use_keys(scheme)
    except LedgerError:
        ledger.close()
        raise
    return ledger


def note_changed_rows(
    prepared: Prepared, verdicts: Verdicts, mapping: ColumnMapping, changed: ChangedRows
) -> None:
    """Note the rows of ``prepared`` the judge found ``CHANGED``: they look like rows an earlier
    run sent, written differently (see :mod:`gb_backfill._rows.loose`)."""
    chunk = prepared.chunk
    if not verdicts.changed or chunk.loose is None:
        return
    forms = chunk.loose.forms
    rows = {
        prepared.rows[i].local: (int(forms[prepared.rows[i].key_index]), then)
        for i, then in verdicts.changed.items()
    }
    changed.add(chunk.frame, chunk.offset, mapping, rows)


def read_another_way(ledger: Ledger | None, settings: Settings) -> dict[str, object] | None:
    """The read options a path input was sent with before, when it is read another way now
    (None: it was not, or it is a DataFrame, or the ledger does not know)."""
    if ledger is None or settings.input_name is None:
        return None
    before = ledger.read_with(settings.input_name)
    return before if before and before != json.loads(settings.read_with) else None


async def refuse_changed_rows(
    read: Reader,
    settings: Settings,
    mapping: ColumnMapping,
    ledger: Ledger,
    folds: Folds | None,
    bar: Progress | None = None,
) -> None:
    """Raise :class:`ChangedRowsError`, before anything is sent, when rows of the input look
    like rows an earlier run with ``ledger`` sent but are written differently (the judge's
    ``CHANGED``: the same rule the dry run and the preview apply).

    It reads the whole input once more (checking and keying it off the loop), and only when the
    ledger holds sent rows to compare with, so a first run pays nothing.
    """
    if settings.resend_changed or not ledger.has_loose_keys():
        return
    # The same input sent before read another way: its read options are the fix, and rows it
    # would send read so may be rows sent then (an "n/a" that was missing: a trial's went twice).
    read_before = read_another_way(ledger, settings)
    sending = 0
    scanner = Preparer(settings, mapping, loose=True, former=ledger.keeps_names_as_written())
    judge = Judge(settings, ledger, None if folds is None else folds.fresh(), check_changed=True)
    changed = ChangedRows()
    chunks, offset = read(), 0
    try:
        while True:
            frame, cancelled = await off_loop(next, chunks, None)
            if frame is not None and not cancelled:
                prepared, cancelled = await off_loop(scanner.prepare, frame, offset)
            if cancelled:
                raise asyncio.CancelledError
            if frame is None:
                break
            verdicts = judge(prepared)
            note_changed_rows(prepared, verdicts, mapping, changed)
            sending += verdicts.counts()[Fate.SEND]
            offset += len(frame)
            if bar is not None:
                bar.doing(f"comparing with the ledger: {offset:,} rows read")
    finally:
        scanner.close()
    if changed.count or (read_before and sending):
        template, values = changed.message(read_before, sending=sending)
        raise ChangedRowsError(template, rows=changed.count, examples=changed.frame(),
                               every=changed.every(), option="resend_changed",
                               **values)  # fmt: skip


async def find_folds(
    read: Reader, settings: Settings, columns: Sequence[Hashable], bar: Progress | None = None
) -> Folds | None:
    """The keys the input's rows carry (see :class:`~gb_backfill._engine.fate.Folds`), read off
    the loop."""
    if not carries_keys(settings, columns):
        return None
    found: list[bytes] = []
    await _each_frame(
        read, lambda frame: found.extend(carried_keys(frame["gb_key"].tolist())),
        bar, "reading the keys the input's rows carry",
    )  # fmt: skip
    return Folds(found)


async def route_customers(
    read: Reader, settings: Settings, mapping: ColumnMapping, bar: Progress | None = None
) -> Routing:
    """Count each customer's rows (off the loop, a chunk at a time) and route the busiest to
    the events lane when that finishes a batch-mode run sooner (see
    :mod:`gb_backfill._engine.makespan`)."""
    costs = assumed_costs(settings)
    counter = LoadCounter(mapping, costs)
    await _each_frame(read, counter.count, bar, "counting rows per customer")
    if counter.needs_busiest():
        await _each_frame(read, counter.count_busiest, bar, "finding the busiest customers")
    return route(counter.loads(), costs, keep_order=settings.keep_order)


async def _each_frame(
    read: Reader,
    work: Callable[[pd.DataFrame], None],
    bar: Progress | None = None,
    what: str = "",
) -> None:
    """Read the input once more and do ``work`` on each chunk, both off the loop; ``bar``
    says ``what`` is done meanwhile, and how far it got."""
    chunks, rows = read(), 0
    while True:
        if bar is not None:
            bar.doing(f"{what}: {rows:,} rows read")
        frame, cancelled = await off_loop(next, chunks, None)
        if frame is not None and not cancelled:
            _, cancelled = await off_loop(work, frame)
        if cancelled:
            raise asyncio.CancelledError
        if frame is None:
            return
        rows += len(frame)
