"""Two server processes on one database with Redis fan-out: one replication consumer cluster-wide (advisory
lock) with fail-over after kill -9, postgres_changes / broadcast / presence reaching subscribers on both."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.realtime.test_changes import _changes, _setup
from tests.realtime.wsclient import RawClient
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port

REDIS = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server binary not available")


@pytest.fixture
async def pair(pg_cluster: PgCluster) -> AsyncIterator[tuple[MadbaseProcess, MadbaseProcess]]:
    assert REDIS is not None
    port = free_port()
    redis = await asyncio.create_subprocess_exec(
        REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    root = Path(tempfile.mkdtemp(prefix="madbase-rt-mp-"))
    db_url = await create_database(pg_cluster, "rtmp")
    env = external_db_env(db_url, MADBASE_REALTIME_REDIS_URL=f"redis://127.0.0.1:{port}/0", LOG_LEVEL="INFO",
                          MADBASE_ACCESS_LOG="false")
    a = MadbaseProcess(root / "a", env)
    b = MadbaseProcess(root / "b", env)
    try:
        await asyncio.to_thread(a.start)
        await asyncio.to_thread(b.start)
        yield a, b
    finally:
        await asyncio.to_thread(a.stop)
        await asyncio.to_thread(b.stop)
        redis.terminate()
        await asyncio.wait_for(redis.wait(), 10)


async def _status(server: MadbaseProcess) -> dict[str, object]:
    async with httpx.AsyncClient() as http:
        r = await http.get(server.url + "/realtime/v1/api/status", headers=server.headers(key=server.service_role_key))
        return dict(r.json())


async def test_two_processes(pair: tuple[MadbaseProcess, MadbaseProcess], table_name: str) -> None:
    a, b = pair
    db = await asyncpg.connect(a.db_url)
    ca = await RawClient.open(a.url, a.anon_key)
    cb = await RawClient.open(b.url, b.anon_key, "1.0.0")
    try:
        await _setup(db, table_name)
        cfg = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": table_name}],
               "presence": {"key": "", "enabled": True}}
        await ca.join("realtime:mp", {**cfg, "presence": {"key": "ann", "enabled": True}})
        await cb.join("realtime:mp", {**cfg, "presence": {"key": "bob", "enabled": True}})
        await asyncio.sleep(0.5)
        # exactly one consumer cluster-wide
        states = [await _status(a), await _status(b)]
        assert sorted(bool(s["consumer"]) for s in states) == [False, True]
        await db.execute(f"insert into {table_name} (id, title) values (1, 'x'), (2, 'y')")
        for client in (ca, cb):
            got = await _changes(client, 2)
            assert [g["data"]["record"]["id"] for g in got] == [1, 2]
        # broadcast and presence cross the process boundary
        await ca.push("realtime:mp", "broadcast", {"type": "broadcast", "event": "hi", "payload": {"from": "a"}},
                      ca.join_ref)
        msg = await cb.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert msg["payload"]["payload"] == {"from": "a"}
        await ca.push("realtime:mp", "presence", {"type": "presence", "event": "track", "payload": {"on": 1}},
                      ca.join_ref)
        diff = await cb.until(lambda m: isinstance(m, dict) and m.get("event") == "presence_diff")
        assert "ann" in diff["payload"]["joins"]
        # kill -9 the consumer's process: the other one takes over the slot
        consumer, survivor, client = (a, b, cb) if states[0]["consumer"] else (b, a, ca)
        assert consumer.proc is not None
        consumer.proc.send_signal(signal.SIGKILL)
        consumer.proc.wait(10)
        await db.execute(f"insert into {table_name} (id, title) values (3, 'z')")
        got = await _changes(client, 1, 30)
        assert got[0]["data"]["record"]["id"] == 3
        assert (await _status(survivor))["consumer"] is True
    finally:
        await ca.close()
        await cb.close()
        await db.close()
