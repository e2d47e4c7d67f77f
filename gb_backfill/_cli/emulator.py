"""``gb-backfill emulator``: a local Gameball to send to, with the faults real networks have."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .._config import (
    BATCH_LIMITS,
    EVENTS_LIMITS,
    ORDERS_LIMITS,
    PREVIEW_LIMITS,
    STATUS_LIMITS,
    RateLimits,
)
from .._errors import ConfigError
from .._option_checks import column_list
from .flags import add_flag
from .shared import EXIT_CODES, EXIT_OK, EXIT_STOPPED, check_writable

__all__: list[str] = []


def _mask(key: str, default: str) -> str:
    return key if key == default else "*" * 8


def _limits(args: argparse.Namespace, endpoint: str) -> RateLimits:
    """An endpoint's limits from its flags (``--batch-per-second``, ``--batch-per-window``)."""
    per_second, per_window = (
        getattr(args, f"{endpoint}per_{unit}") for unit in ("second", "window")
    )
    return RateLimits(per_second=per_second, per_window=per_window, window=args.window)


def _emulator_from(args: argparse.Namespace) -> Any:
    """The emulator the ``emulator`` command's flags describe."""
    from .._emulator import BatchSettings, Campaigns, Emulator, Faults, OrderSettings, PointsPerUnit

    # Every Faults field has a flag of the same name.
    faults = Faults(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Faults)})
    batch = BatchSettings(
        status_shape=args.status_shape,
        delay=args.batch_delay,
        item_failures=args.batch_item_failures,
        job_failures=args.batch_job_failures,
        lost_jobs=args.lost_jobs,
        seed=args.seed,
    )
    return Emulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        secret_key=args.secret_key,
        high_security=args.high_security,
        # One RateLimits per endpoint; --window is every endpoint's long window.
        limits=_limits(args, ""),
        batch_limits=_limits(args, "batch_"),
        status_limits=_limits(args, "status_"),
        preview_limits=_limits(args, "preview_"),
        orders_limits=_limits(args, "orders_"),
        orders=OrderSettings(
            cashback=PointsPerUnit(points=1, per=args.cashback_per, of="totalPaid")
            if args.cashback_per else None,
            duplicate_code=args.duplicate_code,
        ),
        retry_after=args.retry_after,
        background_rate=args.background_rate,
        faults=faults,
        batch=batch,
        campaigns=Campaigns.from_json(args.campaigns) if args.campaigns else Campaigns(),
        customers=args.customers or (),
        existing_share=args.existing_share,
    )  # fmt: skip


async def _serve(emulator: Any, args: argparse.Namespace) -> None:
    """Serve until Ctrl-C or SIGTERM, saying where and with which keys."""
    from .._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY

    try:
        await emulator.start_async()
    except OSError as error:
        raise ConfigError(
            f"cannot serve on {args.host}:{args.port} ({error.strerror or error}); the port "
            "may be in use: pick another with --port, or --port 0 for a free one"
        ) from None
    stopped = asyncio.Event()
    # SIGTERM (a service manager, `timeout`) stops it as cleanly as Ctrl-C: from before the
    # line that says it serves, which a script may wait for and then stop it.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    # Custom keys are the user's secrets; only the documented defaults are shown.
    print(
        f"Gameball emulator on {emulator.base_url}  "
        f"APIKey: {_mask(args.api_key, DEFAULT_API_KEY)}  "
        f"SecretKey: {_mask(args.secret_key, DEFAULT_SECRET_KEY)}  (Ctrl-C stops it)",
        flush=True,
    )
    if args.campaigns:
        campaigns = emulator.campaigns
        count, known = len(campaigns.campaigns), len(campaigns.known_events)
        others = (
            f", and {known:,} more event name{'' if known == 1 else 's'} it knows that no "
            "campaign rewards"
            if known
            else ""
        )
        print(
            f"reward preview: {count:,} campaign{'' if count == 1 else 's'}{others}, from "
            f"{args.campaigns}",
            flush=True,
        )
    try:
        await stopped.wait()
    finally:
        await emulator.stop_async()


def run(args: argparse.Namespace) -> int:
    emulator = _emulator_from(args)
    if args.record:
        check_writable(args.record, "--record")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(emulator, args))
    if args.record:
        from .._emulator.record import orders_beside

        orders_path = orders_beside(args.record)
        try:
            written = emulator.write_events(args.record)
            orders = emulator.write_orders(orders_path) if len(emulator.orders()) else 0
        except OSError as error:
            print(
                f"gb-backfill: cannot write --record {args.record} ({error.strerror or error}): "
                "the events or orders the emulator received are lost",
                file=sys.stderr,
            )
            return EXIT_STOPPED
        print(f"the emulator received {written:,} events; written to {args.record}", flush=True)
        if orders:
            print(f"the emulator received {orders:,} orders; written to {orders_path}", flush=True)
    else:
        print("the emulator stopped", flush=True)
    return EXIT_OK


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {text!r}")
    return port


#: (flag, type, default, metavar, help) of a flag that takes a value
_Valued = tuple[str, type, object, str, str]


def _add_valued(group: Any, specs: Sequence[_Valued]) -> None:
    for flag, kind, default, metavar, help_text in specs:
        add_flag(group, flag, type=kind, default=default, metavar=metavar, help=help_text)


def add(commands: Any) -> None:
    from .._emulator import DEFAULT_API_KEY, DEFAULT_SECRET_KEY

    emulator = commands.add_parser(
        "emulator", help="serve a local Gameball emulator", epilog=EXIT_CODES
    )
    add_flag(emulator, "--host", default="127.0.0.1", metavar="ADDRESS", help="where to listen")
    add_flag(emulator, "--api-key", default=DEFAULT_API_KEY, metavar="KEY", help="its APIKey")
    add_flag(emulator, "--secret-key", default=DEFAULT_SECRET_KEY, metavar="KEY", help="SecretKey")
    add_flag(emulator, "--port", type=_port, default=8787, metavar="N", help="0 picks a free port")
    add_flag(emulator, "--high-security", action="store_true", help="require SecretKey on v4.0 too")
    add_flag(emulator, "--record", metavar="PATH", help="on exit, write every event it received "
             "to this Parquet file, and every order to NAME.orders.parquet beside it (while it "
             "runs: GET /_emulator/events with the APIKey header)")  # fmt: skip
    limits = emulator.add_argument_group("rate limits per API key (0 lifts a limit)")
    _add_valued(limits, [
        ("--per-second", int, EVENTS_LIMITS.per_second, "N", "requests per second"),
        ("--per-window", int, EVENTS_LIMITS.per_window, "N", "requests per window"),
        ("--window", float, EVENTS_LIMITS.window, "SECONDS", "the window's length"),
    ])  # fmt: skip
    add_flag(
        limits, "--retry-after", nargs="?", const=True, default=False, type=float,
        metavar="SECONDS",
        help="send Retry-After on 429: the real wait, or always SECONDS (as a gateway may)",
    )  # fmt: skip
    add_flag(
        limits, "--background-rate", type=float, default=0.0, metavar="N",
        help="another client of the key (a live shop): N events requests a second on "
        "average, its 429s counted (0: none)",
    )  # fmt: skip
    for endpoints in (_add_fault_flags, _add_emulator_batch_flags, _add_preview_flags,
                      _add_orders_flags):  # fmt: skip
        endpoints(emulator)
    emulator.set_defaults(run=run)


def _add_fault_flags(emulator: argparse.ArgumentParser) -> None:
    from .._emulator import Faults

    faults = emulator.add_argument_group("fault injection (shares are 0 to 1)")
    none = Faults()  # the defaults: no fault at all
    _add_valued(faults, [
        ("--latency", float, none.latency, "SECONDS", "added to every answer"),
        ("--jitter", float, none.jitter, "SECONDS", "random extra latency, up to"),
        ("--server-errors", float, none.server_errors, "SHARE",
         "share of 500/503 before processing"),
        ("--dropped-connections", float, none.dropped_connections, "SHARE",
         "share of connections dropped before processing"),
        ("--lost-responses", float, none.lost_responses, "SHARE",
         "share processed whose answer is lost"),
        ("--slow-reply", float, none.slow_reply, "SECONDS",
         "how long a lost answer hangs (--lost-mode slow)"),
        ("--arrival-delay", float, none.arrival_delay, "SECONDS",
         "before a request is counted against the limits (one-way delay)"),
        ("--arrival-jitter", float, none.arrival_jitter, "SECONDS",
         "random extra arrival delay, up to"),
        ("--seed", int, none.seed, "N", "seed of the faults' random draws"),
    ])  # fmt: skip
    add_flag(
        faults, "--lost-mode", help="drop the connection or hang", choices=["drop", "slow"],
        default=none.lost_mode,
    )  # fmt: skip


def _add_orders_flags(emulator: argparse.ArgumentParser) -> None:
    from .._emulator import OrderSettings

    orders = emulator.add_argument_group("orders (POST .../orders, .../batch/orders)")
    _add_valued(orders, [
        ("--orders-per-second", int, ORDERS_LIMITS.per_second, "N", "orders per second"),
        ("--orders-per-window", int, ORDERS_LIMITS.per_window, "N", "orders per window"),
        ("--cashback-per", float, 0.0, "AMOUNT",
         "cashback: 1 point per AMOUNT of totalPaid, floored (0: none)"),
        ("--duplicate-code", int, OrderSettings().duplicate_code, "CODE",
         "the 422's code for a reused orderId: 9004 or 9003 (another: only the message says so)"),
    ])  # fmt: skip


def _add_emulator_batch_flags(emulator: argparse.ArgumentParser) -> None:
    from .._emulator import BatchSettings

    batch = emulator.add_argument_group("batch endpoints")
    documented = BatchSettings()
    _add_valued(batch, [
        ("--batch-per-second", int, BATCH_LIMITS.per_second, "N", "job creations per second"),
        ("--batch-per-window", int, BATCH_LIMITS.per_window, "N", "job creations per window"),
        ("--status-per-second", int, STATUS_LIMITS.per_second, "N", "job status reads per second"),
        ("--status-per-window", int, STATUS_LIMITS.per_window, "N", "job status reads per window"),
        ("--batch-delay", float, documented.delay, "SECONDS", "how long a job takes to process"),
        ("--batch-item-failures", float, documented.item_failures, "SHARE",
         "share of items that fail, half with the transient 2001"),
        ("--batch-job-failures", float, documented.job_failures, "SHARE",
         "share of jobs that fail as a whole"),
        ("--lost-jobs", float, documented.lost_jobs, "SHARE", "share of jobs that never end"),
    ])  # fmt: skip
    add_flag(
        batch, "--status-shape", choices=["tutorial", "openapi"], default=documented.status_shape,
        help="which documented job status path and body to serve",
    )  # fmt: skip


def _add_preview_flags(emulator: argparse.ArgumentParser) -> None:
    preview = emulator.add_argument_group("reward preview (POST .../events/reward-preview)")
    add_flag(
        preview,
        "--campaigns",
        metavar="FILE.json",
        help="the campaigns and known event names it quotes from (see docs/reference.md; e.g. "
        "sample_data/campaigns.json); without it every event is EventNotFound",
    )
    add_flag(
        preview,
        "--customers",
        metavar="ID,ID,...",
        type=column_list,
        help="customers that exist without a live event (others: 404 until their first)",
    )
    _add_valued(preview, [
        ("--existing-share", float, 0.0, "SHARE",
         "share of customers that exist anyway, chosen by a hash of the id (1: every one)"),
        ("--preview-per-second", int, PREVIEW_LIMITS.per_second, "N",
         "previews per second (0 lifts it)"),
        ("--preview-per-window", int, PREVIEW_LIMITS.per_window, "N",
         "previews per window (0 lifts it)"),
    ])  # fmt: skip
