"""The request path's connection pool: places handed over in arrival order, plain connections, idle expiry by
one timer.

asyncpg's pool costs about 55 µs of Python per acquire/release on this project's machine (a holder, a proxy object,
an `asyncio.shield` task and an inactivity timer per release) — about an eighth of a single-row REST GET. Request
transactions only need: take a connection within a bounded wait, in arrival order; give it back clean or not at
all. A connection whose state is unknown (its request was cancelled or the client library failed mid-query) or
that is still inside a transaction is closed instead of reused; the next request opens a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from madbase.core.fifogate import FifoGate

# Failures after which a connection's protocol state is not trusted.
UNSURE = (asyncio.CancelledError, asyncpg.InterfaceError, OSError, TimeoutError)


class LeanPool:
    __slots__ = ("_closed", "_connect", "_idle", "_idle_seconds", "_open", "_sweeper", "gate", "size")

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int, idle_seconds: float = 300.0) -> None:
        self._connect = connect
        self.size = size
        self.gate = FifoGate(size)
        self._idle: list[tuple[float, Any]] = []  # (released at, connection), most recent last
        self._idle_seconds = idle_seconds
        self._open = 0
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    async def acquire(self, wait: float) -> Any:
        """A connection within `wait` seconds of queueing (connecting is bounded by the connect timeout)."""
        if self._closed:
            raise asyncpg.InterfaceError("pool is closed")
        await self.gate.enter(wait)
        try:
            while self._idle:
                conn = self._idle.pop()[1]
                if not conn.is_closed():
                    return conn
                self._open -= 1
            conn = await self._connect()
            self._open += 1
            return conn
        except BaseException:
            self.gate.leave()
            raise

    def release(self, conn: Any, unsure: bool = False) -> None:
        """Give a connection back: reused when it is idle and trusted, closed otherwise."""
        try:
            if self._closed or unsure or conn.is_closed() or conn.is_in_transaction():
                self._drop(conn)
                return
            loop = asyncio.get_running_loop()
            self._idle.append((loop.time(), conn))
            if self._sweeper is None:
                self._sweeper = loop.call_later(self._idle_seconds / 4, self._sweep, loop)
        finally:
            self.gate.leave()

    def _drop(self, conn: Any) -> None:
        self._open -= 1
        if not conn.is_closed():
            conn.terminate()

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeper = None
        cutoff = loop.time() - self._idle_seconds
        keep = []
        for released, conn in self._idle:
            if released < cutoff or conn.is_closed():
                self._drop(conn)
            else:
                keep.append((released, conn))
        self._idle = keep
        if keep:
            self._sweeper = loop.call_later(self._idle_seconds / 4, self._sweep, loop)

    async def close(self) -> None:
        """Close idle connections now; connections in use are closed when they come back."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for _, conn in idle:
            self._open -= 1
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()
