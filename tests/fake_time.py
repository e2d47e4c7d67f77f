"""An event loop whose clock is fake: waits happen at once, in order, without sleeping.

The way aiolimiter's tests patch ``loop.time`` (MockLoopTime), taken one step further: when the
loop has nothing ready and only timers ahead, its clock jumps to the next one instead of waiting.
Everything in a run reads the loop's clock (see ``gb_backfill._clock``), so pacing, backoff,
``Retry-After``, job polling and timeouts all play out in order, in no real time. Work in a
worker thread (a batch being prepared) takes no fake time: the clock does not move while a
thread is busy.

Use it with ``httpx.MockTransport``: real sockets (the emulator) live in real time.
"""

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any


class _FakeTimeSelector:
    """Wraps the loop's selector: instead of waiting for a timer, it moves the clock to it."""

    def __init__(self, selector: selectors.BaseSelector, loop: "FakeTimeLoop") -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = self._selector.select(0)
        if ready or timeout == 0:
            return ready
        if self._loop.working or timeout is None:
            # A thread is busy (its answer comes through the selector), or nothing is
            # scheduled at all: wait for real, without moving the clock.
            return self._selector.select(None if timeout is None else min(timeout, 0.05))
        self._loop.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class FakeTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.working = 0  # calls running in worker threads
        self._selector = _FakeTimeSelector(self._selector, self)  # type: ignore[assignment]

    def time(self) -> float:
        return self.now

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        self.working += 1
        future = super().run_in_executor(executor, func, *args)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: asyncio.Future[Any]) -> None:
        self.working -= 1


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` to the end on a fresh fake-time loop."""
    loop = FakeTimeLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def now() -> float:
    """The running loop's clock (fake or not): what handlers should time requests with."""
    return asyncio.get_running_loop().time()
