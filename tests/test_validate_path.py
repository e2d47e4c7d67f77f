"""``validate_path()``: the command line's streaming validation, as a library function (issue 27,
item 3): a file of any size checked a batch at a time, into a report of counts, its invalid rows
written to a failures file when asked."""

import pandas as pd
import pytest

import gb_backfill as gb


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "export.csv"
    pd.DataFrame(
        {
            "user": ["a", "", "c", "d", "e", "f", "", "h"],
            "kind": ["purchase", "purchase", None, "review", "review", "purchase", None, "x"],
            "amount": ["1.5", "2", "inf", "4", "5", "6", "7", "8"],
            "email": ["a@b.co", None, None, "bad", None, None, "also bad", None],
        }
    ).to_csv(path, index=False)
    return path


MAPPING = {"customer_id": "user", "event_name": "kind"}


@pytest.mark.parametrize("batch_rows", [3, 50_000])
def test_it_counts_what_validate_finds_in_the_whole_frame(export, batch_rows):
    as_read = pd.read_csv(export, dtype={"user": str, "kind": str, "email": str})
    whole = gb.validate(as_read, **MAPPING)
    streamed = gb.validate_path(export, batch_rows=batch_rows, **MAPPING)
    assert (streamed.rows, streamed.valid_rows, streamed.invalid_rows) == (
        whole.rows,
        whole.valid_rows,
        whole.invalid_rows,
    )
    assert streamed.invalid_rows == 4
    assert streamed.counts().to_dict() == whole.counts().to_dict()
    assert not streamed.ok
    assert streamed.valid.empty, "it keeps no rows"
    assert streamed.failures.empty
    assert repr(streamed) == repr(whole)
    assert streamed.summary().splitlines()[1:] == whole.summary().splitlines()[1:]
    assert streamed.failures_path is None


def test_it_writes_the_invalid_rows_as_a_send_would_and_nothing_when_all_are_valid(
    export, tmp_path
):
    failures = tmp_path / "out" / "invalid.parquet"
    report = gb.validate_path(export, failures_path=failures, **MAPPING)
    assert report.failures_path == failures
    written = gb.read_failures(failures)
    assert len(written) == report.invalid_rows
    assert set(written["gb_status"]) == {"invalid"}
    assert written["gb_row"].tolist() == [1, 2, 3, 6]
    assert written["gb_key"].notna().all(), "keyed as a send keys them, to send again"

    fine = tmp_path / "fine.parquet"
    pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}).to_parquet(fine)
    clean = gb.validate_path(fine, failures_path=tmp_path / "none.parquet")
    assert clean.ok
    assert clean.failures_path is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv", "fine.parquet", "out"]


def test_a_bad_mapping_is_a_config_error_naming_the_option(export):
    with pytest.raises(gb.ColumnNotFoundError, match="customer_id='nope': no such column"):
        gb.validate_path(export, customer_id="nope")
    with pytest.raises(gb.ConfigError, match=r"did you mean failures_path=\?"):
        gb.validate_path(export, failure_path="x", **MAPPING)
