"""The checks of the options (see :mod:`gb_backfill._options`): each turns a value given in
Python into the value used, or raises :class:`ConfigError` naming the option; and how the
command line's text becomes a value."""

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from ._config import RateLimits, RetryPolicy
from ._errors import ConfigError, Written

__all__: list[str] = []

#: A check: the option's name and the value given, to the value used.
Check = Callable[[str, Any], Any]

# --- checks ------------------------------------------------------------------------------------


def whole(least: int) -> Check:
    """A whole number of at least ``least``."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ConfigError(
                "{" + name + "=} must be a whole number of at least {least}, not {value!r}",
                option=name,
                least=least,
                value=value,
            )
        return int(value)

    return check


def seconds(name: str, value: Any) -> float:
    """A finite number of seconds above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(
            "{" + name + "=} must be a number of seconds, not {value!r}", option=name, value=value
        )
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(
            "{" + name + "=} must be a finite number of seconds above 0, not {value!r}",
            option=name,
            value=value,
        )
    return number


def switch(name: str, value: Any) -> bool:
    """A yes/no option, which must be a bool: ``bool("false")`` is True, and a switch read
    from a config file as text (``retry_unknown="false"``) could resend rows."""
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(
            "{" + name + "=} must be True or False, not {value!r}", option=name, value=value
        )
    return bool(value)


def automatic_switch(name: str, value: Any) -> bool | None:
    """True, False or None (decided for you)."""
    if value is not None and not isinstance(value, bool | np.bool_):
        raise ConfigError(
            "{" + name + "=} must be True, False or None (automatic), not {value!r}",
            option=name,
            value=value,
        )
    return None if value is None else bool(value)


def share(name: str, value: Any) -> float:
    """A share of the limits from 0 to below 1."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(
            "{" + name + "=} must be a share from 0 to below 1, e.g. 0.3, not {value!r}",
            option=name,
            value=value,
        )
    number = float(value)
    if not 0 <= number < 1:
        raise ConfigError(
            "{" + name + "=} must be a share from 0 to below 1 (0.3 leaves 30% of the limits to "
            "the other clients of the key), not {value!r}",
            option=name,
            value=value,
        )
    return number


def rate_limits(name: str, value: Any) -> RateLimits | None:
    if value is None or isinstance(value, RateLimits):
        return value
    example = ", ".join(f"{k}={v!r}" for k, v in value.items()) if isinstance(value, dict) else ""
    example = f"RateLimits({example or 'per_second=100, per_window=1200, window=30'})"
    raise ConfigError(
        "{" + name + "=} takes gb_backfill.RateLimits(...), not {kind}: {" + name + "=*}",
        option=name, kind=type(value).__name__, **{name: Written(example, example)},
    )  # fmt: skip


def retry_policy(name: str, value: Any) -> RetryPolicy | None:
    if value is None or isinstance(value, RetryPolicy):
        return value
    raise ConfigError(
        "{retry=} takes gb_backfill.RetryPolicy(...), not {kind}: e.g. "
        "{retry=RetryPolicy(attempts=6)}",
        option=name,
        kind=type(value).__name__,
    )


def columns(name: str, value: Any) -> tuple[Hashable, ...] | None:
    """A list of columns (None: none given)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            "{" + name + "=} takes a list of columns, e.g. {" + name + "=*}",
            option=name,
            **{name: [value]},
        )
    return tuple(value)


def key_text(name: str, value: Any) -> str | None:
    """A key as given (checked against what a header may carry later, with the environment's)."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            "{" + name + "=} must be a string, not {kind}", option=name, kind=type(value).__name__
        )
    return value


def one_of(*allowed: str) -> Check:
    def check(name: str, value: Any) -> str:
        text = str(value).removeprefix("v") if name == "api_version" else value
        if text not in allowed:
            listed = " or ".join(map(repr, allowed))
            raise ConfigError(
                "{" + name + "=} must be {listed}, not {value!r}",
                option=name,
                listed=listed,
                value=text,
            )
        return str(text)

    return check


def listed_texts(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            "{" + name + "=} takes a list of strings, e.g. {" + name + "=*}",
            option=name,
            **{name: [value]},
        )
    return tuple(map(str, value))


def type_names(name: str, value: Any) -> Mapping[Hashable, str] | None:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(
            "{" + name + "=} takes a dict of column types, not {kind}",
            option=name,
            kind=type(value).__name__,
        )
    return value


# --- the command line's text to a value ---------------------------------------------------------


def column_list(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def column_type(text: str) -> tuple[str, str]:
    import argparse

    column, sep, kind = text.rpartition("=")
    if not sep or not column:
        raise argparse.ArgumentTypeError(f"expected COL=TYPE, e.g. amount=float; got {text!r}")
    return column, kind


def field_columns(name: str, value: Any) -> Mapping[str, Hashable] | None:
    """A dict of Gameball's field names to columns (None: none given)."""
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(
            "{" + name + "=} takes a dict of Gameball's field names to columns, e.g. "
            "{" + name + "=*}",
            option=name,
            **{name: {"totalTax": "tax"}},
        )
    return value
