"""``gb-backfill send``: a file's rows to Gameball (or, with ``--dry-run``, the plan)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .. import _gameball as gameball
from .._errors import ChangedRowsError, GameballError, Mention, Terms
from .._options import PlanPathOptions, SendPathOptions
from .._reports.plan import SendPlan
from .._reports.send import SendReport
from .._sender import aplan_path, asend_path
from .._stops import AuthenticationError, Interrupted, RunStopped, cause_text
from .._sync import run_sync
from .flags import Flags, add_flag, add_options, keywords
from .shared import (
    EXIT_CODES,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    INPUT,
    until_terminated,
)

__all__: list[str] = []


def add(commands: Any) -> None:
    send = commands.add_parser(
        "send", help="send a CSV or Parquet file's rows to Gameball", epilog=EXIT_CODES
    )
    send.add_argument("input", help=INPUT)
    made = add_options(send, PlanPathOptions)
    add_flag(made.groups["batch"], "--dry-run", action="store_true",
             help="send nothing: check and encode every row and print the plan")  # fmt: skip
    send.set_defaults(run=run, flags=made)


def run(args: argparse.Namespace) -> int:
    made: Flags = args.flags
    options = keywords(args, made)
    failures = options.get("failures_path") or default_failures_path(args.input)
    options["failures_path"] = failures
    if args.dry_run:
        return run_send(args.input, failures, options, dry_run=True, terms=made.terms)
    if options["base_url"].rstrip("/") == gameball.BASE_URL:
        print(
            f"gb-backfill: sending to the real Gameball, {gameball.BASE_URL} (no --base-url "
            f"given). {gameball.HISTORY_WARNING}",
            file=sys.stderr,
        )
    return run_send(args.input, failures, options, terms=made.terms)


def default_failures_path(input_path: str) -> str:
    """The failures file of an input when none is named: its full name (``export.csv`` and
    ``export.parquet`` are two inputs) + ``.failures.parquet``, in the working directory."""
    name = Path(input_path.rstrip("/")).name or "input"
    return re.sub(r"[*?\[\]]", "_", name) + ".failures.parquet"


async def _send(
    input_path: str, failures: str, options: dict[str, Any], *, dry_run: bool,
    terminated: list[bool], started: float,
) -> SendReport | SendPlan | None:  # fmt: skip
    """The send (or its plan); None when SIGTERM stopped it before it started (after saying
    so)."""
    try:
        if dry_run:
            planned = {k: v for k, v in options.items() if k in _PLAN_KEYWORDS}
            return await until_terminated(aplan_path(input_path, **planned), terminated)
        sending = {k: v for k, v in options.items() if k in _SEND_KEYWORDS}
        return await until_terminated(asend_path(input_path, **sending), terminated)
    except asyncio.CancelledError:
        if not terminated:
            raise  # Ctrl-C before the run started: asyncio.run turns it into KeyboardInterrupt
        where = where_rows_are(failures, options.get("ledger"), None, started)
        print(f"gb-backfill: terminated; {where}", file=sys.stderr)
        return None


_SEND_KEYWORDS = {option.name for option in SendPathOptions.__dataclass_fields__.values()}
_PLAN_KEYWORDS = {option.name for option in PlanPathOptions.__dataclass_fields__.values()}


def run_send(
    input_path: str, failures: str, options: dict[str, Any], *, dry_run: bool = False,
    terms: Terms = Mention.in_python,
) -> int:  # fmt: skip
    """Send (or plan) ``input_path`` with ``options`` (the Python API's keywords), print what
    came of it (options named in ``terms``), and return the exit code."""
    terminated: list[bool] = []
    ledger = options.get("ledger")
    started = time.time()
    try:
        report = run_sync(_send(input_path, failures, options, dry_run=dry_run,
                                terminated=terminated, started=started))  # fmt: skip
    except Interrupted as stopped:
        word = "terminated" if terminated else "interrupted"
        where = where_rows_are(failures, ledger, stopped.report, started)
        print(f"gb-backfill: {word}; {_counts(stopped.report)}; {where}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except KeyboardInterrupt:
        where = where_rows_are(failures, ledger, None, started)
        print(f"gb-backfill: interrupted; {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ChangedRowsError as error:
        print(f"gb-backfill: {error.in_terms(terms)}", file=sys.stderr)
        print(_examples(error.examples), file=sys.stderr)
        print(f"gb-backfill: {_list_changed(error, failures)}", file=sys.stderr)
        return EXIT_USAGE
    except RunStopped as stopped:
        text = stopped.in_terms(terms).splitlines()[0].rstrip(".") if str(stopped) else ""
        where = where_rows_are(failures, ledger, stopped.report, fix_first=True)
        counts = f"{_counts(stopped.report)}; {where}"
        print(f"gb-backfill: the run stopped: {text}; {counts}", file=sys.stderr)
        return EXIT_USAGE if isinstance(stopped, AuthenticationError) else EXIT_STOPPED
    except GameballError:
        raise  # refused before anything was sent: a usage error
    except Exception as error:  # before the run started: a file that cannot be read, a bug
        where = where_rows_are(failures, ledger, None, started)
        print(f"gb-backfill: the run stopped: {cause_text(error)}; {where}", file=sys.stderr)
        return EXIT_STOPPED
    if report is None:
        return EXIT_TERMINATED
    print(report.summary(terms=terms))
    if isinstance(report, SendPlan) and report.live_refusal is not None:
        return EXIT_USAGE  # as the live send would: it is refused before sending
    # A plan's rows it would not send make it incomplete, as a live run's.
    return EXIT_OK if report.ok else EXIT_INCOMPLETE


def _examples(examples: object) -> str:
    """A refusal's examples as a table: empty cells for missing values."""
    if not isinstance(examples, pd.DataFrame):
        return str(examples)
    return examples.astype(object).where(examples.notna(), "").to_string(index=False)


def _list_changed(error: ChangedRowsError, failures: str) -> str:
    """Write every changed row beside the failures file, as CSV; say where (or why not)."""
    every = error.every
    path = Path(failures).with_name(Path(failures).name.removesuffix(".failures.parquet")
                                    + ".changed-rows.csv")  # fmt: skip
    if not isinstance(every, pd.DataFrame):
        return f"{error.rows:,} rows were refused"
    try:
        every.to_csv(path, index=False)
    except OSError as problem:
        return f"the {len(every):,} rows could not be listed in {path} ({problem.strerror})"
    return (
        f"all {len(every):,} of them (row: the row's position in the input, the first row 0) "
        f"are in {path}"
    )


def _counts(report: object) -> str:
    """A stopped run's rows by status, in words."""
    return report.counts_text() if isinstance(report, SendReport) else "no rows were sent"


def where_rows_are(
    failures: str, ledger: str | None, report: object | None, started: float | None = None,
    *, fix_first: bool = False,
) -> str:  # fmt: skip
    """Where the rows not sent are, as the files on disk say (never a file that was not
    written): the failures file, or the parts written so far, or the ledger; and how to go on
    (``fix_first``: once what stopped the run is fixed). ``started``: when the command started
    (a failures file written since is this run's)."""
    if isinstance(report, SendReport) and report.failures_path is not None:
        # How to go on, said where the run ends (a trial's Ctrl-C line did not say it; after a
        # refused key, "the same command again" alone contradicted the advice before it).
        fixed = "once that is fixed, " if fix_first else ""
        then = (
            f"; the ledger {ledger} knows every row sent: {fixed}the same command again sends "
            "the rest"
            if ledger
            else f"; without --ledger nothing knows which rows were sent: {fixed}send that file, "
            "not the input, for the rest"
        )
        return f"rows not sent are in {report.failures_path}{then}"
    target = Path(failures)
    parts = target.with_name(target.name + ".parts")
    if report is None and not parts.exists():
        # The parts folder is made when the run starts, and goes once the file is merged: a
        # second signal may stop the run between the merge and its report.
        if started is not None and target.exists() and target.stat().st_mtime >= started:
            return f"rows not sent are in {failures}"
        return "nothing was sent: the run had not started"
    if any(parts.glob("part-*.parquet")):
        where = (
            f"the failures file {failures} was not written; the rows not sent found so far "
            f"are in {parts}/ (pd.read_parquet reads the folder)"
        )
    else:
        where = f"the failures file {failures} was not written"
    if ledger:
        where += f"; the ledger {ledger} knows every row sent or in flight: run again with it"
    return where
