"""The sample export: reproducible from its script, realistic, and broken the promised ways."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import gb_backfill as gb

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture(scope="module")
def history():
    return pd.read_parquet(SAMPLE / "events.parquet")


@pytest.fixture(scope="module")
def validation(history):
    return history.gameball.validate()


def test_the_script_makes_the_committed_files_again(tmp_path):
    script = [sys.executable, str(SAMPLE / "make_sample.py"), "--out", str(tmp_path)]
    subprocess.run(script, check=True, capture_output=True, timeout=60)
    assert (tmp_path / "events.csv").read_bytes() == (SAMPLE / "events.csv").read_bytes()
    made = pq.read_table(tmp_path / "events.parquet")
    assert made.equals(pq.read_table(SAMPLE / "events.parquet"))


def test_two_years_of_a_shops_events_with_a_long_tail_of_customers(history):
    assert len(history) >= 20_000
    assert history["occurred_at"].min() < pd.Timestamp("2024-01-08", tz="UTC")
    assert history["occurred_at"].max() > pd.Timestamp("2025-12-24", tz="UTC")
    assert history["occurred_at"].is_monotonic_increasing, "oldest first, as exports are"
    names = set(history["event_name"].dropna())
    assert {"signed_up", "purchase_completed", "review_submitted", "referral_completed"} <= names
    purchases = history[history["event_name"] == "purchase_completed"]
    assert purchases["amount"].notna().mean() > 0.95
    assert purchases["currency"].nunique() >= 3
    reviews = history[history["event_name"] == "review_submitted"]
    assert set(reviews["rating"].dropna()) == {1, 2, 3, 4, 5}
    per_customer = history["customer_id"].str.strip().value_counts()
    assert per_customer.median() <= 5, "most customers have a handful of events"
    assert per_customer.max() >= 50, "a few have many"
    padded = history["customer_id"].str.fullmatch(r"0\d+", na=False)
    assert padded.sum() > 1_000, "the legacy store's zero-padded ids"


def test_a_few_percent_broken_in_every_promised_way(validation):
    assert 0.02 <= validation.invalid_rows / validation.rows <= 0.05
    codes = set(validation.failures["code"])
    assert codes == {
        "customer_id_missing",
        "customer_id_empty",
        "customer_id_whitespace",
        "event_name_missing",
        "event_name_empty",
        "event_name_whitespace",
        "metadata_type",  # nested
        "metadata_not_finite",
        "email_malformed",
        "mobile_malformed",
    }


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_the_csv_holds_the_same_rows_as_text(history, validation):
    """Read by gb-backfill, the CSV keeps every id as written (zeros too); only the nested
    values differ, written as their JSON text, which is a valid string."""
    kwargs = {"api_key": "not-needed"}
    from_csv = gb.plan_path(SAMPLE / "events.csv", **kwargs)
    from_parquet = gb.plan_path(SAMPLE / "events.parquet", **kwargs)
    nested = validation.failures["code"].eq("metadata_type").sum()
    assert from_parquet.invalid == validation.invalid_rows
    assert from_csv.invalid == from_parquet.invalid - nested
    assert from_csv.customers == from_parquet.customers
    assert from_csv.busiest_customer == from_parquet.busiest_customer
