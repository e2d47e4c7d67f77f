"""The emulator's campaigns, and Gameball's reward preview as a pure function.

A :class:`Campaign` listens to one event name. An event of that name *counts* when its metadata
meets every condition (``amount >= 20``, ``currency == "EGP"``). ``target`` counting events
achieve the campaign once; before that an event only advances it (``ProgressOnly``). Each
achievement gives the reward: fixed :class:`Points`, :class:`PointsPerUnit` of a metadata value
(1 point per 10 of ``amount``, floored; every unit is one achievement, as Gameball counts
accumulative campaigns) or a :class:`Coupon`. ``max_times`` caps how often one customer can
achieve it; after ``end_date`` it is over.

:class:`Campaigns` holds the campaigns and the event names Gameball knows without one, reads
them from JSON, and quotes ``POST /api/v4.0/integrations/events/reward-preview`` from a
customer's standing: a :class:`Tally` per campaign id of what the customer's *live* events did.
:meth:`Campaigns.award` is the same evaluation for a live event, returning the tallies to
store; a quote stores nothing. No I/O and no clock (``now`` is an argument), so tests can use
the quote as an exact oracle. Bad campaigns raise :class:`ConfigError`.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

from .. import _gameball as gameball
from .._errors import ConfigError

__all__ = [
    "Campaign",
    "Campaigns",
    "Condition",
    "Coupon",
    "Points",
    "PointsPerUnit",
    "Reason",
    "Tally",
    "preview_problem",
]

#: The longest ``customerId`` a preview takes (Gameball's documented maximum).
MAX_CUSTOMER_ID = gameball.MAX_CUSTOMER_ID
EVENT_NOT_FOUND = "EventNotFound"
INVALID_METADATA = "InvalidMetadata"
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
OPERATORS = ("==", "!=", *_COMPARE, "in")
Scalar = str | int | float | bool


class Reason(StrEnum):
    """Why a campaign is in a quote: its ``reason`` field."""

    REWARDED = "Rewarded"
    NON_POINTS_REWARD = "NonPointsReward"
    PROGRESS_ONLY = "ProgressOnly"
    NO_MATCHING_CONDITIONS = "NoMatchingConditions"


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    """A JSON number: an int or a finite float, never a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _scalar(value: object) -> bool:
    return isinstance(value, str | bool) or _number(value)


def _same(actual: object, expected: object) -> bool:
    """JSON equality: ``3`` is ``3.0``, but ``true`` is not ``1`` and ``"3"`` is not ``3``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if _number(actual) and _number(expected):
        return bool(actual == expected)
    return isinstance(actual, str) and isinstance(expected, str) and actual == expected


@dataclass(frozen=True, slots=True)
class Condition:
    """``metadata[key] <operator> value``; it never holds when the key is missing or null.

    Operators: ``==`` and ``!=`` (JSON equality), ``>``, ``>=``, ``<``, ``<=`` (numbers only)
    and ``in`` (one of a list). ``Condition("amount", ">=", 20)``.
    """

    key: str
    operator: str
    value: Scalar | tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ConfigError("a condition's key is a metadata key: a non-empty string")
        where = f"condition on {self.key!r}"
        if self.operator not in OPERATORS:
            raise ConfigError(f"{where}: the operator is one of {' '.join(OPERATORS)}")
        if self.operator == "in":
            options = self.value
            if not isinstance(options, list | tuple) or not options:
                raise ConfigError(f"{where}: 'in' takes a non-empty list of values")
            if not all(_scalar(option) for option in options):
                raise ConfigError(f"{where}: the values are strings, numbers or booleans")
            object.__setattr__(self, "value", tuple(options))
        elif self.operator in _COMPARE and not _number(self.value):
            raise ConfigError(f"{where}: {self.operator} compares numbers; give a number")
        elif not _scalar(self.value):
            raise ConfigError(f"{where}: compare with a string, a number or a boolean")

    @property
    def numeric(self) -> bool:
        """True when the key must hold a number (an ordering comparison)."""
        return self.operator in _COMPARE

    def holds(self, metadata: Mapping[str, Any]) -> bool:
        actual = metadata.get(self.key)
        if actual is None:
            return False
        if self.operator in _COMPARE:
            return _number(actual) and _COMPARE[self.operator](actual, self.value)
        if isinstance(self.value, tuple):
            return any(_same(actual, option) for option in self.value)
        return _same(actual, self.value) == (self.operator == "==")


@dataclass(frozen=True, slots=True, kw_only=True)
class Points:
    """A fixed number of points per achievement."""

    points: int

    def __post_init__(self) -> None:
        if not _whole(self.points) or self.points < 1:
            raise ConfigError("Points(points=...) is a whole number of points, at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class PointsPerUnit:
    """``points`` for every whole ``per`` of the metadata value ``of``, floored.

    ``PointsPerUnit(points=1, per=10, of="amount")`` gives 123 points for an amount of 1,234.5.
    Each unit is one achievement (what ``max_times`` caps); an event with less than one unit,
    or without a number in ``of``, does not count.
    """

    points: int
    per: int | float
    of: str

    def __post_init__(self) -> None:
        if not _whole(self.points) or self.points < 1:
            raise ConfigError("PointsPerUnit(points=...) is a whole number of points, at least 1")
        if not _number(self.per) or self.per <= 0:
            raise ConfigError("PointsPerUnit(per=...) is a number above 0, e.g. 10")
        if not isinstance(self.of, str) or not self.of:
            raise ConfigError("PointsPerUnit(of=...) names a metadata key, e.g. 'amount'")

    def units(self, metadata: Mapping[str, Any]) -> int:
        value = metadata.get(self.of)
        if not _number(value):
            return 0
        # Exact on the numbers as written: 0.3 per 0.1 is 3 units, not float division's 2.99...
        return max(0, math.floor(Fraction(repr(value)) / Fraction(repr(self.per))))


@dataclass(frozen=True, slots=True, kw_only=True)
class Coupon:
    """A coupon per achievement (``Percentage``, ``Fixed``, ``FreeShipping``...); no points."""

    coupon_type: str
    value: int | float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.coupon_type, str) or not self.coupon_type:
            raise ConfigError("Coupon(coupon_type=...) is a coupon kind, e.g. 'Percentage'")
        if self.value is not None and not _number(self.value):
            raise ConfigError("Coupon(value=...) is a number (an amount or a percentage) or None")


Reward = Points | PointsPerUnit | Coupon


@dataclass(frozen=True, slots=True)
class Tally:
    """What a customer's live events did to one campaign: ``progress`` counting events towards
    the next achievement (always below the campaign's ``target``) and ``achieved`` times."""

    progress: int = 0
    achieved: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    """A reward campaign listening to ``event``; see the module docstring.

    ``end_date`` is the instant it ends (a naive one is UTC). ``max_times`` caps one customer's
    achievements; a customer at the cap no longer sees the campaign in quotes.
    """

    id: int
    name: str
    event: str
    reward: Reward
    conditions: tuple[Condition, ...] = ()
    target: int = 1
    max_times: int | None = None
    end_date: datetime | None = None

    def __post_init__(self) -> None:
        if not _whole(self.id):
            raise ConfigError("a campaign's id is a whole number")
        where = f"campaign {self.id}"
        for name in ("name", "event"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{where}: {name} is a non-empty string")
        if not isinstance(self.reward, Points | PointsPerUnit | Coupon):
            raise ConfigError(f"{where}: reward is Points(...), PointsPerUnit(...) or Coupon(...)")
        conditions = tuple(self.conditions)
        if not all(isinstance(condition, Condition) for condition in conditions):
            raise ConfigError(f"{where}: conditions are Condition(key, operator, value) values")
        object.__setattr__(self, "conditions", conditions)
        if not _whole(self.target) or self.target < 1:
            raise ConfigError(f"{where}: target is the events needed to achieve it, at least 1")
        if isinstance(self.reward, PointsPerUnit) and self.target != 1:
            raise ConfigError(f"{where}: points per unit count every unit; leave target at 1")
        if self.max_times is not None and (not _whole(self.max_times) or self.max_times < 1):
            raise ConfigError(f"{where}: max_times is a whole number, at least 1 (None: no cap)")
        if self.end_date is not None:
            if not isinstance(self.end_date, datetime):
                raise ConfigError(f"{where}: end_date is a datetime (or None)")
            if self.end_date.tzinfo is None:
                object.__setattr__(self, "end_date", self.end_date.replace(tzinfo=UTC))

    def active(self, now: datetime) -> bool:
        return self.end_date is None or now <= self.end_date

    def units(self, metadata: Mapping[str, Any]) -> int:
        """How many achievements' worth this event brings: 0 when it does not count."""
        if not all(condition.holds(metadata) for condition in self.conditions):
            return 0
        return self.reward.units(metadata) if isinstance(self.reward, PointsPerUnit) else 1

    def metadata_keys(self) -> Iterator[tuple[str, bool]]:
        """The metadata keys it reads, each with whether it must hold a number."""
        for condition in self.conditions:
            yield condition.key, condition.numeric
        if isinstance(self.reward, PointsPerUnit):
            yield self.reward.of, True


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One campaign's part in a quote; ``progress`` is the tally's before this event."""

    campaign: Campaign
    reason: Reason
    times: int
    progress: int

    @property
    def points(self) -> int:
        reward = self.campaign.reward
        return 0 if isinstance(reward, Coupon) else self.times * reward.points

    def after(self, tally: Tally) -> Tally:
        """The tally once a live event had this outcome."""
        if self.reason is Reason.NO_MATCHING_CONDITIONS:
            return tally
        if self.reason is Reason.PROGRESS_ONLY:
            return Tally(tally.progress + 1, tally.achieved)
        return Tally(0, tally.achieved + self.times)

    def answer(self) -> dict[str, Any]:
        campaign, reward = self.campaign, self.campaign.reward
        coupon = reward if isinstance(reward, Coupon) else None
        end = campaign.end_date
        return {
            "campaignId": campaign.id,
            "campaignName": campaign.name,
            "campaignEndDate": None if end is None else end.astimezone(UTC).strftime(_ISO),
            "eligible": self.reason is not Reason.NO_MATCHING_CONDITIONS,
            "reason": self.reason.value,
            "rewardType": "Coupon" if coupon else "Points",
            "rewardPoints": None if isinstance(reward, Coupon) else reward.points,
            "couponType": coupon.coupon_type if coupon else None,
            "couponValue": coupon.value if coupon else None,
            "points": self.points,
            "timesAchieved": self.times,
            "progress": self._progress() if self.reason is Reason.PROGRESS_ONLY else None,
        }

    def _progress(self) -> dict[str, Any]:
        target, reward = self.campaign.target, self.campaign.reward
        return {
            "currentPercentage": round(100 * self.progress / target, 2),
            "wouldBePercentage": round(100 * (self.progress + 1) / target, 2),
            "completionRewardPoints": None if isinstance(reward, Coupon) else reward.points,
            "completionRewardType": "Coupon" if isinstance(reward, Coupon) else "Points",
        }


_ISO = "%Y-%m-%dT%H:%M:%SZ"


def _outcome(campaign: Campaign, metadata: Mapping[str, Any], tally: Tally) -> _Outcome | None:
    """None when the customer can no longer win it (the quote omits it)."""
    cap = campaign.max_times
    if cap is not None and tally.achieved >= cap:
        return None
    units = campaign.units(metadata)
    if not units:
        return _Outcome(campaign, Reason.NO_MATCHING_CONDITIONS, 0, tally.progress)
    if tally.progress + 1 < campaign.target:
        return _Outcome(campaign, Reason.PROGRESS_ONLY, 0, tally.progress)
    times = units if cap is None else min(units, cap - tally.achieved)
    reason = Reason.NON_POINTS_REWARD if isinstance(campaign.reward, Coupon) else Reason.REWARDED
    return _Outcome(campaign, reason, times, tally.progress)


def _metadata_problem(campaigns: Iterable[Campaign], metadata: Mapping[str, Any]) -> str | None:
    """Why the metadata cannot be evaluated: a key a campaign reads holds the wrong kind of
    value. Keys no campaign reads are ignored, as Gameball ignores unknown keys."""
    for campaign in campaigns:
        for key, numeric in campaign.metadata_keys():
            value = metadata.get(key)
            if value is None:
                continue
            if numeric and not _number(value):
                return f"{key} must be a number"
            if not _scalar(value):
                return f"{key} must be a string, a number or a boolean"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaigns:
    """The campaigns the emulator quotes from, and the event names it knows without one.

    An event name that neither a campaign (even an ended one) nor ``known_events`` knows is
    ``EventNotFound``. ``Campaigns.from_json(path_or_text)`` reads the file format of
    ``docs/reference.md`` (the reward preview).
    """

    campaigns: tuple[Campaign, ...] = ()
    known_events: frozenset[str] = frozenset()
    _by_event: dict[str, tuple[Campaign, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        campaigns = tuple(self.campaigns)
        if not all(isinstance(campaign, Campaign) for campaign in campaigns):
            raise ConfigError("campaigns are Campaign(...) values")
        ids = [campaign.id for campaign in campaigns]
        if len(set(ids)) < len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise ConfigError(f"campaign id {twice} is used twice; give every campaign its own")
        if isinstance(self.known_events, str):
            raise ConfigError("known_events is a list of event names, not one string")
        known = frozenset(self.known_events)
        if not all(isinstance(name, str) and name.strip() for name in known):
            raise ConfigError("known_events are event names: non-empty strings")
        object.__setattr__(self, "campaigns", campaigns)
        object.__setattr__(self, "known_events", known)
        for campaign in campaigns:
            self._by_event[campaign.event] = (*self._by_event.get(campaign.event, ()), campaign)

    @classmethod
    def of(
        cls, campaigns: Campaigns | Iterable[Campaign] = (), known_events: Iterable[str] = ()
    ) -> Campaigns:
        """Campaigns from a :class:`Campaigns` or a list of :class:`Campaign`, plus known
        event names."""
        if isinstance(known_events, str):
            raise ConfigError("known_events is a list of event names, not one string")
        if isinstance(campaigns, Campaigns):
            known = campaigns.known_events | frozenset(known_events)
            return cls(campaigns=campaigns.campaigns, known_events=known)
        return cls(campaigns=tuple(campaigns), known_events=frozenset(known_events))

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> Campaigns:
        """Read campaigns from a JSON file, or from JSON text (a string starting with ``{``)."""
        text, where = _read(source)
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{where} is not JSON: {error}") from None
        try:
            return _parse(data)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None

    def knows(self, event: str) -> bool:
        return event in self._by_event or event in self.known_events

    def quote(
        self, body: Mapping[str, Any], standing: Mapping[int, Tally], *, now: datetime
    ) -> dict[str, Any]:
        """The preview's 200 answer for a checked ``body`` (see :func:`preview_problem`) and
        the customer's ``standing``: a :class:`Tally` per campaign id (none: a fresh start)."""
        events = [
            _event_answer(name, self._outcomes(name, metadata or {}, standing, now))
            for name, metadata in body["events"].items()
        ]
        total = sum(event["totalPoints"] for event in events)
        return {"customerId": body["customerId"], "totalPoints": total, "events": events}

    def award(
        self,
        event: str,
        metadata: Mapping[str, Any],
        standing: Mapping[int, Tally],
        *,
        now: datetime,
    ) -> tuple[int, dict[int, Tally]]:
        """A live event: the points it earns, exactly as quoted, and the tallies it changes."""
        outcomes = self._outcomes(event, metadata, standing, now)
        if isinstance(outcomes, str):
            return 0, {}
        changed = {
            outcome.campaign.id: outcome.after(standing.get(outcome.campaign.id, Tally()))
            for outcome in outcomes
            if outcome.reason is not Reason.NO_MATCHING_CONDITIONS
        }
        return sum(outcome.points for outcome in outcomes), changed

    def _outcomes(
        self, event: str, metadata: Mapping[str, Any], standing: Mapping[int, Tally], now: datetime
    ) -> list[_Outcome] | str:
        """The outcome of every campaign the customer can still win, or why the event is
        invalid (``EventNotFound``, ``InvalidMetadata: ...``)."""
        if not self.knows(event):
            return EVENT_NOT_FOUND
        listening = [c for c in self._by_event.get(event, ()) if c.active(now)]
        problem = _metadata_problem(listening, metadata)
        if problem:
            return f"{INVALID_METADATA}: {problem}"
        outcomes = (_outcome(c, metadata, standing.get(c.id, Tally())) for c in listening)
        return [outcome for outcome in outcomes if outcome is not None]


def _event_answer(name: str, outcomes: list[_Outcome] | str) -> dict[str, Any]:
    if isinstance(outcomes, str):
        return {
            "eventName": name,
            "valid": False,
            "invalidReason": outcomes,
            "totalPoints": 0,
            "campaigns": [],
        }
    return {
        "eventName": name,
        "valid": True,
        "invalidReason": None,
        "totalPoints": sum(outcome.points for outcome in outcomes),
        "campaigns": [outcome.answer() for outcome in outcomes],
    }


def preview_problem(body: object) -> tuple[int, str] | None:
    """``(code, message)`` when a preview body breaks the rules (answered 400), else None."""
    if not isinstance(body, dict):
        return gameball.MALFORMED_JSON, "The request body must be a JSON object."
    customer = body.get("customerId")
    if customer is None:
        return gameball.MISSING_ARGUMENT, "The customerId field is required."
    if not isinstance(customer, str) or not customer.strip():
        return gameball.INVALID_VALUE, "customerId must be a non-empty string."
    if len(customer) > MAX_CUSTOMER_ID:
        return gameball.INVALID_VALUE, f"customerId must be at most {MAX_CUSTOMER_ID} characters."
    events = body.get("events")
    if events is None or events == {}:
        return gameball.MISSING_ARGUMENT, "At least one event is required."
    if not isinstance(events, dict):
        return gameball.INVALID_VALUE, "events must be an object of event name to metadata."
    for name, metadata in events.items():
        if not name.strip():
            return gameball.INVALID_VALUE, "Event names must not be empty."
        if metadata is not None and not isinstance(metadata, dict):
            return (
                gameball.INVALID_VALUE,
                f"The metadata of event {name!r} must be an object or null.",
            )
    for optional in ("email", "mobile"):
        if body.get(optional) is not None and not isinstance(body[optional], str):
            return gameball.INVALID_VALUE, f"{optional} must be a string."
    return None


# --- the JSON file ---------------------------------------------------------------------------

_CAMPAIGN_KEYS = ("id", "name", "event", "reward", "conditions", "target", "max_times", "end_date")
_REWARDS = (
    '{"points": 50}, {"points": 1, "per": 10, "of": "amount"} '
    'or {"coupon": "Percentage", "value": 15}'
)


def _read(source: str | os.PathLike[str]) -> tuple[str, str]:
    """The JSON text, and how to name where it came from in an error."""
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return source, "the campaigns JSON"
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ConfigError(f"cannot read the campaigns file {path}: {reason}") from None


def _parse(data: object) -> Campaigns:
    if not isinstance(data, dict) or set(data) - {"campaigns", "known_events"}:
        raise ConfigError('expected {"campaigns": [...], "known_events": [...]} and nothing else')
    campaigns, known = data.get("campaigns", []), data.get("known_events", [])
    if not isinstance(campaigns, list):
        raise ConfigError('"campaigns" is a list of campaign objects')
    if not isinstance(known, list) or not all(isinstance(name, str) for name in known):
        raise ConfigError('"known_events" is a list of event names')
    return Campaigns(
        campaigns=tuple(_campaign(item, number) for number, item in enumerate(campaigns)),
        known_events=frozenset(known),
    )


def _campaign(item: object, number: int) -> Campaign:
    where = f"campaigns[{number}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where} is not an object")
    unknown = sorted(set(item) - set(_CAMPAIGN_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {_CAMPAIGN_KEYS}")
    missing = [key for key in _CAMPAIGN_KEYS[:4] if key not in item]
    if missing:
        raise ConfigError(f"{where}: {missing[0]!r} is missing")
    try:
        conditions = item.get("conditions", [])
        if not isinstance(conditions, list):
            raise ConfigError('conditions are a list like [["amount", ">=", 20]]')
        return Campaign(
            id=item["id"],
            name=item["name"],
            event=item["event"],
            reward=_reward(item["reward"]),
            conditions=tuple(_condition(condition) for condition in conditions),
            target=item.get("target", 1),
            max_times=item.get("max_times"),
            end_date=_end_date(item.get("end_date")),
        )
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _condition(condition: object) -> Condition:
    if not isinstance(condition, list) or len(condition) != 3:
        raise ConfigError('a condition is ["key", "operator", value], e.g. ["amount", ">=", 20]')
    return Condition(*condition)


def _reward(reward: object) -> Reward:
    keys = set(reward) if isinstance(reward, dict) else set()
    if isinstance(reward, dict) and keys == {"points"}:
        return Points(points=reward["points"])
    if isinstance(reward, dict) and keys == {"points", "per", "of"}:
        return PointsPerUnit(points=reward["points"], per=reward["per"], of=reward["of"])
    if isinstance(reward, dict) and keys in ({"coupon"}, {"coupon", "value"}):
        return Coupon(coupon_type=reward["coupon"], value=reward.get("value"))
    raise ConfigError(f"a reward is {_REWARDS}")


def _end_date(text: object) -> datetime | None:
    if text is None:
        return None
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(text)
    raise ConfigError(f"end_date {text!r} is not an ISO-8601 date-time, e.g. 2026-08-31T23:59:59Z")
