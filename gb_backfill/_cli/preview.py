"""``gb-backfill preview``: what sending a file would award, from a sample's quotes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .. import _gameball as gameball
from .._errors import Mention, Terms
from .._options import PreviewPathOptions
from .._preview.report import PreviewReport
from .._preview.run import apreview_path
from .._stops import AuthenticationError, Interrupted, RunStopped
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
    check_writable,
    until_terminated,
)

__all__: list[str] = []


def add(commands: Any) -> None:
    preview = commands.add_parser(
        "preview",
        help="estimate what sending a file would award, from Gameball's reward preview of a "
        "sample (nothing is sent)",
        epilog=EXIT_CODES,
    )
    preview.add_argument("input", help=INPUT)
    made = add_options(preview, PreviewPathOptions, face="preview")
    add_flag(preview, "--json", metavar="PATH", help="also write the estimates to this JSON file")
    preview.set_defaults(run=run, flags=made)


def run(args: argparse.Namespace) -> int:
    made: Flags = args.flags
    if args.json:
        check_writable(args.json, "--json")
    options = keywords(args, made)
    if options["base_url"].rstrip("/") == gameball.BASE_URL:
        print(
            f"gb-backfill: asking the real Gameball, {gameball.BASE_URL} (no --base-url given), "
            "for quotes; nothing is sent",
            file=sys.stderr,
        )
    return run_preview(args.input, options, args.json, terms=made.terms)


def _print(report: PreviewReport, json_path: str | None) -> None:
    print(report.summary())
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(report.to_dict(), out, indent=2, allow_nan=False)
            out.write("\n")
        print(f"  the preview's figures are in {json_path}")


async def _preview(
    input_path: str, options: dict[str, Any], terminated: list[bool]
) -> PreviewReport | None:
    """The preview; None when SIGTERM stopped it before it started (after saying so)."""
    try:
        return await until_terminated(apreview_path(input_path, **options), terminated)
    except asyncio.CancelledError:
        if not terminated:
            raise
        print("gb-backfill: terminated; nothing was quoted", file=sys.stderr)
        return None


def run_preview(
    input_path: str, options: dict[str, Any], json_path: str | None,
    terms: Terms = Mention.in_python,
) -> int:  # fmt: skip
    """Preview ``input_path`` with ``options`` (the Python API's keywords), print the
    estimates (and write them to ``json_path``), and return the exit code."""
    terminated: list[bool] = []
    try:
        report = run_sync(_preview(input_path, options, terminated))
    except Interrupted as stopped:
        word = "terminated" if terminated else "interrupted"
        so_far = stopped.report
        if isinstance(so_far, PreviewReport):
            _print(so_far, json_path)
            said = f"the estimates above are from the {so_far.quoted:,} quotes answered so far"
        else:
            said = "nothing was quoted"
        print(f"gb-backfill: {word}; {said}; nothing was sent", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("gb-backfill: interrupted; nothing was quoted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunStopped as stopped:
        print(f"gb-backfill: the preview stopped: {stopped.in_terms(terms)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(stopped, AuthenticationError) else EXIT_STOPPED
    if report is None:
        return EXIT_TERMINATED
    _print(report, json_path)
    # As a dry run: rows it would not send (invalid) or quotes it could not get leave it
    # incomplete.
    complete = report.valid == report.rows and report.quoted == report.sampled
    return EXIT_OK if complete else EXIT_INCOMPLETE
