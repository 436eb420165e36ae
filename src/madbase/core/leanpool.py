"""The request path's connection pool: places handed over in arrival order, plain connections, idle expiry by
one timer.

asyncpg's pool costs about 55 µs of Python per acquire/release on this project's machine (a holder, a proxy object,
an `asyncio.shield` task and an inactivity timer per release) — about an eighth of a single-row REST GET. Request
transactions only need: take a connection within a bounded wait, in arrival order; give it back clean or not at
all. A connection whose state is unknown (its request was cancelled or the client library failed mid-query) or
that is still inside a transaction is closed instead of reused; the next request opens a new one. Closing is
graceful when a cancellation is under way (a request cancelled mid-query or timed out), so the server-side
statement is cancelled before the connection goes, rather than running on for nobody.

Per-client share: a request may name a client key (`acquire(wait, key)`, the client IP of an API request). A
client already holding `client_share` connections waits in a queue of its own until one of its own connections
comes back, not in the shared queue: one client's flood of slow requests then holds at most its share of the
pool, and every other client's requests still find a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from madbase.core.fifogate import FifoGate

# Failures after which a connection's protocol state is not trusted.
UNSURE = (asyncio.CancelledError, asyncpg.InterfaceError, OSError, TimeoutError)


class LeanPool:
    __slots__ = ("_closed", "_closing", "_connect", "_held", "_idle", "_idle_seconds", "_open", "_parked",
                 "_sweeper", "client_share", "gate", "size")

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int, idle_seconds: float = 300.0,
                 client_share: int | None = None) -> None:
        self._connect = connect
        self.size = size
        self.gate = FifoGate(size)
        self.client_share = size if client_share is None else max(1, min(size, client_share))
        self._held: dict[str, int] = {}  # connections held per client key
        self._parked: dict[str, deque[asyncio.Future[None]]] = {}  # clients over their share, waiting
        self._closing: set[asyncio.Task[None]] = set()
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

    async def acquire(self, wait: float, key: str | None = None) -> Any:
        """A connection within `wait` seconds of queueing (connecting is bounded by the connect timeout).
        A `key` counts the connection against that client's share; pass the same key to `release`."""
        if self._closed:
            raise asyncpg.InterfaceError("pool is closed")
        if key is not None and self.client_share < self.size:
            if self._held.get(key, 0) >= self.client_share:
                wait = await self._park(key, wait)
            self._held[key] = self._held.get(key, 0) + 1
        try:
            await self.gate.enter(wait)
        except BaseException:
            self._unhold(key)
            raise
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
            self._unhold(key)
            raise

    async def _park(self, key: str, wait: float) -> float:
        """Wait (at most `wait` s) until one of `key`'s connections comes back; returns the wait left."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        fut: asyncio.Future[None] = loop.create_future()
        queue = self._parked.setdefault(key, deque())
        queue.append(fut)
        try:
            await asyncio.wait_for(fut, wait)
        finally:
            if not fut.done():
                fut.cancel()
            with contextlib.suppress(ValueError):
                queue.remove(fut)
            if not queue and self._parked.get(key) is queue:
                del self._parked[key]
        return max(0.0, wait - (loop.time() - started))

    def _unhold(self, key: str | None) -> None:
        if key is None or key not in self._held:
            return
        left = self._held[key] - 1
        if left > 0:
            self._held[key] = left
        else:
            del self._held[key]
        queue = self._parked.get(key)
        while queue:
            fut = queue.popleft()
            if not fut.done():
                fut.set_result(None)
                break

    def release(self, conn: Any, unsure: bool = False, key: str | None = None) -> None:
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
            self._unhold(key)

    def _drop(self, conn: Any) -> None:
        self._open -= 1
        if conn.is_closed():
            return
        # A cancelled or timed-out query has a cancel request under way: a graceful close waits for it (bounded),
        # so the server stops the statement; terminating now would abandon the cancel and leave it running.
        try:
            task = asyncio.get_running_loop().create_task(self._close_gracefully(conn))
        except RuntimeError:
            conn.terminate()
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_gracefully(conn: Any) -> None:
        try:
            await conn.close(timeout=5)
        except BaseException:
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
