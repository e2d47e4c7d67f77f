"""What a run did over time, per second: compact enough for a run of hours (for ``plot()``).

One row per second of the run, not per request: requests sent, answers accepted (2xx) and
throttled (429), and the adaptive pace when Gameball had slowed the run down.
"""

from __future__ import annotations

import pandas as pd

from .._clock import Clock

__all__: list[str] = []


class Timeline:
    """Per-second counts of a run. Strictly private: the lanes record, the report reads."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start = clock()
        self._seconds: dict[int, list[float]] = {}  # second -> [requests, accepted, 429, pace]

    def answer(self, status: int | None, pace: float | None = None) -> None:
        """A request was answered with ``status`` (None: no answer); ``pace``: the adaptive
        rate at that moment, if any."""
        second = int(self.clock() - self.start)
        row = self._seconds.get(second)
        if row is None:
            row = self._seconds[second] = [0, 0, 0, float("nan")]
        row[0] += 1
        if status is not None and 200 <= status < 300:
            row[1] += 1
        elif status == 429:
            row[2] += 1
        if pace is not None:
            row[3] = pace

    def frame(self) -> pd.DataFrame:
        """Columns ``second``, ``requests``, ``accepted``, ``throttled``, ``pace`` (NaN while
        unthrottled), one row per second of the run, quiet seconds included."""
        columns = ["requests", "accepted", "throttled", "pace"]
        if not self._seconds:
            return pd.DataFrame({"second": [], **{c: [] for c in columns}})
        last = max(self._seconds)
        rows = [self._seconds.get(s, [0, 0, 0, float("nan")]) for s in range(last + 1)]
        frame = pd.DataFrame(rows, columns=columns)
        frame.insert(0, "second", range(last + 1))
        return frame.astype({"requests": "int64", "accepted": "int64", "throttled": "int64"})
