"""One commit group of the ledger: the marks and outcomes pending since the last commit, merged.

A commit writes everything pending in one transaction (see :mod:`gb_backfill._store.ledger`).
Most rows are marked in flight and settled within one group, so :func:`merged` turns a row's
mark, job id, loose key and outcome into one statement where it can; :func:`request_changes`
decides which rows' requests the group writes to the database and which stay in the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple

from .._vocabulary import LedgerStatus
from .journal import Assign, Begin, Loose, Mark, Request, Settle, request_of
from .storage import JobOf, Marked

__all__: list[str] = []

_IN_FLIGHT, _UNKNOWN = LedgerStatus.IN_FLIGHT.value, LedgerStatus.UNKNOWN.value
_by_key = attrgetter("key")


class CommitGroup(NamedTuple):
    """One commit group's writes, each list in key order (neighbouring keys share the
    B-tree's pages)."""

    whole: list[tuple[Marked, Settle]]  #: marked and settled in the group
    marks: list[Marked]  #: marked in the group, not settled yet
    jobs: list[JobOf]  #: job ids of rows marked in an earlier group
    looses: list[Loose]  #: loose keys of rows marked in an earlier group
    settles: list[Settle]  #: outcomes of rows marked in an earlier group


class MarkGroup(NamedTuple):
    """The marks of one :meth:`~gb_backfill._store.ledger.Ledger.begin_many`, pending until the
    next commit."""

    at: float  #: ``time.time()`` when they were marked
    marks: Sequence[Mark]


def merged(
    groups: Sequence[MarkGroup],
    begins: Sequence[Begin],
    jobs: Sequence[Assign],
    looses: Sequence[Loose],
    settles: Sequence[Settle],
) -> CommitGroup:
    """One commit group's writes, one statement per row where it can be: the rows marked in
    ``groups``, or in ``begins`` and ``looses`` (a journal a crash left), their job ids and
    outcomes.

    The merged statements do what the separate ones would in their order (marks, job ids,
    loose keys, outcomes): a new key gets the mark's customer and input row; on a key an
    earlier run wrote, the customer and input row stay, the attempts add up, the job id and
    the loose key change only when the group has one, and the status and error fields are the
    last outcome's (a mark's: in flight, the error fields kept).
    """
    # Each mark gets its row's last job id and loose key of the group, whatever their order.
    job_ids = {key: assign.job_id for assign in jobs for key in assign.keys}
    loose_of = {loose.key: loose for loose in looses}
    marked: dict[bytes, Marked] = {}
    for begin in begins:
        loose = loose_of.get(begin.key)
        marked[begin.key] = Marked(
            begin.key, begin.customer_id, begin.input_row, begin.at, job_ids.get(begin.key),
            None if loose is None else loose.loose, 0 if loose is None else loose.form,
        )  # fmt: skip
    for group in groups:
        for mark in group.marks:
            marked[mark.key] = Marked(
                mark.key, mark.customer_id, mark.input_row, group.at, job_ids.get(mark.key),
                mark.loose, mark.form,
            )  # fmt: skip
    settled: dict[bytes, Settle] = {}
    for settle in settles:
        if settle.key in marked:
            found = settled.get(settle.key)
            if found is not None:  # the last outcome stands, with the attempts of both
                settle = settle._replace(attempts=found.attempts + settle.attempts)
            settled[settle.key] = settle
    whole, marks = [], []
    for key, row in marked.items():
        outcome = settled.get(key)
        if outcome is None:
            marks.append(row)
        else:
            whole.append((row, outcome))
    latest_jobs = [JobOf(key, job_id) for key, job_id in job_ids.items() if key not in marked]
    return CommitGroup(
        sorted(whole, key=lambda pair: pair[0].key),
        sorted(marks, key=_by_key),
        sorted(latest_jobs, key=_by_key),
        sorted((loose for loose in looses if loose.key not in marked), key=_by_key),
        sorted((settle for settle in settles if settle.key not in marked), key=_by_key),
    )


def request_changes(
    requests: dict[bytes, bytes],
    carried: dict[bytes, bytes],
    group: CommitGroup,
    *,
    final: bool,
) -> tuple[list[Request], dict[bytes, bytes]]:
    """Which requests a commit group writes to the database, and which it carries on in the
    journal (``requests`` and ``carried`` hold each row's journal record). A row's request is
    written once it ends ``unknown``; it is carried while the row is in flight; it goes when its
    outcome is known otherwise. Requests the journal had at open whose rows the group does not
    touch (in flight since an earlier commit) are written, and so is every carried one at the
    ``final`` commit (the journal goes then)."""
    status: dict[bytes, str] = dict.fromkeys((row.key for row in group.marks), _IN_FLIGHT)
    status.update((row.key, settle.status) for row, settle in group.whole)
    status.update((settle.key, settle.status) for settle in group.settles)
    keep: list[bytes] = []
    still: dict[bytes, bytes] = {}
    for key, record in carried.items():
        found = status.get(key, _IN_FLIGHT)
        if found == _IN_FLIGHT and key not in requests:
            still[key] = record
        elif found == _UNKNOWN and key not in requests:
            keep.append(record)
    for key, record in requests.items():
        now = status.get(key)
        if now == _IN_FLIGHT:
            still[key] = record
        elif now is None or now == _UNKNOWN:
            keep.append(record)  # the journal's, from a run that stopped; or unknown now
    if final:
        keep += still.values()
        still = {}
    return [request_of(record) for record in keep], still
