"""The emulator's reward preview: campaigns, the quote, customers, limits, and no side effects.

The endpoint is tested over a real socket; the campaign model and the quote also in process.
"""

import json
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest

from gb_backfill import BatchSettings, ConfigError, Emulator, Faults, RateLimits
from gb_backfill._config import PREVIEW_LIMITS
from gb_backfill._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY
from gb_backfill._emulator.campaigns import (
    Campaign,
    Campaigns,
    Condition,
    Coupon,
    Points,
    PointsPerUnit,
    Tally,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CAMPAIGNS = ROOT / "sample_data" / "campaigns.json"
PREVIEW = "/api/v4.0/integrations/events/reward-preview"
PREVIEW_41 = "/api/v4.1/integrations/events/reward-preview"
EVENTS = "/api/v4.0/integrations/events"
KEY = {"APIKey": DEFAULT_API_KEY}
BOTH_KEYS = {"APIKey": DEFAULT_API_KEY, "SecretKey": DEFAULT_SECRET_KEY}
NOW = datetime(2026, 9, 1, tzinfo=UTC)

CAMPAIGNS = Campaigns(
    campaigns=(
        Campaign(
            id=1,
            name="1 point per 10 EGP",
            event="purchase",
            conditions=(Condition("currency", "==", "EGP"),),
            reward=PointsPerUnit(points=1, per=10, of="amount"),
        ),
        Campaign(
            id=2,
            name="Big order",
            event="purchase",
            conditions=(Condition("amount", ">=", 500),),
            reward=Points(points=100),
            end_date=datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
        ),
        Campaign(
            id=3,
            name="First order coupon",
            event="purchase",
            conditions=(Condition("first_order", "==", True),),
            reward=Coupon(coupon_type="Percentage", value=10),
            max_times=1,
        ),
        Campaign(
            id=4, name="Three purchases", event="purchase", target=3, reward=Points(points=50)
        ),
        Campaign(
            id=5,
            name="Good review",
            event="review",
            conditions=(Condition("rating", ">=", 4),),
            reward=Points(points=20),
            max_times=2,
        ),
        Campaign(
            id=6,
            name="Ended",
            event="review",
            reward=Points(points=999),
            end_date=datetime(2020, 1, 1, tzinfo=UTC),
        ),
    ),
    known_events=frozenset({"newsletter"}),
)


def preview(emu, body, path=PREVIEW, headers=KEY, client=None, **kw):
    """One preview; pass ``client`` to reuse its connection (a new client takes ~0.1 s)."""
    if client is None:
        with httpx.Client(base_url=emu.base_url, timeout=5) as client:
            return client.post(path, json=body, headers=headers, **kw)
    return client.post(path, json=body, headers=headers, **kw)


def client_of(emu):
    return httpx.Client(base_url=emu.base_url, timeout=5)


def live(emu, customer, name, metadata=None):
    with httpx.Client(base_url=emu.base_url, timeout=5) as client:
        body = {"customerId": customer, "events": {name: metadata or {}}}
        response = client.post(EVENTS, json=body, headers=KEY)
    assert response.status_code == 200
    return response


def body(name="purchase", metadata=None, customer="known"):
    return {"customerId": customer, "events": {name: metadata}}


def campaigns_of(answer, event=0):
    return {c["campaignId"]: c for c in answer["events"][event]["campaigns"]}


@pytest.fixture
def emu():
    unlimited = RateLimits.unlimited()
    with Emulator(campaigns=CAMPAIGNS, customers=["known"], preview_limits=unlimited) as running:
        yield running


# --- the answers -------------------------------------------------------------------------------


def test_rewarded_answer_has_every_documented_field(emu):
    """Points per unit are floored, each unit an achievement; a fixed bonus adds up."""
    sent = body(metadata={"amount": 1234.5, "currency": "EGP"})
    response = preview(emu, sent)
    assert response.status_code == 200
    answer = response.json()
    assert answer["customerId"] == "known"
    assert answer["totalPoints"] == 123 + 100
    assert answer["events"][0] | {"campaigns": None} == {
        "eventName": "purchase",
        "valid": True,
        "invalidReason": None,
        "totalPoints": 223,
        "campaigns": None,
    }
    campaigns = campaigns_of(answer)
    assert campaigns[1] == {
        "campaignId": 1,
        "campaignName": "1 point per 10 EGP",
        "campaignEndDate": None,
        "eligible": True,
        "reason": "Rewarded",
        "rewardType": "Points",
        "rewardPoints": 1,
        "couponType": None,
        "couponValue": None,
        "points": 123,
        "timesAchieved": 123,
        "progress": None,
    }
    assert campaigns[2]["campaignEndDate"] == "2099-12-31T23:59:59Z"
    assert (campaigns[2]["points"], campaigns[2]["timesAchieved"]) == (100, 1)
    assert emu.counters["preview_ok"] == 1


def test_progress_only_until_the_live_events_reach_the_target(emu):
    first = campaigns_of(preview(emu, body(metadata={})).json())[4]
    assert (first["reason"], first["eligible"], first["points"], first["timesAchieved"]) == (
        "ProgressOnly",
        True,
        0,
        0,
    )
    assert first["progress"] == {
        "currentPercentage": 0.0,
        "wouldBePercentage": 33.33,
        "completionRewardPoints": 50,
        "completionRewardType": "Points",
    }
    live(emu, "known", "purchase")
    second = campaigns_of(preview(emu, body(metadata={})).json())[4]
    assert second["progress"]["currentPercentage"] == 33.33
    assert second["progress"]["wouldBePercentage"] == 66.67
    live(emu, "known", "purchase")
    third = campaigns_of(preview(emu, body(metadata={})).json())[4]
    assert (third["reason"], third["points"], third["progress"]) == ("Rewarded", 50, None)
    live(emu, "known", "purchase")
    again = campaigns_of(preview(emu, body(metadata={})).json())[4]
    assert again["reason"] == "ProgressOnly", "no cap: the count starts again"
    assert again["progress"]["currentPercentage"] == 0.0


def test_no_matching_conditions_is_listed_but_not_eligible(emu):
    answer = preview(emu, body(metadata={"amount": 40, "currency": "USD"})).json()
    campaigns = campaigns_of(answer)
    for campaign_id in (1, 2, 3):
        assert campaigns[campaign_id]["reason"] == "NoMatchingConditions"
        assert campaigns[campaign_id]["eligible"] is False
        assert campaigns[campaign_id]["points"] == 0
    assert answer["totalPoints"] == 0


def test_less_than_one_unit_does_not_count(emu):
    campaigns = campaigns_of(
        preview(emu, body(metadata={"amount": 9.99, "currency": "EGP"})).json()
    )
    assert campaigns[1]["reason"] == "NoMatchingConditions"


def test_a_coupon_is_a_non_points_reward(emu):
    answer = preview(emu, body(metadata={"first_order": True})).json()
    coupon = campaigns_of(answer)[3]
    assert {k: coupon[k] for k in ("reason", "eligible", "rewardType", "rewardPoints")} == {
        "reason": "NonPointsReward",
        "eligible": True,
        "rewardType": "Coupon",
        "rewardPoints": None,
    }
    assert (coupon["couponType"], coupon["couponValue"], coupon["points"]) == ("Percentage", 10, 0)
    assert coupon["timesAchieved"] == 1


def test_unknown_event_names_are_event_not_found_and_known_ones_valid(emu):
    sent = {
        "customerId": "known",
        "events": {"mystery": {"x": 1}, "newsletter": None, "purchase": {"amount": 500}},
    }
    answer = preview(emu, sent).json()
    assert [event["eventName"] for event in answer["events"]] == list(sent["events"])
    assert answer["events"][0] == {
        "eventName": "mystery",
        "valid": False,
        "invalidReason": "EventNotFound",
        "totalPoints": 0,
        "campaigns": [],
    }
    assert answer["events"][1] == {
        "eventName": "newsletter",
        "valid": True,
        "invalidReason": None,
        "totalPoints": 0,
        "campaigns": [],
    }
    assert answer["totalPoints"] == answer["events"][2]["totalPoints"] == 100


def test_a_key_a_campaign_reads_with_the_wrong_kind_of_value_is_invalid_metadata(emu):
    answer = preview(emu, body(metadata={"amount": "500", "currency": "EGP"})).json()
    event = answer["events"][0]
    assert (event["valid"], event["invalidReason"]) == (
        False,
        "InvalidMetadata: amount must be a number",
    )
    assert (event["campaigns"], answer["totalPoints"]) == ([], 0)
    nested = preview(emu, body(metadata={"currency": {"code": "EGP"}})).json()["events"][0]
    assert (
        nested["invalidReason"]
        == "InvalidMetadata: currency must be a string, a number or a boolean"
    )
    ignored = preview(emu, body(metadata={"utm": {"source": "x"}, "amount": 10})).json()
    assert ignored["events"][0]["valid"], "keys no campaign reads are ignored"


def test_ended_campaigns_are_never_returned_and_their_event_stays_known(emu):
    answer = preview(emu, body("review", {"rating": 5})).json()
    assert list(campaigns_of(answer)) == [5]
    on_the_day = CAMPAIGNS.quote(body("review", {}), {}, now=datetime(2020, 1, 1, tzinfo=UTC))
    assert 6 in campaigns_of(on_the_day), "it ends at its end date, not before"
    ended = CAMPAIGNS.quote(body("review", {}), {}, now=datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert 6 not in campaigns_of(ended)


def test_the_lang_header_and_v41_with_the_secret_or_a_session_token(emu):
    sent = body(metadata={"amount": 20, "currency": "EGP"})
    assert preview(emu, sent, headers={**KEY, "lang": "ar"}).json()["totalPoints"] == 2
    assert preview(emu, sent, path=PREVIEW_41, headers=BOTH_KEYS).status_code == 200
    token = {**KEY, "X-GB-TOKEN": "jwe-token"}
    assert preview(emu, sent, path=PREVIEW_41, headers=token).status_code == 200


# --- customers ---------------------------------------------------------------------------------


def test_a_customer_it_has_never_seen_is_404_and_a_preview_does_not_create_it(emu):
    for _ in range(2):
        response = preview(emu, body(customer="stranger", metadata={}))
        assert response.status_code == 404
        assert response.json()["code"] == 7000
        assert {"code", "type", "message", "documentationUrl", "requestId"} <= set(response.json())
    assert emu.counters["preview_not_found"] == 2
    assert not emu.customer_exists("stranger")
    live(emu, "stranger", "newsletter")
    assert emu.customer_exists("stranger")
    assert preview(emu, body(customer="stranger", metadata={})).status_code == 200


def test_an_existing_share_of_customers_chosen_by_a_stable_hash():
    ids = [f"c{n}" for n in range(4000)]
    with Emulator(existing_share=0.8, preview_limits=RateLimits.unlimited()) as emu:
        exists = [emu.customer_exists(i) for i in ids]
        assert 0.77 < sum(exists) / len(ids) < 0.83
        with client_of(emu) as client:
            answers = [preview(emu, body("e", {}, customer=i), client=client) for i in ids[:60]]
        statuses = [answer.status_code for answer in answers]
        assert statuses == [200 if e else 404 for e in exists[:60]]
    again = Emulator(existing_share=0.8)
    assert [again.customer_exists(i) for i in ids] == exists, "the same ids in every run"
    wider = Emulator(existing_share=0.9)
    assert all(wider.customer_exists(i) for i, e in zip(ids, exists, strict=True) if e)
    assert all(Emulator(existing_share=1).customer_exists(i) for i in ids)
    assert not any(Emulator().customer_exists(i) for i in ids)


# --- bad requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        ({"events": {"purchase": {}}}, 3000),
        ({"customerId": "known"}, 3000),
        ({"customerId": "known", "events": {}}, 3000),
        ({"customerId": "", "events": {"purchase": {}}}, 3003),
        ({"customerId": "  ", "events": {"purchase": {}}}, 3003),
        ({"customerId": 7, "events": {"purchase": {}}}, 3003),
        ({"customerId": "x" * 101, "events": {"purchase": {}}}, 3003),
        ({"customerId": "known", "events": ["purchase"]}, 3003),
        ({"customerId": "known", "events": {"purchase": 5}}, 3003),
        ({"customerId": "known", "events": {"purchase": [1]}}, 3003),
        ({"customerId": "known", "events": {" ": {}}}, 3003),
        ({"customerId": "known", "events": {"purchase": {}}, "email": 5}, 3003),
        ([1, 2], 3016),
    ],
)
def test_a_bad_payload_is_400(emu, sent, code):
    response = preview(emu, sent)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert emu.counters["preview_bad_request"] == 1
    with pytest.raises(ConfigError, match="would answer 400"):
        emu.quote(sent)


def test_a_customer_id_of_100_characters_is_fine():
    with Emulator(existing_share=1) as emu:
        assert preview(emu, body("e", {}, customer="x" * 100)).status_code == 200


def test_malformed_json_and_another_content_type_are_refused(emu):
    sent = preview(emu, None, headers={**KEY, "Content-Type": "application/json"}, content=b"{no")
    assert (sent.status_code, sent.json()["code"]) == (400, 3016)
    text = preview(emu, None, headers={**KEY, "Content-Type": "text/plain"}, content=b"hi")
    assert (text.status_code, text.json()["code"]) == (415, 3013)


@pytest.mark.parametrize(
    ("path", "headers", "code"),
    [
        (PREVIEW, {}, 1000),
        (PREVIEW, {"APIKey": "wrong"}, 1000),
        (PREVIEW, {"APIKey": DEFAULT_API_KEY, "SecretKey": "wrong"}, 1000),
        (PREVIEW_41, KEY, 1001),
        (PREVIEW_41, {"APIKey": DEFAULT_API_KEY, "SecretKey": "wrong"}, 1000),
    ],
)
def test_keys_are_checked_as_on_the_events_endpoint(emu, path, headers, code):
    response = preview(emu, body(metadata={}), path=path, headers=headers)
    assert (response.status_code, response.json()["code"]) == (401, code)
    assert emu.counters["preview_unauthorized"] == 1


def test_high_security_needs_the_secret_on_v40():
    with Emulator(high_security=True, existing_share=1) as emu:
        assert preview(emu, body(metadata={})).json()["code"] == 1001
        assert preview(emu, body(metadata={}), headers=BOTH_KEYS).status_code == 200


# --- limits ------------------------------------------------------------------------------------


def test_the_default_limits_are_the_one_preview_limits_value():
    assert Emulator().preview_limits == PREVIEW_LIMITS
    assert (PREVIEW_LIMITS.per_second, PREVIEW_LIMITS.per_window) == (30, 360)


def test_its_own_per_second_limit_answers_429_with_gameballs_body():
    limits = RateLimits(per_second=3, per_window=0)
    with Emulator(existing_share=1, preview_limits=limits, retry_after=True) as emu:
        with client_of(emu) as client:
            statuses = [preview(emu, body("e", {}), client=client).status_code for _ in range(5)]
            refused = preview(emu, body("e", {}), client=client)
        assert statuses == [200] * 3 + [429] * 2
        assert refused.json()["code"] == 4290
        assert {"code", "type", "message", "documentationUrl", "requestId"} <= set(refused.json())
        assert int(refused.headers["Retry-After"]) >= 1
        assert emu.counters["rate_limited_preview"] == 3
        live(emu, "c", "e")  # the events endpoint keeps its own count
        other = preview(emu, body("e", {}), headers={"APIKey": "other"})
        assert other.status_code == 401, "a wrong key is refused before it is counted"


def test_its_window_quota_and_that_0_lifts_a_limit():
    quota = RateLimits(per_second=0, per_window=4, window=60)
    with Emulator(existing_share=1, preview_limits=quota) as emu:
        with client_of(emu) as client:
            statuses = [preview(emu, body("e", {}), client=client).status_code for _ in range(6)]
        assert statuses == [200] * 4 + [429] * 2
    with Emulator(existing_share=1, preview_limits=RateLimits.unlimited()) as emu:
        with client_of(emu) as client:
            statuses = {preview(emu, body("e", {}), client=client).status_code for _ in range(80)}
        assert statuses == {200}


# --- history and side effects ------------------------------------------------------------------


def test_a_cap_counts_the_live_events_that_achieved_it(emu):
    good = {"rating": 5}
    assert campaigns_of(preview(emu, body("review", good)).json())[5]["points"] == 20
    live(emu, "known", "review", good)
    live(emu, "known", "review", {"rating": 2})  # not a match: it achieves nothing
    assert campaigns_of(preview(emu, body("review", good)).json())[5]["reason"] == "Rewarded"
    live(emu, "known", "review", good)
    answer = preview(emu, body("review", good)).json()
    assert campaigns_of(answer) == {}, "a customer at the cap no longer sees the campaign"
    assert answer["events"][0]["valid"] is True


def test_a_cap_cuts_the_units_a_points_per_unit_event_can_still_earn():
    capped = Campaign(
        id=9, name="Capped", event="p", reward=PointsPerUnit(points=2, per=1, of="n"), max_times=10
    )
    campaigns = Campaigns(campaigns=(capped,))
    first = campaigns.quote(body("p", {"n": 7}), {}, now=NOW)
    assert (first["totalPoints"], campaigns_of(first)[9]["timesAchieved"]) == (14, 7)
    nearly = campaigns.quote(body("p", {"n": 7}), {9: Tally(0, 7)}, now=NOW)
    assert (nearly["totalPoints"], campaigns_of(nearly)[9]["timesAchieved"]) == (6, 3)
    assert campaigns.award("p", {"n": 7}, {9: Tally(0, 7)}, now=NOW) == (6, {9: Tally(0, 10)})


def test_previews_have_no_side_effects_and_a_later_live_event_earns_the_quote(emu):
    first_order = {"amount": 600, "currency": "EGP", "first_order": True}
    with client_of(emu) as client:
        quotes = [preview(emu, body(metadata=first_order), client=client).json() for _ in range(5)]
    assert all(quote == quotes[0] for quote in quotes), "a preview consumes nothing"
    assert quotes[0] == emu.quote(body(metadata=first_order))
    assert emu.events().empty
    assert emu.awards().empty
    assert emu.counters["accepted"] == 0
    assert campaigns_of(quotes[0])[3]["reason"] == "NonPointsReward"
    assert campaigns_of(quotes[0])[4]["progress"]["currentPercentage"] == 0.0

    live(emu, "known", "purchase", first_order)
    awards = emu.awards()
    assert awards.values.tolist() == [["known", "purchase", quotes[0]["totalPoints"]]]
    assert quotes[0]["totalPoints"] == 60 + 100
    after = campaigns_of(preview(emu, body(metadata=first_order)).json())
    assert 3 not in after, "the live event used up the coupon's cap"
    assert after[4]["progress"]["currentPercentage"] == 33.33


def test_batch_items_are_live_events_too():
    with Emulator(campaigns=CAMPAIGNS, batch=BatchSettings(delay=0)) as emu:
        items = [{"customerId": "b1", "events": {"review": {"rating": 5}}}]
        job = httpx.post(
            emu.base_url + "/api/v4.0/integrations/batch/events",
            json={"body": items},
            headers=BOTH_KEYS,
        )
        assert job.status_code == 200
        deadline = time.monotonic() + 10
        while emu.events().empty and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emu.awards()["points"].tolist() == [20]
        assert emu.customer_exists("b1")


def test_campaigns_can_be_replaced_while_running_and_tallies_stay(emu):
    live(emu, "known", "review", {"rating": 5})
    live(emu, "known", "review", {"rating": 5})
    emu.set_campaigns([CAMPAIGNS.campaigns[4]], known_events=["newsletter"])
    assert (
        preview(emu, body("purchase", {})).json()["events"][0]["invalidReason"] == "EventNotFound"
    )
    assert campaigns_of(preview(emu, body("review", {"rating": 5})).json()) == {}, "still capped"
    assert emu.campaigns.known_events == {"newsletter"}


def test_the_preview_gets_the_latency_but_not_the_other_faults():
    faults = Faults(latency=0.3, server_errors=1.0)
    with Emulator(existing_share=1, faults=faults) as emu:
        response = preview(emu, body("e", {}))
        assert response.status_code == 200
        assert response.elapsed.total_seconds() >= 0.3


# --- the campaign model and its file -----------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "metadata", "holds"),
    [
        (Condition("amount", ">=", 20), {"amount": 20}, True),
        (Condition("amount", ">=", 20), {"amount": 19.99}, False),
        (Condition("amount", ">=", 20), {"amount": "25"}, False),
        (Condition("amount", ">=", 20), {"amount": True}, False),
        (Condition("amount", ">=", 20), {}, False),
        (Condition("amount", "<", 20), {"amount": None}, False),
        (Condition("rating", "==", 5), {"rating": 5.0}, True),
        (Condition("rating", "==", 1), {"rating": True}, False),
        (Condition("first_order", "==", True), {"first_order": 1}, False),
        (Condition("currency", "==", "EGP"), {"currency": "egp"}, False),
        (Condition("currency", "!=", "EGP"), {"currency": "USD"}, True),
        (Condition("currency", "!=", "EGP"), {}, False),
        (Condition("currency", "in", ["SAR", "AED"]), {"currency": "AED"}, True),
        (Condition("currency", "in", ["SAR", "AED"]), {"currency": "EGP"}, False),
    ],
)
def test_conditions_compare_json_values(condition, metadata, holds):
    assert condition.holds(metadata) is holds


@pytest.mark.parametrize(
    ("value", "per", "units"),
    [(1234.5, 10, 123), (0.3, 0.1, 3), (9.99, 10, 0), (-50, 10, 0), (10**30, 10, 10**29)],
)
def test_units_are_floored_on_the_numbers_as_written(value, per, units):
    assert PointsPerUnit(points=1, per=per, of="a").units({"a": value}) == units


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Condition("a", "=>", 1), "the operator is one of"),
        (lambda: Condition("a", ">=", "5"), "compares numbers"),
        (lambda: Condition("a", "in", []), "non-empty list"),
        (lambda: Condition("a", "==", [1]), "compare with a string"),
        (lambda: Points(points=0), "at least 1"),
        (lambda: PointsPerUnit(points=1, per=0, of="a"), "above 0"),
        (lambda: Coupon(coupon_type=""), "coupon kind"),
        (lambda: Campaign(id="7", name="n", event="e", reward=Points(points=1)), "whole number"),
        (lambda: Campaign(id=1, name=" ", event="e", reward=Points(points=1)), "name"),
        (lambda: Campaign(id=1, name="n", event="e", reward=5), "reward is"),
        (
            lambda: Campaign(id=1, name="n", event="e", reward=Points(points=1), target=0),
            "target",
        ),
        (
            lambda: Campaign(
                id=1, name="n", event="e", reward=PointsPerUnit(points=1, per=1, of="a"), target=2
            ),
            "leave target at 1",
        ),
        (
            lambda: Campaign(id=1, name="n", event="e", reward=Points(points=1), max_times=0),
            "max_times",
        ),
        (
            lambda: Campaigns(
                campaigns=(
                    Campaign(id=1, name="a", event="e", reward=Points(points=1)),
                    Campaign(id=1, name="b", event="e", reward=Points(points=1)),
                )
            ),
            "used twice",
        ),
        (lambda: Emulator(known_events="purchase"), "not one string"),
        (lambda: Emulator(customers="c1"), "not one string"),
        (lambda: Emulator(existing_share=1.5), "from 0 to 1"),
    ],
)
def test_a_bad_campaign_or_argument_is_a_config_error_naming_the_fix(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_naive_end_date_is_utc():
    campaign = Campaign(
        id=1, name="n", event="e", reward=Points(points=1), end_date=datetime(2030, 1, 1)
    )
    assert campaign.end_date == datetime(2030, 1, 1, tzinfo=UTC)


FILE = {
    "known_events": ["newsletter"],
    "campaigns": [
        {
            "id": 1,
            "name": "Per 10 EGP",
            "event": "purchase",
            "conditions": [["currency", "==", "EGP"], ["amount", ">=", 10]],
            "reward": {"points": 1, "per": 10, "of": "amount"},
        },
        {
            "id": 2,
            "name": "Coupon",
            "event": "purchase",
            "reward": {"coupon": "FreeShipping"},
            "target": 2,
            "max_times": 1,
            "end_date": "2030-06-30T23:59:59Z",
        },
        {
            "id": 3,
            "name": "In",
            "event": "review",
            "conditions": [["rating", "in", [4, 5]]],
            "reward": {"points": 5},
        },
    ],
}


def test_campaigns_load_from_a_json_file_or_text(tmp_path):
    path = tmp_path / "campaigns.json"
    path.write_text(json.dumps(FILE), encoding="utf-8")
    loaded = Campaigns.from_json(path)
    assert loaded == Campaigns.from_json(str(path)) == Campaigns.from_json(json.dumps(FILE))
    assert loaded.known_events == {"newsletter"}
    first, second, third = loaded.campaigns
    assert first.conditions == (Condition("currency", "==", "EGP"), Condition("amount", ">=", 10))
    assert first.reward == PointsPerUnit(points=1, per=10, of="amount")
    assert second.reward == Coupon(coupon_type="FreeShipping")
    assert (second.target, second.max_times) == (2, 1)
    assert second.end_date == datetime(2030, 6, 30, 23, 59, 59, tzinfo=UTC)
    assert third.conditions[0].value == (4, 5)
    with Emulator(campaigns=loaded, known_events=["extra"]) as emu:
        assert emu.campaigns.known_events == {"newsletter", "extra"}


def _with(campaign_change=None, **top):
    data = json.loads(json.dumps(FILE)) | top
    if campaign_change:
        data["campaigns"][0] = campaign_change(data["campaigns"][0])
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(events=[]), "nothing else"),
        (_with(campaigns={}), "a list of campaign objects"),
        (_with(known_events="newsletter"), "a list of event names"),
        (_with(lambda c: c | {"max_time": 2}), r"campaigns\[0\]: unknown key 'max_time'"),
        (_with(lambda c: {k: v for k, v in c.items() if k != "id"}), "'id' is missing"),
        (_with(lambda c: c | {"reward": {"points": 1, "per": 10}}), "a reward is"),
        (_with(lambda c: c | {"conditions": [["amount", ">="]]}), "a condition is"),
        (_with(lambda c: c | {"conditions": ["amount >= 10"]}), "a condition is"),
        (_with(lambda c: c | {"conditions": [["a", "~", 1]]}), "the operator is one of"),
        (_with(lambda c: c | {"end_date": "next year"}), "not an ISO-8601 date-time"),
        (_with(lambda c: c | {"id": 2}), "used twice"),
        (_with(lambda c: "a campaign"), r"campaigns\[0\] is not an object"),
    ],
)
def test_a_bad_campaigns_file_is_one_clear_config_error(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as raised:
        Campaigns.from_json(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert "\n" not in str(raised.value)


def test_a_campaigns_file_that_is_not_json_or_not_there(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"campaigns": [', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.json is not JSON: .*line 1"):
        Campaigns.from_json(path)
    with pytest.raises(ConfigError, match=r"cannot read the campaigns file .*missing.json"):
        Campaigns.from_json(tmp_path / "missing.json")


def test_the_quote_is_an_exact_oracle_for_every_row():
    """In process, ``Emulator.quote`` gives what the socket answers, row by row."""
    campaigns = Campaigns.from_json(SAMPLE_CAMPAIGNS)
    bodies = []
    for row in pd.read_parquet(ROOT / "sample_data" / "events.parquet").head(150).itertuples():
        if not all(isinstance(v, str) and v.strip() for v in (row.customer_id, row.event_name)):
            continue
        keys = ("amount", "currency", "rating", "first_order")
        metadata = {key: v for key in keys if pd.notna(v := getattr(row, key))}
        bodies.append({"customerId": row.customer_id, "events": {row.event_name: metadata}})
    unlimited = RateLimits.unlimited()
    with Emulator(campaigns=campaigns, existing_share=1, preview_limits=unlimited) as emu:
        with client_of(emu) as client:
            answers = [preview(emu, sent, client=client).json() for sent in bodies]
        assert answers == [emu.quote(sent) for sent in bodies]
    assert sum(answer["totalPoints"] for answer in answers) > 0


# --- the sample campaigns, the CLI and the wheel -----------------------------------------------


def test_the_sample_campaigns_fit_the_sample_and_show_every_answer():
    campaigns = Campaigns.from_json(SAMPLE_CAMPAIGNS)
    history = pd.read_parquet(ROOT / "sample_data" / "events.parquet")
    valid = history.gameball.validate().valid
    names = set(valid["event_name"])
    unknown = {name for name in names if not campaigns.knows(name)}
    assert unknown == {"profile_completed"}, "one sample event name Gameball does not know"
    reasons, invalid = set(), set()
    metadata_columns = [c for c in valid.columns if c not in ("customer_id", "event_name")]
    standings = {}
    for row in valid.head(4000).itertuples(index=False):
        metadata = {
            c: getattr(row, c)
            for c in metadata_columns
            if not isinstance(getattr(row, c), pd.Timestamp) and pd.notna(getattr(row, c))
        }
        metadata = {k: v.item() if hasattr(v, "item") else v for k, v in metadata.items()}
        standing = standings.setdefault(row.customer_id, {})
        sent = {"customerId": row.customer_id, "events": {row.event_name: metadata}}
        answer = campaigns.quote(sent, standing, now=NOW)
        invalid |= {e["invalidReason"] for e in answer["events"] if not e["valid"]}
        reasons |= {c["reason"] for e in answer["events"] for c in e["campaigns"]}
        standing.update(campaigns.award(row.event_name, metadata, standing, now=NOW)[1])
    assert reasons == {"Rewarded", "ProgressOnly", "NoMatchingConditions", "NonPointsReward"}
    assert invalid == {"EventNotFound"}


def test_the_wheel_ships_the_sample_campaigns():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert shipped["sample_data/campaigns.json"] == "gb_backfill/sample_data/campaigns.json"


def test_the_cli_serves_the_preview_from_a_campaigns_file():
    command = [
        *(sys.executable, "-m", "gb_backfill", "emulator", "--port", "0"),
        *("--campaigns", str(SAMPLE_CAMPAIGNS), "--customers", "alice,bob"),
        *("--preview-per-second", "2", "--preview-per-window", "0"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split()[3]
        assert process.stdout.readline().startswith(
            "reward preview: 10 campaigns, and 1 more event name it knows that no campaign "
            "rewards, from "
        )
        sent = {"customerId": "alice", "events": {"signed_up": None}}
        answer = httpx.post(url + PREVIEW, json=sent, headers=KEY)
        assert (answer.status_code, answer.json()["totalPoints"]) == (200, 100)
        stranger = httpx.post(url + PREVIEW, json=sent | {"customerId": "carol"}, headers=KEY)
        assert stranger.status_code == 404
        assert httpx.post(url + PREVIEW, json=sent, headers=KEY).status_code == 429
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        process.stdout.close()


def test_the_cli_says_what_is_wrong_with_a_campaigns_file(tmp_path, capsys):
    from gb_backfill._cli import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"campaigns": [{"id": 1}]}', encoding="utf-8")
    assert main(["emulator", "--port", "0", "--campaigns", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"gb-backfill: error: {bad}: campaigns[0]: 'name' is missing"
    assert main(["emulator", "--existing-share", "2"]) == 2
    assert "existing_share" in capsys.readouterr().err


def test_the_cli_help_names_the_preview_defaults(capsys):
    from gb_backfill._cli import main

    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "previews per second (0 lifts it) (default: 30)" in text
    assert "previews per window (0 lifts it) (default: 360)" in text
    assert "--campaigns FILE.json" in text
