"""The progress bar: ``tqdm.auto`` (a widget in Jupyter, text in a terminal) over all rows.

When output is neither a terminal nor a notebook (a CI log, ``nohup``, a pipe) and the caller
did not choose, a bar would be noise: a summary line goes to stderr every few seconds instead.

The bar never goes silent: while it stands still (a full window, a ``Retry-After``, a batch job
not yet ended, slow answers, the input being read or looked up in the ledger),
:meth:`Progress.tick`, called every second by :meth:`Progress.ticking`, shows why and for how
long. In a terminal the counts have a line of their own under the bar, so neither hides the
other at 80 columns: the bar's line keeps the times, the pace and why the run waits (fitted to
the width, why first), the counts' line every count (zeros dropped first should it not fit). In
a notebook's widget, which has no width, all of it follows the bar. A stopped run's bar ends
where the run ended: rows never attempted (``aborted``) do not move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from .._clock import Clock
from .._vocabulary import Status

#: The terminal's line, richest first: the first whose fixed part leaves room for what must be
#: said (why it waits, the pace) is used. ``{postfix}`` is tqdm's: ", " and the text, or nothing.
_FORMATS = (
    "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
    "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
    "{l_bar}{bar}| {n_fmt}/{total_fmt}{postfix}",
    # No bar at all: the room for a long "why" at 80 columns (what is read, what is waited for)
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt}{postfix}",
)
#: The same without a total (rows of an input whose length is not known).
_UNSIZED_FORMATS = (
    "{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}{postfix}]",
    "{desc}: {n_fmt}{unit} [{elapsed}{postfix}]",
    "{desc}: {n_fmt}{unit}{postfix}",
)
_MIN_BAR = 10  # columns the bar itself keeps
#: columns for the times and the rate to grow before our next redraw (tqdm redraws between two
#: of ours): a line that outgrew the terminal would be cut at its end
_SLACK = 3
_USUAL_RATE = 41.87  # rows/s: what the rate is measured at before tqdm has one
#: Ranks of the parts of the postfix: what is shown first when the line is short. Rows whose
#: fate needs a look (unknown, failed) outrank the rest of the counts.
_WHY, _PACE, _ALARM, _NOTABLE, _ZERO = range(5)


def interactive() -> bool:
    """True in a terminal or a Jupyter kernel, where a progress bar helps."""
    return sys.stderr.isatty() or _in_kernel()


def _in_kernel() -> bool:
    # Being imported is not enough (a notebook runner imports ipykernel too); a kernel's
    # shell is running.
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)()
    return getattr(shell, "kernel", None) is not None


class Progress:
    """One bar over every input row; rows are counted as they reach their final status."""

    _REFRESH = 0.1  # seconds between postfix updates: tqdm's own least interval between redraws
    LINE_EVERY = 5.0  # seconds between summary lines when there is no bar
    TICK = 1.0  # seconds between looks at a bar that may stand still
    STILL = 1.0  # seconds without a row settled before the bar says why
    #: seconds of sending before the bar promises a time left: the first answers come in a
    #: burst (100/s), and a run that began with a wait would be promised hours
    SETTLE = 2.0

    def __init__(
        self,
        total: int | None,
        *,
        enabled: bool | None,
        clock: Clock,
        desc: str = "gameball",
        unit: str = "row",
    ) -> None:
        self.clock = clock
        self.desc, self.unit = desc, unit
        self._bar: Any = None
        self._last = 0.0
        self._total = total
        self._done = 0
        self._aborted = 0  # rows never attempted, counted so far: they do not move the bar
        self._instant = 0  # rows settled without a request (skipped, invalid), counted so far
        self._counts: Mapping[str, int] = {}
        self._retrying = 0
        self._lines = enabled is None and not interactive()
        self._line_at = self.clock()
        self._moved_at = self.clock()
        self._doing: tuple[str, float] | None = None
        #: the pace to show next to the counts (the adaptive rate once Gameball throttled)
        self.pace: Callable[[], str | None] = lambda: None
        #: why nothing can be sent now, and for how long (the lanes' holdups); None: nothing
        self.status: Callable[[], str | None] = lambda: None
        #: the rows waiting to be retried now (None: as the last advance() said)
        self.retrying: Callable[[], int | None] = lambda: None
        if enabled is None:
            enabled = interactive()
        self._counts_bar: Any = None  # the counts' own line, in a terminal
        self._ended = False  # finished or stopped: no time left, no pace (the report's)
        #: the most rows per second the run's limits let through over time (None: no such
        #: limit): the bar never promises a faster run
        self.sustained: float | None = None
        #: the rows the limits let through before :attr:`sustained` holds (a window's quota):
        #: a run that sends no more goes at its own pace (None: no such allowance)
        self.burst: int | None = None
        #: seconds of sending before a time left is promised (a batch-mode run sets a window:
        #: its jobs' pace is only known once the window's limits have held it)
        self.settle = self.SETTLE
        self._sending_since: float | None = None  # when the first row a request settled came
        self._by_requests = 0  # rows settled by requests (not skipped or invalid at once)
        if enabled:
            from tqdm.auto import tqdm

            width = _width()
            # miniters=1: tqdm's own estimate would skip redraws for long after a jump (a
            # resumed run's skipped rows), and the bar would stand still while rows go out.
            self._bar = _with_rate(tqdm, self._rate)(
                total=total, unit=unit, desc=desc, miniters=1, **width,
                bar_format=(_FORMATS if total is not None else _UNSIZED_FORMATS)[0],
            )  # fmt: skip
            if not _in_kernel():
                self._counts_bar = tqdm(total=0, bar_format="  {desc}", leave=True, **width)

    @property
    def active(self) -> bool:
        """Whether anything is shown (a bar or summary lines)."""
        return self._bar is not None or self._lines

    def advance(self, rows: int, counts: Mapping[str, int], retrying: int) -> None:
        self._counts, self._retrying = counts, retrying
        moved = rows
        if Status.SENT in counts:  # a send's statuses: rows never attempted do not count
            aborted = counts.get(Status.ABORTED, 0)
            moved -= aborted - self._aborted
            self._aborted = aborted
        self._done += moved
        instant = 0
        if Status.SENT in counts:
            settled = counts.get(Status.SKIPPED, 0) + counts.get(Status.INVALID, 0)
            instant, self._instant = min(max(settled - self._instant, 0), moved), settled
        now = self.clock()
        if moved:
            self._moved_at = now
        if moved > instant:
            self._by_requests += moved - instant
            if self._sending_since is None:
                self._sending_since = now
        if self._lines and rows and now - self._line_at >= self.LINE_EVERY:
            self._line_at = now
            print(self._line(), file=sys.stderr, flush=True)
        if self._bar is None or not rows:
            return
        # The counts first: tqdm redraws inside update(), and a position ahead of stale counts
        # reads as rows nobody accounts for.
        if now - self._last >= self._REFRESH:
            self._last = now
            self._show(refresh=False)
        self._bar.update(moved)

    def _rate(self) -> float | None:
        """The rows a second the bar shows and its time left is made of: rows settled by
        requests since the first of them (waits included, the run's start and rows settled
        without a request not), never above :attr:`sustained` when the run sends more than
        :attr:`burst`; None until :attr:`settle`
        seconds of sending (tqdm's own rate follows the last few redraws, and after a 30 s
        wait promised a trial 25 minutes for a run of 7)."""
        if self._sending_since is None:
            return None
        seconds = self.clock() - self._sending_since
        if seconds < self.settle:
            return None
        rate = self._by_requests / seconds
        left = (self._total or 0) - self._done
        if self.sustained is None or self._by_requests + left <= (self.burst or 0):
            return rate
        return min(rate, self.sustained)

    def doing(self, what: str | None) -> None:
        """Say what the run is doing while no row settles (reading the input, looking rows up
        in the ledger); None: nothing worth saying."""
        if what is None:
            self._doing = None
        elif self._doing is None or self._doing[0] != what:
            self._doing = (what, self._doing[1] if self._doing else self.clock())

    def why(self) -> str | None:
        """What the bar says while it stands still: why nothing is sent, and for how long."""
        now = self.clock()
        if now - self._moved_at < self.STILL:
            return None
        parts = [self.status()]
        if self._doing is not None:
            what, since = self._doing
            parts.append(f"{what} ({now - since:,.0f} s)" if now - since >= 1 else what)
        return "; ".join(part for part in parts if part) or None

    def tick(self) -> None:
        """Look again (every :attr:`TICK` seconds): a bar that stands still says why."""
        now = self.clock()
        if self._lines and now - self._line_at >= self.LINE_EVERY:
            self._line_at = now
            print(self._line(), file=sys.stderr, flush=True)
        if self._bar is not None:
            self._last = now
            self._show(refresh=True)

    @contextlib.asynccontextmanager
    async def ticking(self) -> AsyncIterator[None]:
        """While inside, :meth:`tick` every :attr:`TICK` seconds (on the run's loop)."""
        if not self.active:
            yield
            return

        async def tick_forever() -> None:
            while True:
                await asyncio.sleep(self.TICK)
                self.tick()

        task = asyncio.create_task(tick_forever())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def note(self, text: str) -> None:
        """Tell the user something now (on stderr, above the bar if there is one)."""
        if self._bar is not None:
            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def finish(self, counts: Mapping[str, int], *, stopped: bool = False) -> None:
        """Show the final counts, so the bar agrees with the report, and close it; a
        ``stopped`` run's bar says so, and stays where the run ended. An ended bar shows the
        time it took, not a pace: the report below it gives the run's."""
        self._counts, self._retrying, self._doing = counts, 0, None
        self._moved_at = self.clock()
        self.pace = lambda: None
        self.retrying = lambda: None
        if self._bar is not None:
            if stopped:
                self._bar.set_description_str(f"{self.desc} (stopped)", refresh=False)
            self._ended = True
            self._show(refresh=False)  # close() draws each line once more
        self.close()

    def close(self, *, leave: bool = True) -> None:
        """Close the bar; ``leave=False`` wipes it (a run refused before it began)."""
        for bar in (self._bar, self._counts_bar):
            if bar is not None:
                if not leave:
                    bar.leave = False
                bar.close()
        if not leave and self._counts_bar is not None:
            # The wiped counts line leaves the cursor where its indent ended: the refusal
            # printed next began two columns in.
            sys.stderr.write("\r")
            sys.stderr.flush()
        self._bar = self._counts_bar = None

    def _retrying_now(self) -> int:
        now = self.retrying()
        return self._retrying if now is None else now

    def _show(self, *, refresh: bool) -> None:
        counts = _count_pieces(self._counts, self._retrying_now())
        waits = _wait_pieces(self.pace(), self.why())
        if self._counts_bar is not None:
            line = _counts_line(self._counts_bar, counts)
            self._counts_bar.set_description_str(line, refresh=refresh)
            pieces = waits
        else:
            pieces = counts + waits
        bar_format, text = _fit(self._bar, pieces)
        if self._ended:
            # A time left would promise rows a stopped run will not send; a pace beside the
            # report's read as a second figure for one run (a trial's bar said 41.42row/s over
            # a report of 38.9 per second, a short batch run's ?row/s).
            bar_format = bar_format.replace("<{remaining}", "").replace(", {rate_fmt}", "")
        self._bar.bar_format = bar_format
        self._bar.set_postfix_str(text, refresh=refresh)

    def _line(self) -> str:
        of = f" of {self._total:,}" if self._total is not None else ""
        share = f" ({self._done / self._total:.0%})" if self._total else ""
        pieces = _count_pieces(self._counts, self._retrying_now()) + _wait_pieces(
            self.pace(), self.why()
        )
        shown = ", ".join(text for _, text in pieces)
        return f"{self.desc}: {self._done:,}{of} {self.unit}s{share}: {shown}"


def _with_rate(tqdm: Any, rate: Callable[[], float | None]) -> Any:
    """``tqdm`` (the terminal's or the notebook's class) with its rate, and so its time left,
    taken from ``rate`` ("?" while it is None)."""

    class Bar(tqdm):  # type: ignore[misc]
        @property
        def format_dict(self) -> dict[str, Any]:
            state = dict(super().format_dict)
            state["rate"] = rate()
            if state["rate"] is None:
                state["initial"] = state["n"]  # tqdm then shows "?", not its average
            return state

    return Bar


def _width() -> dict[str, Any]:
    """tqdm's width options: the terminal's, followed as it changes; a fixed 80 columns (or
    ``COLUMNS``) when the terminal says it has none (``script``, some CI runners), where tqdm
    would draw nothing at all."""
    try:
        columns, lines = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return {"dynamic_ncols": True}  # not a terminal: a notebook, a file
    # A terminal of no height would hide the counts' line (tqdm hides bars below the screen).
    height = {} if lines else {"nrows": _env_number("LINES", 24)}
    if columns:
        return {"dynamic_ncols": True, **height}
    return {"ncols": _env_number("COLUMNS", 80), **height}


def _env_number(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) else default


def _counts_line(bar: Any, counts: list[tuple[int, str]]) -> str:
    """The counts' own line: every count, fitted to the terminal (zeros dropped first)."""
    width = bar.format_dict.get("ncols")
    if not width:
        return ", ".join(text for _, text in counts)
    return ", ".join(text for _, text in _choose(counts, width - 2 - _SLACK))


def _count_pieces(counts: Mapping[str, int], retrying: int) -> list[tuple[int, str]]:
    """The counts in the order shown, each with its rank (see :func:`_fit`)."""
    shown: list[tuple[int, str]] = []

    def count(name: str, value: int, rank: int) -> None:
        shown.append((rank if value else _ZERO, f"{name}={value:,}"))

    if Status.SENT not in counts:  # counts of something else (quotes): shown as they are
        for name, value in counts.items():
            count(name, value, _NOTABLE)
    else:
        count(Status.SENT, counts.get(Status.SENT, 0), _NOTABLE)
        # A re-run's rows are mostly skipped: counted apart, the bar never says they were sent.
        for rare in (Status.SKIPPED, Status.ABORTED):
            if counts.get(rare):
                # A stopped run's rows never attempted: said first, with why it waits.
                count(rare, counts[rare], _PACE if rare == Status.ABORTED else _NOTABLE)
        for status in (Status.FAILED, Status.INVALID, Status.UNKNOWN):
            count(status, counts.get(status, 0), _NOTABLE if status == Status.INVALID else _ALARM)
    if retrying:
        count("retrying", retrying, _NOTABLE)
    return shown


def _wait_pieces(pace: str | None, why: str | None) -> list[tuple[int, str]]:
    """The pace and why the run waits, each with its rank."""
    return [*([(_PACE, f"pace={pace}")] if pace else []), *([(_WHY, why)] if why else [])]


def _fit(bar: Any, pieces: list[tuple[int, str]]) -> tuple[str, str]:
    """The line's format and postfix for ``bar``'s width: the richest format that shows why
    the run waits, its pace and every count that is not zero, in full; when none does, the one
    that shows the most of them, by rank. Without a width (a notebook's widget, a file), the
    richest format and every part."""
    formats = _FORMATS if bar.total is not None else _UNSIZED_FORMATS
    state = bar.format_dict
    width = state.get("ncols")
    if not width:
        return formats[0], ", ".join(text for _, text in pieces)
    best: tuple[tuple[int, ...], str, str] | None = None
    for bar_format in formats:
        # Measured at a rate of the usual width when tqdm has none yet: "?row/s" and "?"
        # become "41.87row/s" and "07:02" at the next redraw, which may be tqdm's, not ours.
        fixed = bar.format_meter(
            **{**state, "bar_format": bar_format.replace("{bar}", ""), "postfix": None,
               "ncols": None, "rate": state.get("rate") or _USUAL_RATE},
        )  # fmt: skip
        room = width - len(fixed) - _SLACK - (_MIN_BAR if "{bar}" in bar_format else 0)
        room -= 2  # the ", " before the postfix
        kept = _choose(pieces, room)
        chosen = [text for _, text in kept]
        shown = [rank for rank, text in pieces if text in chosen]
        if all(text in chosen for rank, text in pieces if rank <= _NOTABLE):
            return bar_format, ", ".join(chosen)
        # What says why the run waits counts by its characters shown: the format that cuts
        # it least wins over one that keeps the times.
        why = sum(len(text) for rank, text in kept if rank == _WHY)
        score = (why, *(shown.count(rank) for rank in range(1, _ZERO + 1)))
        if best is None or score > best[0]:
            best = (score, bar_format, ", ".join(chosen))
    assert best is not None
    return best[1], best[2]


def _choose(pieces: list[tuple[int, str]], room: int) -> list[tuple[int, str]]:
    """The parts that fit in ``room`` columns, by rank, in their order; when some do not fit,
    counts of zero go last (should tqdm still cut the line's end, a zero goes first); why the
    run waits is shortened to fit when it alone does not."""
    kept: dict[int, str] = {}
    used = -2  # no ", " before the first part
    dropped = False
    for index in sorted(range(len(pieces)), key=lambda i: pieces[i][0]):
        rank, text = pieces[index]
        if rank == _ZERO and dropped:
            break  # a zero in the place of a count that did not fit would mislead
        if used + len(text) + 2 > room and rank == _WHY and room - used - 2 > 1:
            text = text[: room - used - 3] + "…"
        if used + len(text) + 2 <= room:
            kept[index] = text
            used += len(text) + 2
        else:
            dropped = True
    if not dropped:  # everything fits: in its order, always the same
        return [(pieces[i][0], kept[i]) for i in sorted(kept)]
    return [(pieces[i][0], kept[i]) for i in sorted(kept, key=lambda i: (pieces[i][0] == _ZERO, i))]
