"""The dry run: the plan, no network call, and the very bodies a live run sends."""

import asyncio
import json

import httpx
import numpy as np
import pandas as pd
import pytest

import gb_backfill
from gb_backfill import HISTORY_WARNING, Emulator, RateLimits, SendPlan, asend, send
from gb_backfill._cli import main
from gb_backfill._engine.makespan import job_cycle
from gb_backfill._engine.plan import minimum_seconds
from tests.conftest import MockGameball, send_options

SECRET = "emulator-secret-key"


def history(rows=500, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customerId": [f"c{n}" for n in rng.integers(0, 120, rows)],
            "eventName": rng.choice(["purchase", "review", "signup"], rows),
            "amount": rng.uniform(1, 50, rows).round(2),
            "seq": np.arange(rows),
        }
    )
    df.loc[[3, 9], "customerId"] = ""
    df["email"] = np.where(df["seq"] % 25 == 0, "x@y.co", None)
    return df


def test_a_dry_run_makes_no_request_and_plans(tmp_path):
    df = history()
    gameball = MockGameball()
    documented = send_options(gameball, limits=RateLimits())
    plan = gb_backfill.plan(df, **documented, bodies_path=tmp_path / "b.jsonl")
    assert gameball.requests == []
    assert isinstance(plan, SendPlan)
    assert (plan.rows, plan.valid, plan.invalid) == (500, 498, 2)
    assert plan.customers == df.loc[df.customerId != "", "customerId"].nunique()
    busiest = df.loc[df.customerId != "", "customerId"].value_counts()
    assert (plan.busiest_customer, plan.busiest_rows) == (busiest.index[0], busiest.iloc[0])
    assert plan.event_names == df.loc[df.customerId != "", "eventName"].value_counts().to_dict()
    assert plan.requests == {"events": 498}
    assert plan.failure_codes == {"customer_id_empty": 2}
    assert set(plan.estimated_seconds) == {"events", "batch"}
    # 498 rows fit one job, but the busiest customer's rows take one job cycle each, unless
    # the events lane takes them sooner.
    assert plan.estimated_seconds["batch"] <= plan.busiest_rows * job_cycle(0.2, 0.05) + 1e-9
    assert (plan.round_trip, plan.job_seconds) == (0.05, 0.2)  # a remote server
    assert plan.estimated_seconds["events"] == pytest.approx(minimum_seconds(498, RateLimits()))
    assert HISTORY_WARNING in plan.summary()
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 498


def test_the_events_lane_bodies_are_those_a_live_run_sends(tmp_path):
    df = history()
    gb_backfill.plan(df, **send_options(MockGameball()), bodies_path=tmp_path / "b.jsonl")
    planned = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    live = MockGameball()
    send(df, **send_options(live))
    sent = sorted(json.dumps(body, sort_keys=True) for _, body in live.requests)
    assert sorted(json.dumps(p["body"], sort_keys=True) for p in planned) == sent
    assert {p["path"] for p in planned} == {"/api/v4.0/integrations/events"}


def test_the_batch_items_are_those_a_live_run_posts(tmp_path):
    df = history()
    options = {
        "api_key": "emulator-api-key",
        "secret_key": SECRET,
        "mode": "batch",
        "limits": RateLimits.unlimited(),
        "batch_limits": RateLimits.unlimited(),
        "progress": False,
        # In order, the events lane (limits lifted) would be the quicker for every customer.
        "keep_order": False,
    }
    lifted = RateLimits.unlimited()
    with Emulator(limits=lifted, batch_limits=lifted, status_limits=lifted) as emu:
        plan = gb_backfill.plan(
            df, base_url=emu.base_url, bodies_path=tmp_path / "b.jsonl", **options
        )
        posted = []

        async def capture(request):
            if request.url.path.endswith("/batch/events"):
                posted.extend(json.loads(request.content)["body"])
            elif request.url.path.endswith("/integrations/events"):
                posted.append(json.loads(request.content))

        async def live():
            async with httpx.AsyncClient(event_hooks={"request": [capture]}) as client:
                return await asend(df, base_url=emu.base_url, client=client, **options)

        report = asyncio.run(live())
        assert emu.counters["batch_jobs"] >= plan.requests["batch"], "the plan's is the least"
    planned = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert report.sent == plan.valid
    assert sorted(json.dumps(p["body"], sort_keys=True) for p in planned) == sorted(
        json.dumps(body, sort_keys=True) for body in posted
    )
    assert plan.requests == {"events": 20, "batch": 1}  # any order: no customer's chain
    assert plan.lane_rows == {"events": 20, "batch": 478}
    # The job count is the least a send posts (it posts a job as soon as rows are ready).
    assert plan.headline().endswith(
        "in 20 single event requests, at least 1 batch job, and the jobs' status reads (batch mode)"
    )
    # Why the 20 take the events lane, said where they are counted.
    events_lane = next(line for line in plan.summary().splitlines() if "events lane:" in line)
    assert events_lane.endswith("(20 with an email, mobile or session token: no job carries them)")


@pytest.mark.parametrize(
    ("requests", "limits", "seconds"),
    [
        (1, RateLimits(), 0.0),
        (101, RateLimits(per_second=100, per_window=0), 1.0),
        (1200, RateLimits(), 11.99),
        (1201, RateLimits(), 30.0),
        (1000, RateLimits(per_second=30, per_window=360), 69.3),
    ],
)
def test_the_least_time_at_the_limits(requests, limits, seconds):
    assert minimum_seconds(requests, limits) == pytest.approx(seconds, abs=0.01)


def test_the_cli_dry_run_prints_the_plan_and_the_warning(tmp_path, capsys):
    path = tmp_path / "in.parquet"
    history(50).to_parquet(path)
    code = main(["send", str(path), "--api-key", "k", "--dry-run", "--mode", "batch",
                 "--secret-key", "s", "--write-bodies", str(tmp_path / "b.jsonl")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, "two rows are invalid: the plan leaves them unsent"
    assert "dry run, nothing was sent: 50 rows, 48 valid, 2 invalid;" in out
    assert "estimated time in batch mode" in out
    assert "test API key" in out


def test_the_plan_shows_the_pace_a_reserve_leaves(tmp_path, capsys):
    """The key also serves a live shop: the plan says what the run keeps to, and estimates at it."""
    plan = gb_backfill.plan(history(50), reserve=0.3, mode="batch", secret_key="s")
    assert plan.pace["events"] == RateLimits(per_second=70, per_window=840)
    assert plan.pace["batch"] == RateLimits(per_second=21, per_window=252)
    assert "events 70/s and 840 per 30 s; batch jobs 21/s and 252 per 30 s (30% of each" in (
        plan.summary()
    )
    assert "30% of each limit left for other clients of the key" in plan._repr_html_()
    rows = [{"customerId": f"c{n}", "eventName": "e"} for n in range(2400)]
    full, kept = (gb_backfill.plan(pd.DataFrame(rows), reserve=r) for r in (0, 0.3))
    assert "nothing left for other clients of the key" in full.summary()
    assert kept.estimated_seconds["events"] > full.estimated_seconds["events"]
    path = tmp_path / "in.parquet"
    history(50).to_parquet(path)
    main(["send", str(path), "--api-key", "k", "--dry-run", "--reserve", "0.3"])
    assert "pace: events 70/s and 840 per 30 s (30% of each limit left" in capsys.readouterr().out


def test_both_modes_plans_agree_on_the_batch_mode_estimate():
    """A trial's events-mode plan promised batch mode in 3 s and the batch-mode plan said 8 s:
    rows with an email, which no batch job carries, were counted as if one could."""
    rows = 3_000
    df = pd.DataFrame({
        "customerId": [f"c{n % 900}" for n in range(rows)],
        "eventName": "e",
        "email": [f"u{n}@example.com" if n % 4 == 0 else None for n in range(rows)],
    })  # fmt: skip
    events = gb_backfill.plan(df, mode="events").estimated_seconds["batch"]
    batch = gb_backfill.plan(df, mode="batch").estimated_seconds["batch"]
    assert events == pytest.approx(batch, rel=0.05), (events, batch)


def sent_then_fixed(tmp_path, df, fix, fixed_answer=None):
    """``df`` sent with a ledger, then its failures file fixed by ``fix`` and sent (answered
    by ``fixed_answer``); returns the ledger and the second run's report."""
    from tests.conftest import MockGameball, send_fast, send_options

    ledger, failures = tmp_path / "ledger", tmp_path / "f.parquet"
    send_fast(df, **send_options(MockGameball(), ledger=ledger, failures_path=failures))
    fixed = fix(pd.read_parquet(failures))
    return ledger, send_fast(fixed, **send_options(MockGameball(fixed_answer), ledger=ledger))


def test_invalid_rows_whose_fixed_copies_were_sent_are_not_counted_valid(tmp_path):
    """A trial's plan of its export after the fixed failures file was sent said '18,000 valid,
    0 invalid' of an input with 30 invalid rows."""
    df = pd.DataFrame({"customerId": ["a", "", "c", "d"], "eventName": ["e", "e", "e", " e"]})

    def fix(failed):
        assert len(failed) == 2
        return failed.assign(customerId=failed["customerId"].replace("", "b"),
                             eventName=failed["eventName"].str.strip())  # fmt: skip

    ledger, fixed = sent_then_fixed(tmp_path, df, fix)
    assert fixed.sent == 2
    again = gb_backfill.plan(df, ledger=ledger)
    assert (again.valid, again.invalid, again.fixed_before, again.skipped) == (2, 0, 2, 4)
    assert again.headline().startswith(
        "dry run, nothing was sent: 4 rows, 2 valid, 0 invalid, 2 invalid with a copy; a send "
        "would skip 4 and send 0 rows"
    ), again.headline()


def test_invalid_rows_with_a_copy_in_the_input_are_folded_not_sent_fixed_before(tmp_path):
    """A trial sent its fixed failures file, then planned its export with the failures file of
    that send (the rows it could not fix): the plan said '213 invalid but sent fixed before'
    where 208 were, the 5 unfixed rows' export copies counted as if they had been sent."""
    from tests.conftest import MockGameball, send_fast, send_options

    df = pd.DataFrame(
        {"customerId": ["a", "", "", "d", "e"], "eventName": ["e", "e", "e", "", "e"]}
    )
    ledger, failures, again = tmp_path / "ledger", tmp_path / "f.parquet", tmp_path / "g.parquet"
    assert (
        send_fast(df, **send_options(MockGameball(), ledger=ledger, failures_path=failures)).invalid
        == 3
    )
    fixed = pd.read_parquet(failures)
    fixed["customerId"] = fixed["customerId"].replace("", "b")  # the event name stays missing
    report = send_fast(fixed, **send_options(MockGameball(), ledger=ledger, failures_path=again))
    assert (report.sent, report.invalid) == (2, 1)
    both = pd.concat([df, pd.read_parquet(again)], ignore_index=True)
    plan = gb_backfill.plan(both, ledger=ledger)
    assert (plan.rows, plan.valid, plan.invalid) == (6, 2, 1)
    assert (plan.fixed_before, plan.invalid_folded, plan.skipped) == (2, 1, 5)
    # One count in words for both: which copy is met first is not the reader's business (a
    # trial could not tell why 2 of 220 were "sent fixed before" and 218 "folded").
    assert (
        "6 rows, 2 valid, 1 invalid, 3 invalid with a copy; a send would skip 5 and send 0 rows"
        in plan.headline()
    ), plan.headline()
    # The skip, each kind of row once, adding up to it (a trial read "1,200 skipped"
    # unexplained, and the same 211 rows explained as folded and as invalid with a copy).
    explained = [
        "  skipped: 5 rows:",
        "    2 sent by an earlier run (the ledger has them as sent, or settled by hand as arrived)",
        "    3 invalid with a copy: invalid rows whose copy (the same gb_key: the failures "
        "file's row, fixed or not) an earlier run sent or this input holds, which {} sent or "
        "reported in their place",
    ]
    said = plan.summary().splitlines()
    assert said[1:4] == [line.format("is") for line in explained], said
    # The repr's counts add up to its rows too (a trial's did not: 3,990 + 15 of 4,227).
    assert repr(plan).startswith(
        "<SendPlan rows=6 valid=2 invalid=1 fixed_before=2 invalid_folded=1 skipped=5"
    ), repr(plan)
    # The live report says it too, under its headline, as the dry run does.
    live = send_fast(both, **send_options(MockGameball(), ledger=ledger))
    assert (live.skipped, live.fixed_before, live.invalid_folded) == (5, 2, 1)
    lines = live.summary().splitlines()
    assert lines[1:4] == [line.format("was") for line in explained], lines


def test_skipped_rows_of_one_kind_are_explained_in_one_line(tmp_path):
    """A second run's skip, all sent before; an export and its stopped run's failures file,
    all folded: one line each, in the dry run and in the report."""
    from tests.conftest import MockGameball, send_fast, send_options

    df = pd.DataFrame({"customerId": [f"c{n}" for n in range(6)], "eventName": "e"})
    ledger = tmp_path / "ledger"
    send_fast(df, **send_options(MockGameball(), ledger=ledger))
    earlier = "  skipped: 6 sent by an earlier run (the ledger has them as sent, or settled by hand"
    assert gb_backfill.plan(df, ledger=ledger).summary().splitlines()[1].startswith(earlier)
    again = send_fast(df, **send_options(MockGameball(), ledger=ledger))
    assert again.summary().splitlines()[1].startswith(earlier)
    copies = pd.concat([df, df.assign(gb_key=again_keys(df, tmp_path))], ignore_index=True)
    folded = send_fast(copies, **send_options(MockGameball(), ledger=tmp_path / "other"))
    assert (folded.sent, folded.skipped, folded.folded) == (6, 6, 6)
    assert folded.summary().splitlines()[1] == (
        "  skipped: 6 folded: copies of a row met elsewhere in this input (the same gb_key: an "
        "export and its failures file together), which was sent once"
    )


def again_keys(df, tmp_path):
    """The gb_key of each row of ``df``, as a failures file of a run that sent none carries it."""
    from gb_backfill import AuthenticationError
    from tests.conftest import MockGameball, send_options

    refused = MockGameball(lambda request, body, n: httpx.Response(401, json={}))
    failures = tmp_path / "refused.parquet"
    with pytest.raises(AuthenticationError):
        gb_backfill.send(df, **send_options(refused, failures_path=failures, concurrency=1))
    return pd.read_parquet(failures).sort_values("gb_row")["gb_key"].tolist()


def test_why_batch_mode_sends_rows_one_request_each_is_said_in_the_plan_and_the_report():
    """A trial's rows all had an email: the events-mode plan gave batch mode's time without a
    reason, and the batch-mode report never said no row rode a job."""
    emails = [f"u{n}@example.com" if n % 2 else None for n in range(6)]
    df = pd.DataFrame(
        {"customerId": [f"c{n}" for n in range(6)], "eventName": "e", "email": emails}
    )
    batch_line = next(
        line for line in gb_backfill.plan(df).summary().splitlines() if "in batch mode" in line
    )
    assert batch_line.endswith(
        "(3 of the rows have an email, mobile or session token: no job carries them, so they go "
        "one request each)"
    )
    with Emulator() as emu:
        keys = {"api_key": emu.api_key, "secret_key": emu.secret_key}
        report = send(df, base_url=emu.base_url, **keys, mode="batch", progress=False)
    reads = report.lane_requests["job_status"]
    assert report.lane_requests == {"events": 3, "batch": 1, "job_status": reads}
    assert 1 + reads + 3 == report.requests, "the kinds add up to the headline's requests"
    assert (
        f"  batch mode: 1 batch job posted, {reads:,} job status read{'' if reads == 1 else 's'}, "
        "3 single event requests (for rows with an email, mobile or session token, which no job "
        "carries" in report.summary()
    )


def test_a_batch_plan_says_its_busiest_customers_go_one_request_each():
    """A trial's batch plan said its busiest customers' rows took the events lane for an email
    none of them had."""
    busy = [f"b{n % 3}" for n in range(600)]
    df = pd.DataFrame({"customerId": busy + [f"c{n}" for n in range(500)], "eventName": "e"})
    plan = gb_backfill.plan(df, mode="batch")
    assert plan.lane_rows["events"] == 600, plan.lane_rows
    line = next(line for line in plan.summary().splitlines() if "events lane:" in line)
    assert line.endswith(
        "(600 rows of the busiest customers: a customer's rows go one at a time, in order, and a "
        "request each ends sooner than a batch job each)"
    ), line


def test_a_batch_plan_says_why_it_needs_more_jobs_than_its_rows_fill():
    """A trial asked why 331 rows took 'at least 8 batch jobs' when a job carries 1,000."""
    df = pd.DataFrame({"customerId": [f"x{n % 50}" for n in range(400)], "eventName": "e"})
    plan = gb_backfill.plan(df, mode="batch")
    assert plan.requests["batch"] == 8
    line = next(line for line in plan.summary().splitlines() if "batch lane:" in line)
    assert line.endswith(
        "in at least 8 jobs: a job carries one row of each customer, and a customer here has 8 rows"
    ), line
    few = gb_backfill.plan(df.drop_duplicates("customerId"), mode="batch")
    line = next(line for line in few.summary().splitlines() if "batch lane:" in line)
    assert "in at least" not in line, "one job carries them all: nothing to explain"


def test_an_invalid_row_whose_fixed_copy_is_unknown_is_not_counted_valid(tmp_path):
    """A trial's fixed copy of one invalid row went out without an answer; the export's plan
    then said 3,565 valid, of the 3,564 validate counted."""

    def no_answer(request, body, n):
        raise httpx.ReadTimeout("no answer", request=request)

    df = pd.DataFrame({"customerId": ["a", "", "c"], "eventName": "e"})
    ledger, fixed = sent_then_fixed(tmp_path, df, lambda f: f.assign(customerId="b"), no_answer)
    assert fixed.unknown == 1
    plan = gb_backfill.plan(df, ledger=ledger)
    assert (plan.valid, plan.invalid, plan.invalid_held, plan.unknown) == (2, 0, 1, 1)
    assert plan.headline().startswith(
        "dry run, nothing was sent: 3 rows, 2 valid, 0 invalid, 1 invalid with a copy; a send "
        "would skip 2, hold 1 as unknown and send 0 rows"
    ), plan.headline()
    said = plan.summary().splitlines()
    at = next(n for n, line in enumerate(said) if line.startswith("  unknown: 1 row"))
    assert said[at + 1] == (
        "    of them, 1 invalid row whose fixed copy an earlier run may have sent: held with it"
    ), said


def test_a_report_says_its_unknown_rows_may_have_arrived_and_how_to_settle_them(tmp_path):
    """A trial's report listed its unknown rows under 'rows not sent' (Gameball had them), and
    named no way to settle them."""
    from tests.conftest import MockGameball, send_fast, send_options

    def lost_for_b(request, body, n):
        if body["customerId"] == "b":
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={})

    df = pd.DataFrame({"customerId": ["a", "b", ""], "eventName": "e"})
    failures = tmp_path / "f.parquet"
    report = send_fast(df, **send_options(MockGameball(lost_for_b), ledger=tmp_path / "l",
                                          failures_path=failures))  # fmt: skip
    assert (report.sent, report.unknown, report.invalid) == (1, 1, 1)
    said = report.summary(terms=lambda mention: mention.option).splitlines()
    assert (
        "  rows not sent or unknown, by gb_error_code (an invalid row by its first rule):" in said
    )
    assert (
        "  unknown: 1 row went out without an answer, so Gameball may have it; with a ledger no "
        "run sends it again on its own: check it in Gameball (gb-backfill status --ledger PATH "
        "lists it), then gb-backfill settle marks it arrived or not"
    ) in said, said
    assert f"  rows not sent, and the unknown ones, are in {failures}" in said
