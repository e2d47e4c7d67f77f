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
