"""What the emulator does wrong on purpose, and the keys it accepts by default.

Kept apart from the server, so the CLI can show these defaults without importing aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._errors import ConfigError

__all__ = ["DEFAULT_API_KEY", "DEFAULT_SECRET_KEY", "Faults"]

#: The keys the emulator accepts unless told otherwise (the demo uses them).
DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_SECRET_KEY = "emulator-secret-key"


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Faults to inject, as shares of requests (0 to 1) and seconds.

    The shares are drawn from one seeded random stream in arrival order, so a run with the same
    requests meets the same faults. ``lost_response`` requests are processed and recorded first;
    their answer is then lost: the connection is dropped (``lost_mode="drop"``) or the reply
    comes after ``slow_reply`` seconds, later than the client waits (``lost_mode="slow"``).
    ``arrival_delay`` plus up to ``arrival_jitter`` seconds (uniform) pass before an events
    request is counted against the rate limits: a one-way network delay, so the server counts
    it later than it was sent, by a varying amount.
    """

    latency: float = 0.0
    jitter: float = 0.0
    server_errors: float = 0.0
    dropped_connections: float = 0.0
    lost_responses: float = 0.0
    lost_mode: Literal["drop", "slow"] = "drop"
    slow_reply: float = 30.0
    arrival_delay: float = 0.0
    arrival_jitter: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        shares = (self.server_errors, self.dropped_connections, self.lost_responses)
        if any(not 0 <= s <= 1 for s in shares) or sum(shares) > 1:
            raise ConfigError("fault shares must be between 0 and 1 and add up to at most 1")
        if min(self.latency, self.jitter, self.arrival_delay, self.arrival_jitter) < 0:
            raise ConfigError("latency, jitter and arrival delays are seconds, at least 0")
