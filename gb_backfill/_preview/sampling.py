"""The reward preview's sample: one pass, stratified by event name, in bounded memory.

The preview quotes a sample of the valid rows (Gameball's read-only reward-preview endpoint)
and estimates, for the whole input, totals such as points, campaign hits and coupons. This
module and :mod:`gb_backfill._preview.estimates` are the pure part: no I/O; numpy, pandas and
the standard library only.

**The sample.** :class:`StratifiedSampler` takes the rows a chunk at a time, stratified by event
name, in memory bounded by the sample, whatever the input's size. Every row gets a random key,
a fixed function of the seed and the row's position among the rows offered (so the same seed
and input give the same sample, whatever the chunk sizes). The sample is, in each stratum ``h``
of ``N_h`` rows, its ``n_h`` rows with the lowest keys, where

* every stratum gets ``min(N_h, min_per_stratum)`` rows at least, so a rare event name is
  quoted too, and
* the rows with the lowest keys overall fill the sample up to ``size``: a stratum's rows among
  them are a draw around ``size * N_h / N``, so the allocation beyond the minimums is
  proportional in expectation. (Neyman allocation would need each name's spread of points
  before any quote; without a pilot, proportional allocation is the safe choice: it is
  never worse than a simple random sample of the same size, up to terms of order 1/N_h.)

Given ``n_h``, a stratum's sample is a simple random sample without replacement (the lowest
``n_h`` of i.i.d. keys; which ``n_h`` it is depends only on the keys' values, never on which
rows hold them), and strata are independent. The estimators
(:mod:`gb_backfill._preview.estimates`) are conditional on the ``n_h`` drawn, which is what
makes them valid. When the minimums alone exceed ``size`` (more than ``size / min_per_stratum``
event names), every stratum still gets its minimum: the sample is then larger than ``size``,
never blind to an event name; ``StratifiedSample.size`` says how large.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._config import PREVIEW_LIMITS, PREVIEW_SECONDS, SPACING_SLACK, RateLimits
from .._errors import ConfigError

__all__ = [
    "DEFAULT_SAMPLE_SIZE",
    "MIN_PER_STRATUM",
    "PREVIEW_SECONDS",
    "SampledStratum",
    "StratifiedSample",
    "StratifiedSampler",
    "sample_size_for",
]

T = TypeVar("T")
#: each offered row's random key (the sample holds the lowest)
RandomKeys = npt.NDArray[np.uint64]
Positions = npt.NDArray[np.int64]

#: Each event name is quoted this many times at least (or every row, when it has fewer): two
#: give a variance, five see an outcome that 30% of the name's rows have with a chance of 83%,
#: and twenty names still leave most of a 360-quote sample (260) to proportional shares.
MIN_PER_STRATUM = 5


def sample_size_for(*, limits: RateLimits, seconds: float = PREVIEW_SECONDS) -> int:
    """The most quotes that can go out in ``seconds`` at ``limits``, counting both windows.

    The limiter spaces requests 5% under ``per_second`` and sends at most ``per_window`` in
    any ``window`` seconds (plus its slack), so the count is the inverse of that schedule: at
    the preview's 30/s and 360 per 30 s, 15 s would hold 429 quotes at 30/s, but the window
    caps them at 360 (sent in 12.6 s).

    >>> sample_size_for(limits=RateLimits(per_second=30, per_window=360))
    360
    """
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError("seconds must be a finite number above 0, e.g. seconds=15")
    if not (limits.per_second or limits.per_window):
        raise ConfigError("limits are unlimited, so time does not bound the sample: pass size=")
    rate = limits.per_second / (1 + SPACING_SLACK) if limits.per_second else math.inf
    if not limits.per_window:
        return math.floor(seconds * rate) + 1
    period = limits.window + limits.slack(limits.window)
    windows = math.floor(seconds / period)
    last = seconds - windows * period  # the seconds left in the last, partial window
    in_last = limits.per_window if math.isinf(rate) else math.floor(last * rate) + 1
    return windows * limits.per_window + min(limits.per_window, in_last)


#: Quotes that fit in PREVIEW_SECONDS at the preview's limits (30/s, 360 per 30 s): 360.
DEFAULT_SAMPLE_SIZE = sample_size_for(limits=PREVIEW_LIMITS)


# --- The sampler ----------------------------------------------------------------------------

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_NO_KEY = np.uint64(_MASK)  # above every key: "anything fits"


def _mix64(z: RandomKeys) -> RandomKeys:
    """SplitMix64's finaliser: a bijection on 64-bit integers that scrambles every bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _random_keys(seed: int, start: int, count: int) -> RandomKeys:
    """The keys of positions ``start`` to ``start + count - 1``: SplitMix64's stream for
    ``seed``, read at those positions, so a chunk's keys do not depend on earlier chunks.
    Distinct positions get distinct keys (the map is a bijection), so keys never tie."""
    base = int(_mix64(np.array([seed & _MASK], dtype=np.uint64))[0])
    steps = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    return _mix64(steps * np.uint64(_GOLDEN) + np.uint64(base))


def _ranks_within(strata: npt.NDArray[np.intp], keys: RandomKeys) -> npt.NDArray[np.intp]:
    """Each row's rank by key within its stratum (0 for the lowest)."""
    order = np.lexsort((keys, strata))
    ordered = strata[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lengths = np.diff(np.r_[starts, len(ordered)])
    ranks = np.empty(len(keys), dtype=np.intp)
    ranks[order] = np.arange(len(ordered)) - np.repeat(starts, lengths)
    return ranks


@dataclass(frozen=True, slots=True)
class SampledStratum(Generic[T]):
    """One stratum of a sample: its label, its ``population`` (N_h, the rows offered with
    that label), and the sampled rows' ``positions`` (among all rows offered, from 0, in input
    order) and ``items`` (as offered). ``sampled`` is n_h."""

    label: Hashable
    population: int
    positions: tuple[int, ...]
    items: tuple[T, ...]

    @property
    def sampled(self) -> int:
        """n_h, the rows sampled from this stratum."""
        return len(self.items)


@dataclass(frozen=True, slots=True)
class StratifiedSample(Generic[T]):
    """The result of :meth:`StratifiedSampler.sample`: strata in order of first appearance."""

    strata: tuple[SampledStratum[T], ...]

    @property
    def population(self) -> int:
        """N, the rows offered."""
        return sum(s.population for s in self.strata)

    @property
    def size(self) -> int:
        """n, the rows sampled (more than asked when the strata's minimums need it)."""
        return sum(s.sampled for s in self.strata)

    def per_stratum(self, value: Callable[[T], float]) -> list[tuple[int, list[float]]]:
        """(N_h, ``value`` of each sampled item) per stratum: what the estimators of
        :mod:`gb_backfill._preview.estimates` take.

        >>> from gb_backfill._preview.estimates import estimate_total
        >>> sample = StratifiedSample(strata=(SampledStratum("buy", 10, (0, 4), (3, 5)),))
        >>> estimate_total(sample.per_stratum(float)).value
        40.0
        """
        return [(s.population, [value(item) for item in s.items]) for s in self.strata]


class StratifiedSampler(Generic[T]):
    """One pass, fixed seed, bounded memory: a stratified sample of rows offered in chunks.

    ``offer(strata, items)`` takes a chunk: one stratum label (the event name) per row, and the
    rows' items, either a sequence indexed by position in the chunk or a function that takes
    the positions (a numpy array) of the rows the sampler keeps and returns their items in that
    order, so only those are built. Items are opaque (a request body, a small record). Only
    valid rows should be offered. ``sample()`` returns the sample (see the module docstring
    for its design); it can be called at any time and the pass can go on afterwards.

    Memory: the sampler keeps at most ``size + sum(min(N_h, min_per_stratum))`` rows (the
    lowest ``size`` keys overall, and each stratum's lowest ``min_per_stratum``), and one
    count per stratum; work per chunk is a few vector operations over the chunk.

    >>> sampler = StratifiedSampler(size=3, min_per_stratum=2, seed=7)
    >>> sampler.offer(["buy", "buy", "review", "buy"], ["a", "b", "c", "d"])
    >>> [(s.label, s.population, s.sampled) for s in sampler.sample().strata]
    [('buy', 3, 2), ('review', 1, 1)]
    """

    def __init__(
        self,
        *,
        size: int = DEFAULT_SAMPLE_SIZE,
        min_per_stratum: int = MIN_PER_STRATUM,
        seed: int = 0,
    ) -> None:
        if size < 1:
            raise ConfigError(
                f"size is a number of rows, at least 1, e.g. size={DEFAULT_SAMPLE_SIZE}"
            )
        if min_per_stratum < 2:
            raise ConfigError(
                "min_per_stratum must be at least 2, so every stratum has a variance: "
                f"e.g. min_per_stratum={MIN_PER_STRATUM}"
            )
        self.size = size
        self.min_per_stratum = min_per_stratum
        self.seed = seed
        self._labels: dict[Hashable, int] = {}
        self._population = np.zeros(0, dtype=np.int64)
        self._offered = 0
        self._keys: RandomKeys = np.zeros(0, dtype=np.uint64)
        self._strata = np.zeros(0, dtype=np.intp)
        self._positions: Positions = np.zeros(0, dtype=np.int64)
        self._items: list[T] = []

    @property
    def offered(self) -> int:
        """N, the rows offered so far."""
        return self._offered

    @property
    def retained(self) -> int:
        """The rows held right now (the memory the sampler uses grows with this only)."""
        return len(self._items)

    @property
    def capacity(self) -> int:
        """The most rows the sampler can hold with the strata seen so far."""
        return self.size + int(np.minimum(self._population, self.min_per_stratum).sum())

    def offer(
        self,
        strata: Sequence[Hashable] | pd.Series | npt.NDArray[np.object_],
        items: Sequence[T] | pd.Series | Callable[[Positions], Sequence[T]],
    ) -> None:
        """Take a chunk of rows: ``strata`` labels them, ``items`` are what the sample holds
        (a Series is read by position, whatever its index)."""
        labels = (
            strata if isinstance(strata, pd.Series) else pd.Series(np.asarray(strata, dtype=object))
        )
        codes, uniques = pd.factorize(labels)
        count = len(codes)
        if count == 0:
            return
        if (codes < 0).any():
            raise ConfigError("a stratum label (event name) is missing: offer valid rows only")
        if not callable(items) and len(items) != count:
            raise ConfigError(f"{count} labels but {len(items)} items: give one item per row")
        ids = np.array([self._labels.setdefault(u, len(self._labels)) for u in uniques])
        strata_ids = ids[codes].astype(np.intp)
        grown = np.zeros(len(self._labels), dtype=np.int64)
        grown[: len(self._population)] = self._population
        self._population = grown + np.bincount(strata_ids, minlength=len(self._labels))
        keys = _random_keys(self.seed, self._offered, count)
        local = self._candidates(keys, strata_ids)
        self._keep(keys[local], strata_ids[local], local + self._offered, local, items)
        self._offered += count

    def _candidates(self, keys: RandomKeys, strata: npt.NDArray[np.intp]) -> Positions:
        """The chunk's rows whose keys could make the sample: below the global threshold (the
        ``size``-th lowest key held) or their stratum's (its ``min_per_stratum``-th)."""
        overall = _NO_KEY
        if len(self._keys) >= self.size:
            overall = np.partition(self._keys, self.size - 1)[self.size - 1]
        per_stratum = np.full(len(self._labels), _NO_KEY, dtype=np.uint64)
        if len(self._keys):
            ranks = _ranks_within(self._strata, self._keys)
            last = ranks == self.min_per_stratum - 1
            per_stratum[self._strata[last]] = self._keys[last]
        fits = (keys <= overall) | (keys <= per_stratum[strata])
        return np.flatnonzero(fits).astype(np.int64)

    def _keep(
        self,
        keys: RandomKeys,
        strata: npt.NDArray[np.intp],
        positions: Positions,
        local: Positions,
        items: Sequence[T] | pd.Series | Callable[[Positions], Sequence[T]],
    ) -> None:
        """Merge the candidates into the rows held, and drop what can no longer be sampled."""
        held = len(self._keys)
        all_keys = np.concatenate([self._keys, keys])
        all_strata = np.concatenate([self._strata, strata])
        keep = _ranks_within(all_strata, all_keys) < self.min_per_stratum
        if len(all_keys) > self.size:
            keep |= all_keys <= np.partition(all_keys, self.size - 1)[self.size - 1]
        else:
            keep[:] = True
        new = np.flatnonzero(keep[held:])
        chosen = local[new]
        if isinstance(items, pd.Series):
            built: Sequence[T] = items.iloc[chosen].tolist()
        elif callable(items):
            built = items(chosen)
        else:
            built = [items[int(i)] for i in chosen]
        if len(built) != len(chosen):
            raise ConfigError(
                f"items gave {len(built)} items for {len(chosen)} positions: "
                "return one item per position"
            )
        old = np.flatnonzero(keep[:held])
        self._items = [self._items[i] for i in old] + list(built)
        self._keys = all_keys[keep]
        self._strata = all_strata[keep]
        self._positions = np.concatenate([self._positions[old], positions[new]])

    def sample(self) -> StratifiedSample[T]:
        """The sample of the rows offered so far: each stratum's minimum, then the rest of
        ``size`` to the lowest keys overall (see the module docstring)."""
        labels = list(self._labels)
        minimum = _ranks_within(self._strata, self._keys) < self.min_per_stratum
        order = np.argsort(self._keys, kind="stable")
        extra = ~minimum[order]
        budget = self.size - int(minimum.sum())
        chosen = minimum.copy()
        chosen[order] |= extra & (np.cumsum(extra) <= budget)
        strata = []
        for stratum, label in enumerate(labels):
            rows = np.flatnonzero(chosen & (self._strata == stratum))
            rows = rows[np.argsort(self._positions[rows], kind="stable")]
            strata.append(
                SampledStratum(
                    label=label,
                    population=int(self._population[stratum]),
                    positions=tuple(int(p) for p in self._positions[rows]),
                    items=tuple(self._items[i] for i in rows),
                )
            )
        return StratifiedSample(strata=tuple(strata))
