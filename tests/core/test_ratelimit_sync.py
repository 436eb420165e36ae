"""The shared rate limiter keeps counting the hits it is syncing: a limit must hold while the sync's round
trip to the control database is under way (auth's MFA and code limits rely on it)."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from madbase.core import migrations
from madbase.core.ratelimit import RateLimiter


async def test_hits_in_flight_still_count(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    await migrations.apply(conn, "control")
    await conn.close()
    pool = await asyncpg.create_pool(fresh_db, min_size=1, max_size=1)
    assert pool is not None
    try:
        await _check(pool, fresh_db)
    finally:
        await pool.close()


async def _check(pool: asyncpg.Pool, dsn: str) -> None:
    limiter = RateLimiter(pool, window_seconds=3600)
    key = f"test:{uuid.uuid4().hex}"
    assert all(limiter.hit(key, 3) is None for _ in range(3))
    assert limiter.hit(key, 3) is not None
    window_start = int(time.time() // 3600) * 3600
    blocker = await asyncpg.connect(dsn)
    try:
        tx = blocker.transaction()
        await tx.start()
        # An uncommitted row with the same key holds the sync's upsert until the blocker ends.
        await blocker.execute("insert into madbase_control.rate_counters (key, window_start, count) "
                              "values ($1, $2, 0)", key, window_start)
        sync = asyncio.create_task(limiter.sync())
        await asyncio.sleep(0.3)
        assert not sync.done()
        assert limiter.hit(key, 3) is not None, "hits being synced must still count"
        await tx.rollback()
        await sync
    finally:
        await blocker.close()
    assert limiter.hit(key, 3) is not None
