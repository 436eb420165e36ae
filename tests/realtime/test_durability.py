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
                                                    TOKEN=user_token(own_server, me), TIMEOUT_MS="60000",
                                                    DEBUG="1"))
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
        except (AssertionError, TimeoutError):
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


@pytest.fixture
async def short_grace_server(pg_cluster: PgCluster) -> AsyncIterator[MadbaseProcess]:
    db_url = await create_database(pg_cluster, "rtgr")
    root = Path(tempfile.mkdtemp(prefix="madbase-rt-"))
    proc = MadbaseProcess(root / "srv", external_db_env(db_url, MADBASE_REALTIME_GRACE_SECONDS="2",
                                                        MADBASE_REALTIME_NODE_HEARTBEAT="1"))
    await asyncio.to_thread(proc.start)
    try:
        yield proc
    finally:
        await asyncio.to_thread(proc.stop)


async def test_ghost_identity_and_expiry(short_grace_server: MadbaseProcess, table_name: str) -> None:
    from tests.realtime.test_changes import _changes, _no_change
    from tests.realtime.wsclient import RawClient

    srv = short_grace_server
    db = await asyncpg.connect(srv.db_url)
    try:
        await _setup(db, table_name, rls=True)
        ua, ub = str(uuid.uuid4()), str(uuid.uuid4())
        cfg = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": table_name}]}
        a = await RawClient.open(srv.url, srv.anon_key)
        await a.join("realtime:g", cfg, user_token(srv, ua))
        await a.close()  # vanishes without leaving: its subscription becomes a ghost
        await asyncio.sleep(0.3)
        await db.execute(f"insert into {table_name} (id, owner) values (1, $1)", ua)
        # Someone else re-joining the same topic does not get A's backlog.
        b = await RawClient.open(srv.url, srv.anon_key)
        await b.join("realtime:g", cfg, user_token(srv, ub))
        await _no_change(b, 0.8)
        await b.close()
        # A comes back in time and gets it.
        a = await RawClient.open(srv.url, srv.anon_key)
        await a.join("realtime:g", cfg, user_token(srv, ua))
        assert [c["data"]["record"]["id"] for c in await _changes(a, 1)] == [1]
        await a.close()
        # Past the grace window the ghost and its persisted row are gone.
        await asyncio.sleep(4.0)
        async with httpx.AsyncClient() as http:
            status = (await http.get(srv.url + "/realtime/v1/api/status",
                                     headers=srv.headers(key=srv.service_role_key))).json()
        assert status["ghosts"] == 0 and status["subscriptions"] == 0
        assert isinstance(status["lag_bytes"], int)
        assert await db.fetchval("select count(*) from realtime.subscription") == 0
    finally:
        await db.close()


async def test_lag_metric_and_status(pg_cluster: PgCluster, table_name: str) -> None:
    from tests.realtime.wsclient import RawClient

    db_url = await create_database(pg_cluster, "rtlag")
    root = Path(tempfile.mkdtemp(prefix="madbase-rt-"))
    srv = MadbaseProcess(root / "srv", external_db_env(db_url, MADBASE_REALTIME_NODE_HEARTBEAT="1"))
    await asyncio.to_thread(srv.start)
    try:
        c = await RawClient.open(srv.url, srv.anon_key)
        await c.join("realtime:lag", {"postgres_changes": [{"event": "*", "schema": "public", "table": table_name}]})
        await asyncio.sleep(1.5)
        async with httpx.AsyncClient() as http:
            status = (await http.get(srv.url + "/realtime/v1/api/status",
                                     headers=srv.headers(key=srv.service_role_key))).json()
            metrics = (await http.get(srv.url + "/metrics")).text
        # Idle: the consumer confirms the server's keepalive position, so the slot holds (almost) no WAL.
        assert status["lagging"] is False and isinstance(status["lag_bytes"], int) and status["lag_bytes"] < 1 << 20
        assert "madbase_realtime_slot_lag_bytes" in metrics and "madbase_realtime_sockets" in metrics
        await c.close()
    finally:
        await asyncio.to_thread(srv.stop)


async def test_consumer_resumes_without_sockets(pg_cluster: PgCluster, table_name: str) -> None:
    """After a restart the slot is consumed (and orphans adopted) before any client connects."""
    from tests.realtime.wsclient import RawClient

    db_url = await create_database(pg_cluster, "rtres")
    root = Path(tempfile.mkdtemp(prefix="madbase-rt-"))
    srv = MadbaseProcess(root / "srv", external_db_env(db_url))
    await asyncio.to_thread(srv.start)
    try:
        c = await RawClient.open(srv.url, srv.anon_key)
        await c.join("realtime:r", {"postgres_changes": [{"event": "*", "schema": "public", "table": table_name}]})
        await asyncio.to_thread(srv.stop, signal.SIGKILL)
        await c.close()
        await asyncio.to_thread(srv.start)
        status: dict[str, object] = {}
        async with httpx.AsyncClient() as http:
            for _ in range(50):
                status = (await http.get(srv.url + "/realtime/v1/api/status",
                                         headers=srv.headers(key=srv.service_role_key))).json()
                if status.get("consumer") and status.get("ghosts") == 1:
                    break
                await asyncio.sleep(0.2)
        assert status.get("consumer") is True and status.get("ghosts") == 1 and status["sockets"] == 0
    finally:
        await asyncio.to_thread(srv.stop)


async def test_kill9_restart_realtime_py(own_server: MadbaseProcess, table_name: str) -> None:
    """Same guarantee with realtime-py (vsn 1.0.0), which reconnects and re-joins by itself too."""
    from realtime import AsyncRealtimeClient
    from tests.realtime.test_clients_py import _subscribed, _wait

    db = await asyncpg.connect(own_server.db_url)
    client = AsyncRealtimeClient(f"{own_server.url}/realtime/v1", own_server.anon_key, auto_reconnect=True,
                                 max_retries=10, initial_backoff=0.5)
    try:
        await _setup(db, table_name, rls=True)
        me = str(uuid.uuid4())
        await client.connect()
        await client.set_auth(user_token(own_server, me))
        got: list[int] = []
        channel = client.channel("pydur-" + table_name)
        channel.on_postgres_changes("INSERT", lambda p: got.append(p["data"]["record"]["id"]), table=table_name,
                                    schema="public")
        await _subscribed(channel)
        for i in range(1, 4):
            await db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", i, me)
        await _wait(lambda: len(got) >= 3)
        assert own_server.proc is not None
        own_server.proc.send_signal(signal.SIGKILL)
        own_server.proc.wait(10)
        for i in range(4, 9):
            await db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", i, me)
        await asyncio.to_thread(own_server.start)
        for i in range(9, 11):
            await db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", i, me)
        await _wait(lambda: len(got) >= 10, 60)
        await asyncio.sleep(0.5)
        assert got == list(range(1, 11))
    finally:
        await client.close()
        await db.close()


async def test_crash_during_grace_window(own_server: MadbaseProcess, table_name: str) -> None:
    """Double failure: the client is away (its subscription is a ghost holding changes in memory) when the
    server is killed. The slot was not confirmed past the ghost's changes, so they are collected again."""
    from tests.realtime.test_changes import _changes, _no_change
    from tests.realtime.wsclient import RawClient

    db = await asyncpg.connect(own_server.db_url)
    try:
        await _setup(db, table_name, rls=True)
        me = str(uuid.uuid4())
        cfg = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": table_name}]}
        tok = user_token(own_server, me)
        c = await RawClient.open(own_server.url, own_server.anon_key)
        await c.join("realtime:dbl", cfg, tok)
        await db.execute(f"insert into {table_name} (id, owner) values (1, $1)", me)
        assert [x["data"]["record"]["id"] for x in await _changes(c, 1)] == [1]
        await c.close()
        await asyncio.sleep(0.3)
        for i in (2, 3):
            await db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", i, me)
        await asyncio.sleep(1.0)  # consumed into the ghost's buffer
        assert own_server.proc is not None
        own_server.proc.send_signal(signal.SIGKILL)
        own_server.proc.wait(10)
        await db.execute(f"insert into {table_name} (id, owner) values (4, $1)", me)
        await asyncio.to_thread(own_server.start)
        c = await RawClient.open(own_server.url, own_server.anon_key)
        await c.join("realtime:dbl", cfg, tok)
        got = [x["data"]["record"]["id"] for x in await _changes(c, 3)]
        assert got == [2, 3, 4]
        await _no_change(c, 0.5)
        await c.close()
    finally:
        await db.close()


async def test_crash_during_grace_window_no_duplicates(own_server: MadbaseProcess, table_name: str) -> None:
    """One client is away (its subscription held, the slot not confirmed past its changes) when the server is
    killed; another client was live all along. After the restart the held one gets its backlog and the live one
    gets only what it had not received — the replay does not send it the changes of the grace window twice."""
    from tests.realtime.test_changes import _changes, _no_change
    from tests.realtime.wsclient import RawClient

    db = await asyncpg.connect(own_server.db_url)
    try:
        await _setup(db, table_name, rls=True)
        away_user, live_user = str(uuid.uuid4()), str(uuid.uuid4())
        cfg = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": table_name}]}
        away_tok, live_tok = user_token(own_server, away_user), user_token(own_server, live_user)
        away = await RawClient.open(own_server.url, own_server.anon_key)
        live = await RawClient.open(own_server.url, own_server.anon_key, "1.0.0")
        await away.join("realtime:a", cfg, away_tok)
        await live.join("realtime:l", cfg, live_tok)

        async def commit(i: int) -> None:
            await db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", i, away_user)
            await db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", 100 + i, live_user)

        await commit(1)
        assert [x["data"]["record"]["id"] for x in await _changes(away, 1)] == [1]
        assert [x["data"]["record"]["id"] for x in await _changes(live, 1)] == [101]
        await away.close()
        await asyncio.sleep(0.3)
        for i in (2, 3):
            await commit(i)
        assert [x["data"]["record"]["id"] for x in await _changes(live, 2)] == [102, 103]
        await asyncio.sleep(0.5)
        assert own_server.proc is not None
        own_server.proc.send_signal(signal.SIGKILL)
        own_server.proc.wait(10)
        await live.close()
        await commit(4)
        await asyncio.to_thread(own_server.start)
        away = await RawClient.open(own_server.url, own_server.anon_key)
        live = await RawClient.open(own_server.url, own_server.anon_key, "1.0.0")
        await away.join("realtime:a", cfg, away_tok)
        await live.join("realtime:l", cfg, live_tok)
        assert [x["data"]["record"]["id"] for x in await _changes(away, 3)] == [2, 3, 4]
        assert [x["data"]["record"]["id"] for x in await _changes(live, 1)] == [104]
        await commit(5)
        assert [x["data"]["record"]["id"] for x in await _changes(away, 1)] == [5]
        assert [x["data"]["record"]["id"] for x in await _changes(live, 1)] == [105]
        await _no_change(live, 0.5)
        await _no_change(away, 0.1)
        await away.close()
        await live.close()
    finally:
        await db.close()
