"""A ledger survives an upgrade: bodies and row keys are the same on every supported version.

A row's ledger key hashes its request body, and its loose key (the changed-rows check) hashes
how its values are written; both depend on how pandas, numpy and pyarrow render values. Were a
new version to render one value differently, a ledger written before the upgrade would resend
that row (a new key) or refuse the run (a changed row). These tests compute the bodies, keys and
loose keys of odd values and of the sample (read as a DataFrame, as Parquet and as CSV) and
compare them with ``fixtures/keys_across_versions.json``, written once and then only read. The
default suite runs on the newest versions and, in .ci/run's floor step, on the declared floor,
so both are compared with the same stored answer.

``GB_BACKFILL_WRITE_FIXTURES=1 python -m pytest tests/test_keys_across_versions.py -n 0``
writes the fixture again: only for a deliberate change of the key scheme, which needs a new
``CONTENT_SCHEME`` too (old ledgers are then refused, not misread).
"""

import datetime as dt
import decimal
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gb_backfill._engine.prepare import Preparer
from gb_backfill._input.reader import InputFile, frame_chunks
from gb_backfill._options import SendOptions, make_settings
from gb_backfill._rows.keys import CONTENT_SCHEME
from gb_backfill._rows.mapping import resolve_mapping

FIXTURE = Path(__file__).parent / "fixtures" / "keys_across_versions.json"
SAMPLE = Path(__file__).parent.parent / "sample_data"
WRITE = os.environ.get("GB_BACKFILL_WRITE_FIXTURES") == "1"


def odd_values():
    """One row per way a value can be written, valid and invalid rows alike."""
    rows = 14
    utc = pd.Timestamp("2024-03-01 12:30:45.123456", tz="UTC")
    return pd.DataFrame(
        {
            "customerId": [
                "c1",
                "c2",
                "c1",
                "0042",
                "c5",
                "",
                "c7",
                "ü-ñ",
                "c9",
                "c1",
                "c1",
                None,
                "c12",
                "c13",
            ],
            "eventName": [
                "purchase",
                "review",
                "purchase",
                "purchase",
                "signup",
                "purchase",
                "purchase",
                "purchase",
                "review",
                "purchase",
                "purchase",
                "purchase",
                "",
                "referral",
            ],
            "amount": [
                9.5,
                0.1,
                1 / 3,
                1e20,
                -0.0,
                5.0,
                np.nan,
                2.5e-7,
                100.0,
                9.5,
                9.5,
                1.0,
                3.0,
                float("inf"),
            ],
            "items": pd.array(
                [1, None, 3, 2**53 + 1, 0, -7, 5, 1, 2, 1, 1, 1, 1, 1], dtype="Int64"
            ),
            "big": [2**63 - 1, -(2**63), 0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10],
            "paid": pd.array(
                [
                    True,
                    False,
                    None,
                    True,
                    True,
                    True,
                    False,
                    True,
                    True,
                    True,
                    True,
                    True,
                    True,
                    True,
                ],
                dtype="boolean",
            ),
            "price": [
                decimal.Decimal("19.99"),
                decimal.Decimal("0.10"),
                None,
                decimal.Decimal("1E+3"),
                decimal.Decimal("123456789012345678.9"),
                *[decimal.Decimal("1.5")] * 9,
            ],
            "at": pd.to_datetime(
                [
                    "2024-01-01 00:00",
                    "2024-02-29 23:59:59.999999999",
                    None,
                    "1999-12-31 00:00:01",
                    *["2025-06-01 08:00"] * 10,
                ],
                format="ISO8601",
            ),
            "at_utc": [utc, utc + pd.Timedelta("1ns"), pd.NaT, *[utc] * 11],
            "on": [dt.date(2024, 1, 2), None, *[dt.date(2020, 2, 29)] * 12],
            "note": [
                "plain",
                "emoji 🎉",
                'quote " and \\ back',
                "línea\nnueva",
                "",
                None,
                "  spaced  ",
                "0123",
                "1e3",
                "true",
                "true",
                "NaN",
                "x",
                "y",
            ],
            "tier": pd.Categorical(["gold", "silver", None, *["gold"] * 11]),
            # nested values are invalid metadata: their rows are keyed by their cells
            "utm": [*[None] * 12, {"source": "mail", "n": [1, 2.5]}, None],
        }
    ).iloc[:rows]


def fingerprints(frames):
    """Each row's body, ledger key, ``gb_key`` and loose key, as the send would make them."""
    frames = list(frames)
    mapping = resolve_mapping(frames[0].columns)
    settings = make_settings(SendOptions(), dry_run=True)
    preparer = Preparer(settings, mapping, loose=True)
    rows, offset = [], 0
    try:
        for frame in frames:
            prepared = preparer.prepare(frame, offset)
            chunk = prepared.chunk
            # The loose key ledgers written before event names were folded hold: the former
            # key where folding changes the name (it is looked up too), else the loose key.
            loose, forms = chunk.loose.keys, chunk.loose.forms
            loose = [chunk.loose.former.get(index, key) for index, key in enumerate(loose)]
            for index, row in enumerate(prepared.rows):
                rows.append([
                    offset + row.local, row.body.decode(), chunk.keys.keys[row.key_index].hex(),
                    chunk.keys.text(row.key_index), loose[index].hex(), int(forms[index]),
                ])  # fmt: skip
            for n, position in enumerate(prepared.invalid_positions.tolist()):
                index = len(prepared.rows) + n
                rows.append([offset + position, None, chunk.keys.keys[index].hex(),
                             chunk.keys.text(index), None, None])  # fmt: skip
            offset += len(frame)
    finally:
        preparer.close()
    return sorted(rows, key=lambda row: row[0])


def digest(rows):
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def computed():
    sample = pd.read_parquet(SAMPLE / "events.parquet")
    csv = InputFile(SAMPLE / "events.csv", text_columns=["customer_id", "event_name"])
    parquet = InputFile(SAMPLE / "events.parquet")
    return {
        "scheme": CONTENT_SCHEME,
        "odd_values": fingerprints(frame_chunks(odd_values(), 5)),
        "sample_frame": digest(fingerprints(frame_chunks(sample, 10_000))),
        "sample_parquet": digest(fingerprints(parquet.frames(batch_rows=10_000))),
        "sample_csv": digest(fingerprints(csv.frames(batch_rows=10_000))),
    }


@pytest.fixture(scope="module")
def now():
    found = computed()
    if WRITE:
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n")
    return found


@pytest.fixture(scope="module")
def stored(now):  # after ``now``, which writes the fixture when asked to
    return json.loads(FIXTURE.read_text())


def test_the_fixture_is_of_this_key_scheme(now, stored):
    assert stored["scheme"] == now["scheme"] == CONTENT_SCHEME


def test_odd_values_give_the_stored_bodies_and_keys(now, stored):
    assert len(stored["odd_values"]) == len(odd_values())
    for row, then in zip(now["odd_values"], stored["odd_values"], strict=True):
        assert row == then, f"row {then[0]}: {row} != stored {then}"


@pytest.mark.parametrize("read", ["sample_frame", "sample_parquet", "sample_csv"])
def test_the_sample_gives_the_stored_bodies_and_keys(now, stored, read):
    assert now[read] == stored[read]


def test_the_fixture_holds_valid_and_invalid_rows(stored):
    bodies = [row[1] for row in stored["odd_values"]]
    assert sum(body is None for body in bodies) >= 2, "invalid rows are keyed too"
    assert sum(body is not None for body in bodies) >= 10
