"""Plots of reports, with matplotlib (an optional extra: ``pip install 'gb-backfill[plot]'``).

Each function returns the figure (shown by Jupyter, or saved with ``fig.savefig``), and draws
nothing on pyplot's global state besides creating it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .._config import RateLimits
from .._errors import ConfigError

__all__: list[str] = []


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "plot() needs matplotlib: pip install 'gb-backfill[plot]' (or pip install matplotlib)"
        ) from None
    return plt


def plot_send(
    timeline: pd.DataFrame | None,
    counts: Mapping[str, int],
    error_codes: Mapping[str, int],
    limits: RateLimits | None,
) -> Any:
    """Requests per second against the limits (and the adaptive pace), rows by status, rows
    not sent by code (a send report's ``timeline``, ``counts``, ``error_codes``, ``limits``)."""
    plt = _pyplot()
    figure, (pace, statuses, codes) = plt.subplots(
        1, 3, figsize=(14, 3.8), gridspec_kw={"width_ratios": [3, 1.2, 1.6]}
    )
    if timeline is not None and len(timeline):
        pace.plot(timeline["second"], timeline["accepted"], label="accepted/s", color="tab:green")
        if timeline["throttled"].any():
            pace.bar(timeline["second"], timeline["throttled"], label="429/s", color="tab:red")
        if timeline["pace"].notna().any():
            pace.plot(timeline["second"], timeline["pace"], label="adaptive pace", color="tab:blue")
    if limits is not None:
        if limits.per_second:
            pace.axhline(limits.per_second, ls="--", color="grey", label="per-second limit")
        if limits.per_window:
            sustained = limits.per_window / limits.window
            pace.axhline(sustained, ls=":", color="grey", label="window limit, sustained")
    pace.set(title="requests over time", xlabel="second of the run", ylabel="per second")
    pace.legend(loc="upper right", fontsize="small")
    shown = {status: count for status, count in counts.items() if count}
    statuses.bar(list(shown), list(shown.values()), color="tab:gray")
    statuses.set(title="rows by status")
    statuses.tick_params(axis="x", labelrotation=45)
    if error_codes:
        names = list(error_codes)[:10]
        codes.barh(names[::-1], [error_codes[n] for n in names][::-1], color="tab:orange")
    codes.set(title="rows not sent, by code")
    figure.tight_layout()
    return figure


def plot_validation(failures: pd.DataFrame, rows: int) -> Any:
    """Failures by code, split by column (a validation report's ``failures``)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 3.5))
    if failures.empty:
        axes.set(title=f"all {rows:,} rows are valid")
    else:
        table = failures.groupby(["code", "column"]).size().unstack(fill_value=0)
        table.loc[table.sum(axis=1).sort_values().index].plot.barh(stacked=True, ax=axes)
        axes.set(title="failures by code and column", xlabel="rows")
        axes.legend(title="column", fontsize="small")
    figure.tight_layout()
    return figure


def plot_preview(
    points: Mapping[str, tuple[float, float, float]], reasons: Mapping[str, Mapping[str, int]]
) -> Any:
    """Points by event name with their intervals (name -> (estimate, low, high)), and the
    reasons in each event name's quotes (a preview report's ``events``)."""
    plt = _pyplot()
    figure, (estimates, why) = plt.subplots(1, 2, figsize=(13, 0.5 * max(len(reasons), 4) + 1.5))
    names = list(points)[::-1]
    values = [points[name][0] for name in names]
    below = [points[name][0] - points[name][1] for name in names]
    above = [points[name][2] - points[name][0] for name in names]
    estimates.barh(names, values, xerr=[below, above], color="tab:green", capsize=3)
    estimates.set(title="points by event name (95% interval)", xlabel="points, whole input")
    table = pd.DataFrame(reasons).T.fillna(0)
    if table.empty:
        why.set(title="no quote answered")
    else:
        table.iloc[::-1].plot.barh(stacked=True, ax=why)
        why.set(title="reasons in the quotes, by event name", xlabel="campaign quotes")
        why.legend(fontsize="small")
    figure.tight_layout()
    return figure
