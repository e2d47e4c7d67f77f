"""Numbers written for people (issue 30, item 6): ``--thousands`` and ``--decimal`` (as pandas'
``read_csv`` names them) read ``1,299.50`` and ``1.299,50`` in the columns ``--dtype`` reads as
numbers, the same keywords in Python, and the warning about such numbers names the flag."""

import json

import pytest

import gb_backfill
from gb_backfill._cli import main


def bodies(path):
    return [json.loads(line)["body"] for line in path.read_text(encoding="utf-8").splitlines()]


def amounts(path):
    return [next(iter(b["events"].values()))["amount"] for b in bodies(path)]


def test_thousands_reads_numbers_with_separators_on_the_command_line(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text(
        'customer_id,event_name,amount\nc1,purchase,"1,299.50"\nc2,purchase,12\n'
        'c3,purchase,"1,000,000"\n', encoding="utf-8",
    )  # fmt: skip
    out = tmp_path / "b.jsonl"
    code = main(["send", str(source), "--dry-run", "--dtype", "amount=float", "--thousands", ",",
                 "--write-bodies", str(out), "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    assert amounts(out) == [1299.5, 12, 1000000]
    assert "number_as_text" not in capsys.readouterr().out, "no warning: they are numbers now"


def test_a_decimal_comma_with_a_point_for_thousands_as_regional_excel_writes(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_bytes(
        "customer_id;event_name;amount;qty\r\nc1;purchase;1.299,50;1.000\r\nc2;purchase;0,25;2\r\n"
        .encode("cp1252")
    )  # fmt: skip
    out = tmp_path / "b.jsonl"
    code = main(["send", str(source), "--dry-run", "--sep", ";", "--encoding", "cp1252",
                 "--dtype", "amount=float", "--dtype", "qty=int", "--thousands", ".",
                 "--decimal", ",", "--write-bodies", str(out), "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    assert amounts(out) == [1299.5, 0.25]
    assert [next(iter(b["events"].values()))["qty"] for b in bodies(out)] == [1000, 2]


def test_the_same_keywords_in_python(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('customer_id,event_name,amount\nc1,e,"1,299.50"\nc2,e,x\n', "utf-8")
    report = gb_backfill.validate_path(source, dtype={"amount": "float"}, thousands=",")
    assert report.invalid_rows == 1, "x is no number, even with a thousands separator"
    plan = gb_backfill.plan_path(
        source, dtype={"amount": "float"}, thousands=",", bodies_path=tmp_path / "b.jsonl",
        progress=False,
    )  # fmt: skip
    assert plan.valid == 1
    assert amounts(tmp_path / "b.jsonl") == [1299.5]


def test_other_columns_keep_their_text(tmp_path):
    """The marks apply to the columns --dtype reads as numbers, and to no other."""
    source = tmp_path / "in.csv"
    source.write_text('customer_id,event_name,amount,note\nc1,e,"1,5","1,5"\n', "utf-8")
    out = tmp_path / "b.jsonl"
    gb_backfill.plan_path(source, dtype={"amount": "float"}, thousands=".", decimal=",",
                          bodies_path=out, progress=False)  # fmt: skip
    assert bodies(out)[0]["events"]["e"] == {"amount": 1.5, "note": "1,5"}


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--thousands", ","], "--thousands applies to the columns read as numbers with --dtype"),
        (["--dtype", "amount=float", "--thousands", ",", "--decimal", ","],
         "--thousands and the decimal mark are both ','"),
        (["--dtype", "amount=float", "--thousands", "ab"], "e.g. --thousands ,"),
        (["--dtype", "amount=float", "--decimal", "5"], "e.g. --decimal ,"),
    ],
)  # fmt: skip
def test_marks_that_cannot_work_are_one_line_refusals(tmp_path, capsys, flags, said):
    source = tmp_path / "in.csv"
    source.write_text("customer_id,event_name,amount\nc1,e,1\n", "utf-8")
    assert main(["validate", str(source), *flags]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert err.count("\n") == 1


def test_the_warning_about_separated_numbers_names_the_flag(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text('customer_id,event_name,amount\nc1,e,"1,299.50"\n', "utf-8")
    main(["validate", str(source)])
    out = capsys.readouterr().out
    assert "--dtype amount=float --thousands , reads them" in out
    assert "no --dtype reads them" not in out


def test_a_thousands_mark_that_does_not_group_thousands_is_not_dropped(tmp_path):
    """--thousands , on a file written with a decimal comma (99,16, 2.277,83): dropping the
    commas would send 9916 for 99.16 without a word; the rows fail their conversion instead."""
    path = tmp_path / "regional.csv"
    path.write_text(
        'customer_id,event_name,amount\nc1,purchase,"1,299.50"\nc2,purchase,"99,16"\n'
        'c3,purchase,"2.277,83"\n',
        encoding="utf-8",
    )
    plan = gb_backfill.plan_path(path, dtype={"amount": "float"}, thousands=",")
    assert (plan.valid, plan.invalid) == (1, 2)
    bodies = tmp_path / "bodies.jsonl"
    gb_backfill.plan_path(path, dtype={"amount": "float"}, thousands=",", bodies_path=bodies)
    assert "1299.5" in bodies.read_text()
    assert "9916" not in bodies.read_text()


@pytest.mark.parametrize(
    ("amounts", "said"),
    [
        (
            ['"1.299,50"', '"4.479,09"', "x"],
            "--decimal , reads 99,50, and with --thousands . 1.299,50",
        ),
        (['"1,299.50"', '"4,479.09"', "x"], "--thousands , reads 1,299.50"),
        (["x", "y", "1.5"], "or read the column as text (--dtype amount=text"),
    ],
)
def test_validate_shows_what_a_code_looks_like_and_the_flags_that_read_such_numbers(
    tmp_path, capsys, amounts, said
):
    """A trial's `validate --dtype amount=float` said only 'dtype_unconvertible: 4,000' of
    amounts written '4.479,09'; the fix was in the failures file alone."""
    source = tmp_path / "in.csv"
    lines = [f"c{n},purchase,{amount}" for n, amount in enumerate(amounts)]
    source.write_text("customer_id,event_name,amount\n" + "\n".join(lines) + "\n")
    assert main(["validate", str(source), "--dtype", "amount=float"]) == 1
    (line,) = [s for s in capsys.readouterr().out.splitlines() if "dtype_unconvertible" in s]
    assert line.startswith("  dtype_unconvertible: "), line
    assert ", e.g. column 'amount' is read as float" in line
    assert said in line
