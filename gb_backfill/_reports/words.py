"""Words and figures the reports share: paces, durations, HTTP answers, held rows, warnings."""

from __future__ import annotations

import pandas as pd

from .._config import RateLimits

__all__ = [
    "WORTH_RETRYING", "answers_text", "duration_text", "held_lines", "kept_text", "pace_text",
    "skipped_lines", "warning_rows",
]  # fmt: skip


#: The failures a later run retries, in a person's words (the ledger keeps them retryable).
WORTH_RETRYING = (
    "no connection, an answer 5xx or 429, keys Gameball refused (401, 403), or a run stopped "
    "after repeated failures, or while they waited for their next try"
)


def pace_text(limits: RateLimits) -> str:
    """The limits as a user writes them; 0 lifts a limit."""
    parts = [
        f"{limits.per_second}/s" if limits.per_second else "no limit per second",
        f"{limits.per_window:,} per {limits.window:g} s"
        if limits.per_window
        else f"no limit per {limits.window:g} s",
    ]
    return " and ".join(parts)


def kept_text(limits: RateLimits | str, reserve: float) -> str:
    """The limits a run keeps to, and the share of each left for other clients of the key."""
    kept = pace_text(limits) if isinstance(limits, RateLimits) else limits
    if not reserve:
        return f"{kept} (nothing left for other clients of the key)"
    return f"{kept} ({reserve:.0%} of each limit left for other clients of the key)"


def answers_text(http_statuses: dict[int, int]) -> str:
    return ", ".join(f"{status}: {count:,}" for status, count in sorted(http_statuses.items()))


def held_lines(
    unknown: int, failed: int, *, cli: bool = False, this_run: bool = False
) -> list[str]:
    """What a plan says of rows the ledger holds back without a request, or a send
    (``this_run``) of rows it sent without an answer; the tools to settle unknown rows are
    named as the command line (``cli``) or Python calls them."""
    lines = []
    if unknown:
        lists, settles = (
            ("gb-backfill status --ledger PATH", "gb-backfill settle")
            if cli
            else ("gb_backfill.ledger_status(ledger).unknown", "gb_backfill.settle(ledger, ...)")
        )
        # A trial read its unknown rows as "not sent", though Gameball had them.
        one = unknown == 1
        rows, them = ("row", "it") if one else ("rows", "them")
        what = (
            f"{rows} went out without an answer, so Gameball may have {them}; with a ledger no "
            f"run sends {them} again on its own"
            if this_run
            else f"{rows} an earlier run may have sent {'is' if one else 'are'} held, not sent"
        )
        lines.append(
            f"  unknown: {unknown:,} {what}: check {them} in Gameball ({lists} lists {them}), "
            f"then {settles} marks {them} arrived or not"
        )
    if failed:
        lines.append(f"  failed before: {failed:,} rows failed for good in an earlier run")
    return lines


def skipped_lines(
    skipped: int, *, folded: int, fixed_before: int, invalid_folded: int, done: bool
) -> list[str]:
    """What a send's (``done``) or a dry run's skipped count holds: each kind of row once, the
    kinds adding up to it. A trial read "1,200 skipped" unexplained, and "folded" and "invalid
    with a copy" explaining the same 211 rows on two lines."""
    was = "was" if done else "is"
    kinds = [
        (skipped - folded - fixed_before,
         "sent by an earlier run (the ledger has them as sent, or settled by hand as arrived)"),
        (fixed_before + invalid_folded,
         "invalid with a copy: invalid rows whose copy (the same gb_key: the failures file's "
         "row, fixed or not) an earlier run sent or this input holds, which "
         f"{was} sent or reported in their place"),
        (folded - invalid_folded,
         "folded: copies of a row met elsewhere in this input (the same gb_key: an export and "
         f"its failures file together), which {was} sent once"),
    ]  # fmt: skip
    said = [(count, text) for count, text in kinds if count > 0]
    if len(said) == 1:
        return [f"  skipped: {said[0][0]:,} {said[0][1]}"]
    lines = [f"  skipped: {skipped:,} rows:"] if said else []
    return lines + [f"    {count:,} {text}" for count, text in said]


def warning_rows(warnings: pd.DataFrame) -> list[tuple[str, object]]:
    """A table's rows for column warnings: the code and column, then the fix."""
    return [
        (f"warning: {code} ({column})", message)
        for column, code, message in zip(
            warnings["column"], warnings["code"], warnings["message"], strict=True
        )
    ]


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:,.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"
