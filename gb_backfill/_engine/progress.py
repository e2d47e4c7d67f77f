"""The progress bar: ``tqdm.auto`` (a widget in Jupyter, text in a terminal) over all rows.

When output is neither a terminal nor a notebook (a CI log, ``nohup``, a pipe) and the caller
did not choose, a bar would be noise: a summary line goes to stderr every few seconds instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from .._clock import Clock
from .._vocabulary import Status


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

    _REFRESH = 0.5  # seconds between postfix updates; tqdm redraws on its own schedule
    LINE_EVERY = 5.0  # seconds between summary lines when there is no bar

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
        self._lines = enabled is None and not interactive()
        self._line_at = self.clock()
        #: the pace to show next to the counts (the adaptive rate once Gameball throttled)
        self.pace: Callable[[], str | None] = lambda: None
        if enabled is None:
            enabled = interactive()
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True)

    def advance(self, rows: int, counts: Mapping[str, int], retrying: int) -> None:
        self._done += rows
        if self._lines and rows:
            now = self.clock()
            if now - self._line_at >= self.LINE_EVERY:
                self._line_at = now
                print(self._line(counts, retrying), file=sys.stderr, flush=True)
        if self._bar is None or not rows:
            return
        self._bar.update(rows)
        now = self.clock()
        if now - self._last >= self._REFRESH:
            self._last = now
            pace = self.pace()
            self._bar.set_postfix(_postfix(counts, retrying, pace), refresh=False)

    def note(self, text: str) -> None:
        """Tell the user something now (on stderr, above the bar if there is one)."""
        if self._bar is not None:
            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def finish(self, counts: Mapping[str, int]) -> None:
        """Show the final counts, so the bar agrees with the report, and close it."""
        if self._bar is not None:
            self._bar.set_postfix(_postfix(counts, 0, None), refresh=True)
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _line(self, counts: Mapping[str, int], retrying: int) -> str:
        of = f" of {self._total:,}" if self._total is not None else ""
        share = f" ({self._done / self._total:.0%})" if self._total else ""
        postfix = _postfix(counts, retrying, self.pace())
        shown = ", ".join(
            f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in postfix.items()
        )
        return f"{self.desc}: {self._done:,}{of} {self.unit}s{share}: {shown}"


def _postfix(counts: Mapping[str, int], retrying: int, pace: str | None) -> dict[str, Any]:
    if Status.SENT not in counts:  # counts of something else (quotes): shown as they are
        return {**counts, **({"retrying": retrying} if retrying else {})}
    shown: dict[str, Any] = {Status.SENT: counts.get(Status.SENT, 0)}
    # A re-run's rows are mostly skipped: counted apart, the bar never says they were sent.
    for rare in (Status.SKIPPED, Status.ABORTED):
        if counts.get(rare):
            shown[rare] = counts[rare]
    for status in (Status.FAILED, Status.INVALID, Status.UNKNOWN):
        shown[status] = counts.get(status, 0)
    if retrying:
        shown["retrying"] = retrying
    if pace:
        shown["pace"] = pace
    return shown
