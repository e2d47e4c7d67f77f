"""Reports that render: compact HTML in a notebook, aligned text in a terminal."""

import re

import httpx
import pandas as pd
import pytest

import gb_backfill
from gb_backfill import Emulator, RateLimits, send, validate


def cells(html):
    """The table as {label: value}, unescaped text."""
    import html as html_lib

    pairs = re.findall(r"<th[^>]*>(.*?)</th><td[^>]*>(.*?)</td>", html)
    return {html_lib.unescape(k): html_lib.unescape(v) for k, v in pairs}


def test_the_validation_report_renders_its_counts_and_failures_by_code():
    df = pd.DataFrame({"customerId": ["a", None, "<script>", ""], "eventName": ["e", "e", "", "e"]})
    report = validate(df)
    html = report._repr_html_()
    assert isinstance(html, str)
    assert html.startswith("<div>")
    table = cells(html)
    assert table["rows"] == "4"
    assert table["valid"] == "1"
    assert table["invalid"] == "3"
    assert any(label.startswith("failure: customer_id_missing") for label in table)
    assert "<script>" not in html, "values are escaped"
    text = report.summary().splitlines()
    assert text[0] == "4 rows: 1 valid, 3 invalid"
    assert len({line.rindex(" ") for line in text[1:]}) == 1, "counts aligned"


def test_the_send_report_and_the_plan_render_from_a_real_send(tmp_path):
    df = pd.DataFrame({"customerId": ["a", "b", ""], "eventName": "purchase", "amount": 1.5})
    with Emulator(limits=RateLimits.unlimited()) as emu:
        options = {"base_url": emu.base_url, "api_key": emu.api_key, "progress": False}
        plan = gb_backfill.plan(df, **options)
        report = send(df, failures_path=tmp_path / "f.parquet", **options)
    sent = cells(report._repr_html_())
    assert sent["sent"] == "2"
    assert sent["invalid"] == "1"
    assert sent["HTTP answers"] == "200: 2"
    assert sent["rows not sent are in"] == str(tmp_path / "f.parquet")
    planned = cells(plan._repr_html_())
    assert planned["valid"] == "2"
    assert planned["requests, events lane"] == "2"
    assert "event: purchase" in planned
    assert "nothing was sent" in plan._repr_html_()
    assert "live campaigns" in plan._repr_html_(), "the history warning is shown"


def test_counts_are_plain_attributes_for_tab_completion():
    with Emulator(limits=RateLimits.unlimited()) as emu:
        report = send(
            pd.DataFrame({"customerId": ["a"], "eventName": "e"}),
            base_url=emu.base_url, api_key=emu.api_key, progress=False,
        )  # fmt: skip
    for status in ("sent", "skipped", "invalid", "failed", "unknown", "aborted"):
        assert status in dir(report)
    assert report.sent == 1


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_report_plot_renders_a_png_from_a_real_send(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(60)] + [""], "eventName": "e"})
    lower = RateLimits(per_second=20, per_window=0)  # lower than the client assumes
    with Emulator(limits=lower) as emu:
        report = send(df, base_url=emu.base_url, api_key=emu.api_key, progress=False)
    timeline = report.timeline
    assert timeline is not None
    assert timeline["requests"].sum() == report.requests, "every request is in the time series"
    assert len(timeline) <= report.elapsed + 2, "one row per second, not per request"
    figure = report.plot()
    path = tmp_path / "send.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["events lane: requests over time", "rows by status", "rows not sent, by code"]
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "per-second limit" in labels
    if report.http_statuses.get(429):
        assert "adaptive pace" in labels


def test_validation_plot_shows_failure_codes_by_column(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    df = pd.DataFrame({"customerId": ["a", "", None], "eventName": ["", "e", "e"]})
    figure = validate(df).plot()
    figure.savefig(tmp_path / "validation.png")
    assert figure.axes[0].get_title() == "failures by code and column"
    assert (tmp_path / "validation.png").stat().st_size > 1000


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch):
    import sys

    import pytest

    from gb_backfill import ConfigError

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ConfigError, match=r"gb-backfill\[plot\]"):
        validate(pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})).plot()


def test_the_http_answers_add_up_to_the_requests():
    """A trial's demo made 4,063 requests and listed answers adding to 4,056: the 7 lost ones
    were in no count."""
    from tests.conftest import MockGameball, send_fast, send_options

    def handler(request, body, n):
        if n == 2:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={})

    df = pd.DataFrame({"customerId": ["a", "b", "c"], "eventName": "e"})
    report = send_fast(df, **send_options(MockGameball(handler)))
    assert (report.sent, report.unknown, report.requests) == (2, 1, 3)
    assert "  HTTP answers: 200: 2, no answer: 1" in report.summary().splitlines()
