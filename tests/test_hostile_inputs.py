"""A corpus of hostile inputs, each through validate, the dry run and a send to the emulator.

Every file ends without a traceback, with the exit code :func:`expected_exit` gives, and with
every row either sent, value for value, as the input holds it, or a failure with its code.
The CLI runs in-process (one subprocess checks what a terminal really shows).
"""

import datetime as dt
import decimal
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gb_backfill
from gb_backfill import Emulator, RateLimits, read_failures, send, validate
from gb_backfill._cli import main

D = decimal.Decimal
USER = ["--customer-id", "user_id", "--event-name", "event"]


def expected_exit(command: str, *, invalid: int, usage: bool = False) -> int:
    """The exit code of ``command`` (validate, dry-run or send) by the one rule: 2 for usage, 1
    when rows are left invalid or unsent, else 0."""
    if usage:
        return 2
    return 1 if invalid else 0


@dataclass(frozen=True)
class Sent:
    """A row that must go out as this body."""

    customer: str
    event: str
    metadata: dict = field(default_factory=dict)

    def body(self):
        return {"customerId": self.customer, "events": {self.event: self.metadata}}


@dataclass(frozen=True)
class Failed:
    """A row that must not go out: a failure with this code."""

    code: str


@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[Path], None]
    rows: list
    flags: list = field(default_factory=lambda: list(USER))
    suffix: str = ".csv"
    usage: str | None = None  # bad usage: the one-line error says this

    @property
    def invalid(self):
        return sum(isinstance(row, Failed) for row in self.rows)


def text(content, encoding="utf-8"):
    return lambda path: path.write_bytes(content.encode(encoding))


def table(columns):
    return lambda path: pq.write_table(pa.table(columns), path)


WIDE = "1234567890123456789012345678.1234567890"  # 38 digits
CASES = [
    Case(
        "trailing-separator",
        text("user_id,event,amount\n0012,buy,1.5,\n0013,sell,2,\n"),
        [Sent("0012", "buy", {"amount": D("1.5")}), Sent("0013", "sell", {"amount": 2})],
    ),
    Case(
        "ragged-lines",
        text(
            "user_id,event,note\n"
            "r1,buy,a\n"
            "r2,buy,b,extra\n"
            "r3,buy\n"
            "\n"
            'r4,buy,"two\nlines",,\n'
            "r5,buy,\n"
        ),
        [
            Sent("r1", "buy", {"note": "a"}),
            Failed("csv_extra_fields"),
            Failed("csv_missing_fields"),
            Sent("r4", "buy", {"note": "two\nlines"}),
            Sent("r5", "buy"),
        ],
    ),
    Case(
        "wrong-separator",
        text("user_id;event;amount\nw1;buy;1\n"),
        [],
        usage="is the separator ';'?",
    ),
    Case(
        "bom-and-semicolons",
        text("\ufeffuser_id;event;amount\nb1;buy;1,5\nb2;buy;2;x;y\nb3;buy;3\n"),
        [
            Sent("b1", "buy", {"amount": "1,5"}),
            Failed("csv_extra_fields"),
            Sent("b3", "buy", {"amount": "3"}),
        ],
        flags=[*USER, "--sep", ";"],
    ),
    Case(
        "decimals-at-38-digits-csv",
        text(f"user_id,event,amount,n\nd1,buy,{WIDE},1\nd2,buy,-0.1,123456789012345678901\n"),
        [
            Sent("d1", "buy", {"amount": D(WIDE), "n": 1}),
            Sent("d2", "buy", {"amount": D("-0.1"), "n": 123456789012345678901}),
        ],
    ),
    Case(
        "decimals-at-38-digits-parquet",
        table(
            {
                "user_id": ["p1", "p2", "p3"],
                "event": ["buy"] * 3,
                "amount": pa.array(
                    [D(WIDE), D("99999999999999999999.99"), None], pa.decimal128(38, 10)
                ),
            }
        ),
        [
            Sent("p1", "buy", {"amount": D(WIDE)}),
            Sent("p2", "buy", {"amount": D("99999999999999999999.99")}),
            Sent("p3", "buy"),
        ],
        suffix=".parquet",
    ),
    Case(
        "extension-dtypes-parquet",
        table(
            {
                "user_id": pa.array(["x1", "x2", "x3"]).dictionary_encode(),
                "event": pa.array(["buy"] * 3, pa.large_string()),
                "n": pa.array([1, None, 2**62], pa.int64()),
                "flag": pa.array([True, None, False]),
                "at": pa.array([0, 1_500_000_001, None], pa.timestamp("ms", tz="Asia/Dubai")),
                "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1999, 12, 31)]),
                "f": pa.array([0.1, None, 1e-7], pa.float32()).cast(pa.float64()),
                "took": pa.array([None, 2, None], pa.duration("s")),
            }
        ),
        [
            Sent(
                "x1",
                "buy",
                {
                    "n": 1,
                    "flag": True,
                    "at": "1970-01-01T00:00:00Z",
                    "day": "2024-02-29",
                    "f": D(repr(float(np.float32(0.1)))),
                },
            ),
            Failed("metadata_type"),
            Sent(
                "x3",
                "buy",
                {
                    "n": 2**62,
                    "flag": False,
                    "day": "1999-12-31",
                    "f": D(repr(float(np.float32(1e-7)))),
                },
            ),
        ],
        suffix=".parquet",
    ),
    Case(
        "unparsable-dtype-values",
        text(
            "user_id,event,at,n\nu1,buy,2024-01-31T10:00:00,007\nu2,buy,yesterday,1\nu3,buy,2024-02-01,4.5\n"
        ),
        [
            Sent("u1", "buy", {"at": "2024-01-31T10:00:00", "n": 7}),
            Failed("dtype_unconvertible"),
            Failed("dtype_unconvertible"),
        ],
        flags=[*USER, "--dtype", "at=datetime", "--dtype", "n=int"],
    ),
    Case(
        "mixed-offsets",
        text(
            "user_id,event,ts\n"
            "m1,buy,2024-03-30T10:00:00+01:00\n"
            "m2,buy,2024-04-01T10:00:00.5+02:00\n"
            "m3,buy,2024-04-01T10:00:00\n"
        ),
        [
            Sent("m1", "buy", {"ts": "2024-03-30T09:00:00Z"}),
            Sent("m2", "buy", {"ts": "2024-04-01T08:00:00.500Z"}),
            Failed("metadata_mixed_timezones"),
        ],
        flags=[*USER, "--dtype", "ts=datetime"],
    ),
]


@pytest.fixture(scope="module")
def emulator():
    with Emulator(limits=RateLimits.unlimited()) as running:
        yield running


def run(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, out


def failure_codes(path):
    failures = read_failures(path).sort_values("gb_row")
    return dict(zip(failures["gb_row"], failures["gb_error_code"], strict=True))


def expected_failures(case):
    return {n: row.code for n, row in enumerate(case.rows) if isinstance(row, Failed)}


def kinds(body):
    [metadata] = body["events"].values()
    return {key: type(value) for key, value in metadata.items()}


def as_received(value):
    """What a receiver that reads JSON numbers as doubles sees (the emulator does)."""
    if isinstance(value, dict):
        return {key: as_received(item) for key, item in value.items()}
    return float(value) if isinstance(value, D) else value


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_row_is_sent_as_written_or_failed_with_a_code(
    case, tmp_path, capsys, emulator, monkeypatch
):
    path = tmp_path / f"{case.name}{case.suffix}"
    case.write(path)
    monkeypatch.setenv("GAMEBALL_API_KEY", "anything")
    usage = case.usage is not None

    code, out = run(
        capsys, ["validate", str(path), *case.flags, "--failures", str(tmp_path / "v.parquet")]
    )
    assert code == expected_exit("validate", invalid=case.invalid, usage=usage)
    if usage:
        assert case.usage in out.err
        assert out.err.count("\n") == 1
    elif case.invalid:
        assert failure_codes(tmp_path / "v.parquet") == expected_failures(case)

    bodies = tmp_path / "bodies.jsonl"
    dry = ["send", str(path), *case.flags, "--dry-run", "--write-bodies", str(bodies)]
    code, out = run(capsys, [*dry, "--failures", str(tmp_path / "d.parquet")])
    assert code == expected_exit("dry-run", invalid=case.invalid, usage=usage)
    sent = [row.body() for row in case.rows if isinstance(row, Sent)]
    if usage:
        assert case.usage in out.err
    else:
        lines = bodies.read_text(encoding="utf-8").splitlines()
        planned = [json.loads(line, parse_float=D)["body"] for line in lines]
        assert planned == sent, "value for value, with every digit"
        assert [kinds(b) for b in planned] == [kinds(b) for b in sent], "numbers stay numbers"

    before = len(emulator.events())
    live = [
        "send",
        str(path),
        *case.flags,
        "--base-url",
        emulator.base_url,
        "--api-key",
        emulator.api_key,
    ]
    live += [
        "--rate",
        "0",
        "--quota",
        "0",
        "--no-progress",
        "--failures",
        str(tmp_path / "s.parquet"),
    ]
    code, out = run(capsys, live)
    assert code == expected_exit("send", invalid=case.invalid, usage=usage)
    received = emulator.events().iloc[before:]
    got = sorted(
        (json.dumps(as_received(Sent(c, e, m).body()), sort_keys=True))
        for c, e, m in zip(
            received["customer_id"], received["event_name"], received["metadata"], strict=True
        )
    )
    assert got == sorted(json.dumps(as_received(body), sort_keys=True) for body in sent)
    if case.invalid and not usage:
        assert failure_codes(tmp_path / "s.parquet") == expected_failures(case)


def test_sparse_and_extension_columns_of_a_frame(tmp_path, emulator):
    """A frame (Parquet cannot hold a sparse column) through validate, the dry run and a send."""
    df = pd.DataFrame(
        {
            "customerId": pd.arrays.SparseArray(["s1", None, "s3"], dtype=pd.SparseDtype(object)),
            "eventName": "buy",
            "amount": pd.arrays.SparseArray([1.5, np.nan, 0.0]),
            "n": pd.array([7, None, 9], dtype="Int64"),
            "dec": pd.array([D(WIDE), None, D("0.5")], dtype=pd.ArrowDtype(pa.decimal128(38, 10))),
        }
    )
    assert validate(df).failures["code"].tolist() == ["customer_id_missing"]
    sent = [
        {"customerId": "s1", "events": {"buy": {"amount": D("1.5"), "n": 7, "dec": D(WIDE)}}},
        {"customerId": "s3", "events": {"buy": {"amount": 0, "n": 9, "dec": D("0.5")}}},
    ]
    bodies = tmp_path / "b.jsonl"
    plan = gb_backfill.plan(df, api_key="k", bodies_path=bodies)
    assert (plan.valid, plan.invalid) == (2, 1)
    lines = bodies.read_text().splitlines()
    assert [json.loads(line, parse_float=D)["body"] for line in lines] == sent
    before = len(emulator.events())
    report = send(df, base_url=emulator.base_url, api_key=emulator.api_key, progress=False,
                  failures_path=tmp_path / "f.parquet")  # fmt: skip
    assert (report.sent, report.invalid) == (2, 1)
    received = emulator.events().iloc[before:]
    assert received["metadata"].tolist() == [as_received(b["events"]["buy"]) for b in sent]


def test_a_terminal_sees_one_line_and_no_traceback(tmp_path):
    """One real process: the unparsable --dtype value that used to recurse without end."""
    path = tmp_path / "typed.csv"
    path.write_text("customerId,eventName,at\na,buy,yesterday\n")
    done = subprocess.run(
        [sys.executable, "-m", "gb_backfill", "validate", str(path), "--dtype", "at=datetime"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == expected_exit("validate", invalid=1)
    assert "dtype_unconvertible: 1" in done.stdout
    assert "Traceback" not in done.stderr
    assert "RecursionError" not in done.stdout + done.stderr


@pytest.mark.parametrize("ledger", ["foreign-sqlite", "not-sqlite", "empty-file"])
@pytest.mark.parametrize("command", ["dry-run", "send"])
def test_foreign_or_corrupt_ledgers_are_one_line_errors_and_left_untouched(
    tmp_path, capsys, emulator, ledger, command
):
    import sqlite3

    path = tmp_path / "in.csv"
    path.write_text("customerId,eventName\na,buy\n")
    file = tmp_path / "ledger"
    if ledger == "foreign-sqlite":
        with sqlite3.connect(file) as db:
            db.execute("CREATE TABLE rows (key TEXT, value TEXT)")
    elif ledger == "not-sqlite":
        file.write_text("orders,2024\n" * 50)
    else:
        file.write_bytes(b"")
    before = file.read_bytes()
    argv = ["send", str(path), "--ledger", str(file), "--base-url", emulator.base_url,
            "--api-key", emulator.api_key, "--no-progress", "--failures",
            str(tmp_path / "f.parquet")]  # fmt: skip
    code, out = run(capsys, [*argv, "--dry-run"] if command == "dry-run" else argv)
    if ledger == "empty-file":  # an empty file is an empty ledger
        assert code == 0
        return
    assert code == expected_exit(command, invalid=0, usage=True)
    assert out.err.count("\n") == 1, out.err
    assert "ledger" in out.err
    assert file.read_bytes() == before, "a file that is not a ledger is never written to"
