"""``gb-backfill demo``: preview and send the sample to a local emulator, and say what happened."""

from __future__ import annotations

import argparse
from typing import Any

from .._demo import awarded, demo_emulator, demo_options, sample_data_path, sample_slice
from .._options import PlanPathOptions, PreviewPathOptions
from .flags import Flags, add_flag, add_options
from .preview import run_preview
from .send import run_send
from .shared import EXIT_CODES, EXIT_INCOMPLETE, EXIT_OK

__all__: list[str] = []


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return number


def add(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="preview and send sample_data/ to a local emulator with the sample's campaigns",
        epilog=EXIT_CODES,
    )
    made = Flags()  # refusals name the demo's own flags (--failures, --ledger)
    failures = add_flag(demo, "--failures", default="demo.failures.parquet", metavar="PATH",
                        help="Parquet file for rows not sent")  # fmt: skip
    made.record(failures, option="failures_path")
    made.record(
        add_flag(demo, "--ledger", metavar="PATH", help="a ledger file (a re-run skips all)")
    )
    add_flag(
        demo, "--mode", choices=("batch", "events"), default="batch",
        help="batch jobs (about a minute), or one request per event (about 10 minutes at the "
        "documented limits)",
    )  # fmt: skip
    add_flag(demo, "--fast", action="store_true",
             help="lift the rate limits and end batch jobs at once")  # fmt: skip
    add_flag(demo, "--rows", type=_positive, metavar="N",
             help="send only the sample's first N rows")  # fmt: skip
    add_flag(demo, "--no-preview", action="store_true",
             help="send without previewing the rewards first")  # fmt: skip
    add_flag(demo, "--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=run, flags=made)


def run(args: argparse.Namespace) -> int:
    sample = sample_data_path()
    if args.rows is not None:
        sample = sample_slice(sample, args.rows)
    with demo_emulator(fast=args.fast) as emulator:
        print(f"Gameball emulator on {emulator.base_url}")
        options = demo_options(emulator, mode=args.mode, fast=args.fast, ledger=args.ledger,
                               progress=False if args.no_progress else None)  # fmt: skip
        if not args.no_preview:
            print(f"previewing what sending {sample.name} would award (nothing is sent yet)")
            previewed = run_preview(
                str(sample), options.preview, None, terms=_terms(PreviewPathOptions)
            )
            if previewed in (EXIT_OK, EXIT_INCOMPLETE):
                print(
                    "the estimate leaves out customers the emulator does not know yet (a live "
                    f"send creates them); now sending the sample to {emulator.base_url}"
                )
        print(f"sending {sample} in {args.mode} mode")
        sending = {**options.send, "failures_path": args.failures}
        code = run_send(str(sample), args.failures, sending, terms=_terms(PlanPathOptions))
        accepted, points, lost = awarded(emulator)
    _tell(args, accepted, points, lost, code)
    return code


def _terms(declaration: type) -> Any:
    """Options named as the send's and the preview's flags (the demo has none of its own)."""
    return add_options(argparse.ArgumentParser(add_help=False), declaration).terms


def _tell(args: argparse.Namespace, accepted: int, points: int, lost: int, code: int) -> None:
    """What the emulator saw, and why a demo's rows may be unknown or not sent."""
    print(f"the emulator recorded {accepted:,} events and awarded {points:,} points")
    if not args.no_preview:
        print(
            "  (not the preview's estimate: the preview counts 0 for customers that did not exist "
            "yet, which the send created, and sees each row alone, so caps and progress over a "
            "customer's many events are not added up)"
        )
    if lost:
        # The demo's faults include answers lost after processing: say why rows are unknown.
        print(
            f"{lost:,} of them had their answer lost on the way back (a fault the demo injects, "
            "as real networks do): gb-backfill cannot know whether those rows arrived, so it "
            "marks them unknown and never resends them on its own (--retry-unknown would). "
            + (
                f"`gb-backfill status --ledger {args.ledger}` lists them with what was sent, and "
                f"`gb-backfill settle --ledger {args.ledger}` records what Gameball says of them."
                if args.ledger
                else "With --ledger PATH the demo keeps a ledger: `gb-backfill status --ledger "
                "PATH` then lists them with what was sent, and `gb-backfill settle` records "
                "what Gameball says of them."
            )
        )
    if code == EXIT_INCOMPLETE:
        print(
            f"exit code 1, as for any run that leaves rows unsent: the sample has broken rows on "
            f"purpose and the emulator loses a few answers; they are all in {args.failures}"
        )
