"""What a run did over time, per second: compact enough for a run of hours (for ``plot()``).

One row per second of the run, not per request: requests sent, answers accepted (2xx) and
throttled (429), and the adaptive pace when Gameball had slowed the run down; in all, and for
each lane apart (``events_requests``, ``batch_requests``...), since each lane has its own limits.
"""

from __future__ import annotations

import pandas as pd

from .._clock import Clock

__all__: list[str] = []

_MEASURES = ("requests", "accepted", "throttled", "pace")


def _second() -> list[float]:
    return [0, 0, 0, float("nan")]


class Timeline:
    """Per-second counts of a run. Strictly private: the lanes record, the report reads."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start = clock()
        self._seconds: dict[int, list[float]] = {}  # second -> [requests, accepted, 429, pace]
        self._lanes: dict[str, dict[int, list[float]]] = {}  # the same, for each lane

    def answer(self, status: int | None, pace: float | None = None, *, lane: str = "") -> None:
        """A request of ``lane`` was answered with ``status`` (None: no answer); ``pace``: the
        lane's adaptive rate at that moment, if any."""
        second = int(self.clock() - self.start)
        rows = [self._seconds.setdefault(second, _second())]
        if lane:
            rows.append(self._lanes.setdefault(lane, {}).setdefault(second, _second()))
        for row in rows:
            row[0] += 1
            if status is not None and 200 <= status < 300:
                row[1] += 1
            elif status == 429:
                row[2] += 1
            if pace is not None:
                row[3] = pace

    def frame(self) -> pd.DataFrame:
        """Columns ``second``, ``requests``, ``accepted``, ``throttled``, ``pace`` (NaN while
        unthrottled), then the same for each lane that sent (``events_requests``...), one row
        per second of the run, quiet seconds included."""
        if not self._seconds:
            return pd.DataFrame({"second": [], **{c: [] for c in _MEASURES}})
        span = range(max(self._seconds) + 1)
        frame = pd.DataFrame([self._seconds.get(s, _second()) for s in span], columns=_MEASURES)
        for lane, seconds in self._lanes.items():
            rows = pd.DataFrame([seconds.get(s, _second()) for s in span], columns=_MEASURES)
            frame = frame.join(rows.add_prefix(f"{lane}_"))
        frame.insert(0, "second", span)
        counts = [c for c in frame.columns if c != "second" and not c.endswith("pace")]
        return frame.astype(dict.fromkeys(counts, "int64"))
