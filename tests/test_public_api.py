"""The public surface: a sorted, complete __all__ and the accessor registered on import."""

import pandas as pd
import pytest

import gb_backfill


def test_all_is_sorted_and_complete():
    assert gb_backfill.__all__ == sorted(gb_backfill.__all__, key=lambda n: (not n.isupper(), n))
    public = {n for n in dir(gb_backfill) if not n.startswith("_")} - {"annotations"}
    assert set(gb_backfill.__all__) == public


def test_version_is_available():
    assert gb_backfill.__version__


def test_accessor_is_registered_and_stateless():
    df = pd.DataFrame({"customerId": ["a"], "eventName": ["e"]})
    first, second = df.gameball, df.gameball
    assert vars(first).keys() == vars(second).keys() == {"_df"}, "it holds the frame, nothing else"
    assert first._df is df
    assert second._df is df
    first.validate()
    first.payloads()
    assert vars(first).keys() == {"_df"}, "calling it leaves no state behind"
    assert df.gameball.payloads().tolist() == gb_backfill.payloads(df).tolist()


def test_what_sends_and_the_emulator_are_not_imported_until_used():
    """``import gb_backfill`` stays quick: aiohttp (the emulator), matplotlib, and what sends
    (httpx, asyncio, sqlite3) load on first use; so does the accessor's sending side."""
    import subprocess
    import sys

    later = ["aiohttp", "matplotlib", "httpx", "asyncio", "sqlite3", "gb_backfill._sender"]
    code = (
        f"import sys, gb_backfill; print(*[m in sys.modules for m in {later!r}]);"
        "gb_backfill.send; print('httpx' in sys.modules, 'aiohttp' in sys.modules);"
        "gb_backfill.Emulator; print('aiohttp' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False"] * len(later) + ["True", "False", "True"]


def test_the_sync_faces_show_the_real_keywords():
    """help() and tab completion see asend's keywords on send, send_path and the accessor."""
    import inspect

    import pandas as pd

    expected = {"api_key", "ledger", "mode", "customer_id", "batch_limits", "failures_path"}
    for function in (
        gb_backfill.send,
        gb_backfill.send_path,
        gb_backfill.asend_path,
        gb_backfill.plan,
        gb_backfill.aplan_path,
        pd.DataFrame().gameball.send,
        pd.DataFrame().gameball.asend,
        pd.DataFrame().gameball.plan,
    ):
        assert expected <= set(inspect.signature(function).parameters), function


def test_an_error_in_a_traceback_is_named_by_its_public_path():
    """A trial's traceback named gb_backfill._errors.ConfigError, a private module."""
    import pickle
    import traceback

    with pytest.raises(gb_backfill.ConfigError) as raised:
        gb_backfill.validate(pd.DataFrame({"customerId": ["a"], "eventName": "e"}), custmer="x")
    last = traceback.format_exception(raised.value)[-1]
    assert last.startswith("gb_backfill.ConfigError: "), last
    assert isinstance(pickle.loads(pickle.dumps(raised.value)), gb_backfill.ConfigError)
