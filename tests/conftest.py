"""Shared fixtures: small event frames, and a mock Gameball built from handler functions."""

import json
import os

import httpx
import pandas as pd
import pytest

from gb_backfill import RateLimits, RetryPolicy

#: Set by .ci/run's second step: property tests draw every example they ask for.
THOROUGH = os.environ.get("GB_BACKFILL_THOROUGH") == "1"


def examples(wanted: int) -> int:
    """Examples for a property test: all of them when thorough, a sixth (at least 10) in the
    quick default run."""
    return wanted if THOROUGH else max(10, wanted // 6)


API_KEY = "test-api-key-SECRET-1234"
SECRET_KEY = "test-secret-key-SECRET-5678"
FAST_RETRY = RetryPolicy(attempts=4, wait_initial=0.001, wait_max=0.01, wait_jitter=0.001)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch):
    """Keys only come from where a test puts them."""
    monkeypatch.delenv("GAMEBALL_API_KEY", raising=False)
    monkeypatch.delenv("GAMEBALL_SECRET_KEY", raising=False)


@pytest.fixture
def events():
    return pd.DataFrame(
        {
            "customerId": ["c1", "c2", "c1", "c3", "", "c2"],
            "eventName": ["purchase", "review", "purchase", "signup", "purchase", "purchase"],
            "seq": [0, 1, 2, 3, 4, 5],
        }
    )


class MockGameball:
    """Records requests and answers with a handler; the handler gets (request, body, n)."""

    def __init__(self, handler=None):
        self.handler = handler or (lambda request, body, n: httpx.Response(200, json={}))
        self.requests = []

    def __call__(self, request):
        body = json.loads(request.content)
        self.requests.append((request, body))
        return self.handler(request, body, len(self.requests))

    def client(self):
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    @property
    def seqs(self):
        return [body["events"][next(iter(body["events"]))].get("seq") for _, body in self.requests]


def send_options(gameball, **overrides):
    options = {
        "api_key": API_KEY,
        "base_url": "https://api.gameball.co",
        "progress": False,
        "retry": FAST_RETRY,
        "limits": RateLimits.unlimited(),
        "client": gameball.client(),
    }
    return {**options, **overrides}


@pytest.fixture(autouse=True)
def no_stray_files():
    """A test writes its files under tmp_path, never into the working directory."""
    import pathlib
    import shutil

    here = pathlib.Path.cwd()
    before = set(here.glob("*.parquet*"))
    yield
    stray = set(here.glob("*.parquet*")) - before
    for path in stray:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    assert not stray, f"the test left {sorted(map(str, stray))} in the working directory"


def send_fast(df, **options):
    """``send``, on a fake-time loop: pacing and backoff play out at once (see fake_time)."""
    from gb_backfill import asend
    from tests import fake_time

    return fake_time.run(asend(df, **options))


class LimitedGameball(MockGameball):
    """A mock Gameball that keeps rate limits the way Gameball counts them (arrivals in sliding
    windows, on the running loop's clock), answering 429 beyond them."""

    def __init__(self, *, per_second=0, per_window=0, window=30.0):
        super().__init__(self._answer)
        self.per_second, self.per_window, self.window = per_second, per_window, window
        self.arrivals = []
        self.refused = 0

    def _answer(self, request, body, n):
        from tests.fake_time import now

        at = now()
        in_second = sum(1 for t in self.arrivals if t > at - 1.0)
        in_window = sum(1 for t in self.arrivals if t > at - self.window)
        if (self.per_second and in_second >= self.per_second) or (
            self.per_window and in_window >= self.per_window
        ):
            self.refused += 1
            return httpx.Response(429, json={"code": 4290, "message": "Too many requests."})
        self.arrivals.append(at)
        return httpx.Response(200, json={})


def sigint_as_in_a_terminal():
    """A child's ``preexec_fn``: SIGINT reaches it as a terminal's Ctrl-C would. A suite run
    from a background job (`.ci/run &`) has SIGINT ignored in every process, and a send
    honours an inherited SIG_IGN on purpose (`cmd &`), so it would ignore the test's SIGINT."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
