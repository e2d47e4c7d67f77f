"""Every option of the public functions, declared once: its name, type, default, check and help.

Each public function takes the fields of one frozen, keyword-only declaration as its keywords
(see :mod:`gb_backfill._faces`, which derives the functions' signatures from them, so mypy and
``help()`` see the real keywords)::

    MappingOptions                  which column is which: validate(), payloads()
    ├── ValidatePathOptions         + ReadOptions, failures_path=, batch_rows=: validate_path()
    ├── SendOptions                 + RunOptions (keys, connection, pace, ledger): send()
    │   ├── SendPathOptions         + ReadOptions (how a CSV is read): send_path()
    │   └── PlanOptions             + bodies_path=: plan()
    │       └── PlanPathOptions     plan_path()
    └── PreviewOptions              + RunOptions, sample=, seed=: preview()
        └── PreviewPathOptions      preview_path()
    SettleOptions, NoOptions        settle(), ledger_status()

The async faces (``asend``, ``aplan_path``, ...) and the ``df.gameball`` accessor take the same
declaration as their sync face.

Each field's metadata (:class:`About`) holds its check, which turns a value given in Python
into the value used (or raises :class:`ConfigError` naming the option), and what the command
line needs to make its flag (help text, flag name, how the flag's text becomes the value).

The checks themselves are in :mod:`gb_backfill._option_checks`.

No ``from __future__ import annotations`` here: the command line reads the fields' types.
"""

import json
import os
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import _gameball as gameball
from ._config import (
    API_KEY_ENV,
    BATCH_LIMITS,
    DEFAULT_BATCH_ROWS,
    DEFAULT_CONCURRENCY,
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_TIMEOUT,
    EVENTS_LIMITS,
    HEADER_VALUE,
    ORDERS_LIMITS,
    PREVIEW_LIMITS,
    SECRET_KEY_ENV,
    STATUS_LIMITS,
    ApiKeys,
    RateLimits,
    RetryPolicy,
    Settings,
    check_base_url,
    leave_room,
)
from ._errors import ConfigError
from ._input.stores import a_filesystem
from ._option_checks import (
    Check,
    automatic_switch,
    column_list,
    column_type,
    columns,
    field_columns,
    key_text,
    listed_texts,
    one_of,
    rate_limits,
    retry_policy,
    seconds,
    share,
    switch,
    type_names,
    whole,
)
from ._preview.sampling import DEFAULT_SAMPLE_SIZE

if TYPE_CHECKING:
    import httpx
    import pyarrow.fs

__all__: list[str] = []

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Part:
    """One flag of an option the command line builds from several (``limits=`` from
    ``--rate``, ``--quota`` and ``--quota-window``): its ``dest`` (the flag is ``--dest`` with
    dashes), the field of the option's value it sets, and its help."""

    dest: str
    attribute: str
    help: str
    #: help text for a function other than send, where it differs (as :class:`About`'s)
    help_for: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class About:
    """What an option's field says beyond its name, type and default."""

    help: str
    check: Check | None = None
    #: help text for a function other than send (``"preview"``, ``"validate"``) where it differs
    help_for: Mapping[str, str] = field(default_factory=dict)
    #: the command line's flag, when it is not ``--`` and the name with dashes
    flag: str | None = None
    metavar: str | None = None
    #: the flag's text to the option's value (default: by the field's type)
    parse: Callable[[str], Any] | None = None
    #: a flag that takes no value and sets the option to this (``--no-progress``: False,
    #: ``--orders``: "orders")
    switch: bool | str | None = None
    #: the flag may be repeated, each time adding one item (``--dtype``)
    repeated: bool = False
    #: flags of one exclusive group (``--event-name`` or ``--event``) share a name
    exclusive: str | None = None
    #: built from several flags: the option's value is ``composite(**parts)``, each part's
    #: default the attribute of ``defaults``
    parts: tuple[Part, ...] = ()
    composite: Callable[..., Any] | None = None
    defaults: object = None
    #: the command line's group of flags ("mapping", "csv", "gameball", "pace", "batch",
    #: "bookkeeping"); None: the option has no flag (``client=``)
    group: str | None = None


def about(help: str, **more: Any) -> dict[str, About]:
    """A field's metadata."""
    return {"about": About(help, **more)}


def about_of(option: Field[Any]) -> About:
    found: About = option.metadata["about"]
    return found


# --- the declarations --------------------------------------------------------------------------


def option(default: Any, help: str, **more: Any) -> Any:
    """A field of a declaration: its default, and what :class:`About` says of it."""
    return field(default=default, metadata=about(help, **more))


def _limits(rate: Part, quota: Part, defaults: RateLimits, what: str) -> Any:
    window = Part("quota_window", "window", "the quota window's length")
    return option(None, what, check=rate_limits, parts=(rate, quota, window),
                  composite=RateLimits, defaults=defaults, group="pace")  # fmt: skip


_PREVIEW = "preview"  # the help a preview's flags give, where it differs from a send's

# The declarations are written compactly, one option after another, as a table would be.
# fmt: off

@dataclass(frozen=True, kw_only=True)
class MappingOptions:
    """Which column is which (found by their usual names when not given)."""

    customer_id: Hashable | None = option(
        None, "the customer id column", metavar="COL", group="mapping")
    event_name: Hashable | None = option(
        None, "the event name column", metavar="COL", group="mapping", exclusive="name")
    event: str | None = option(
        None, "one event name for every row", metavar="NAME", group="mapping", exclusive="name")
    metadata: Sequence[Hashable] | None = option(
        None, "metadata columns (default: every other column not starting with gb_)",
        metavar="COL,COL,...", parse=column_list, group="mapping")
    email: Hashable | None = option(None, "the email column", metavar="COL", group="mapping")
    mobile: Hashable | None = option(None, "the mobile column", metavar="COL", group="mapping")
    session_token: Hashable | None = option(
        None, "the session token column", metavar="COL", group="mapping")
    kind: Literal["events", "orders"] | str = option(
        "events", "send every row as a Gameball order, with its date", flag="--orders",
        switch="orders", check=one_of("events", "orders"), group="orders")
    orders_from: str | None = option(
        None, "send the rows of this event name as orders, the rest as events",
        metavar="NAME", group="orders")
    order_id: Hashable | None = option(
        None, "the order id column (default: orderId or order_id)", metavar="COL", group="orders")
    order_date: Hashable | None = option(None, "the order date column (default: orderDate or "
                                         "order_date)", metavar="COL", group="orders")
    total_paid: Hashable | None = option(None, "the total paid column (default: totalPaid or "
                                         "total_paid)", metavar="COL", group="orders")
    extra: Sequence[Hashable] | None = option(
        None, "columns sent as the order's extra (text values)", check=columns,
        metavar="COL,COL,...", parse=column_list, group="orders")
    order_fields: Mapping[str, Hashable] | None = option(
        None, "a column for one of the order's optional fields (totalPrice, totalDiscount, "
        "totalShipping, totalTax, channel, cartId, guest)", check=field_columns,
        metavar="FIELD=COL", parse=column_type, repeated=True, group="orders")


@dataclass(frozen=True, kw_only=True)
class ReadOptions:
    """How a CSV input is read (ids, emails and mobiles always as text)."""

    dtype: Mapping[Hashable, str] | None = option(
        None, "a column's type, one of text, int, float, bool, datetime, or their pandas names "
        "string, int64, float64, boolean, datetime64 (default: decided once for the whole "
        "file; timestamps stay text unless asked)", check=type_names,
        metavar="COL=TYPE", parse=column_type, repeated=True, group="csv")
    na_values: Sequence[str] | None = option(
        None, "more texts that mean missing (default: only an empty field)", check=listed_texts,
        metavar="TEXT,TEXT,...", parse=lambda text: text.split(","), group="csv")
    encoding: str | None = option(
        None, "the files' encoding (default: utf-8)", metavar="NAME", group="csv")
    sep: str | None = option(
        None, "the field separator (default: , or a tab for .tsv)", metavar="CHAR", group="csv")
    thousands: str | None = option(None, "the thousands separator of the columns --dtype reads "
        "as float or int: --thousands , reads 1,299.50", metavar="CHAR", group="csv")
    decimal: str | None = option(None, "their decimal mark (default: .): --thousands . "
        "--decimal , reads 1.299,50", metavar="CHAR", group="csv")
    filesystem: "pyarrow.fs.FileSystem | None" = option(
        None, "a pyarrow.fs.FileSystem the path is in (default: the local disk, or the store an "
        "s3://, gs:// or abfs:// URI names); no flag", check=a_filesystem)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What a send and a preview share: the keys, the connection, the pace, the ledger."""

    api_key: str | None = option(
        None, f"default: ${API_KEY_ENV} (safer than this flag)", check=key_text, metavar="KEY",
        group="gameball")
    secret_key: str | None = option(
        None, f"default: ${SECRET_KEY_ENV}", check=key_text, metavar="KEY", group="gameball")
    base_url: str = option(
        gameball.BASE_URL, "where to send: the real Gameball API unless you point it at an "
        "emulator, e.g. http://127.0.0.1:8787 (run `gb-backfill emulator`)", metavar="URL",
        group="gameball")
    api_version: Literal["4.0", "4.1"] | str = option(
        "4.0", "events API version", check=one_of(*gameball.API_VERSIONS), group="gameball")
    allow_insecure_http: bool = option(
        False, "allow keys over plain http to a host other than loopback", check=switch,
        group="gameball")
    retry: RetryPolicy | None = option(
        None, "how retryable failures are retried", check=retry_policy, composite=RetryPolicy,
        defaults=RetryPolicy(), group="pace",
        parts=(Part("attempts", "attempts", "tries per row for retryable errors",
                    {_PREVIEW: "tries per quote for retryable errors"}),))
    concurrency: int = option(
        DEFAULT_CONCURRENCY, "requests in flight at most (fewer when the rate and round trip "
        "need fewer)", check=whole(1), metavar="N", group="pace",
        help_for={_PREVIEW: "quotes in flight at most"})
    timeout: float = option(
        DEFAULT_TIMEOUT, "how long to wait for an answer (after it, the row is unknown)",
        check=seconds, metavar="SECONDS", group="pace",
        help_for={_PREVIEW: "how long to wait for a quote"})
    retry_unknown: bool = option(
        False, "also resend rows that may have been processed (may double-count)", check=switch,
        group="pace",
        help_for={_PREVIEW: "with --ledger: also quote rows an earlier run may have sent"})
    reserve: float = option(
        0.0, "the share of every limit left for other clients of the key, e.g. 0.3 when it "
        "also serves a live shop", check=share, metavar="SHARE", group="pace")
    ledger: PathLike | None = option(
        None, "SQLite ledger: makes re-runs safe", metavar="PATH", group="bookkeeping",
        help_for={_PREVIEW: "leave out rows this send's ledger says were sent (read only)"})
    row_key: Sequence[Hashable] | None = option(
        None, "your own unique row key", check=columns, metavar="COL,COL,...",
        parse=column_list, group="bookkeeping",
        help_for={_PREVIEW: "the send's own unique row key (with --ledger)"})
    batch_rows: int = option(
        DEFAULT_BATCH_ROWS, "rows read at a time", check=whole(1), metavar="N",
        group="bookkeeping")
    progress: bool | None = option(
        None, "no progress bar", check=automatic_switch, flag="--no-progress", switch=False,
        group="bookkeeping")
    client: "httpx.AsyncClient | None" = option(
        None, "your own httpx.AsyncClient (not closed); no flag")


@dataclass(frozen=True, kw_only=True)
class SendOptions(RunOptions, MappingOptions):
    """The keywords of :func:`gb_backfill.send`."""

    limits: RateLimits | None = _limits(
        Part("rate", "per_second", "requests per second (0: none)"),
        Part("quota", "per_window", "requests per quota window"), EVENTS_LIMITS,
        "the events endpoint's limits")
    failures_path: PathLike | None = option(
        None, "Parquet file for rows not sent (default: the input's full name + "
        ".failures.parquet, e.g. export.csv.failures.parquet)", flag="--failures",
        metavar="PATH", group="bookkeeping")
    mode: Literal["events", "batch"] | str = option(
        "events", "events: one request per row; batch: jobs of up to 1,000 rows (needs the "
        "secret key)", check=one_of("events", "batch"), group="batch")
    batch_limits: RateLimits | None = _limits(
        Part("batch_rate", "per_second", "batch jobs per second"),
        Part("batch_quota", "per_window", "batch jobs per quota window"), BATCH_LIMITS,
        "batch job creation's limits")
    order_limits: RateLimits | None = _limits(
        Part("order_rate", "per_second", "orders per second, one per request (0: none)"),
        Part("order_quota", "per_window", "orders per quota window"), ORDERS_LIMITS,
        "the orders endpoint's limits")
    keep_order: bool = option(
        True, "let a customer's rows go in several jobs at once (order not kept)", check=switch,
        flag="--any-order", switch=False, group="batch")
    job_timeout: float = option(
        DEFAULT_JOB_TIMEOUT, "how long to wait for a job to end before its rows are unknown",
        check=seconds, metavar="SECONDS", group="batch")
    rebuild_ledger: bool = option(
        False, "rebuild a ledger whose database was deleted or replaced from its journal",
        check=switch, group="bookkeeping")
    resend_changed: bool = option(
        False, "send rows that look like rows an earlier run with the ledger sent, written "
        "differently (numbers or timestamps as text, empty for missing); may double-count",
        check=switch, group="pace")


@dataclass(frozen=True, kw_only=True)
class SendPathOptions(ReadOptions, SendOptions):
    """The keywords of :func:`gb_backfill.send_path`."""


@dataclass(frozen=True, kw_only=True)
class PlanOptions(SendOptions):
    """The keywords of :func:`gb_backfill.plan`: a send's, and where to write the bodies."""

    bodies_path: PathLike | None = option(
        None, "with --dry-run, write every request body to this JSONL file",
        flag="--write-bodies", metavar="PATH", group="batch")


@dataclass(frozen=True, kw_only=True)
class PlanPathOptions(ReadOptions, PlanOptions):
    """The keywords of :func:`gb_backfill.plan_path`."""


def _sample_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError("{sample=} is a number of rows to quote, at least 1, e.g. {sample=*}",
                          option=name, sample=DEFAULT_SAMPLE_SIZE)
    return int(value)


def _seed(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ConfigError("{seed=} is a whole number, at least 0, e.g. {seed=0}", option=name)
    return int(value)


@dataclass(frozen=True, kw_only=True)
class PreviewOptions(RunOptions, MappingOptions):
    """The keywords of :func:`gb_backfill.preview`."""

    sample: int = option(
        DEFAULT_SAMPLE_SIZE, "valid rows to quote (the default takes about 15 s at the "
        "preview's limits)", check=_sample_size, metavar="N", group="sample")
    seed: int = option(0, "the sample's random seed", check=_seed, metavar="N", group="sample")
    preview_limits: RateLimits | None = _limits(
        Part("preview_rate", "per_second", "quotes per second (0: none)"),
        Part("preview_quota", "per_window", "quotes per quota window"), PREVIEW_LIMITS,
        "the reward preview's limits")


@dataclass(frozen=True, kw_only=True)
class PreviewPathOptions(ReadOptions, PreviewOptions):
    """The keywords of :func:`gb_backfill.preview_path`."""


@dataclass(frozen=True, kw_only=True)
class ValidatePathOptions(ReadOptions, MappingOptions):
    """The keywords of :func:`gb_backfill.validate_path`."""

    failures_path: PathLike | None = option(
        None, "write the invalid rows to this Parquet file", flag="--failures", metavar="PATH",
        group="bookkeeping")
    batch_rows: int = option(
        DEFAULT_BATCH_ROWS, "rows read at a time", check=whole(1), metavar="N",
        group="bookkeeping")


# fmt: on


@dataclass(frozen=True, kw_only=True)
class SettleOptions:
    """The keywords of :func:`gb_backfill.settle`."""

    arrived: bool = field(metadata=about("Gameball has the rows (True) or not (False)"))
    keys: Iterable[str] | Literal["all"] = field(metadata=about('gb_key values, or "all"'))


@dataclass(frozen=True, kw_only=True)
class NoOptions:
    """A function that takes no keywords (:func:`gb_backfill.ledger_status`)."""


#: Keywords a function no longer takes, and where they went.
MOVED = {
    "dry_run": "the dry run is its own function, plan() (plan_path(), aplan(), aplan_path()), "
    "which takes the same keywords and returns the SendPlan",
    "bodies_path": "the request bodies are written by the dry run: plan(..., bodies_path=PATH)",
}


def mapping_of(options: MappingOptions) -> dict[str, Any]:
    """The mapping keywords of ``options`` (for ``resolve_mapping``)."""
    return {option.name: getattr(options, option.name) for option in fields(MappingOptions)}


# --- the checked options of one run ------------------------------------------------------------


def _check_key(keyword: str, env: str, value: str | None) -> None:
    if value is not None and not re.fullmatch(HEADER_VALUE, value):
        # The key itself is never shown: it is a secret.
        raise ConfigError(
            "{" + keyword + "=} holds whitespace or characters an HTTP header cannot carry (a "
            "newline from a file? a no-break space?): fix it where you set {" + keyword + "=} "
            "or {env}",
            option=keyword,
            env=env,
        )


def _keys(options: RunOptions, *, mode: str, dry_run: bool) -> ApiKeys:
    """The keys, checked: a dry run sends nothing, so it needs none (given ones are checked)."""
    keys = ApiKeys.resolve(options.api_key, options.secret_key, required=not dry_run)
    _check_key("api_key", API_KEY_ENV, keys.api_key or None)
    _check_key("secret_key", SECRET_KEY_ENV, keys.secret_key)
    if keys.secret_key or dry_run:
        return keys
    if options.api_version == "4.1":
        raise ConfigError(
            "{api_version='4.1'|4.1} needs the secret key: pass {secret_key=...} or set {env}",
            option="secret_key",
            env=SECRET_KEY_ENV,
        )
    if isinstance(options, SendOptions) and (options.kind == "orders" or options.orders_from):
        raise ConfigError(
            "orders need the secret key (Gameball's orders API requires it): pass "
            "{secret_key=...} or set {env}",
            option="secret_key",
            env=SECRET_KEY_ENV,
        )
    if mode == "batch":
        raise ConfigError(
            "{mode='batch'|batch} needs the secret key (Gameball's batch API requires it): pass "
            "{secret_key=...} or set {env}",
            option="secret_key",
            env=SECRET_KEY_ENV,
        )
    return keys


def live_refusal(options: RunOptions) -> ConfigError | None:
    """Why a live send with ``options`` would be refused before sending anything (a key it
    needs is missing), or None: what a dry run says. A dry run needs no key, so one made
    without any (to look at a file before the keys are at hand) is not held to them; one made
    with the API key is held to the rest (the secret key batch mode and orders need)."""
    if not ApiKeys.resolve(options.api_key, options.secret_key, required=False).api_key:
        return None
    mode = options.mode if isinstance(options, SendOptions) else "events"
    try:
        _keys(options, mode=mode, dry_run=False)
    except ConfigError as refused:
        return refused
    return None


#: The read options a ledger keeps per input (those that change how a value reads).
READ_OPTIONS = ("dtype", "na_values", "thousands", "decimal", "encoding", "sep")


def read_with_of(options: ReadOptions) -> str:
    """The read options given (not left to their defaults), as JSON."""
    given: dict[str, object] = {}
    for name in READ_OPTIONS:
        value = getattr(options, name)
        if value is None:
            continue
        if name == "dtype":
            value = {str(column): kind for column, kind in value.items()}
        elif name == "na_values":  # a set: the same texts in another order read the same
            value = sorted(set(value))
        given[name] = value
    return json.dumps(given, sort_keys=True)


def make_settings(options: RunOptions, *, dry_run: bool = False) -> Settings:
    """The settings of one send (``options`` a :class:`SendOptions`; with ``dry_run``, no key is
    needed) or preview (a :class:`PreviewOptions`), the options checked together (one at a time
    they were checked by the face)."""
    sending = options if isinstance(options, SendOptions) else SendOptions()
    if isinstance(options, PreviewOptions):
        limits = options.preview_limits or PREVIEW_LIMITS
    else:
        limits = sending.limits or EVENTS_LIMITS
    mode, reserve, batch_limits = sending.mode, options.reserve, sending.batch_limits
    lifted = batch_limits is not None and not (batch_limits.per_second or batch_limits.per_window)
    return Settings(
        api_keys=_keys(options, mode=mode, dry_run=dry_run),
        base_url=check_base_url(options.base_url, allow_insecure_http=options.allow_insecure_http),
        api_version=options.api_version,
        limits=leave_room(limits, reserve),
        retry=options.retry or RetryPolicy(),
        concurrency=options.concurrency,
        timeout=options.timeout,
        retry_unknown=options.retry_unknown,
        batch_rows=options.batch_rows,
        row_key=tuple(options.row_key) if options.row_key else None,
        mode=mode,
        batch_limits=leave_room(batch_limits or BATCH_LIMITS, reserve),
        order_limits=leave_room(sending.order_limits or ORDERS_LIMITS, reserve),
        # Lifting the batch limits (a local emulator) lifts the status reads' limits too.
        status_limits=RateLimits.unlimited() if lifted else leave_room(STATUS_LIMITS, reserve),
        keep_order=sending.keep_order,
        job_timeout=sending.job_timeout,
        rebuild_ledger=sending.rebuild_ledger,
        resend_changed=sending.resend_changed,
        reserve=reserve,
    )
