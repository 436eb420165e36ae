"""No change lost: kill -9 the server between commits; a realtime-js client that re-joins by itself gets every
committed change exactly once, in commit order (RLS still applied from the persisted claims)."""

from __future__ import annotations

import asyncio
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.realtime.conftest import user_token
from tests.realtime.test_changes import _setup
from tests.realtime.test_clients_js import collect, js_env, start_js, wait_line
from tests.support.servers import MadbaseProcess, create_database, external_db_env


@pytest.fixture
async def own_server(pg_cluster: PgCluster) -> AsyncIterator[MadbaseProcess]:
    db_url = await create_database(pg_cluster, "rtdur")
    root = Path(tempfile.mkdtemp(prefix="madbase-rt-"))
    proc = MadbaseProcess(root / "srv", external_db_env(db_url, MADBASE_REALTIME_GRACE_SECONDS="30",
                                                        LOG_LEVEL="INFO", MADBASE_ACCESS_LOG="false"))
    await asyncio.to_thread(proc.start)
    try:
        yield proc
    finally:
        await asyncio.to_thread(proc.stop)


async def test_kill9_restart_no_change_lost(own_server: MadbaseProcess, table_name: str) -> None:
    db = await asyncpg.connect(own_server.db_url)
    try:
        await _setup(db, table_name, rls=True)
        me, other = str(uuid.uuid4()), str(uuid.uuid4())
        proc = await start_js("changes.mjs", js_env(own_server, TABLE=table_name, COUNT="20", EVENT="INSERT",
                                                    TOKEN=user_token(own_server, me), TIMEOUT_MS="90000"))
        await wait_line(proc, "SUBSCRIBED")

        async def commit(i: int) -> None:
            # Each of my rows is its own transaction; someone else's row in between must never arrive.
            await db.execute(f"insert into {table_name} (id, owner, title) values ($1, $2, $3)", i, me, f"r{i}")
            await db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", 1000 + i, other)

        for i in range(1, 6):
            await commit(i)
        await asyncio.sleep(1.0)
        assert own_server.proc is not None
        own_server.proc.send_signal(signal.SIGKILL)
        own_server.proc.wait(10)
        for i in range(6, 16):
            await commit(i)  # committed while no server runs
        await asyncio.to_thread(own_server.start)
        for i in range(16, 21):
            await commit(i)
        try:
            events = [e for e in await collect(proc, seconds=100) if "eventType" in e]
        except AssertionError:
            print(own_server.output()[-6000:])
            raise
        ids = [e["new"]["id"] for e in events]
        assert ids == list(range(1, 21)), ids
        assert all(e["new"]["owner"] == me for e in events)
        async with httpx.AsyncClient() as http:
            status = (await http.get(own_server.url + "/realtime/v1/api/status",
                                     headers=own_server.headers(key=own_server.service_role_key))).json()
        assert status["consumer"] is True and status["replication_error"] is None
    finally:
        await db.close()
