"""Never run: type-checked by mypy --strict (see pyproject.toml) to pin the public API's types.

A user's ``send(df).sent`` must type-check, and a misspelt keyword must not: each line marked
``# type: ignore[call-arg]`` below is an error mypy must report (``warn_unused_ignores`` makes
the check fail the day mypy stops rejecting it).
"""

import pandas as pd

import gb_backfill
from gb_backfill import SendPlan, SendReport
from gb_backfill._accessor import GameballAccessor


async def faces(df: pd.DataFrame) -> None:
    report: SendReport = gb_backfill.send(df, api_key="k")
    plan: SendPlan = gb_backfill.plan(df, mode="batch")
    sent: int = gb_backfill.send(df, api_key="k", ledger="l").sent
    planned: int = gb_backfill.plan(df, customer_id="user", event="purchase").valid
    from_a_file: int = gb_backfill.send_path("events.parquet", api_key="k").unknown
    awaited: SendReport = await gb_backfill.asend(df, api_key="k")
    a_plan: SendPlan = await gb_backfill.aplan_path("events.csv", dtype={"amount": "int"})
    # pandas-stubs types ``df.gameball`` as a column (Any): the accessor's own class is typed.
    on_the_frame: SendReport = GameballAccessor(df).send(api_key="k", event="purchase")
    awaited_on_it: SendPlan = await GameballAccessor(df).aplan(bodies_path="bodies.jsonl")
    print(report, plan, sent, planned, from_a_file, awaited, a_plan, on_the_frame, awaited_on_it)


async def previews(df: pd.DataFrame) -> None:
    estimate: gb_backfill.PreviewReport = gb_backfill.preview(df, api_key="k", sample=100)
    points: float = estimate.points.value if estimate.points is not None else 0.0
    unknown: list[str] = gb_backfill.preview_path("events.csv", api_key="k").unknown_events
    awaited: gb_backfill.PreviewReport = await gb_backfill.apreview(df, api_key="k")
    from_a_file: int = (await gb_backfill.apreview_path("e.parquet", api_key="k")).quoted
    print(estimate, points, unknown, awaited, from_a_file)


def checks(df: pd.DataFrame) -> None:
    valid: int = gb_backfill.validate(df, customer_id="user").valid_rows
    bodies: pd.Series = GameballAccessor(df).payloads(event="purchase")
    counted: int = gb_backfill.validate_path("events.csv", failures_path="f.parquet").rows
    status: gb_backfill.LedgerReport = gb_backfill.ledger_status("events.ledger")
    settled = gb_backfill.settle("events.ledger", arrived=True, keys="all")
    print(valid, bodies, counted, status, settled)


def stops(df: pd.DataFrame) -> None:
    try:
        gb_backfill.send(df)
    except gb_backfill.RunStopped as stopped:
        report: gb_backfill.SendReport | gb_backfill.PreviewReport = stopped.report
        print(report.rows)


async def misspelt(df: pd.DataFrame) -> None:
    """Every line here is an error mypy --strict must report."""
    gb_backfill.send(df, api_kye="k")  # type: ignore[call-arg]
    gb_backfill.send(df, customr_id="c")  # type: ignore[call-arg]
    gb_backfill.send(df, dry_run=True)  # type: ignore[call-arg]
    gb_backfill.send_path("e.csv", bodies_path="b")  # type: ignore[call-arg]
    gb_backfill.plan(df, failure_path="f")  # type: ignore[call-arg]
    gb_backfill.validate(df, customer="c")  # type: ignore[call-arg]
    gb_backfill.payloads(df, api_key="k")  # type: ignore[call-arg]
    gb_backfill.preview(df, mode="batch")  # type: ignore[call-arg]
    gb_backfill.validate_path("e.csv", ledger="l")  # type: ignore[call-arg]
    gb_backfill.ledger_status("l", all=True)  # type: ignore[call-arg]
    gb_backfill.settle("l", arrived=True)  # type: ignore[call-arg]
    GameballAccessor(df).send(api_kye="k")  # type: ignore[call-arg]
    GameballAccessor(df).validate(evnt="e")  # type: ignore[call-arg]
    await gb_backfill.asend(df, customr_id="c")  # type: ignore[call-arg]
    await GameballAccessor(df).apreview(sampel=10)  # type: ignore[call-arg]


class _PolarsLike:
    """Any frame that speaks the Arrow C stream interface (Polars ships its own types)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return None


async def arrow_frames(frame: _PolarsLike) -> None:
    report: SendReport = gb_backfill.send(frame, api_key="k")
    plan: SendPlan = await gb_backfill.aplan(frame, mode="batch")
    estimate: gb_backfill.PreviewReport = gb_backfill.preview(frame, api_key="k")
    valid: int = gb_backfill.validate(frame).valid_rows
    bodies: pd.Series = gb_backfill.payloads(frame)
    gb_backfill.send(42, api_key="k")  # type: ignore[arg-type]
    print(report, plan, estimate, valid, bodies)
