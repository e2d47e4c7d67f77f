"""Plots of reports, with matplotlib (an optional extra: ``pip install 'gb-backfill[plot]'``).

Each function returns the figure (shown by Jupyter once, as the cell's value, or saved with
``fig.savefig``) and leaves nothing on pyplot's global state: the figure is closed there, so
Jupyter's inline backend does not show it a second time. Every bar carries its count, and bars
of very different sizes get a log scale, so 50 invalid rows beside 17,500 sent still read. A
send's plot draws each lane against its own limits: batch-mode job posts against the batch
limits, the events lane's requests against the events limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .._config import RateLimits
from .._errors import ConfigError
from .._vocabulary import Status

__all__: list[str] = []


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "plot() needs matplotlib: pip install 'gb-backfill[plot]' (or pip install matplotlib)"
        ) from None
    return plt


def _returned(plt: Any, figure: Any) -> Any:
    """``figure``, no longer pyplot's: Jupyter shows it once, as the cell's value (pyplot's
    inline backend would show it a second time at the end of the cell)."""
    figure.tight_layout()
    plt.close(figure)
    return figure


#: Bars whose largest count is this many times their smallest get a log scale.
_LOG_ABOVE = 50

#: What each lane's requests are, for the plot's titles.
_LANE_WORDS = {"events": "events lane: requests", "batch": "batch lane: job posts", "": "requests"}


def _counted_bars(axes: Any, counts: Mapping[str, int], *, color: str, horizontal: bool) -> None:
    """Bars of ``counts``, each labelled with its count, on a log scale when a small count would
    be invisible beside a large one (50 invalid rows next to 17,500 sent)."""
    names, values = list(counts), list(counts.values())
    if horizontal:
        bars = axes.barh(names[::-1], values[::-1], color=color)
    else:
        bars = axes.bar(names, values, color=color)
    axes.bar_label(bars, labels=[f"{v:,}" for v in (values[::-1] if horizontal else values)],
                   fontsize="small", padding=2)  # fmt: skip
    if values and min(values) > 0 and max(values) > _LOG_ABOVE * min(values):
        (axes.set_xscale if horizontal else axes.set_yscale)("log")
    axes.margins(**{"x" if horizontal else "y": 0.15})


def _lane(axes: Any, timeline: pd.DataFrame, lane: str, limits: RateLimits | None) -> None:
    """One lane's requests per second against that lane's own limits."""
    prefix = f"{lane}_" if lane else ""
    second = timeline["second"]
    axes.plot(second, timeline[f"{prefix}accepted"], label="accepted/s", color="tab:green")
    if timeline[f"{prefix}throttled"].any():
        axes.bar(second, timeline[f"{prefix}throttled"], label="429/s", color="tab:red")
    if timeline[f"{prefix}pace"].notna().any():
        axes.plot(second, timeline[f"{prefix}pace"], label="adaptive pace", color="tab:blue")
    if limits is not None:
        if limits.per_second:
            axes.axhline(limits.per_second, ls="--", color="grey", label="per-second limit")
        if limits.per_window:
            sustained = limits.per_window / limits.window
            axes.axhline(sustained, ls=":", color="grey", label="window limit, sustained")
    title = _LANE_WORDS.get(lane, f"{lane}: requests")
    axes.set(title=f"{title} over time", xlabel="second of the run", ylabel="per second")
    axes.legend(loc="upper right", fontsize="small")


def plot_send(
    timeline: pd.DataFrame | None,
    counts: Mapping[str, int],
    error_codes: Mapping[str, int],
    lane_limits: Mapping[str, RateLimits],
) -> Any:
    """Each lane's requests per second against its own limits (and its adaptive pace), rows by
    status, rows not sent by code (a send report's ``timeline``, ``counts``, ``error_codes``,
    and the limits of each lane that sent, by name; ``""``: the timeline's totals)."""
    plt = _pyplot()
    lanes = [
        lane for lane in lane_limits
        if timeline is not None and len(timeline)
        and timeline.get(f"{lane}_requests" if lane else "requests", pd.Series()).sum()
    ]  # fmt: skip
    widths = [3] * max(len(lanes), 1) + [1.2, 1.6]
    figure, axes = plt.subplots(
        1, len(widths), figsize=(11 + 3 * max(len(lanes), 1), 3.8),
        gridspec_kw={"width_ratios": widths},
    )  # fmt: skip
    *paces, statuses, codes = axes
    for pace, lane in zip(paces, lanes, strict=False):
        assert timeline is not None
        _lane(pace, timeline, lane, lane_limits[lane])
    if not lanes:
        paces[0].set(title="no requests")
    shown = {status: count for status, count in counts.items() if count}
    _counted_bars(statuses, shown, color="tab:gray", horizontal=False)
    statuses.set(title="rows by status")
    statuses.tick_params(axis="x", labelrotation=45)
    if error_codes:
        names = list(error_codes)[:10]
        _counted_bars(codes, {n: error_codes[n] for n in names}, color="tab:orange",
                      horizontal=True)  # fmt: skip
    # Unknown rows may have arrived: named apart, as the report's text does.
    unknown = counts.get(Status.UNKNOWN, 0)
    codes.set(title="rows not sent or unknown, by code" if unknown else "rows not sent, by code")
    if not error_codes:  # said, not an empty 0-1 axis a reader must interpret
        _say_none(codes, "every row was sent")
    if not lanes:
        _say_none(paces[0], "no request was made")
    return _returned(plt, figure)


def _say_none(axes: Any, text: str) -> None:
    axes.set(xticks=[], yticks=[])
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)


def plot_validation(failures: pd.DataFrame, rows: int) -> Any:
    """Failures by code, split by column (a validation report's ``failures``)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 3.5))
    if failures.empty:
        axes.set(title=f"all {rows:,} rows are valid")
    else:
        table = failures.groupby(["code", "column"]).size().unstack(fill_value=0)
        table = table.loc[table.sum(axis=1).sort_values().index]
        table.plot.barh(stacked=True, ax=axes)
        _label_totals(axes, table.sum(axis=1))
        axes.set(title="failures by code and column", xlabel="rows")
        axes.legend(title="column", fontsize="small")
    return _returned(plt, figure)


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
        _label_totals(why, table.iloc[::-1].sum(axis=1))
        why.set(title="reasons in the quotes, by event name", xlabel="campaign quotes")
        why.legend(fontsize="small")
    return _returned(plt, figure)


def _label_totals(axes: Any, totals: pd.Series) -> None:
    """Each stacked bar's total at its end, so a short one still reads."""
    for position, total in enumerate(totals):
        axes.annotate(f"{total:,.0f}", (total, position), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize="small")  # fmt: skip
    axes.margins(x=0.12)
