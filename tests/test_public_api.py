"""The public surface: a sorted, complete __all__ and the accessor registered on import."""

import pandas as pd

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


def test_the_emulator_is_not_imported_until_used():
    """``import gb_backfill`` does not load aiohttp: the emulator is loaded on first use."""
    import subprocess
    import sys

    code = (
        "import sys, gb_backfill; print('aiohttp' in sys.modules, 'matplotlib' in sys.modules);"
        "gb_backfill.Emulator; print('aiohttp' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "True"]


def test_the_sync_faces_show_the_real_keywords():
    """help() and tab completion see asend's keywords on send, send_path and the accessor."""
    import inspect

    import pandas as pd

    expected = {"api_key", "ledger", "mode", "dry_run", "batch_limits", "failures_path"}
    for function in (
        gb_backfill.send,
        gb_backfill.send_path,
        gb_backfill.asend_path,
        pd.DataFrame().gameball.send,
        pd.DataFrame().gameball.asend,
    ):
        assert expected <= set(inspect.signature(function).parameters), function
