"""The events lane: one request per row to ``/integrations/events``, paced and retried.

The dispatcher offers a customer's next row only when the customer has nothing in flight, so at
most one request per customer is out and a customer's rows go in input order, retries included.
``concurrency`` workers take offered rows from a ready queue, highest priority first (in batch
mode the busiest customers', whose one-at-a-time chains are the lane's critical path; else in
the order offered); as many requests are in flight as the pace times the round trip needs
(Little's law), at most ``concurrency``. Delivery is the
shared loop of :mod:`.base`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
from functools import partial

import httpx

from ... import _gameball as gameball
from ..._clock import Clock
from ..._config import RateLimits, Settings
from ..._vocabulary import Lane, Status
from ..chunks import OutgoingRow
from ..dispatch import Dispatcher
from ..outcomes import SENT
from ..timeline import Timeline
from .base import BaseLane, Book

__all__ = ["EventsLane"]

_LOOK_AGAIN = (
    0.05  # seconds between looks of a short chain's row at a window full but for its kept places
)


class EventsLane(BaseLane):
    """Delivers rows one request each. Strictly private: driven by the run."""

    kind = Lane.EVENTS
    option = "limits"

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        book: Book,
        dispatcher: Dispatcher,
        *,
        clock: Clock,
        timeline: Timeline,
        limits: RateLimits | None = None,
        path: str = gameball.EVENTS_PATH,
        quiet_for: float | None = None,
    ) -> None:
        super().__init__(
            settings=settings, client=client, book=book, dispatcher=dispatcher,
            limits=limits or settings.limits, clock=clock, timeline=timeline,
            quiet_for=quiet_for,
        )  # fmt: skip
        #: (-priority, order offered, row); None, last of all, tells a worker to stop
        self.ready: asyncio.PriorityQueue[tuple[float, int, OutgoingRow | None]] = (
            asyncio.PriorityQueue()
        )
        self._order = itertools.count()
        self.in_flight = 0
        self.round_trip = 0.0  # seconds, smoothed over recent answers
        # Places in the long window kept for the rows of customers with long chains (see
        # keep_for_chains); none by default.
        self._chain_priority = math.inf
        self._kept = 0
        self._short_going = 0  # short chains' rows past the check, not yet answered
        # Workers waiting for a place in flight, first come first served: a place freed goes
        # to the first of them, not to the worker that freed it (which took every place while
        # fresh rows lasted, and rows waiting to be retried waited for the end of the run).
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._workers: list[asyncio.Task[None]] = []
        base = settings.base_url
        self.urls = {v: base + path.format(version=v) for v in gameball.API_VERSIONS}

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker()) for _ in range(self.settings.concurrency)
        ]

    def keep_for_chains(self, *, priority: int, places: int) -> None:
        """Keep ``places`` in the long window for rows of ``priority`` and above (in batch mode,
        customers whose rows chain through many job cycles).

        Rows of short chains fill a window in its first seconds, then wait for it to slide,
        and a long chain's row that comes up meanwhile would wait with them: every job cycle
        after it too. Short chains lose nothing by waiting; a long chain's row goes at once.
        """
        self._chain_priority, self._kept = priority, places

    def offer(self, row: OutgoingRow, *, priority: int = 0) -> None:
        # Events mode keeps the order offered: there the input's order is the plan.
        rank = -priority if self.settings.mode == Lane.BATCH else 0
        self.ready.put_nowait((rank, next(self._order), row))

    async def close(self) -> None:
        for _ in self._workers:
            self.ready.put_nowait((math.inf, next(self._order), None))
        grace = self.settings.timeout + 1.0 if self.book.stopped.is_set() else None
        await self._drain_tasks(self._workers, grace)
        self.stop_queued()

    def stop_queued(self) -> None:
        while not self.ready.empty():
            _, _, row = self.ready.get_nowait()
            if row is not None:
                self.stop_rows([row])

    def cancel(self) -> None:
        for task in self._workers:
            task.cancel()

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._workers)

    # --- delivery --------------------------------------------------------------------------

    def pace(self) -> str | None:
        """The pace Gameball's answers have set, for the progress bar, with the window quota
        the run keeps (learned, or configured); None while unthrottled."""
        rate = self.adaptive.rate(self.clock())
        if rate is None:
            return None
        # The quota too, or the rate alone says 87/s of a run the window holds to 36/s.
        window = self.adaptive.learned_window or self.adaptive.configured_window
        quota = f", {window:,}/{self.adaptive.window:g}s" if window else ""
        return f"{rate:.0f}/s{quota}"

    def allowed_in_flight(self) -> int:
        """Requests in flight the pace needs (Little's law: rate times round trip), with room
        for jitter, within 2 and ``concurrency``. With no rate limit, ``concurrency``."""
        ceiling = self.settings.concurrency
        rate = self.adaptive.rate(self.clock()) or self.limiter.limits.per_second
        if not rate or not self.round_trip:
            return ceiling
        return max(2, min(ceiling, math.ceil(rate * self.round_trip * 1.5) + 1))

    async def _admit(self) -> None:
        if not self._waiting and self.in_flight < self.allowed_in_flight():
            self.in_flight += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn  # the place is counted as ours when the turn comes
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.in_flight -= 1  # given a place, cancelled before taking it: pass it on
                self._hand_on()
            else:
                self._waiting.remove(turn)
            raise

    def _release(self, took: float | None) -> None:
        self.in_flight -= 1
        if took is not None:
            self.round_trip = 0.8 * self.round_trip + 0.2 * took if self.round_trip else took
        self._hand_on()

    def _hand_on(self) -> None:
        """Give the places free in flight to the workers waiting longest."""
        while self._waiting and self.in_flight < self.allowed_in_flight():
            turn = self._waiting.popleft()
            if not turn.done():
                self.in_flight += 1
                turn.set_result(None)

    def _waits_for_the_window(self) -> bool:
        """Whether a short chain's row must wait: the window has no place for it beyond those
        kept for long chains and those the short rows on their way will take."""
        if not self._kept or self.book.stopped.is_set():
            return False
        return not self.limiter.room_beyond(self._kept + self._short_going)

    async def _post(self, row: OutgoingRow) -> httpx.Response:
        version = gameball.TOKEN_API_VERSION if row.token else self.settings.api_version
        headers = self.headers
        if row.token:
            headers = {**headers, gameball.SESSION_TOKEN_HEADER: row.token}
        return await self.client.post(self.urls[version], content=row.body, headers=headers)

    def delivered(self, row: OutgoingRow, response: httpx.Response) -> None:
        """Gameball accepted ``row``'s request."""
        self.finish([row], Status.SENT, SENT)

    async def _worker(self) -> None:
        while True:
            rank, order, row = await self.ready.get()
            if row is None:
                return
            short = -rank < self._chain_priority
            if short and self._waits_for_the_window():
                # Back in the queue, where a long chain's row that comes up goes first.
                self.ready.put_nowait((rank, order, row))
                await self.book.pause(_LOOK_AGAIN)
                continue
            self._short_going += short
            try:
                if self.book.stopped.is_set():
                    self.stop_rows([row])
                elif (response := await self.deliver([row], partial(self._post, row))) is not None:
                    self.delivered(row, response)
            except asyncio.CancelledError:
                self.stop_rows([row])
                raise
            except Exception as error:  # any surprise stops the run; the row keeps a status
                self.book.halt(error)
                self.stop_rows([row], error)
            finally:
                self._short_going -= short
