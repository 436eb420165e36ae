"""A counting gate that lets waiters through in arrival order, each waiting at most until its own deadline.

The request path passes one on every pooled connection it takes. asyncio.Semaphore is FIFO too, but bounding
its wait takes an asyncio.timeout per request (a Timeout object and a timer handle created and cancelled each
time), which showed up in profiles under load. Here a single timer serves all waiters: it fires at the
earliest deadline and fails whoever has run out of time.
"""

from __future__ import annotations

import asyncio
from collections import deque

# A timer may fire a little before its deadline (the loop's clock resolution): treat that as expired.
_SLACK = 0.001


class FifoGate:
    __slots__ = ("_free", "_timer", "_timer_at", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def free(self) -> int:
        """Places free now (0 while anyone waits)."""
        return self._free

    def locked(self) -> bool:
        return self._free == 0 or bool(self._waiters)

    async def enter(self, wait: float) -> None:
        """Take a place, waiting behind earlier arrivals for at most `wait` seconds (then TimeoutError)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + wait
        self._waiters.append((deadline, fut))
        if self._timer is None or deadline < self._timer_at:
            self._arm(loop, deadline)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.leave()  # the place was handed over as this waiter was cancelled: pass it on
            raise

    def leave(self) -> None:
        """Give the place back: straight to the longest waiter still waiting, if any."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()[1]
            if not fut.done():
                fut.set_result(None)
                return
        self._free += 1

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(at, self._expire, loop)
        self._timer_at = at

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time() + _SLACK
        kept: deque[tuple[float, asyncio.Future[None]]] = deque()
        earliest: float | None = None
        for deadline, fut in self._waiters:
            if fut.done():
                continue
            if deadline <= now:
                fut.set_exception(TimeoutError())
                continue
            kept.append((deadline, fut))
            if earliest is None or deadline < earliest:
                earliest = deadline
        self._waiters = kept
        if earliest is not None:
            self._arm(loop, earliest)
