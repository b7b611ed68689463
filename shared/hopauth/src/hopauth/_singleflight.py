"""Coalesce concurrent calls for the same key into one in-flight call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """At most one call per key runs at a time; concurrent callers share its result.

    The shared call runs in its own task and callers await it through
    :func:`asyncio.shield`, so one caller being cancelled (a client hanging
    up) does not cancel the work the others are waiting for.
    """

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def in_flight(self, key: K) -> bool:
        return key in self._tasks

    async def do(self, key: K, fn: Callable[[], Coroutine[Any, Any, V]]) -> V:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(fn())
            self._tasks[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        return await asyncio.shield(task)

    def _done(self, key: K, task: asyncio.Task[V]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        # Mark the exception as retrieved: if every caller was cancelled, no
        # one awaits it, and asyncio would log "exception was never retrieved".
        if not task.cancelled():
            task.exception()
