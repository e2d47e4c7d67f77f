"""The preview's text says why an event or a campaign awards less than its rows suggest
(issue 30.5): the reason, with counts, in the lines a person reads, not only in ``--json``."""

import dataclasses
import re

import pandas as pd
import pytest

from gb_backfill import Campaign, Campaigns, Condition, Emulator, Points, RateLimits
from gb_backfill._cli import main

CAMPAIGNS = Campaigns(
    campaigns=(
        Campaign(id=1, name="Big order", event="purchase",
                 conditions=(Condition("amount", ">=", 500),), reward=Points(points=100)),
        Campaign(id=2, name="Five reviews", event="review", target=5, reward=Points(points=50)),
    ),
    known_events=frozenset({"wishlist_add"}),  # Gameball knows it; no campaign is about it
)  # fmt: skip


@pytest.fixture
def export(tmp_path):
    """Purchases whose amounts were written as text (as a CSV read without --dtype gives them),
    reviews that each customer writes once (short of a 5-review target), a name Gameball does
    not know."""
    rows = 40
    frame = pd.concat([
        pd.DataFrame({"customerId": [f"p{n}" for n in range(rows)], "eventName": "purchase",
                      "amount": [f"{1000 + n:,}" for n in range(rows)]}),
        pd.DataFrame({"customerId": [f"r{n}" for n in range(rows)], "eventName": "review",
                      "amount": None}),
        pd.DataFrame({"customerId": [f"s{n}" for n in range(10)], "eventName": "sign_up",
                      "amount": None}),
        pd.DataFrame({"customerId": [f"w{n}" for n in range(10)], "eventName": "wishlist_add",
                      "amount": None}),
    ])  # fmt: skip
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_preview_names_why_each_event_and_campaign_awards_less(export, capsys):
    emulator = Emulator(campaigns=CAMPAIGNS, existing_share=0.75,
                        preview_limits=RateLimits.unlimited())  # fmt: skip
    with emulator as emu:
        flags = ["--base-url", emu.base_url, "--api-key", emu.api_key, "--no-progress"]
        lifted = ["--preview-rate", "0", "--preview-quota", "0"]
        main(["preview", str(export), *flags, *lifted, "--sample", "100"])
    out = capsys.readouterr().out
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if ":" in line}
    purchase = lines["event purchase"]
    assert "points 0" in purchase
    assert "less because (of 40 rows quoted): invalid metadata in " in purchase, purchase
    assert "(InvalidMetadata: amount must be a number)" in purchase
    assert "customer not found in " in purchase, "a quarter of the customers do not exist"
    quoted = int(purchase.split("less because (of ")[1].split()[0])
    invalid = int(purchase.split("invalid metadata in ")[1].split()[0])
    missing = int(purchase.split("customer not found in ")[1].split()[0])
    assert invalid + missing == quoted == 40, "every purchase quote is one or the other"
    review = lines["event review"]
    assert "progress only (short of the campaign's target) in " in review, review
    # Counted per campaign a quote was checked against, which the line says (it can exceed
    # the quotes).
    assert re.search(r"; progress only \(short of the campaign's target\) in [\d,]+ checks \(a "
                     r"row is checked against each campaign\)$", review), review  # fmt: skip
    sign_up = lines["event sign_up"]
    unknown = int(sign_up.split("an event name Gameball does not know in ")[1].split(",")[0])
    assert unknown + int(sign_up.split("customer not found in ")[1].split()[0]) == 10
    wishlist = lines["event wishlist_add"]
    about = int(wishlist.split("no campaign is about this event in ")[1].split()[0])
    missing = re.search(r"customer not found in (\d+)", wishlist)
    assert about + (int(missing.group(1)) if missing else 0) == 10, wishlist
    five = lines["campaign Five reviews"].strip()
    assert five.startswith("campaign Five reviews: rewards nothing in the sample; not rewarded: ")
    assert "progress only (short of the campaign's target) in " in five


def test_reasons_are_in_a_persons_words_with_their_singulars():
    """A trial read 'no matching conditions in 1 checks' of a campaign with no condition (its
    amount was short of the campaign's step)."""
    from gb_backfill._preview.report import EventPreview, less_because, not_rewarded

    fields = {f.name for f in dataclasses.fields(EventPreview)}
    event = EventPreview(**{**dict.fromkeys(fields, 0), "name": "purchase", "quoted": 1,
                            "sampled": 1, "reasons": {"NoMatchingConditions": 1},
                            "invalid_reasons": {}, "customers_not_found": 0})  # fmt: skip
    assert less_because(event) == (
        "; less because (of 1 row quoted): the campaign's rule not met (a condition, or an "
        "amount short of its step) in 1 check (a row is checked against each campaign)"
    )
    said = not_rewarded({"Per 100": {"NoMatchingConditions": 1}}, "Per 100")
    assert said.endswith("in 1 (of 1 row quoted against it)")
