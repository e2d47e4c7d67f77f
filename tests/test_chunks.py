"""Per-row work a job or a chunk at a time: the dispatcher's fast path, one verdict pass per
batch job, rows recorded together in the bookkeeping and the ledger, and every row still
accounted for after a crash in the middle of a chunk."""

import os
import re
from collections import Counter

import httpx
import numpy as np
import pandas as pd
import pytest

from gb_backfill import RateLimits, read_failures, send
from gb_backfill._engine.bookkeeping import Bookkeeper
from gb_backfill._engine.chunks import Chunk, OutgoingRow
from gb_backfill._engine.dispatch import Dispatcher
from gb_backfill._engine.lanes.jobs import JobRead, JobResult, job_verdict, job_verdicts
from gb_backfill._engine.outcomes import SENT
from gb_backfill._engine.progress import Progress
from gb_backfill._rows.keys import _SALTS, RowKeyMaker, RowKeys
from gb_backfill._store.failures import FailureWriter
from gb_backfill._store.journal import Mark
from gb_backfill._store.ledger import Ledger
from gb_backfill._vocabulary import Lane, Status
from tests.conftest import FAST_RETRY


class Lane_:
    """A lane that only notes what it is offered."""

    def __init__(self):
        self.offered = []

    def offer(self, row, *, priority=0):
        self.offered.append((row, priority))


def rows_for(customers, chunk=None, lane=Lane.BATCH):
    chunk = chunk or Chunk(pd.DataFrame({"x": range(len(customers))}), 0)
    return [
        OutgoingRow(chunk, n, customer, b"{}", None, n, lane)
        for n, customer in enumerate(customers)
    ]


def dispatcher(keep_order=True):
    found = Dispatcher(keep_order=keep_order)
    found.lanes = {Lane.BATCH: Lane_(), Lane.EVENTS: Lane_()}
    return found


def test_a_customer_with_nothing_in_flight_costs_no_queue_and_goes_at_once():
    chosen = dispatcher()
    rows = rows_for([f"c{n}" for n in range(1000)])
    chosen.submit_many(rows, [1] * len(rows))
    assert [row for row, _ in chosen.lanes[Lane.BATCH].offered] == rows
    assert not chosen._customers, "no per-customer queue for a customer without a chain"
    chosen.done_many(rows)
    assert not chosen._customers, "nothing is kept once the rows are done"
    assert not chosen._lone


def test_a_chain_keeps_input_order_one_in_flight_and_its_priority():
    chosen = dispatcher()
    rows = rows_for(["a", "b", "a", "a", "b"])
    chosen.submit_many(rows, [1, 1, 2, 3, 2])
    offered = chosen.lanes[Lane.BATCH].offered
    assert [row.local for row, _ in offered] == [0, 1], "one row per customer in flight"
    chosen.done_many([rows[0]])
    assert [(row.local, priority) for row, priority in offered[2:]] == [(2, 3)]
    chosen.done_many([rows[1], rows[2]])
    assert [row.local for row, _ in offered] == [0, 1, 2, 4, 3]
    chosen.done_many([rows[4], rows[3]])
    assert not chosen._customers
    assert not chosen._lone
    assert chosen.waiting() == []


def test_rows_waiting_behind_a_chain_are_handed_back_when_the_run_stops():
    chosen = dispatcher()
    rows = rows_for(["a", "a", "a", "b"])
    chosen.submit_many(rows, [0] * 4)
    assert chosen.waiting() == rows[1:3]


def test_without_customer_order_a_customers_batch_rows_go_together():
    chosen = dispatcher(keep_order=False)
    rows = rows_for(["a", "a", "a"])
    chosen.submit_many(rows, [0] * 3)
    assert len(chosen.lanes[Lane.BATCH].offered) == 3


def read_of(successful=(), failed=None, codes=None, ended=True, whole=False):
    result = JobResult(ended, whole, frozenset(successful), failed or {}, codes or {})
    return JobRead(result, "")


@pytest.mark.parametrize(
    "read",
    [
        read_of(successful=[f"c{n}" for n in range(6)]),
        read_of(
            successful=["c0", "c3"],
            failed={"c1": "2001: in progress", "c2": "bad event", "c5": "bad event"},
            codes={"c1": 2001},
        ),
        read_of(whole=True),
        JobRead(None, "HTTP 404 reading its status", given_up=True),
        JobRead(None, ""),
    ],
    ids=["all-sent", "mixed", "failed-as-a-whole", "lost", "unconfirmed"],
)
def test_one_pass_over_a_job_gives_each_row_the_verdict_read_one_by_one(read):
    customers = [f"c{n}" for n in range(6)]
    groups = job_verdicts(7, customers, read, 300.0)
    seen = sorted(i for _, positions in groups for i in positions)
    assert seen == list(range(6)), "every row of the job has exactly one verdict"
    for verdict, positions in groups:
        for i in positions:
            assert verdict == job_verdict(7, customers[i], read, 300.0)
    assert len(groups) == len({verdict for verdict, _ in groups}), "one group per verdict"


def bookkeeper(tmp_path, ledger=None):
    progress = Progress(None, enabled=False, clock=lambda: 0.0)
    writer = FailureWriter(tmp_path / "f.parquet", input_name=None)
    return Bookkeeper(
        ledger=ledger, writer=writer, progress=progress, max_outstanding=10_000, clock=lambda: 0.0
    )


def keyed_chunk(rows, offset):
    keys = [(offset + n).to_bytes(16, "big") for n in range(rows)]
    content = np.zeros((rows, 2), dtype=np.uint64)
    frame = pd.DataFrame({"x": range(rows)})
    return Chunk(frame, offset, RowKeys(keys, content, np.zeros(rows, dtype=np.int64)))


class CountingLedger(Ledger):
    calls = 0

    def settle_many(self, rows, status, **outcome):
        CountingLedger.calls += 1
        super().settle_many(rows, status, **outcome)


def test_a_job_across_two_chunks_is_recorded_in_one_go_and_lets_each_chunk_go(tmp_path):
    ledger = CountingLedger(tmp_path / "l")
    book = bookkeeper(tmp_path, ledger)
    first, second = keyed_chunk(3, 0), keyed_chunk(2, 3)
    rows = rows_for(["a", "b", "c"], first) + rows_for(["d", "e"], second)
    for chunk, its_rows in ((first, rows[:3]), (second, rows[3:])):
        book.open_chunk(chunk)
        book.queued(chunk, len(its_rows), 0)
    book.begin(rows)
    for row in rows:
        row.requests = 1
    assert book.live_chunks == 2
    book.record(rows, Status.SENT, SENT)
    assert CountingLedger.calls == 1, "one ledger write for the job's rows"
    assert (first.pending, second.pending, book.live_chunks, book.outstanding) == (0, 0, 0, 0)
    assert book.counts[Status.SENT] == 5
    assert all(row.recorded for row in rows)
    ledger.close()
    again = Ledger(tmp_path / "l", read_only=True)
    assert again.counts() == {"sent": 5}
    again.close()


def test_rows_stopped_alike_are_recorded_together_with_their_own_outcomes(tmp_path):
    book = bookkeeper(tmp_path)
    chunk = keyed_chunk(4, 0)
    rows = rows_for(["a", "b", "c", "d"], chunk)
    book.open_chunk(chunk)
    book.queued(chunk, 4, 0)
    rows[1].in_flight = True
    book.stopped_early(rows)
    assert (book.counts[Status.ABORTED], book.counts[Status.UNKNOWN]) == (3, 1)
    assert sorted(entry.local for entry in chunk.not_sent) == [0, 1, 2, 3]
    assert book.outstanding == 0
    assert book.live_chunks == 0


def test_a_crash_in_the_middle_of_a_chunk_leaves_every_row_sent_or_in_flight(tmp_path):
    """A job's rows are marked in one journal write, their outcomes settled a chunk at a time
    and committed in groups: a kill between two chunks loses none of them, and the rows whose
    outcome was not committed stay in flight (the next run calls them unknown, never sends
    them again)."""
    ledger = Ledger(tmp_path / "l")
    keys = [n.to_bytes(16, "big") for n in range(1000)]
    ledger.begin_many([Mark(key, f"c{n}", n) for n, key in enumerate(keys)])
    outcome = {"retryable": False, "http_status": 200, "error_code": None, "error_message": None}
    ledger.settle_many([(key, 1) for key in keys[:600]], "sent", **outcome)
    ledger.commit()
    ledger.settle_many([(key, 1) for key in keys[600:]], "sent", **outcome)
    os.close(ledger._journal)  # the kill: nothing more is committed, the lock dies with it
    os.close(ledger._lock)
    resumed = Ledger(tmp_path / "l")
    found = resumed.lookup(keys)
    assert len(found) == 1000, "every row of the job is in the ledger"
    assert Counter(entry.status for entry in found.values()) == {"sent": 600, "in_flight": 400}
    assert {found[key].status for key in keys[600:]} == {"in_flight"}
    resumed.close()


def test_settling_many_rows_keeps_each_rows_attempts(tmp_path):
    ledger = Ledger(tmp_path / "l")
    keys = [n.to_bytes(16, "big") for n in range(3)]
    ledger.begin_many([Mark(key, "c", n) for n, key in enumerate(keys)])
    ledger.settle_many(
        list(zip(keys, [1, 2, 3], strict=True)), "failed", retryable=True, http_status=503,
        error_code="http_503", error_message="down",
    )  # fmt: skip
    ledger.close()
    again = Ledger(tmp_path / "l", read_only=True)
    found = again.lookup(keys)
    assert [found[key].attempts for key in keys] == [1, 2, 3]
    assert {(e.status, e.retryable, e.error_code) for e in found.values()} == {
        ("failed", True, "http_503")
    }
    again.close()


def test_keys_are_the_hashes_of_before_so_existing_ledgers_still_know_their_rows():
    bodies = [b'{"customerId":"a"}', '{"customerId":"\u00e9"}'.encode(), b"", b'{"x":1}'] * 3
    found = RowKeyMaker().keys(bodies)
    values = np.asarray(bodies, dtype=object)
    before = np.stack([pd.util.hash_array(values, hash_key=salt) for salt in _SALTS], axis=1)
    assert (found.content == before).all()
    assert found.occurrence.tolist() == [0] * 4 + [1] * 4 + [2] * 4


class MixedJobs:
    """A batch API whose jobs end with each customer's fate chosen by its name: ``ok`` rows
    succeed, ``bad`` ones fail with a reason, ``busy`` ones are refused with 2001 once, and
    ``lost`` ones are left out of the result."""

    def __init__(self):
        self.jobs = {}
        self.refused = set()

    def __call__(self, request):
        if request.method == "POST":
            customers = re.findall(rb'"customerId":"([^"]*)"', request.content)
            self.jobs[len(self.jobs) + 1] = [c.decode() for c in customers]
            return httpx.Response(200, json={"jobId": len(self.jobs)})
        customers = self.jobs[int(request.url.path.rstrip("/").rsplit("/", 1)[1])]
        good, bad = [], []
        for customer in customers:
            if customer.startswith("ok") or customer in self.refused:
                good.append({"customerId": customer})
            elif customer.startswith("busy"):
                self.refused.add(customer)
                bad.append({"customerId": customer, "error": "2001: in progress", "code": 2001})
            elif customer.startswith("bad"):
                bad.append({"customerId": customer, "error": f"no such event for {customer}"})
        return httpx.Response(
            200, json={"status": "completed", "response": {"successful": good, "failed": bad}}
        )


def test_a_job_with_every_kind_of_row_records_each_with_its_own_outcome(tmp_path):
    names = ["ok", "bad", "busy", "lost"]
    customers = [f"{names[n % 4]}{n // 4 % 5}" for n in range(60)]
    df = pd.DataFrame({"customerId": customers, "eventName": "purchase", "seq": range(60)})
    ledger = tmp_path / "l"
    report = send(
        df, api_key="k", secret_key="s", mode="batch", progress=False, retry=FAST_RETRY,
        limits=RateLimits.unlimited(), batch_limits=RateLimits.unlimited(), ledger=ledger,
        client=httpx.AsyncClient(transport=httpx.MockTransport(MixedJobs())),
        failures_path=tmp_path / "f.parquet",
    )  # fmt: skip
    assert (report.counts["sent"], report.failed, report.unknown) == (30, 15, 15)
    failures = read_failures(tmp_path / "f.parquet")
    by_status = failures.groupby("gb_status")["customerId"].agg(lambda c: {x[:-1] for x in c})
    assert by_status.to_dict() == {"failed": {"bad"}, "unknown": {"lost"}}
    reasons = failures[failures["gb_status"] == "failed"]
    assert (
        reasons["gb_error_message"].str.extract(r"for (\w+)$")[0] == reasons["customerId"]
    ).all()
    reader = Ledger(ledger, read_only=True)
    assert reader.counts() == {"sent": 30, "failed": 15, "unknown": 15}
    reader.close()


def ledger_rows(path):
    reader = Ledger(path, read_only=True)
    query = "SELECT key, status, attempts, customer_id, input_row, job_id, error_code FROM rows"
    found = {row[0]: row[1:] for row in reader._db.execute(query)}
    reader.close()
    return found


def test_a_row_marked_and_settled_in_one_commit_is_written_as_the_separate_writes_would(tmp_path):
    """One statement per row where a commit group holds its mark and its outcome: on keys an
    earlier run wrote, the customer and input row stay, attempts add up, the last outcome and
    job id stand; a row only marked keeps its earlier error fields."""
    path = tmp_path / "l"
    a, b, c = (bytes([n]) * 16 for n in (1, 2, 3))
    failed = {"retryable": True, "http_status": 503, "error_code": "http_503", "error_message": ""}
    first = Ledger(path)
    first.begin_many([Mark(a, "first", 5), Mark(b, "first", 6)])
    first.settle_many([(a, 2), (b, 1)], "failed", **failed)
    first.close()
    second = Ledger(path)
    second.begin_many([Mark(a, "second", 9), Mark(b, "second", 10), Mark(c, "new", 11)])
    second.assign_job(7, [a, c])
    sent = {"retryable": False, "http_status": 200, "error_code": None, "error_message": None}
    second.settle_many([(a, 1), (c, 1)], "sent", **sent)
    second.settle_many([(c, 1)], "unknown", **{**sent, "error_code": "batch_unlisted"})
    second.commit()
    assert ledger_rows(path) == {
        a: ("sent", 3, "first", 5, 7, None),
        b: ("in_flight", 1, "first", 6, None, "http_503"),
        c: ("unknown", 2, "new", 11, 7, "batch_unlisted"),
    }
    second.close()
