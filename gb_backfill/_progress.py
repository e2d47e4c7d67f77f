"""The progress bar: ``tqdm.auto`` (a widget in Jupyter, text in a terminal) over all rows."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any


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

    def __init__(self, total: int | None, *, enabled: bool | None) -> None:
        self._bar: Any = None
        self._last = 0.0
        #: the pace to show next to the counts (the adaptive rate once Gameball throttled)
        self.pace: Callable[[], str | None] = lambda: None
        if enabled is None:
            enabled = interactive()
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="row", desc="gameball", dynamic_ncols=True)

    def advance(self, rows: int, counts: Mapping[str, int], retrying: int) -> None:
        if self._bar is None or not rows:
            return
        self._bar.update(rows)
        now = time.monotonic()
        if now - self._last >= self._REFRESH:
            self._last = now
            pace = self.pace()
            self._bar.set_postfix(
                sent=counts.get("sent", 0) + counts.get("skipped", 0),
                failed=counts.get("failed", 0),
                invalid=counts.get("invalid", 0),
                unknown=counts.get("unknown", 0),
                retrying=retrying,
                **({"pace": pace} if pace else {}),
                refresh=False,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
