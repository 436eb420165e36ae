"""Units of the request limits: statement timeout values, the per-client share of the lean pool, and that a
cancelled request's server-side query is stopped."""

from __future__ import annotations

import asyncio
import functools

import asyncpg
import pytest

from madbase.core import timeouts
from madbase.core.leanpool import LeanPool


@pytest.mark.parametrize(("raw", "ms"), [("3s", 3000), ("8s", 8000), ("500ms", 500), ("2min", 120_000),
                                         ("1h", 3_600_000), ("0", 0), (2500, 2500), ("1.5s", 1500),
                                         (" 7 s ", 7000)])
def test_parse_ms(raw: object, ms: int) -> None:
    assert timeouts.parse_ms(raw) == ms


@pytest.mark.parametrize("raw", ["", "3 seconds", "-1", "abc", None, True, [], "1e9s x"])
def test_parse_ms_refuses(raw: object) -> None:
    assert timeouts.parse_ms(raw) is None


def test_role_rows_and_config() -> None:
    rows = [("anon", False, ["statement_timeout=10s", "search_path=x"]), ("anon", True, ["statement_timeout=3s"]),
            ("authenticated", False, ["statement_timeout=8000"]), ("service_role", True, ["work_mem=1MB"])]
    found = timeouts.from_role_rows(rows)
    assert found == {"anon": 3000, "authenticated": 8000}  # the database-specific setting wins
    assert timeouts.effective(found, {}) == {"anon": 3000, "authenticated": 8000}
    config = {"statement_timeouts": {"anon": "1s", "authenticated": "0", "service_role": "30s", "other": "1s"}}
    assert timeouts.effective(found, config) == {"anon": 1000, "service_role": 30_000}
    assert timeouts.effective(found, {"statement_timeouts": {"anon": "nonsense"}}) == found
    assert timeouts.effective(found, {"statement_timeouts": "5s"}) == found


class _Conn:
    def is_closed(self) -> bool:
        return False

    def is_in_transaction(self) -> bool:
        return False

    def terminate(self) -> None:
        pass


async def test_one_client_holds_at_most_its_share() -> None:
    async def connect() -> _Conn:
        return _Conn()

    pool = LeanPool(connect, 4, client_share=2)
    a1 = await pool.acquire(1, "a")
    a2 = await pool.acquire(1, "a")
    third = asyncio.create_task(pool.acquire(1, "a"))
    await asyncio.sleep(0.05)
    assert not third.done()  # over its share, though the pool has room
    b1 = await asyncio.wait_for(pool.acquire(1, "b"), 0.1)  # another client is not held up
    admin = await asyncio.wait_for(pool.acquire(1, None), 0.1)  # nor an unkeyed request
    pool.release(a1, key="a")
    a3 = await asyncio.wait_for(third, 0.1)  # one of its own came back
    with pytest.raises(TimeoutError):
        await pool.acquire(0.1, "a")
    for conn, key in ((a2, "a"), (a3, "a"), (b1, "b"), (admin, None)):
        pool.release(conn, key=key)
    assert pool.gate.free == 4
    assert not pool._held and not pool._parked


async def test_a_cancelled_query_is_stopped_on_the_server(fresh_db: str) -> None:
    pool = LeanPool(functools.partial(asyncpg.connect, fresh_db), 1)
    watcher = await asyncpg.connect(fresh_db)
    try:
        async def slow() -> None:
            conn = await pool.acquire(1)
            try:
                await conn.fetchval("select pg_sleep(30)")
            finally:
                pool.release(conn, unsure=True)

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(50):
            if not await watcher.fetchval("select count(*) from pg_stat_activity where wait_event = 'PgSleep'"):
                break
            await asyncio.sleep(0.1)
        assert await watcher.fetchval("select count(*) from pg_stat_activity where wait_event = 'PgSleep'") == 0
    finally:
        await watcher.close()
        await pool.close()
