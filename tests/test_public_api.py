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
    assert vars(first) == vars(second) == {"_df": df} or first.__dict__.keys() == {"_df"}
    assert df.gameball.payloads().tolist() == gb_backfill.payloads(df).tolist()


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
