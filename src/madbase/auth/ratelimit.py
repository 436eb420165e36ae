"""Auth rate limits (per IP, per address, per project) as fixed-window counters in the project's database.

Counters live in `auth.madbase_rate_limits`, so every server process serving the project shares them.
One upsert per check; old windows are pruned now and then.
"""

from __future__ import annotations

import random
import time

import asyncpg

from madbase.auth.errors import AuthError
from madbase.core.db import internal_transaction

_HIT_SQL = """
insert into auth.madbase_rate_limits as r (key, window_start, count) values ($1, $2, 1)
on conflict (key, window_start) do update set count = r.count + 1
returning count
"""


async def hit(pool: asyncpg.Pool, key: str, limit: int, window: int) -> bool:
    """Count one event; False when the limit for the current window is exceeded."""
    if limit <= 0:
        return True
    start = int(time.time()) // window * window
    async with internal_transaction(pool, "supabase_auth_admin") as conn:
        count: int = await conn.fetchval(_HIT_SQL, key, start)
        if random.random() < 0.01:
            await conn.execute("delete from auth.madbase_rate_limits where window_start < $1",
                               int(time.time()) - 86400)
    return count <= limit


async def enforce(pool: asyncpg.Pool, key: str, limit: int, window: int) -> None:
    if not await hit(pool, key, limit, window):
        raise AuthError("over_request_rate_limit", "Request rate limit reached")


async def enforce_email(pool: asyncpg.Pool, limit: int) -> None:
    """The project-wide hourly budget of auth mails."""
    if not await hit(pool, "email_sent", limit, 3600):
        raise AuthError("over_email_send_rate_limit", "Email rate limit exceeded")
