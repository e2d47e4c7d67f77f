"""The command line: summaries, exit codes and the failures file."""

import pandas as pd
import pytest

from gb_backfill._cli import main


@pytest.fixture
def events_csv(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user": ["a", "", "c", "d"],
            "kind": ["purchase", "purchase", None, "review"],
            "amount": ["1.5", "2", "inf", "4"],
            "email": ["a@b.co", None, None, "bad"],
        }
    ).to_csv(path, index=False)
    return path


def test_validate_all_valid_exits_0(tmp_path, capsys):
    path = tmp_path / "ok.parquet"
    pd.DataFrame({"customerId": ["a"], "eventName": ["e"]}).to_parquet(path)
    assert main(["validate", str(path)]) == 0
    assert "rows: 1  valid: 1  invalid: 0" in capsys.readouterr().out


def test_validate_writes_invalid_rows_with_their_columns(events_csv, tmp_path, capsys):
    failures = tmp_path / "out" / "failures.parquet"
    code = main(
        [
            "validate",
            str(events_csv),
            "--customer-id",
            "user",
            "--event-name",
            "kind",
            "--failures",
            str(failures),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "rows: 4  valid: 1  invalid: 3" in out
    assert "customer_id_missing: 1" in out
    written = pd.read_parquet(failures)
    assert written["gb_row"].tolist() == [1, 2, 3]
    assert written["gb_status"].tolist() == ["invalid"] * 3
    assert written["gb_error_code"].tolist() == [
        "customer_id_missing",
        "event_name_missing",
        "email_malformed",
    ]
    assert "metadata 'amount' must be a finite number" in written["gb_error_message"][1]
    assert {"user", "kind", "amount", "email"} <= set(written.columns)


def test_failures_file_validates_again_without_the_gb_columns_as_metadata(events_csv, tmp_path):
    failures = tmp_path / "failures.parquet"
    main(
        [
            "validate",
            str(events_csv),
            "--customer-id",
            "user",
            "--event",
            "x",
            "--failures",
            str(failures),
        ]
    )
    df = pd.read_parquet(failures)
    fixed = df.assign(user="fixed", email=None, amount="1")
    assert fixed.gameball.validate(customer_id="user", event="x").ok


def test_missing_column_is_usage_error(events_csv, capsys):
    assert main(["validate", str(events_csv), "--customer-id", "nope"]) == 2
    err = capsys.readouterr().err
    assert "customer_id='nope'" in err
    assert "user, kind, amount, email" in err
    assert err.count("\n") == 1, "one line"


def test_missing_file_is_usage_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_flags_exit_2():
    with pytest.raises(SystemExit) as caught:
        main(["validate", "x.csv", "--event", "a", "--event-name", "b"])
    assert caught.value.code == 2
