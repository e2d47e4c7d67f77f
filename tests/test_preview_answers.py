"""The preview believes only quotes (issue 26, item 6).

A server answering 200 with ``{}`` or ``{"success": true}`` (the live events endpoint's answer,
a proxy, another service at the base URL) gave "30 of 30 quoted, points 0 (0 to 0)" and exit 0.
An answer that is not in the documented quote shape is a failure of that request, and the same
failure on every request trips the breaker.
"""

import httpx
import pandas as pd
import pytest

import gb_backfill as gb
from gb_backfill import RateLimits, RepeatedFailureError
from gb_backfill._engine.lanes.quotes import classify_quote, quote_problem
from gb_backfill._vocabulary import Verdict
from tests import fake_time
from tests.conftest import API_KEY, FAST_RETRY, MockGameball

ROWS = 30
OPTIONS = {
    "api_key": API_KEY, "progress": False, "retry": FAST_RETRY,
    "preview_limits": RateLimits.unlimited(), "sample": ROWS,
}  # fmt: skip
QUOTE = {"customerId": "c", "totalPoints": 40, "events": [
    {"eventName": "e", "valid": True, "invalidReason": None, "totalPoints": 40, "campaigns": []}
]}  # fmt: skip


def frame():
    return pd.DataFrame({"customerId": [f"c{n}" for n in range(ROWS)], "eventName": "e"})


@pytest.mark.parametrize("answer", [{}, {"success": True}, {"success": True, "message": "ok"}])
def test_answers_that_are_not_quotes_stop_the_preview_instead_of_quoting_0_points(answer):
    mock = MockGameball(lambda request, body, n: httpx.Response(200, json=answer))
    with pytest.raises(RepeatedFailureError) as stopped:
        fake_time.run(gb.apreview(frame(), client=mock.client(), **OPTIONS))
    assert "not_a_quote" in str(stopped.value)
    report = stopped.value.report
    assert report.quoted == 0, report


def test_a_few_answers_that_are_not_quotes_are_failures_not_zero_point_quotes():
    def answer(request, body, n):
        return httpx.Response(200, json={"success": True} if n % 5 == 0 else QUOTE)

    mock = MockGameball(answer)
    report = fake_time.run(gb.apreview(frame(), client=mock.client(), **OPTIONS))
    failed = report.quotes[report.quotes["gb_quote"] == "failed"]
    assert len(failed) == ROWS // 5
    assert report.quoted == ROWS - len(failed)
    assert (report.quotes.loc[report.quotes["gb_quote"] == "quoted", "gb_points"] == 40).all()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ([], "not a JSON object"),
        ({"totalPoints": "40", "events": []}, "no number totalPoints"),
        ({"totalPoints": True, "events": []}, "no number totalPoints"),
        ({"totalPoints": 4}, "no list of events"),
        ({"totalPoints": 4, "events": [{"totalPoints": 4}]}, "an event without its eventName"),
        ({"totalPoints": 4, "events": [{"eventName": "e", "campaigns": {}}]}, "campaigns"),
        (QUOTE, None),
        ({"totalPoints": 0, "events": []}, None),
    ],
)
def test_the_documented_quote_shape(answer, problem):
    found = quote_problem(answer)
    assert (found is None) if problem is None else (problem in found)


def test_a_customer_not_found_is_an_answer_and_not_marked_sent():
    """Gameball's 404 with code 7000 is the preview's answer for a customer it does not know:
    final for the row, no failure, and no ``SENT`` verdict (nothing was sent or quoted)."""
    missing = httpx.Response(404, json={"code": 7000, "message": "Customer not found"})
    found = classify_quote(missing)
    assert found.verdict is Verdict.NOT_FOUND
    assert found.verdict is not Verdict.SENT
    assert found.verdict.answered, "an answer: not retried, and it ends a streak of failures"
    assert classify_quote(httpx.Response(200, json=QUOTE)).verdict is Verdict.SENT
    assert classify_quote(httpx.Response(404, text="Not Found")).verdict is Verdict.FAILED


def test_every_customer_not_found_is_quoted_as_not_found_without_tripping_the_breaker():
    missing = {"code": 7000, "message": "Customer not found"}
    mock = MockGameball(lambda request, body, n: httpx.Response(404, json=missing))
    report = fake_time.run(gb.apreview(frame(), client=mock.client(), **OPTIONS))
    assert (report.quotes["gb_quote"] == "customer_not_found").all()
    assert report.quoted == ROWS


def test_the_preview_counts_its_quotes_in_the_words_of_its_report():
    """The progress bar's counts and ``gb_quote`` say the same words (``not_asked``, never
    ``not asked``)."""
    from gb_backfill._engine.chunks import Chunk, OutgoingRow
    from gb_backfill._engine.lanes.quotes import QuoteBook
    from gb_backfill._engine.outcomes import Outcome
    from gb_backfill._engine.progress import Progress
    from gb_backfill._vocabulary import QuoteOutcome, Status

    book = QuoteBook(Progress(3, enabled=False, clock=lambda: 0.0), expected=3)
    chunk = Chunk(pd.DataFrame(), 0)
    rows = [OutgoingRow(chunk, n, f"c{n}", b"{}", None, n) for n in range(3)]
    book.record(rows[:1], Status.ABORTED, None)
    book.record(rows[1:2], Status.FAILED, Outcome(Verdict.FAILED, "http_400", "bad", 400))
    missing = Outcome(Verdict.NOT_FOUND, "customer_not_found", "no such customer", 404)
    book.record(rows[2:], Status.SENT, missing)
    assert dict(book.counts) == {"quoted": 1, "failed": 1, "not_asked": 1}
    assert set(book.counts) <= {outcome.value for outcome in QuoteOutcome}
