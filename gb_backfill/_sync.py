"""Sync and async meeting: a coroutine run from sync code, and sync work run off the loop.

:func:`run_sync` runs a coroutine to completion from sync code, also inside a running loop
(a Jupyter cell); :func:`off_loop` runs CPU-heavy sync work in a worker thread from a
coroutine, so the loop keeps requests at their pace. That worker is always the same thread:
pyarrow's allocator (mimalloc) keeps a heap per thread, and with the loop's default executor
(up to six threads, each used now and then) a long run's peak memory crept up by a sixth
from 1M to 10M rows; with one thread it stays flat (``bench/bench_memory.py``).

With no loop running, ``run_sync`` is ``asyncio.run``. Inside a running loop, the coroutine
runs on a private loop in a worker thread while the caller waits: no ``nest_asyncio``, no
patching of the kernel's loop. Ctrl-C while waiting cancels the coroutine and lets it finish its
cleanup; then what it raised (a stopped run says so itself, with its report) is raised, or
``KeyboardInterrupt`` when it raised nothing but the cancellation.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_worker: tuple[int, ThreadPoolExecutor] | None = None  # (the process it belongs to, it)
_worker_lock = threading.Lock()


def _the_worker() -> ThreadPoolExecutor:
    global _worker
    with _worker_lock:
        # A forked child inherits the executor but not its thread: it gets its own.
        if _worker is None or _worker[0] != os.getpid():
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gb-backfill-work")
            _worker = (os.getpid(), executor)
        return _worker[1]


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    # Run outside the except clause: an error of the run would carry "no running event
    # loop" chained before it in every traceback.
    return _run_in_thread(coroutine) if running else _run(coroutine)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)``, what it raises kept as the task's result.

    A second Ctrl-C makes ``asyncio.run`` raise ``KeyboardInterrupt`` at once and finish the
    task while it shuts down, where an error the task raised would be logged as unhandled: the
    task hands its error back instead, and it is raised here, after the interrupt.
    """
    outcome: dict[str, Any] = {}

    async def kept() -> None:
        try:
            outcome["result"] = await coroutine
        except Exception as error:  # raised below, once the loop is closed
            outcome["error"] = error

    try:
        asyncio.run(kept())
    except KeyboardInterrupt:
        if "error" not in outcome:
            raise
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


def _run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()
    task_ready = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        asyncio.set_event_loop(loop)
        try:
            task = loop.create_task(coroutine)
            outcome["task"] = task
            task_ready.set()
            outcome["result"] = loop.run_until_complete(task)
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error
        finally:
            task_ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=work, name="gb-backfill-send", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(timeout=0.1)
    except KeyboardInterrupt:
        task_ready.wait()
        task = outcome.get("task")
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)
        thread.join()
        error = outcome.get("error")
        if not isinstance(error, Exception):
            raise KeyboardInterrupt from error
        # Else raised below: a stopped run says so itself, with its report.
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


async def off_loop(fn: Callable[..., T], *args: Any) -> tuple[T, bool]:
    """Run ``fn`` in a worker thread, so the event loop keeps requests at their pace meanwhile.

    A thread cannot be interrupted: when the caller is cancelled meanwhile, this still waits for
    ``fn`` and returns its result with True, so the caller can account for it, then stop.
    """
    future = asyncio.get_running_loop().run_in_executor(_the_worker(), fn, *args)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(future), cancelled
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            cancelled = True


async def offload(fn: Callable[..., T], *args: Any) -> T:
    """:func:`off_loop` for work whose caller stops when cancelled: it waits for ``fn`` (a
    thread cannot be interrupted), then raises ``CancelledError``."""
    result, cancelled = await off_loop(fn, *args)
    if cancelled:
        raise asyncio.CancelledError
    return result
