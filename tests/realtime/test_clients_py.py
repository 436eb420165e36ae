"""realtime-py (the `realtime` package of supabase-py 2.34, vsn 1.0.0): changes with a filter and RLS,
broadcast with ack/self, presence between two Python clients."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from tests.realtime.conftest import user_token
from tests.realtime.test_changes import _setup
from tests.support.servers import MadbaseProcess


async def _subscribed(channel: Any) -> None:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def cb(state: RealtimeSubscribeStates, err: Exception | None) -> None:
        if state == RealtimeSubscribeStates.SUBSCRIBED and not done.done():
            done.set_result(None)
        elif err is not None and not done.done():
            done.set_exception(err)

    await channel.subscribe(cb)
    await asyncio.wait_for(done, 10)


async def _wait(pred: Any, seconds: float = 10) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not pred():
        if loop.time() > end:
            raise TimeoutError
        await asyncio.sleep(0.05)


async def test_py_changes_rls_filter(server: MadbaseProcess, server_db: asyncpg.Connection, table_name: str) -> None:
    await _setup(server_db, table_name, rls=True, full=True)
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    client = AsyncRealtimeClient(f"{server.url}/realtime/v1", server.anon_key, auto_reconnect=False)
    await client.connect()
    await client.set_auth(user_token(server, me))
    got: list[dict[str, Any]] = []
    channel = client.channel("py-" + table_name)
    channel.on_postgres_changes("*", lambda p: got.append(p), table=table_name, schema="public",
                                filter="id=gte.2")
    try:
        await _subscribed(channel)
        await server_db.execute(f"insert into {table_name} (id, owner, title) values (1, $1, 'low'), "
                                f"(2, $1, 'mine'), (3, $2, 'theirs')", me, other)
        await server_db.execute(f"update {table_name} set title = 'mine2' where id = 2")
        await _wait(lambda: len(got) >= 2)
        await asyncio.sleep(0.3)
        assert len(got) == 2
        first = got[0]["data"]
        assert first["type"] == "INSERT" and first["record"]["id"] == 2 and first["record"]["title"] == "mine"
        assert got[1]["data"]["type"] == "UPDATE" and got[1]["data"]["old_record"]["title"] == "mine"
    finally:
        await client.close()


async def test_py_broadcast_presence(server: MadbaseProcess) -> None:
    a = AsyncRealtimeClient(f"{server.url}/realtime/v1", server.anon_key, auto_reconnect=False)
    b = AsyncRealtimeClient(f"{server.url}/realtime/v1", server.anon_key, auto_reconnect=False)
    await a.connect()
    await b.connect()
    room = "pyroom-" + uuid.uuid4().hex[:6]
    got_a: list[Any] = []
    got_b: list[Any] = []
    joins: list[Any] = []
    ca = a.channel(room, {"config": {"broadcast": {"self": True, "ack": True}, "presence": {"key": "ann"}}})
    ca.on_broadcast("hello", lambda m: got_a.append(m))
    cb = b.channel(room, {"config": {"presence": {"key": "ben"}}})
    cb.on_broadcast("hello", lambda m: got_b.append(m))
    cb.on_presence_join(lambda key, cur, new: joins.append(key))
    try:
        await _subscribed(ca)
        await _subscribed(cb)
        await ca.send_broadcast("hello", {"x": 1})
        await _wait(lambda: got_a and got_b)
        assert got_b[0]["payload"] == {"x": 1} and got_b[0]["event"] == "hello"
        await ca.track({"mood": "happy"})
        await _wait(lambda: "ann" in cb.presence_state())
        assert cb.presence_state()["ann"][0]["mood"] == "happy"
        assert "ann" in joins
    finally:
        await a.close()
        await b.close()
