"""Re-runs and resumes with a ledger: never twice, never lost."""

import httpx
import numpy as np
import pandas as pd
import pytest

from gb_backfill import LedgerError, send, send_path
from gb_backfill._rows.keys import RowKeyMaker
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.payloads import encode_rows
from gb_backfill._rows.rules import check_frame
from tests.conftest import MockGameball, send_options


@pytest.fixture
def df():
    return pd.DataFrame(
        {
            "customerId": ["a", "b", "a", "c", "", "b", "d"],
            "eventName": ["e"] * 7,
            "seq": range(7),
        }
    )


def test_rerun_of_a_finished_send_makes_no_requests(tmp_path, df):
    ledger = tmp_path / "run.ledger"
    first = send(df, **send_options(MockGameball()), ledger=ledger)
    assert (first.sent, first.invalid) == (6, 1)
    gameball = MockGameball()
    again = send(df, **send_options(gameball), ledger=ledger)
    assert gameball.requests == []
    assert again.counts == {**again.counts, "sent": 0, "skipped": 6, "invalid": 1}


def test_retryable_failures_are_tried_again_and_final_ones_are_not(tmp_path, df):
    def flaky(request, body, n):
        seq = body["events"]["e"]["seq"]
        if seq == 1:
            return httpx.Response(503)
        if seq == 3:
            return httpx.Response(400, json={"message": "bad"})
        return httpx.Response(200)

    ledger = tmp_path / "run.ledger"
    first = send(df, **send_options(MockGameball(flaky)), ledger=ledger)
    assert (first.sent, first.failed) == (4, 2)
    gameball = MockGameball()
    again = send(df, **send_options(gameball), ledger=ledger)
    assert gameball.seqs == [1], "only the retryable failure is sent again"
    assert (again.sent, again.skipped, again.failed, again.invalid) == (1, 4, 1, 1)
    final = again.failures.set_index("seq").loc[3]
    assert final["gb_status"] == "failed"
    assert "failed in an earlier run" in final["gb_error_message"]


def test_unknown_rows_are_left_alone_unless_asked(tmp_path, df):
    def lost(request, body, n):
        if body["events"]["e"]["seq"] == 2:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200)

    ledger = tmp_path / "run.ledger"
    assert send(df, **send_options(MockGameball(lost)), ledger=ledger).unknown == 1
    gameball = MockGameball()
    again = send(df, **send_options(gameball), ledger=ledger)
    assert gameball.requests == []
    assert again.unknown == 1
    assert again.failures.query("gb_status == 'unknown'")["seq"].tolist() == [2]
    opted = MockGameball()
    last = send(df, **send_options(opted, retry_unknown=True), ledger=ledger)
    assert opted.seqs == [2]
    assert last.sent == 1


def test_failures_file_sent_again_keeps_its_keys(tmp_path, df):
    """A failures file has the rows' original positions, so the ledger knows them."""

    def lost(request, body, n):
        if body["events"]["e"]["seq"] == 2:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200)

    ledger = tmp_path / "run.ledger"
    failures = tmp_path / "f.parquet"
    send(df, **send_options(MockGameball(lost)), ledger=ledger, failures_path=failures)
    gameball = MockGameball()
    again = send(pd.read_parquet(failures), **send_options(gameball), ledger=ledger)
    assert gameball.requests == [], "the unknown row is recognised, not resent"
    assert (again.unknown, again.invalid) == (1, 1)


def keys_of(*frames):
    """The keys one run gives the valid rows of ``frames``, read in that order."""
    counter = RowKeyMaker()
    keys = []
    for frame in frames:
        encoded = encode_rows(frame, check_frame(frame, resolve_mapping(frame.columns)))
        keys += counter.keys(encoded.bodies).keys
    counter.close()
    return keys


def test_identical_rows_get_different_keys_and_runs_agree(df):
    twins = pd.concat([df, df], ignore_index=True)
    keys = keys_of(twins)
    assert len(set(keys)) == len(keys) == 12
    assert keys == keys_of(twins.copy())
    assert keys == keys_of(twins.iloc[:3], twins.iloc[3:5], twins.iloc[5:])
    assert keys[:3] == keys_of(twins.iloc[:3])


def test_keys_do_not_depend_on_dtype_drift(df):
    as_float = df.assign(seq=df["seq"].astype(float))
    assert keys_of(df) == keys_of(as_float)


def test_natural_row_key(tmp_path, df):
    ledger = tmp_path / "run.ledger"
    keyed = df.assign(order_id=[f"o{n}" for n in range(7)])
    send(keyed, **send_options(MockGameball()), ledger=ledger, row_key=["order_id"])
    shuffled = keyed.sample(frac=1, random_state=3).assign(extra="changed")
    gameball = MockGameball()
    again = send(shuffled, **send_options(gameball), ledger=ledger, row_key=["order_id"])
    assert gameball.requests == [], "the natural key survives reordering and new columns"
    assert again.skipped == 6


def test_a_key_that_is_not_unique_fails_before_sending(tmp_path, df):
    gameball = MockGameball()
    with pytest.raises(LedgerError, match="not unique"):
        send(df, **send_options(gameball), ledger=tmp_path / "l", row_key=["customerId"])
    assert gameball.requests == []
    path = tmp_path / "in.csv"
    df.to_csv(path, index=False)
    with pytest.raises(LedgerError, match="not unique"):
        send_path(path, **send_options(gameball), ledger=tmp_path / "l", row_key=["eventName"])
    assert gameball.requests == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_send_path_streams_in_batches_like_send(tmp_path, suffix):
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {
            "customerId": rng.choice(["a", "b", "c", "", "d"], 250),
            "eventName": "e",
            "seq": range(250),
        }
    )
    path = tmp_path / f"in{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path)
    streamed = MockGameball()
    report = send_path(
        path, **send_options(streamed), batch_rows=17, failures_path=tmp_path / "f.parquet"
    )
    whole = MockGameball()
    expected = send(df, **send_options(whole))
    assert report.counts == expected.counts
    assert sorted(streamed.seqs) == sorted(whole.seqs)
    written = pd.read_parquet(tmp_path / "f.parquet")
    assert written["gb_row"].tolist() == df.index[df.customerId == ""].tolist()


def test_send_path_rerun_with_ledger(tmp_path, df):
    path = tmp_path / "in.parquet"
    df.to_parquet(path)
    ledger = tmp_path / "l"
    send_path(path, **send_options(MockGameball()), ledger=ledger, batch_rows=3)
    gameball = MockGameball()
    again = send_path(path, **send_options(gameball), ledger=ledger, batch_rows=2)
    assert gameball.requests == []
    assert again.skipped == 6


def test_row_counts_for_the_progress_bar(tmp_path):
    """Exact counts, quoted line breaks included: CSV rows are counted by the first pass."""
    from gb_backfill._input.reader import InputFile

    df = pd.DataFrame({"a": range(5), "b": ["v", "w\nx", "y", "z", "q"]})
    df.to_csv(tmp_path / "x.csv", index=False)
    df.to_parquet(tmp_path / "x.parquet")
    (tmp_path / "no-newline.csv").write_text("a,b\n1,2\n3,4")
    assert InputFile(tmp_path / "x.csv").rows == 5
    assert InputFile(tmp_path / "x.parquet").rows == 5
    assert InputFile(tmp_path / "no-newline.csv").rows == 2


def test_a_ledger_refuses_rows_keyed_another_way(tmp_path, df):
    ledger = tmp_path / "l"
    keyed = df.assign(order_id=[f"o{n}" for n in range(7)])
    send(keyed, **send_options(MockGameball()), ledger=ledger, row_key=["order_id"])
    gameball = MockGameball()
    with pytest.raises(LedgerError, match=r"keys rows by columns \['order_id'\]"):
        send(keyed, **send_options(gameball), ledger=ledger)
    assert gameball.requests == []


def test_status_counts_the_rows_a_stopped_run_never_reached_as_rows_to_send(tmp_path):
    """A trial's status said 'will be sent: 0' after a Ctrl-C that left 2,201 rows never
    reached (they have no record of their own); the ledger now keeps the last run's count."""
    from gb_backfill import RunStopped, ledger_status
    from tests.conftest import MockGameball, send_fast, send_options

    def refused_after_two(request, body, n):
        return httpx.Response(200, json={}) if n <= 2 else httpx.Response(401, json={})

    rows = pd.DataFrame({"customerId": [f"c{n}" for n in range(60)], "eventName": "e"})
    ledger = tmp_path / "ledger"
    options = send_options(MockGameball(refused_after_two), concurrency=1, ledger=ledger)
    with pytest.raises(RunStopped) as stopped:
        send_fast(rows, **options)
    aborted = stopped.value.report.counts["aborted"]
    assert aborted > 30
    status = ledger_status(ledger)
    assert status.next_run["will_be_sent"] == aborted, status.summary()
    said = status.summary()
    never = aborted - status.counts["aborted"]
    assert (
        f"and {never:,} of its 60 rows the last run never reached, counted under will be sent"
        in said.splitlines()[0]
    ), said
    # Said once: the line that counts them only says what becomes of them.
    assert said.count(f"{never:,}") == 1 + (never == aborted), said
    # The next run sends them all; then nothing is left to send.
    again = send_fast(rows, **send_options(MockGameball(), ledger=ledger))
    assert again.sent == 60 - stopped.value.report.counts["sent"]
    assert ledger_status(ledger).next_run["will_be_sent"] == 0
