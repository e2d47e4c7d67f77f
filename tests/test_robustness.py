"""A run that cannot hang, cannot lose its ledger, and stops early when it cannot succeed.

Every test that could hang is bounded (``asyncio.wait_for`` or a subprocess ``timeout``) and
fails when it hits the bound.
"""

import asyncio
import errno
import sqlite3
import threading

import httpx
import numpy as np
import pandas as pd
import pytest

import gb_backfill
from gb_backfill import (
    AuthenticationError,
    ConfigError,
    Emulator,
    LedgerError,
    RateLimits,
    RepeatedFailureError,
    RetryPolicy,
    asend,
    read_failures,
    send,
)
from tests.conftest import API_KEY, MockGameball, send_options

FAST = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
BOUND = 20  # seconds; a run that takes longer has hung


def orders(rows=300, customers=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customerId": [f"c{n}" for n in rng.integers(0, customers, rows)],
            "eventName": "purchase",
            "order_id": [f"o{n}" for n in range(rows)],
        }
    )


def bounded(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, BOUND))


def accounted(report, rows):
    assert sum(report.counts.values()) == report.rows == rows
    not_sent = rows - report.sent - report.skipped
    assert len(report.failures) == not_sent, "the failures file holds every row not sent"


def arrivals(emulator):
    return emulator.events()["metadata"].map(lambda m: m["order_id"]).value_counts()


# --- an unexpected error in any stage stops the run, which still accounts for every row -------


class Injected(RuntimeError):
    pass


def fail_on_call(n, error):
    calls = {"n": 0}

    def maybe(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise error
        return maybe.original(*args, **kwargs)

    return maybe


@pytest.mark.parametrize(
    "stage",
    ["reading", "checking", "encoding", "keys", "sending", "writing-failures", "ledger"],
)
def test_an_error_in_any_stage_stops_the_run_with_every_row_accounted(stage, monkeypatch, tmp_path):
    df = orders()
    df.loc[[3, 130], "customerId"] = None  # a few failures to write
    from gb_backfill._engine import bookkeeping as _bookkeeping
    from gb_backfill._engine import prepare as _prepare
    from gb_backfill._input import arrow as _frames  # where a DataFrame is read in chunks
    from gb_backfill._store import failures as _failures
    from gb_backfill._store import ledger as _ledger

    targets = {
        "checking": (_prepare, "check_rows", 2),
        "encoding": (_prepare, "encode_checked", 2),
        "writing-failures": (_failures.FailureWriter, "flush", 2),
        "ledger": (_ledger.Ledger, "begin_many", 40),
        "keys": (_prepare.RowKeyMaker, "keys", 2),
    }
    error = Injected(f"injected in {stage}")
    if stage == "writing-failures":
        error = OSError(errno.ENOSPC, "No space left on device")
    if stage in targets:
        owner, name, n = targets[stage]
        wrapper = fail_on_call(n, error)
        wrapper.original = getattr(owner, name)
        monkeypatch.setattr(owner, name, wrapper)
    if stage == "reading":

        def slices(frame, rows):
            yield frame.iloc[:rows]
            raise error

        monkeypatch.setattr(_frames, "frame_chunks", slices)

    def handler(request, body, n):
        if stage == "sending" and n == 30:
            raise error
        return httpx.Response(200)

    options = send_options(MockGameball(handler), batch_rows=50, concurrency=4)
    with pytest.raises(gb_backfill.RunStopped) as raised:
        bounded(asend(df, **options, ledger=tmp_path / "l", failures_path=tmp_path / "f.parquet"))
    assert raised.value.__cause__ is error, "raised from what stopped it"
    report = raised.value.report
    rows = 50 if stage == "reading" else len(df)  # a file that breaks cannot be read further
    accounted(report, rows)
    assert any("the run stopped" in note for note in raised.value.__notes__)
    assert not list(tmp_path.glob("*.parts")), "the failures file was merged"
    _ = _bookkeeping  # the module every outcome goes through


def test_a_surprise_while_a_request_is_out_leaves_its_row_unknown_not_lost():
    def handler(request, body, n):
        if n == 5:
            raise Injected("transport bug")
        return httpx.Response(200)

    with pytest.raises(gb_backfill.RunStopped) as raised:
        send(orders(40), **send_options(MockGameball(handler), concurrency=1))
    assert isinstance(raised.value.__cause__, Injected)
    report = raised.value.report
    assert report.unknown == 1
    assert report.sent == 4
    assert report.aborted == 35


# --- the ledger never forgets a mark it has not committed ------------------------------------


def slow_emulator():
    return Emulator(limits=RateLimits.unlimited(), faults=gb_backfill.Faults(latency=0.02))


def run(emu, df, ledger, **options):
    return send(
        df,
        base_url=emu.base_url,
        api_key=emu.api_key,
        limits=RateLimits(per_second=150, per_window=0),
        retry=FAST,
        progress=False,
        ledger=ledger,
        **options,
    )


def in_a_thread(emu, df, ledger):
    """Start ``run`` in a thread; returns it and where its stop (from a LedgerError) will be."""
    outcome = {}

    def first_run():
        try:
            run(emu, df, ledger)
        except gb_backfill.RunStopped as stopped:
            outcome["error"] = stopped

    sender = threading.Thread(target=first_run)
    sender.start()
    return sender, outcome


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_lock_held_mid_run_stops_it_and_the_resume_sends_nothing_twice(tmp_path):
    df = orders(250, 125)
    ledger = tmp_path / "l"
    with slow_emulator() as emu:
        sender, outcome = in_a_thread(emu, df, ledger)
        while len(emu.events()) < 60:
            pass
        blocker = sqlite3.connect(ledger, timeout=10)
        blocker.execute("BEGIN EXCLUSIVE")  # another connection holds the write lock
        sender.join(BOUND)
        assert not sender.is_alive(), "the run stopped instead of hanging"
        blocker.rollback()
        blocker.close()
        error = outcome["error"]
        assert isinstance(error.__cause__, LedgerError), "raised from the ledger's error"
        assert "cannot write the ledger" in str(error)
        accounted(error.report, len(df))
        resumed = run(emu, df, ledger)
        counts = arrivals(emu)
    assert counts.max() == 1, "nothing was sent twice"
    assert resumed.sent + resumed.skipped + resumed.unknown == len(df)
    assert len(counts) == resumed.sent + resumed.skipped + (
        counts.size - resumed.sent - resumed.skipped
    )


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_deleted_journal_stops_the_run_and_does_not_admit_a_second_one(tmp_path):
    df = orders(250, 125)
    ledger = tmp_path / "l"
    with slow_emulator() as emu:
        sender, outcome = in_a_thread(emu, df, ledger)
        while len(emu.events()) < 40:
            pass
        (tmp_path / "l-intents").unlink()
        with pytest.raises(LedgerError, match="in use by another run"):
            run(emu, df, ledger)
        sender.join(BOUND)
        assert not sender.is_alive()
        assert "was deleted or replaced" in str(outcome["error"])
        run(emu, df, ledger)
        assert arrivals(emu).max() == 1


def test_a_deleted_database_is_noticed(tmp_path):
    df = orders(300, 150)
    ledger = tmp_path / "l"
    with slow_emulator() as emu:
        sender, outcome = in_a_thread(emu, df, ledger)
        while len(emu.events()) < 40:
            pass
        ledger.unlink()
        sender.join(BOUND)
        assert not sender.is_alive()
    assert f"{ledger} was deleted or replaced" in str(outcome["error"])


# --- configuration failures are not row failures ---------------------------------------------


def test_a_wrong_key_then_the_right_one_sends_every_row(tmp_path):
    df = orders(120)
    ledger = tmp_path / "l"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        with pytest.raises(AuthenticationError):
            send(df, base_url=emu.base_url, api_key="wrong", progress=False, ledger=ledger)
        fixed = run(emu, df, ledger)
        counts = arrivals(emu)
    assert fixed.sent == len(df)
    assert counts.max() == 1
    assert len(counts) == len(df)


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize("broken", ["wrong-path", "nothing-listening"])
def test_a_wrong_url_stops_early_and_the_fixed_rerun_sends_every_row(broken, tmp_path):
    df = orders(200)
    ledger = tmp_path / "l"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        if broken == "wrong-path":
            url = emu.base_url + "/wrong"
        else:
            with Emulator() as gone:
                url = gone.base_url  # a port that was just closed
        with pytest.raises(RepeatedFailureError) as raised:
            bounded(
                asend(
                    df,
                    base_url=url,
                    api_key=emu.api_key,
                    retry=FAST,
                    limits=RateLimits.unlimited(),
                    progress=False,
                    ledger=ledger,
                )
            )
        report = raised.value.report
        accounted(report, len(df))
        assert report.requests < 40, "stopped early, not after 6 attempts per row"
        fixed = run(emu, df, ledger)
        counts = arrivals(emu)
    assert fixed.sent == len(df)
    assert counts.max() == 1


def test_a_few_rows_failing_their_retries_do_not_trip_the_breaker():
    def handler(request, body, n):
        if body["events"]["purchase"]["order_id"] in ("o1", "o2"):
            return httpx.Response(503)
        return httpx.Response(200)

    report = send(orders(40), **send_options(MockGameball(handler), retry=FAST))
    assert (report.sent, report.failed) == (38, 2)


# --- checked before the first request ---------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["sekrit-1\n", " sekrit-2", "sek\u00a0rit-3", "s\u00e9krit-4", ""],
    ids=["newline", "space", "nbsp", "latin1", "empty"],
)
def test_keys_that_cannot_be_headers_are_refused_before_any_request(key):
    gameball = MockGameball()
    with pytest.raises(ConfigError) as raised:
        send(orders(5), **send_options(gameball, api_key=key))
    assert gameball.requests == []
    if key.strip():
        assert key.strip() not in str(raised.value), "the key is never shown"


def test_a_session_token_that_cannot_be_a_header_is_a_row_failure():
    df = orders(3).assign(sessionToken=["tok.1", "\u00e9t\u00e9", "tok.3"])
    gameball = MockGameball()
    report = send(df, **send_options(gameball))
    assert report.invalid == 1
    assert len(gameball.requests) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limits": {"per_second": 10}}, r"limits= takes gb_backfill.RateLimits\(...\), not dict"),
        ({"concurrency": "8"}, "concurrency= must be a whole number of at least 1, not '8'"),
        ({"timeout": float("nan")}, "timeout= must be a finite number of seconds above 0"),
        ({"timeout": -1}, "timeout= must be a finite number"),
        ({"retry": {"attempts": 2}}, r"retry= takes gb_backfill.RetryPolicy"),
        ({"concurency": 8}, r"unknown keyword concurency=; did you mean concurrency=\?"),
        ({"failure_path": "x"}, r"did you mean failures_path=\?"),
    ],
)
def test_options_are_checked_in_the_callers_terms(options, message):
    gameball = MockGameball()
    base = {k: v for k, v in send_options(gameball).items() if k not in options}
    with pytest.raises(ConfigError, match=message) as raised:
        send(orders(3), **base, **options)
    assert "_settings" not in str(raised.value)
    assert gameball.requests == []


def test_send_path_names_a_misspelt_keyword(tmp_path):
    path = tmp_path / "x.parquet"
    orders(3).to_parquet(path)
    with pytest.raises(ConfigError, match="did you mean batch_rows="):
        gb_backfill.send_path(path, api_key=API_KEY, batch_row=5)


def test_an_unwritable_failures_path_is_refused_before_any_request(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    gameball = MockGameball()
    with pytest.raises(ConfigError, match="cannot write the failures file"):
        send(orders(3), **send_options(gameball), failures_path=blocker / "f.parquet")
    assert gameball.requests == []


# --- keys never travel in clear text through a proxy ------------------------------------------


def test_plain_http_ignores_the_environments_proxy(monkeypatch):
    import socket

    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(8)
    proxy.settimeout(0.2)
    port = proxy.getsockname()[1]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        with Emulator(limits=RateLimits.unlimited()) as emu:
            report = send(orders(5), base_url=emu.base_url, api_key=emu.api_key, progress=False)
            assert report.sent == 5
            assert len(emu.events()) == 5
        with pytest.raises(TimeoutError):
            proxy.accept()  # nothing ever connected to the proxy
    finally:
        proxy.close()


def test_failures_of_a_run_stopped_by_an_error_can_be_read_back(tmp_path, monkeypatch):
    from gb_backfill._engine import prepare as _prepare

    wrapper = fail_on_call(2, Injected("boom"))
    wrapper.original = _prepare.encode_checked
    monkeypatch.setattr(_prepare, "encode_checked", wrapper)
    with pytest.raises(gb_backfill.RunStopped) as raised:
        send(
            orders(100),
            **send_options(MockGameball()),
            batch_rows=30,
            failures_path=tmp_path / "f.parquet",
        )
    written = read_failures(tmp_path / "f.parquet")
    assert set(written["gb_status"]) == {"aborted"}
    assert set(range(30, 100)) <= set(written["gb_row"]), "every row from the failed batch on"
    assert len(written) + raised.value.report.sent == 100  # the first batch may have gone out


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize("stage", ["reading", "checking"])
def test_a_cancel_while_a_batch_is_read_or_checked_off_the_loop_loses_no_row(stage, tmp_path):
    """Reading and checking run in a worker thread, which a cancel cannot interrupt: the batch
    it was working on is still accounted for, and a resume sends every row exactly once."""
    from gb_backfill._engine import prepare as _prepare
    from gb_backfill._input import arrow as _frames  # where a DataFrame is read in chunks

    df = orders(120, customers=120)
    entered, release = threading.Event(), threading.Event()
    original = _prepare.check_rows if stage == "checking" else None
    calls = {"n": 0}

    def slow_check(frame, mapping):
        calls["n"] += 1
        if calls["n"] == 2:
            entered.set()
            release.wait(BOUND)
        return original(frame, mapping)

    def slow_batches(frame):
        for start in range(0, len(frame), 40):
            if start == 40:
                entered.set()
                release.wait(BOUND)
            yield frame.iloc[start : start + 40]

    ledger, failures = tmp_path / "ledger.db", tmp_path / "failed.parquet"
    with Emulator(limits=RateLimits.unlimited()) as emu:
        options = {
            "base_url": emu.base_url, "api_key": emu.api_key, "progress": False, "ledger": ledger,
            "failures_path": failures,
        }  # fmt: skip

        async def cancelled_midway():
            with pytest.MonkeyPatch.context() as patch:
                if stage == "checking":
                    patch.setattr(_prepare, "check_rows", slow_check)
                else:
                    patch.setattr(_frames, "frame_chunks", lambda frame, rows: slow_batches(frame))
                task = asyncio.create_task(asend(df, batch_rows=40, **options))
                while not entered.is_set():
                    await asyncio.sleep(0.01)
                task.cancel()
                await asyncio.sleep(0.05)
                release.set()  # the thread finishes only now; the cancel waited for it
                with pytest.raises(gb_backfill.Interrupted):
                    await task

        bounded(cancelled_midway())
        written = read_failures(failures)
        sent_first = len(emu.events())
        assert sent_first + len(written) == len(df), "every row is sent or in the failures file"
        assert set(written["gb_status"]) <= {"aborted", "unknown"}
        again = send(df, **options)
        assert len(emu.events()) == len(df), "the resume sends the rest"
        assert arrivals(emu).max() == 1, "and nothing twice"
        assert again.skipped == sent_first
