"""The progress bar never goes silent, fits the terminal, and ends where the run ended.

Waits play out on the fake clock (``tests/fake_time.py``): a 30 s window or a ``Retry-After``
takes no real time. Widths are a real terminal's: a pseudo-terminal with its size set.
"""

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import httpx
import pandas as pd
import pytest

from gb_backfill import Emulator, RateLimits, RetryPolicy
from gb_backfill._engine import progress as _progress
from tests import fake_time
from tests.conftest import MockGameball, send_fast, send_options

ROWS = pd.DataFrame({"customerId": [f"c{n}" for n in range(6)], "eventName": "e"})


@pytest.fixture
def summary_lines(monkeypatch, capsys):
    """The lines a run prints without a terminal (a log), one per look of the bar."""
    monkeypatch.setattr(_progress, "interactive", lambda: False)
    monkeypatch.setattr(_progress.Progress, "LINE_EVERY", 0.0)
    return lambda: capsys.readouterr().err.splitlines()


def seconds_said(lines, pattern):
    return [int(m.group(1).replace(",", "")) for line in lines if (m := re.search(pattern, line))]


def test_a_full_window_says_so_and_counts_down(summary_lines):
    """3 requests per 30 s: the fourth row waits for the window, and the bar says for how long."""
    window = RateLimits(per_second=0, per_window=3, window=30.0)
    report = send_fast(ROWS, **send_options(MockGameball(), progress=None, limits=window))
    assert report.sent == 6
    left = seconds_said(summary_lines(), r"waiting for the 30 s window: ([\d,]+) s")
    assert len(left) >= 20, "said every second while the window was full"
    assert max(left) <= 31
    assert min(left) == 1, "counted down to its last second, never silent at the end"
    assert left[:10] == sorted(left[:10], reverse=True), "it counts down"


def test_a_retry_after_says_what_gameball_asked_and_how_long_is_left(summary_lines):
    def handler(request, body, n):
        if n == 1:
            return httpx.Response(429, headers={"Retry-After": "30"}, json={"code": 4290})
        return httpx.Response(200, json={})

    options = send_options(MockGameball(handler), progress=None, retry=RetryPolicy())
    report = send_fast(ROWS, **{**options, "concurrency": 1})
    assert report.sent == 6
    left = seconds_said(summary_lines(), r"Retry-After 30 s: ([\d,]+) s left")
    assert left
    assert max(left) <= 30
    assert min(left) == 1, "counted down to its last second, never silent at the end"


def test_a_row_to_be_retried_is_counted_until_its_next_request(summary_lines):
    """A trial's rows refused with a 5xx waited for the window, in no count on the bar, then
    showed as failed when the run stopped: they are 'retrying' until their next request."""

    def handler(request, body, n):
        return httpx.Response(503, json={}) if n == 3 else httpx.Response(200, json={})

    window = RateLimits(per_second=0, per_window=3, window=30.0)
    options = send_options(MockGameball(handler), progress=None, limits=window,
                           retry=RetryPolicy(wait_initial=0.1, wait_jitter=0.0))  # fmt: skip
    report = send_fast(ROWS, **{**options, "concurrency": 1})
    assert report.sent == 6
    waiting = [line for line in summary_lines() if "waiting for the 30 s window" in line]
    assert waiting
    assert all("retrying=1" in line for line in waiting[:10]), waiting[:3]


def test_rows_backing_off_before_a_retry_are_said_to_be_what_the_run_waits_for(summary_lines):
    """A trial's bar stood 4 s at 2627/4000 with 'retrying=9' and no reason: every row left
    belonged to customers whose refused row was backing off (one request at a time each)."""

    def handler(request, body, n):
        return httpx.Response(503, json={}) if n == 1 else httpx.Response(200, json={})

    one_customer = ROWS.assign(customerId="c1")  # its later rows wait for the first one
    options = send_options(MockGameball(handler), progress=None,
                           retry=RetryPolicy(wait_initial=20.0, wait_jitter=0.0))  # fmt: skip
    report = send_fast(one_customer, **options)
    assert report.sent == 6
    left = seconds_said(summary_lines(), r"retrying 1 row: the next try in ([\d,]+) s")
    assert left, "the bar says why it stands still"
    assert max(left) <= 20
    assert min(left) <= 2, "counted down"


def test_a_slow_answer_is_said_to_be_waited_for(summary_lines):
    async def handler(request):
        await asyncio.sleep(20)  # fake time: Gameball takes 20 s to answer
        return httpx.Response(200, json={})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    options = send_options(MockGameball(), progress=None, client=client)
    report = send_fast(ROWS, **{**options, "concurrency": 2, "timeout": 60.0})
    assert report.sent == 6
    said = r"waiting for 2 answers from Gameball: ([\d,]+) s so far"
    waited = seconds_said(summary_lines(), said)
    assert waited, "a bar standing still for slow answers says so"
    assert max(waited) >= 15


def test_a_batch_job_not_yet_ended_is_named(summary_lines):
    """While every row is in a posted job, the bar names the job and how long it has taken."""
    posted = {}

    def handler(request):
        now = fake_time.now()
        if request.method == "POST":
            posted[14] = now
            return httpx.Response(200, json={"jobId": 14})
        done = now - posted[14] >= 20
        body = {"status": "completed" if done else "processing"}
        if done:
            body["response"] = {"successful": [{"customerId": f"c{n}"} for n in range(6)]}
        return httpx.Response(200, json=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    options = send_options(MockGameball(), progress=None, mode="batch", client=client,
                           secret_key="s", batch_limits=RateLimits.unlimited())  # fmt: skip
    report = send_fast(ROWS, **options)
    assert report.sent == 6
    lines = summary_lines()
    waited = seconds_said(lines, r"waiting for job 14: ([\d,]+) s so far")
    assert waited
    assert all(line.count("waiting for job") <= 1 for line in lines), "said once"
    assert max(waited) >= 15, "named while the job ran"


def test_the_counts_keep_up_with_the_position(capsys):
    """Every redraw's counts are at most a tenth of a second behind its position: a bar at
    32/600 beside sent=1 reads as rows nobody accounts for."""
    clock = FakeClock()
    bar = _progress.Progress(600, enabled=True, clock=clock)
    for n in range(1, 41):
        clock.now += 0.15
        bar.advance(1, {"sent": n, "failed": 0}, 0)
        shown = bar._counts_bar.desc if bar._counts_bar is not None else bar._bar.postfix
        assert f"sent={n}" in shown, (n, shown)
    bar.close()


def test_a_bar_that_jumped_keeps_moving(monkeypatch, capsys):
    """A resumed run settles thousands of skipped rows at once; the rows sent after them one by
    one must still move the bar (tqdm's own estimate would hold it still for seconds)."""
    clock = FakeClock()
    monkeypatch.setattr("tqdm.std.time", clock)
    bar = _progress.Progress(20_000, enabled=True, clock=clock)
    bar.advance(15_000, {"sent": 0, "skipped": 15_000}, 0)
    for n in range(1, 101):
        clock.now += 0.2
        bar.advance(1, {"sent": n, "skipped": 15_000}, 0)
    bar.close()
    shown = {int(m) for m in re.findall(r"(\d+)/20000", capsys.readouterr().err)}
    assert len({n for n in shown if 15_000 < n < 15_100}) >= 50, sorted(shown)


def test_what_a_resumed_run_does_while_the_bar_stands_still(summary_lines):
    clock = FakeClock()
    bar = _progress.Progress(20_000, enabled=None, clock=clock)
    bar.advance(10_000, {"sent": 0, "skipped": 10_000}, 0)
    bar.doing("checking rows 10,001-20,000 against the ledger")
    bar.tick()
    clock.now += 12
    bar.tick()
    lines = summary_lines()
    assert "against the ledger" not in lines[-2], "not while the bar moves"
    said = "checking rows 10,001-20,000 against the ledger (12 s)"
    assert lines[-1].endswith(said)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- a real terminal's width -------------------------------------------------------------------


def terminal(columns, lines=24):
    """A pseudo-terminal ``columns`` wide: (the side a program writes to, the side we read)."""
    reader, writer = pty.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    return writer, reader


def drain(reader, until=None, timeout=60.0):
    """Read what the terminal shows until ``until()`` is true and nothing more comes."""
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([reader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # the writer side closed
                break
            if not chunk:
                break
            out += chunk
        elif until is None or until():
            break
    return out.decode("utf-8", "replace")


def drawn(output):
    """Each state of the bar drawn, as a person sees it (no cursor moves)."""
    clean = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", output)
    return [part for line in clean.split("\n") for part in line.split("\r") if part.strip()]


@contextlib.contextmanager
def on_a_terminal(monkeypatch, columns):
    """A pseudo-terminal ``columns`` wide as stderr, on a fake clock (tqdm's too, so its rate
    is): yields the clock and a list that holds each state drawn once the block ends."""
    writer, reader = terminal(columns)
    clock, states = FakeClock(), []
    with os.fdopen(writer, "w", closefd=True) as screen:
        monkeypatch.setattr(sys, "stderr", screen)
        monkeypatch.setattr("tqdm.std.time", clock)
        yield clock, states
        screen.flush()
    states += drawn(drain(reader))
    os.close(reader)


@pytest.mark.parametrize("columns", [80, 120])
def test_the_pace_and_why_it_waits_fit_the_terminal(monkeypatch, columns):
    with on_a_terminal(monkeypatch, columns) as (clock, states):
        bar = _progress.Progress(17_572, enabled=True, clock=clock)
        bar.pace = lambda: "17/s, 1,201/30s"
        counts = {"sent": 7_800, "skipped": 12, "failed": 3, "invalid": 85, "unknown": 27}
        clock.now += 37
        bar.advance(100, {"sent": 100}, 0)
        clock.now += 3
        bar.advance(7_827, counts, 4)
        bar.tick()
        clock.now += 5
        bar.status = lambda: "waiting for the 30 s window: 12 s"
        bar.tick()
        bar.status = lambda: None
        bar.finish({**counts, "failed": 0, "aborted": 9_645}, stopped=True)
    assert states
    for state in states:
        assert len(state) <= columns, f"cut at {columns} columns: {state!r}"
    bars = [s for s in states if s.startswith("gameball")]
    counts = [s for s in states if not s.startswith("gameball")]
    # The bar keeps its times beside the pace, and says in full why it waits.
    assert any(re.search(r"\[00:40<00:\d\d.*pace=17/s, 1,201/30s", s) for s in bars), bars
    assert any(re.search(r"waiting for the 30 s window: 12 s\]?$", s) for s in bars), bars
    # Every count, on a line of its own under the bar.
    every = "sent=7,800, skipped=12, failed=3, invalid=85, unknown=27, retrying=4"
    assert counts[0].strip() == every, counts
    stopped = [s for s in bars if s.startswith("gameball (stopped):")]
    assert len(stopped) == 1, "the stopped bar is drawn once (a trial read it twice)"
    assert stopped[0].endswith("7927/17572 [00:45]"), "no time left promised by a stopped run"
    assert counts.count(states[-1]) == 1, "and the final counts once"
    assert states[-1].strip() == (
        "sent=7,800, skipped=12, aborted=9,645, failed=0, invalid=85, unknown=27"
    ), "a stopped run's counts: what it sent as well as what it did not"


@pytest.mark.slow
def test_a_sigterm_leaves_the_bar_where_the_run_stopped_in_80_columns(tmp_path):
    """Through the real CLI in a real terminal: the pace fits, and SIGTERM does not fill the
    bar to 100%."""
    df = pd.DataFrame({"customerId": [f"c{n % 97}" for n in range(3_000)], "eventName": "e"})
    source = tmp_path / "in.parquet"
    df.to_parquet(source)
    writer, reader = terminal(80)
    with Emulator(limits=RateLimits(per_second=20, per_window=0)) as emu:
        process = subprocess.Popen(
            [sys.executable, "-m", "gb_backfill", "send", str(source), "--base-url",
             emu.base_url, "--ledger", str(tmp_path / "ledger"), "--failures",
             str(tmp_path / "failures.parquet")],
            env={"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL, stdout=writer, stderr=writer,
        )  # fmt: skip
        os.close(writer)
        try:
            seen = ""
            deadline = time.monotonic() + 60
            while "pace=" not in seen and time.monotonic() < deadline:
                seen += drain(reader, until=lambda: True, timeout=1.0)
            process.send_signal(signal.SIGTERM)
            seen += drain(reader, until=lambda: process.poll() is not None)
            process.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            os.close(reader)
    states = drawn(seen)
    bars = [s for s in states if "gameball" in s and "|" in s]
    assert bars, seen
    for state in bars:
        assert len(state) < 80, f"cut at 80 columns: {state!r}"
    assert any("pace=" in s for s in bars), "the pace Gameball set is shown"
    last = bars[-1]
    assert "(stopped)" in last, last
    done, total = map(int, re.search(r"(\d+)/(\d+)", last).groups())
    assert total == 3_000
    assert done < total, f"the bar ends where the run ended: {last!r}"
    assert "100%" not in last


def test_a_refused_key_leaves_the_bar_where_the_run_stopped(capsys):
    """A 401 stops the run: the rows never attempted are aborted, and the bar does not count
    them as done."""
    from gb_backfill import RunStopped

    def handler(request, body, n):
        return httpx.Response(200, json={}) if n <= 2 else httpx.Response(401, json={})

    rows = pd.DataFrame({"customerId": [f"c{n}" for n in range(50)], "eventName": "e"})
    options = send_options(MockGameball(handler), progress=True, concurrency=1)
    with pytest.raises(RunStopped) as stopped:
        send_fast(rows, **options)
    report = stopped.value.report
    assert report.aborted > 0
    drawn_states = drawn(capsys.readouterr().err)
    last = [s for s in drawn_states if s.startswith("gameball")][-1]
    assert last.startswith("gameball (stopped):"), last
    assert drawn_states[-1].strip() == (
        f"sent=2, aborted={report.aborted}, failed={report.failed}, invalid=0, unknown=0"
    ), "every count on its own line: what the run sent as well as what it did not"
    found = re.search(r"\| (\d+)/50\b", last)  # when narrow, tqdm leaves the times out
    assert found, last
    done = int(found.group(1))
    assert done == report.rows - report.aborted < 50, last
    # The report's codes are plain strings, as the failures file's gb_error_code holds them.
    assert {type(code) for code in report.error_codes} == {str}
    assert "<" not in repr(report.error_codes)


@pytest.mark.parametrize("lines", [24, 0])
def test_a_terminal_that_says_it_has_no_width_still_gets_a_bar(monkeypatch, lines):
    """``script`` and some CI runners give a terminal of 0 columns (and 0 lines), where tqdm
    draws nothing: the bar is drawn 80 columns wide instead, its counts' line too."""
    writer, reader = terminal(0, lines)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    with os.fdopen(writer, "w", closefd=True) as screen:
        monkeypatch.setattr(sys, "stderr", screen)
        clock = FakeClock()
        bar = _progress.Progress(100, enabled=True, clock=clock)
        clock.now += 1
        bar.advance(40, {"sent": 40}, 0)
        bar.advance(60, {"sent": 100}, 0)
        bar.finish({"sent": 100})
        screen.flush()
    states = drawn(drain(reader))
    os.close(reader)
    assert any(s.startswith("gameball: 100%|") and len(s) <= 80 for s in states), states
    assert states[-1].strip() == "sent=100, failed=0, invalid=0, unknown=0"


def test_rows_settled_without_a_request_do_not_make_the_rate(monkeypatch, capsys):
    """426 invalid rows settled at once, then one row sent a second: tqdm's rate and time left
    are those of the rows sent, not 400 rows a second (a trial was promised 22 s for 7 min)."""
    clock = FakeClock()
    monkeypatch.setattr("tqdm.std.time", clock)
    monkeypatch.setenv("COLUMNS", "200")
    bar = _progress.Progress(1_426, enabled=True, clock=clock)
    clock.now += 0.5
    bar.advance(426, {"sent": 0, "invalid": 426}, 0)
    for n in range(1, 4):
        clock.now += 1.0
        bar.advance(1, {"sent": n, "invalid": 426}, 0)
    rate = bar._bar.format_dict["rate"]
    bar.close()
    assert rate is not None
    assert 0.5 < rate < 2.0, rate


def test_what_the_run_does_is_said_in_full_at_80_columns(monkeypatch):
    """A trial read 'comparing the…' at 80 columns, the times kept: the bar gives way first."""
    with on_a_terminal(monkeypatch, 80) as (clock, states):
        bar = _progress.Progress(18_000, enabled=True, clock=clock)
        clock.now += 3
        bar.doing("comparing with the ledger: 12,000 rows read")
        clock.now += 2
        bar.tick()
        bar.close()
    said = "comparing with the ledger: 12,000 rows read (2 s)"
    assert any(s.rstrip().endswith(said) and len(s) <= 80 for s in states), states


def test_a_run_that_began_with_a_wait_is_promised_the_time_its_pace_takes(monkeypatch):
    """A resumed run waited 30 s for the window its last run filled, then sent at 40 rows a
    second: tqdm's rate of the whole time promised a trial 24:48 for a run of a minute."""
    with on_a_terminal(monkeypatch, 120) as (clock, states):
        bar = _progress.Progress(2_500, enabled=True, clock=clock)
        bar.sustained = 40.0  # 1,200 per 30 s
        clock.now += 30
        bar.advance(100, {"sent": 100}, 0)  # a burst at 100/s: faster than the run can go
        bar.tick()
        early = bar._bar.format_dict["rate"]
        for second in range(1, 11):
            clock.now += 1
            bar.advance(40, {"sent": 100 + 40 * second}, 0)
        bar.tick()
        bar.close()
    assert early is None, "no time left promised before the pace is known"
    left = [m.group(1) for s in states if (m := re.search(r"<(\d\d:\d\d), ", s))]
    assert left, states
    minutes, seconds = map(int, left[-1].split(":"))
    assert 50 <= minutes * 60 + seconds <= 60, left  # 2,000 rows at 40/s; tqdm said 10 min


@pytest.mark.parametrize(("total", "shown"), [(400, 100.0), (5_000, 40.0)])
def test_a_run_within_one_windows_quota_shows_its_own_pace(monkeypatch, total, shown):
    """400 rows at 100/s fit in the window's 1,200: a trial's bar said 40.00row/s next to a
    report of 60.6 per second. A run beyond the quota is held to 40/s over time."""
    clock = FakeClock()
    monkeypatch.setattr("tqdm.std.time", clock)
    monkeypatch.setenv("COLUMNS", "120")
    bar = _progress.Progress(total, enabled=True, clock=clock)
    bar.sustained, bar.burst = 40.0, 1_200
    for second in range(4):
        bar.advance(100, {"sent": 100 * (second + 1)}, 0)
        clock.now += 1
    rate = bar._bar.format_dict["rate"]
    bar.close()
    assert rate == pytest.approx(shown)


def test_a_finished_bar_shows_the_time_it_took_and_no_pace_of_its_own(monkeypatch):
    """A trial's finished bar said 41.42row/s (rows since the first answer) over a report of
    38.9 per second, and a short batch run's '?row/s': the report gives the run's pace."""
    with on_a_terminal(monkeypatch, 120) as (clock, states):
        bar = _progress.Progress(2_000, enabled=True, clock=clock)
        bar.sustained, bar.burst = 40.0, 1_200
        for second in range(20):
            clock.now += 1
            bar.advance(100, {"sent": 100 * (second + 1)}, 0)
        bar.tick()
        bar.finish({"sent": 2_000})
    bars = [s for s in states if s.startswith("gameball")]
    assert any("row/s" in s for s in bars), "a running bar shows its pace"
    assert bars[-1].endswith("2000/2000 [00:20]"), bars[-1]


def test_a_batch_run_promises_no_time_left_before_a_window_has_held_it(monkeypatch):
    """A trial's batch run was promised 15 s at 12 s in, from its first jobs' burst, and took
    63 s more: its pace is only known once a window's limits have held it."""
    clock = FakeClock()
    monkeypatch.setattr("tqdm.std.time", clock)
    monkeypatch.setenv("COLUMNS", "120")
    bar = _progress.Progress(4_000, enabled=True, clock=clock)
    bar.settle = 30.0
    rates = []
    for second in range(32):
        bar.advance(50, {"sent": 50 * (second + 1)}, 0)
        rates.append(bar._bar.format_dict["rate"])
        clock.now += 1
    bar.close()
    assert rates[12] is None
    assert rates[31] == pytest.approx(50 * 32 / 31)


def test_a_wiped_bar_leaves_the_cursor_at_the_start_of_the_line(monkeypatch):
    """A trial's refusal, printed after a bar wiped before the run began, started two columns
    in: the counts line's indent was left behind."""
    writer, reader = terminal(80)
    with os.fdopen(writer, "w", closefd=True) as screen:
        monkeypatch.setattr(sys, "stderr", screen)
        bar = _progress.Progress(100, enabled=True, clock=FakeClock())
        bar.close(leave=False)
        print("gb-backfill: refused", file=screen)
        screen.flush()
    out = drain(reader)
    os.close(reader)
    assert re.search(r"\r(\x1b\[[0-9;]*[A-Za-z])*gb-backfill: refused", out), repr(out)
