"""Fixed-window rate limits shared by every server process through the control database.

Each process counts locally and, every `sync_interval`, adds its new hits to an unlogged counter table and
reads back the cluster-wide totals (one statement for all keys). A decision uses the last known total plus
the hits not yet synced, so requests never wait on the database and processes agree within one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import structlog

log = structlog.get_logger("madbase.ratelimit")

_SYNC_SQL = """
insert into madbase_control.rate_counters as c (key, window_start, count)
select * from unnest($1::text[], $2::bigint[], $3::bigint[])
on conflict (key, window_start) do update set count = c.count + excluded.count
returning key, window_start, count
"""


class RateLimiter:
    def __init__(self, pool: asyncpg.Pool | None, *, window_seconds: int = 60, sync_interval: float = 0.25) -> None:
        self._pool = pool
        self.window = window_seconds
        self._sync_interval = sync_interval
        self._pending: dict[tuple[str, int], int] = {}
        self._known: dict[tuple[str, int], int] = {}
        # Hits on their way to the database: still counted while the sync's round trip is under way.
        self._inflight: dict[tuple[str, int], int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._pool is not None:
            self._task = asyncio.create_task(self._syncer(), name="rate-limit-sync")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def hit(self, key: str, limit: int) -> int | None:
        """Count one request for `key`; None if allowed, else the seconds until the window resets."""
        now = time.time()
        window = int(now // self.window)
        slot = (key, window)
        pending = self._pending.get(slot, 0)
        if self._known.get(slot, 0) + self._inflight.get(slot, 0) + pending >= limit:
            return max(1, int((window + 1) * self.window - now + 0.999))
        self._pending[slot] = pending + 1
        return None

    async def sync(self) -> None:
        if self._pool is None:
            return
        current = int(time.time() // self.window)
        # Keys seen this window are synced even with no new hits, to learn the other processes' counts.
        slots = set(self._pending) | {s for s in self._known if s[1] == current}
        if not slots:
            return
        pending, self._pending = self._pending, {}
        self._inflight = pending
        keys = [s[0] for s in slots]
        windows = [s[1] * self.window for s in slots]
        counts = [pending.get(s, 0) for s in slots]
        try:
            rows = await self._pool.fetch(_SYNC_SQL, keys, windows, counts)
        except Exception:
            for slot, n in pending.items():  # keep the hits for the next attempt
                self._pending[slot] = self._pending.get(slot, 0) + n
            raise
        finally:
            self._inflight = {}
        self._known = {(r["key"], r["window_start"] // self.window): r["count"] for r in rows
                       if r["window_start"] // self.window >= current}

    async def _syncer(self) -> None:
        last_cleanup = 0.0
        while True:
            await asyncio.sleep(self._sync_interval)
            try:
                await self.sync()
                if time.time() - last_cleanup > self.window and self._pool is not None:
                    last_cleanup = time.time()
                    await self._pool.execute(
                        "delete from madbase_control.rate_counters where window_start < $1",
                        int(time.time()) - 2 * self.window,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("rate_limit_sync_failed", error=str(exc))
