"""Concurrency per function: at most `limit` invocations run, at most `queue` wait (FIFO), the rest are refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class GateFull(Exception):
    pass


class Gate:
    __slots__ = ("_waiters", "running")

    def __init__(self) -> None:
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @contextlib.asynccontextmanager
    async def enter(self, limit: int, queue: int) -> AsyncIterator[None]:
        if self.running >= limit:
            if len(self._waiters) >= queue:
                raise GateFull()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # the slot is handed over by the leaving invocation (running stays counted)
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed a slot but cancelled meanwhile: pass it on
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
        else:
            self.running += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.running -= 1

    @property
    def idle(self) -> bool:
        return self.running == 0 and not self._waiters
