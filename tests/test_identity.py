"""A row's identity depends on the row alone: re-runs in everyday workflows send nothing twice.

Each test sends over a real socket to the emulator, which records every event; ``arrivals``
counts them per ``order_id``, the way a user would check for duplicates in Gameball.
"""

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from gb_backfill import Emulator, RateLimits, RetryPolicy, read_failures, send, send_path
from gb_backfill._cli import main
from gb_backfill._input.reader import InputFile
from gb_backfill._rows.mapping import resolve_mapping
from gb_backfill._rows.payloads import encode_rows
from gb_backfill._rows.rules import check_frame
from tests.conftest import MockGameball, send_options

FAST = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)


def orders(rows=200, seed=0):
    rng = np.random.default_rng(seed)
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s")
    # A few stamps with a fraction: the old per-batch rule wrote the others with ".000" too.
    stamps = stamps.where(np.arange(rows) % 50 != 7, stamps + pd.Timedelta("250ms"))
    return pd.DataFrame(
        {
            "customerId": [f"c{n}" for n in rng.integers(0, 80, rows)],
            "eventName": rng.choice(["purchase", "review"], rows),
            "order_id": [f"o{n}" for n in range(rows)],
            "amount": rng.uniform(1, 100, rows).round(2),
            "at": stamps,
        }
    )


def arrivals(emulator):
    return emulator.events()["metadata"].map(lambda m: m["order_id"]).value_counts()


@pytest.fixture
def emulator():
    with Emulator(limits=RateLimits.unlimited()) as emu:
        yield emu


def run(emu, df, ledger, **options):
    return send(
        df,
        base_url=emu.base_url,
        api_key=emu.api_key,
        limits=RateLimits.unlimited(),
        retry=FAST,
        progress=False,
        ledger=ledger,
        **options,
    )


def test_rerun_with_another_batch_size_sends_nothing(emulator, tmp_path):
    df = orders()
    ledger = tmp_path / "l"
    first = run(emulator, df, ledger, batch_rows=len(df))
    assert first.sent == len(df)
    again = run(emulator, df, ledger, batch_rows=37)
    assert (again.requests, again.skipped) == (0, len(df))
    assert arrivals(emulator).max() == 1


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda df: df.sample(frac=1, random_state=1), id="sorted"),
        pytest.param(lambda df: df.iloc[::3], id="filtered"),
        pytest.param(lambda df: df.assign(note="unsent"), id="added-unsent-column"),
        pytest.param(
            lambda df: df[["at", "amount", "order_id", "eventName", "customerId"]],
            id="columns-reordered",
        ),
    ],
)
def test_reordered_filtered_or_widened_input_sends_nothing_again(emulator, tmp_path, change):
    df = orders()
    ledger = tmp_path / "l"
    sent_columns = ["order_id", "amount", "at"]
    run(emulator, df, ledger, metadata=sent_columns)
    changed = change(df)
    again = run(emulator, changed, ledger, metadata=sent_columns)
    assert again.requests == 0
    assert again.skipped == len(changed)
    assert arrivals(emulator).max() == 1


def test_dropna_after_validate_sends_only_the_fixed_rows(emulator, tmp_path):
    df = orders()
    df.loc[[3, 150], "customerId"] = None
    ledger = tmp_path / "l"
    assert run(emulator, df, ledger).invalid == 2
    fixed = df.copy()
    fixed.loc[150, "customerId"] = "c-fixed"
    again = run(emulator, fixed.dropna(subset=["customerId"]), ledger)
    assert (again.sent, again.skipped, again.requests) == (1, len(df) - 2, 1)
    assert arrivals(emulator).max() == 1


def test_identical_rows_are_each_sent_once_and_remembered_by_occurrence(emulator, tmp_path):
    row = {"customerId": "c1", "eventName": "song_liked", "order_id": "same"}
    df = pd.DataFrame([row, row, row, {**row, "customerId": "c2"}])
    ledger = tmp_path / "l"
    assert run(emulator, df, ledger).sent == 4
    again = run(emulator, df.iloc[::-1], ledger, batch_rows=1)
    assert again.requests == 0
    assert run(emulator, pd.concat([df, df.iloc[[0]]]), ledger).sent == 1, "a fourth twin is new"


def test_resending_the_failures_file_with_the_same_ledger_sends_only_what_failed(tmp_path):
    """Unknown rows (processed by the server, answer lost) are recognised; retryable ones go."""
    df = orders(60)
    twin = df.iloc[[10]].assign(amount=df.loc[10, "amount"])
    df = pd.concat([df, twin, twin], ignore_index=True)  # three identical rows

    def flaky(request, body, n):
        order = body["events"][next(iter(body["events"]))]["order_id"]
        if order in ("o5", "o6"):
            raise httpx.ReadTimeout("lost", request=request)
        if order == "o7":
            return httpx.Response(503)
        if order == "o10" and n > 40:
            return httpx.Response(503)
        return httpx.Response(200)

    ledger, failures = tmp_path / "l", tmp_path / "f.parquet"
    first = send(
        df,
        **send_options(MockGameball(flaky)),
        ledger=ledger,
        failures_path=failures,
        batch_rows=7,
    )
    assert first.unknown == 2
    assert first.failed >= 1
    gameball = MockGameball()
    again = send_path(
        failures, **send_options(gameball), ledger=ledger, failures_path=tmp_path / "g.parquet"
    )
    resent = [
        body["events"][next(iter(body["events"]))]["order_id"] for _, body in gameball.requests
    ]
    assert "o5" not in resent, "unknown rows are never resent"
    assert "o6" not in resent
    assert sorted(resent) == sorted(
        read_failures(failures).query("gb_status == 'failed'")["order_id"]
    )
    assert again.unknown == 2


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_cli_rerun_with_another_batch_size_and_the_failures_file(emulator, tmp_path, capsys):
    df = orders(120)
    df.loc[4, "customerId"] = ""
    source = tmp_path / "orders.csv"
    df.to_csv(source, index=False)
    common = [
        "--base-url",
        emulator.base_url,
        "--api-key",
        emulator.api_key,
        "--rate",
        "0",
        "--quota",
        "0",
        "--ledger",
        str(tmp_path / "l"),
        "--no-progress",
    ]
    failures = tmp_path / "f.parquet"
    assert (
        main(["send", str(source), *common, "--failures", str(failures), "--batch-rows", "50"]) == 1
    )
    assert (
        main(["send", str(source), *common, "--failures", str(failures), "--batch-rows", "7"]) == 1
    )
    assert main(["send", str(failures), *common, "--failures", str(tmp_path / "g.parquet")]) == 1
    assert arrivals(emulator).max() == 1
    assert len(arrivals(emulator)) == 119


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_a_120k_row_csv_keeps_every_id_exactly_as_written(tmp_path):
    """Zero-padded and 19-digit ids in some chunks only; every chunk reads them the same."""
    rows = 120_000
    ids = np.array([f"{n}" for n in range(rows)], dtype=object)
    ids[60_000:65_000] = [f"{n:07d}" for n in range(5_000)]  # one chunk: zero-padded
    ids[110_000:110_010] = [f"{10**18 + n}" for n in range(10)]  # 19 digits, last chunk only
    mobiles = np.where(np.arange(rows) % 1000 == 0, "01012345678", "")
    df = pd.DataFrame(
        {
            "customerId": ids,
            "eventName": "purchase",
            "mobile": mobiles,
            "sku": np.where(np.arange(rows) == 70_000, "000045", "12"),
            "country": np.where(np.arange(rows) == 5, "NA", "EG"),
        }
    )
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    source = InputFile(path, text_columns=["customerId", "mobile"])
    mapping = resolve_mapping(source.columns)
    sent_ids, mobiles_sent, skus, countries = [], set(), set(), set()
    for frame in source.frames(batch_rows=50_000):
        checked = check_frame(frame, mapping)
        assert not checked.invalid.any()
        for body in encode_rows(frame, checked).bodies:
            payload = json.loads(body)
            sent_ids.append(payload["customerId"])
            mobiles_sent.add(payload.get("mobile"))
            metadata = payload["events"]["purchase"]
            skus.add(metadata["sku"])
            countries.add(metadata["country"])
    assert sent_ids == list(ids)
    assert mobiles_sent == {None, "01012345678"}
    assert skus == {"000045", "12"}, "one zero-padded value keeps the whole column text"
    assert countries == {"NA", "EG"}, "NA is Namibia, not missing"


def test_csv_types_are_decided_once_for_the_file_and_overridable(tmp_path):
    path = tmp_path / "x.csv"
    lines = ["customerId,eventName,n,flag,when"]
    lines += [f"c{i},e,{i},true,2024-01-01" for i in range(30)]
    lines += ["c30,e,oops,yes,2024-01-02"]  # one stray value in the last chunk
    path.write_text("\n".join(lines) + "\n")
    source = InputFile(path)
    values = pd.concat(source.frames(batch_rows=10))
    assert values["n"].tolist()[:2] == ["0", "1"], "one stray value: the whole column is text"
    assert values["flag"].tolist()[0] == "true"
    typed = InputFile(path, csv=None)
    assert typed.types["when"] == "text", "timestamps stay as written unless asked"
    from gb_backfill._input.reader import CsvOptions

    asked = InputFile(path, csv=CsvOptions.make(dtype={"when": "datetime"}, na_values=["oops"]))
    frame = pd.concat(asked.frames(batch_rows=10))
    assert str(frame["when"].dtype).startswith("datetime64")
    assert asked.types["n"] == "int"
    assert frame["n"].isna().tolist()[-1]


def test_occurrences_are_counted_across_batches_and_spilled_runs(monkeypatch):
    """The hash store spills to disk in runs; counts stay exact across them."""
    from gb_backfill._rows.keys import RowKeyMaker, _SeenHashes

    monkeypatch.setattr(_SeenHashes, "_SPILL", 16)
    monkeypatch.setattr(_SeenHashes, "_BLOCK", 4)
    rng = np.random.default_rng(3)
    bodies = [f"body-{n}".encode() for n in rng.integers(0, 150, 2_000)]
    expected = pd.Series(bodies).groupby(pd.Series(bodies)).cumcount().tolist()
    counter = RowKeyMaker()
    found = []
    for start in range(0, len(bodies), 37):
        found += counter.keys(bodies[start : start + 37]).occurrence.tolist()
    counter.close()
    assert found == expected
