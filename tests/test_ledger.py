"""The ledger: durable in-flight marks, settled outcomes, crash replay, one writer at a time."""

import os

import pytest

from gb_backfill import LedgerError
from gb_backfill._store.ledger import Ledger


def settle(ledger, key, status, retryable=False):
    ledger.settle(
        key,
        status,
        retryable=retryable,
        attempts=1,
        http_status=200 if status == "sent" else 503,
        error_code=None if status == "sent" else "http_503",
        error_message=None,
    )


def test_begin_then_settle(tmp_path):
    ledger = Ledger(tmp_path / "l")
    ledger.begin(b"k" * 16, "c1", 0)
    settle(ledger, b"k" * 16, "sent")
    ledger.begin(b"f" * 16, "c2", 1)
    settle(ledger, b"f" * 16, "failed", retryable=True)
    ledger.close()
    again = Ledger(tmp_path / "l")
    found = again.lookup([b"k" * 16, b"f" * 16, b"x" * 16])
    assert found[b"k" * 16].status == "sent"
    assert (found[b"f" * 16].status, found[b"f" * 16].retryable) == ("failed", True)
    assert b"x" * 16 not in found
    assert again.counts() == {"sent": 1, "failed": 1}
    again.close()
    assert not (tmp_path / "l-intents").exists()


def test_marks_survive_a_crash_before_any_commit(tmp_path):
    """A killed process leaves its in-flight marks in the journal; the next open replays them."""
    ledger = Ledger(tmp_path / "l")
    ledger.begin(b"a" * 16, "cust-a", 7)
    # Simulate the kill: nothing is committed, the lock dies with the descriptors.
    os.close(ledger._journal)
    os.close(ledger._lock)
    assert (tmp_path / "l-intents").stat().st_size > 0
    reader = Ledger(tmp_path / "l", read_only=True)
    assert reader.counts() == {"in_flight": 1}
    unknown = reader.unknown_rows()
    assert unknown[["input_row", "customer_id", "status"]].values.tolist() == [
        [7, "cust-a", "in_flight"]
    ]
    reader.close()
    resumed = Ledger(tmp_path / "l")
    assert resumed.lookup([b"a" * 16])[b"a" * 16].status == "in_flight"
    assert (tmp_path / "l-intents").stat().st_size <= 38, "replayed: only the header is left"
    resumed.close()


def test_a_row_waiting_to_retry_is_not_in_flight_until_marked_again(tmp_path):
    """A refusal the run retries (429) unmarks the row at once; the retry's mark, made within
    the same fraction of a second, wins again, also when a kill leaves it in the journal."""
    key = b"r" * 16
    ledger = Ledger(tmp_path / "l")
    ledger.begin(key, "c", 3)
    ledger.retry_later(
        [key], pacing=True, http_status=429, error_code="rate_limited", error_message="429"
    )
    reader = Ledger(tmp_path / "l", read_only=True)
    entry = reader.lookup([key])[key]
    assert (entry.status, entry.retryable) == ("aborted", True), "committed at once, as a stop"
    reader.close()
    ledger.begin(key, "c", 3)  # the retry goes out
    os.close(ledger._journal)  # killed before the next commit
    os.close(ledger._lock)
    resumed = Ledger(tmp_path / "l")
    assert resumed.lookup([key])[key].status == "in_flight"
    settle(resumed, key, "sent")
    resumed.close()
    again = Ledger(tmp_path / "l", read_only=True)
    assert again.lookup([key])[key].status == "sent"
    again.close()


def test_the_last_send_is_known_after_a_clean_end_and_after_a_kill(tmp_path, monkeypatch):
    """When a run with the ledger last sent: the pacing of the next run reads it to know
    whether the server's window can still hold that run's requests."""
    import time

    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    ledger = Ledger(tmp_path / "l")
    assert ledger.last_sent_at() is None, "a new ledger: no run sent with it"
    ledger.begin(b"k" * 16, "c1", 0)
    now[0] = 1005.0
    settle(ledger, b"k" * 16, "sent")  # the answer came
    ledger.close()
    again = Ledger(tmp_path / "l")
    assert again.last_sent_at() == 1005.0
    now[0] = 1010.0
    again.begin(b"f" * 16, "c2", 1)  # then killed: the mark is in the journal alone
    os.close(again._journal)
    os.close(again._lock)
    resumed = Ledger(tmp_path / "l")
    assert resumed.last_sent_at() == 1010.0
    resumed.close()


def test_a_torn_journal_tail_is_ignored(tmp_path):
    ledger = Ledger(tmp_path / "l")
    ledger.begin(b"a" * 16, "c", 1)
    os.write(ledger._journal, b"B\x01\x02\x03")
    os.close(ledger._journal)
    os.close(ledger._lock)
    resumed = Ledger(tmp_path / "l")
    assert resumed.counts() == {"in_flight": 1}
    resumed.close()


def test_one_writer_at_a_time(tmp_path):
    first = Ledger(tmp_path / "l")
    with pytest.raises(LedgerError, match="in use by another run"):
        Ledger(tmp_path / "l")
    first.close()
    Ledger(tmp_path / "l").close()


def test_a_file_that_is_not_a_ledger(tmp_path):
    path = tmp_path / "not-a-ledger"
    path.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="not a usable ledger"):
        Ledger(path)


def test_settles_are_committed_in_groups(tmp_path):
    ledger = Ledger(tmp_path / "l")
    for n in range(50):
        key = n.to_bytes(16, "big")
        ledger.begin(key, "c", n)
        settle(ledger, key, "sent")
    ledger.commit()
    reader = Ledger(tmp_path / "l", read_only=True)
    assert reader.counts() == {"sent": 50}
    reader.close()
    ledger.close()


def test_a_mark_made_durable_is_never_followed_by_an_error_that_keeps_its_request_back(
    tmp_path, monkeypatch
):
    """begin() raising after its mark reached the journal would leave a row in flight whose
    request never went: the next run would call it unknown and never send it."""
    import gb_backfill._store.ledger as ledger_module
    from gb_backfill import LedgerError

    ledger = Ledger(tmp_path / "l")
    monkeypatch.setattr(ledger_module, "_COMMIT_EVERY", 0.0)  # every begin commits
    ledger.begin(b"a" * 16, "c1", 0)
    (tmp_path / "l").unlink()  # the commit after the next mark fails
    ledger.begin(b"b" * 16, "c2", 1)  # durable: it returns, so its request goes out
    with pytest.raises(LedgerError, match="deleted or replaced"):
        ledger.begin(b"c" * 16, "c3", 2)  # the next one stops the run
    ledger.settle(
        b"b" * 16, "sent", retryable=False, attempts=1, http_status=200, error_code=None,
        error_message=None,
    )  # fmt: skip
    with pytest.raises(LedgerError):
        ledger.close()
    rebuilt = Ledger(tmp_path / "l", rebuild=True)
    assert rebuilt.lookup([b"b" * 16])[b"b" * 16].status == "sent"
    assert not rebuilt.lookup([b"c" * 16]), "never marked: its request never went"
    rebuilt.close()


def test_a_partial_write_of_a_job_record_breaks_the_ledger_like_a_partial_mark(
    tmp_path, monkeypatch
):
    """assign_job checks its write as begin does: a job id half written is not durable."""
    import os

    import gb_backfill._store.ledger as ledger_module
    from gb_backfill import LedgerError

    ledger = Ledger(tmp_path / "l")
    ledger.begin(b"a" * 16, "c1", 0)
    real_write = os.write
    monkeypatch.setattr(ledger_module.os, "write", lambda fd, data: real_write(fd, data[:5]))
    with pytest.raises(LedgerError, match="partial write"):
        ledger.assign_job(7, [b"a" * 16])
    with pytest.raises(LedgerError):
        ledger.begin(b"b" * 16, "c2", 1)  # broken: no more marks, no more requests
    monkeypatch.setattr(ledger_module.os, "write", real_write)
    ledger.close()
    reopened = Ledger(tmp_path / "l")
    assert reopened.pending_jobs() == [], "a job id not durably written is not claimed"
    assert reopened.lookup([b"a" * 16])[b"a" * 16].status == "in_flight"
    reopened.close()


def test_every_journal_record_reads_back_as_the_named_record_it_was(tmp_path):
    """The journal's records are named (issue 27): what is written is what replay reads."""
    from gb_backfill._store import journal

    key, loose = b"k" * 16, b"l" * 16
    marks, requests = journal.mark_records(
        [journal.Mark(key, "c1", 7, loose, 3, b"c" * 16, 2, b'{"x":1}')], at=5.0
    )
    settle = journal.Settle(key, "failed", True, 2, 503, "http_503", "down", 6.0)
    assign = journal.Assign(9, [key, b"m" * 16])
    path = tmp_path / "l-intents"
    path.write_bytes(
        journal.header("0" * 32) + b"".join(marks) + requests[key]
        + journal.settle_record(settle) + journal.job_record(assign)
    )  # fmt: skip
    found = journal.read(path)
    assert found.begins == [journal.Begin(key, "c1", 7, 5.0)]
    assert found.looses == [journal.Loose(key, loose, 3)]
    assert found.requests == [journal.Request(key, b"c" * 16, 2, b'{"x":1}', 5.0)]
    assert found.settles[0]._replace(at=6.0) == settle  # replayed outcomes are stamped anew
    assert found.jobs == [assign]
