"""Column mapping: keywords, names found by default, and clear errors."""

import pandas as pd
import pytest

from gb_backfill import ColumnNotFoundError, ConfigError
from gb_backfill._rows.mapping import resolve_mapping


def test_default_names_are_found():
    """customerId/eventName/email/mobile/sessionToken are picked up without keywords."""
    cols = ["customerId", "eventName", "email", "mobile", "sessionToken", "amount", "gb_status"]
    mapping = resolve_mapping(cols)
    assert mapping.customer_id == "customerId"
    assert mapping.event_name == "eventName"
    assert (mapping.email, mapping.mobile, mapping.session_token) == (
        "email",
        "mobile",
        "sessionToken",
    )
    assert mapping.metadata == ("amount",), "gb_ columns and mapped columns are not metadata"


def test_snake_case_names_are_found():
    mapping = resolve_mapping(["customer_id", "event_name", "session_token", "x"])
    assert (mapping.customer_id, mapping.event_name, mapping.session_token) == (
        "customer_id",
        "event_name",
        "session_token",
    )


def test_keywords_override_and_constant_event():
    mapping = resolve_mapping(["user", "what", "amount"], customer_id="user", event="purchase")
    assert mapping.customer_id == "user"
    assert mapping.event_name is None
    assert mapping.event == "purchase"
    assert mapping.metadata == ("what", "amount")


def test_explicit_metadata_keeps_order_and_drops_duplicates():
    mapping = resolve_mapping(["customerId", "eventName", "a", "b"], metadata=["b", "a", "b"])
    assert mapping.metadata == ("b", "a")


def test_missing_column_names_it_and_lists_the_columns():
    """A keyword naming a missing column says which and lists what exists."""
    with pytest.raises(ColumnNotFoundError) as caught:
        resolve_mapping(["customerId", "eventName"], email="mail")
    message = str(caught.value)
    assert "email='mail'" in message
    assert "customerId, eventName" in message


def test_missing_metadata_column():
    with pytest.raises(ColumnNotFoundError, match="metadata='nope'"):
        resolve_mapping(["customerId", "eventName"], metadata=["nope"])


def test_no_customer_column_is_a_config_error():
    with pytest.raises(ConfigError, match="customer_id=COL"):
        resolve_mapping(["who", "eventName"])


def test_no_event_name_is_a_config_error():
    with pytest.raises(ConfigError, match="event=NAME"):
        resolve_mapping(["customerId", "x"])


def test_event_and_event_name_together_is_a_config_error():
    with pytest.raises(ConfigError, match="not both"):
        resolve_mapping(["customerId", "eventName"], event_name="eventName", event="x")


def test_metadata_as_a_string_is_refused():
    with pytest.raises(ConfigError, match="list of columns"):
        resolve_mapping(["customerId", "eventName", "a"], metadata="a")


def test_works_on_a_dataframe_index():
    df = pd.DataFrame(columns=["customerId", "eventName", 3])
    assert resolve_mapping(df.columns).metadata == (3,)
