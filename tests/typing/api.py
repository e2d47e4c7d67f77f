"""Never run: type-checked by mypy --strict (see pyproject.toml) to pin the public API's types.

A user's ``send(df).sent`` must type-check: a live send returns a SendReport, a dry run a
SendPlan.
"""

import pandas as pd

import gb_backfill
from gb_backfill import SendPlan, SendReport


async def faces(df: pd.DataFrame) -> None:
    report: SendReport = gb_backfill.send(df, api_key="k")
    plan: SendPlan = gb_backfill.send(df, dry_run=True)
    sent: int = gb_backfill.send(df, api_key="k", ledger="l").sent
    planned: int = gb_backfill.send(df, dry_run=True).valid
    from_a_file: int = gb_backfill.send_path("events.parquet", api_key="k").unknown
    awaited: SendReport = await gb_backfill.asend(df, api_key="k")
    a_plan: SendPlan = await gb_backfill.asend_path("events.csv", dry_run=True)
    print(report, plan, sent, planned, from_a_file, awaited, a_plan)


async def previews(df: pd.DataFrame) -> None:
    estimate: gb_backfill.PreviewReport = gb_backfill.preview(df, api_key="k", sample=100)
    points: float = estimate.points.value if estimate.points is not None else 0.0
    unknown: list[str] = gb_backfill.preview_path("events.csv", api_key="k").unknown_events
    awaited: gb_backfill.PreviewReport = await gb_backfill.apreview(df, api_key="k")
    from_a_file: int = (await gb_backfill.apreview_path("e.parquet", api_key="k")).quoted
    print(estimate, points, unknown, awaited, from_a_file)
