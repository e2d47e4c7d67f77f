"""Plots that tell the truth (issue 30.10): each lane against its own limits, small counts
readable beside large ones, and a figure shown once in a notebook."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from gb_backfill import BatchSettings, Emulator, RateLimits, send

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def lines_of(axes):
    """The plotted lines of ``axes`` by label: (x, y)."""
    return {line.get_label(): (line.get_xdata(), line.get_ydata()) for line in axes.get_lines()}


def test_batch_mode_draws_each_lane_against_its_own_limits():
    """A batch-mode run whose busiest customer goes through the events lane: the job posts are
    drawn against the batch limits, the events lane's requests against the events limits,
    never all requests under the batch lane's limits."""
    busiest = ["busy"] * 40
    df = pd.DataFrame({"customerId": busiest + [f"c{n}" for n in range(400)], "eventName": "e"})
    batch_limits = RateLimits(per_second=30, per_window=360)
    with Emulator(batch=BatchSettings(delay=0.02), batch_limits=RateLimits.unlimited(),
                  status_limits=RateLimits.unlimited()) as emu:  # fmt: skip
        report = send(
            df, base_url=emu.base_url, api_key=emu.api_key, secret_key="emulator-secret-key",
            mode="batch", batch_limits=batch_limits, progress=False,
        )  # fmt: skip
    assert report.sent == len(df)
    timeline = report.timeline
    assert timeline["events_requests"].sum() > 0, "the busiest customer went by the events lane"
    assert timeline["batch_requests"].sum() > 0
    figure = report.plot()
    by_title = {axes.get_title(): axes for axes in figure.axes}
    batch = by_title["batch lane: job posts over time"]
    events = by_title["events lane: requests over time"]
    for axes, lane, limits in ((batch, "batch", batch_limits), (events, "events", None)):
        drawn = lines_of(axes)
        assert list(drawn["accepted/s"][1]) == timeline[f"{lane}_accepted"].tolist()
        limit = drawn["per-second limit"][1][0]
        kept = report.lane_limits[lane]
        assert limit == kept.per_second, f"the {lane} lane against its own limit"
        if limits is not None:
            assert limit == limits.per_second
    assert lines_of(events)["per-second limit"][1][0] != lines_of(batch)["per-second limit"][1][0]
    total = timeline["requests"].max()
    assert lines_of(batch)["accepted/s"][1].max() <= timeline["batch_requests"].max() <= total


def test_a_small_count_beside_a_large_one_is_labelled_and_on_a_log_scale():
    from gb_backfill._reports.plot import plot_send

    counts = {"sent": 17_500, "invalid": 50, "failed": 3}
    figure = plot_send(None, counts, {"customer_id_missing": 50, "http_400": 3}, {})
    *_, statuses, codes = figure.axes
    assert statuses.get_yscale() == "log", "50 rows beside 17,500 would be an invisible bar"
    assert [t.get_text() for t in statuses.texts] == ["17,500", "50", "3"]
    assert {t.get_text() for t in codes.texts} == {"50", "3"}
    even = plot_send(None, {"sent": 40, "invalid": 10}, {}, {})
    assert even.axes[-2].get_yscale() == "linear", "no log scale where bars compare well"


def test_a_plot_is_not_left_on_pyplot_so_jupyter_shows_it_once():
    """Jupyter's inline backend shows every figure pyplot still holds at the end of a cell,
    and the cell's value once more: a figure returned closed is shown once."""
    import matplotlib.pyplot as plt

    from gb_backfill import validate

    plt.close("all")
    figure = validate(pd.DataFrame({"customerId": ["a", ""], "eventName": "e"})).plot()
    assert plt.get_fignums() == []
    assert figure.axes, "the figure itself is whole"


@pytest.mark.slow
def test_report_plot_in_a_notebook_cell_shows_one_figure(tmp_path):
    """Through a real kernel, as the README says: `report.plot()` at the end of a cell renders
    one image, with the small counts labelled."""
    import nbclient
    import nbformat

    cells = [
        """
        import pandas as pd
        from gb_backfill import Emulator, RateLimits, send
        df = pd.DataFrame({"customerId": [f"c{n}" for n in range(3_000)], "eventName": "e"})
        df.loc[:49, "customerId"] = ""
        with Emulator(limits=RateLimits.unlimited()) as emu:
            report = send(df, base_url=emu.base_url, api_key=emu.api_key, progress=False,
                          limits=RateLimits.unlimited(), failures_path="f.parquet")
        report
        """,
        "report.plot()",
        """
        figure = report.plot()
        statuses = figure.axes[-2]
        print(statuses.get_yscale(), [t.get_text() for t in statuses.texts])
        """,
        "kept = report.plot()",
    ]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(textwrap.dedent(source)) for source in cells]
    )
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()  # fmt: skip
    images = [
        sum("image/png" in output.get("data", {}) for output in cell.outputs)
        for cell in notebook.cells
    ]
    assert images == [0, 1, 0, 0], "one figure for report.plot(); none for an assignment"
    printed = "".join(o.get("text", "") for o in notebook.cells[2].outputs)
    assert "log ['2,950', '50']" in printed


def test_plots_of_every_report_stay_readable_on_an_empty_run():
    from gb_backfill._reports.plot import plot_send

    figure = plot_send(pd.DataFrame({"second": [], "requests": []}), {}, {}, {"events": None})
    assert figure.axes[0].get_title() == "no requests"
    assert np.isfinite(figure.get_size_inches()).all()


def test_a_run_with_nothing_to_show_in_a_panel_says_so():
    """A trial's plot of a run that sent every row had an empty 0-1 axis for the codes."""
    from gb_backfill._reports.plot import plot_send

    figure = plot_send(pd.DataFrame({"second": [], "requests": []}), {"sent": 3}, {}, {})
    panels = {axes.get_title(): [t.get_text() for t in axes.texts] for axes in figure.axes}
    assert panels["rows not sent, by code"] == ["every row was sent"]
    assert panels["no requests"] == ["no request was made"]


def test_a_run_with_unknown_rows_does_not_call_them_not_sent():
    """A trial's plot titled its codes 'rows not sent' over connection_lost rows Gameball had."""
    from gb_backfill._reports.plot import plot_send

    counts = {"sent": 3, "unknown": 2}
    figure = plot_send(pd.DataFrame({"second": [], "requests": []}), counts,
                       {"connection_lost": 2}, {})  # fmt: skip
    assert "rows not sent or unknown, by code" in [axes.get_title() for axes in figure.axes]
