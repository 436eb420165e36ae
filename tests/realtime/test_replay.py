"""Broadcast `replay` (private channels): the last `limit` (≤ 25) private broadcasts of the topic stored in
realtime.messages since `since`, oldest first, marked `meta.replayed`, right after the join."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid

import asyncpg
import pytest

from tests.realtime.conftest import user_token
from tests.realtime.test_clients_js import JS, collect, js_env, start_js
from tests.realtime.wsclient import RawClient
from tests.support.servers import MadbaseProcess


async def test_broadcast_replay(server: MadbaseProcess, server_db: asyncpg.Connection) -> None:
    room = "replay_" + uuid.uuid4().hex[:8]
    await server_db.execute(f"create policy read_{room} on realtime.messages for select to authenticated "
                            f"using (realtime.topic() = '{room}')")
    await server_db.execute("insert into realtime.messages (topic, extension, event, payload, private, inserted_at) "
                            "values ($1, 'broadcast', 'ev', '{\"n\": 0}', true, now() - interval '1 hour')", room)
    for n in (1, 2, 3):
        await server_db.execute("select realtime.send($1::jsonb, 'ev', $2, true)", f'{{"n": {n}}}', room)
    await server_db.execute("select realtime.send('{\"n\": 99}'::jsonb, 'ev', $1, false)", room)  # public
    await server_db.execute("select realtime.send('{\"n\": 98}'::jsonb, 'ev', $1, true)", room + "_other")
    await asyncio.sleep(1.0)  # the live broadcasts of these inserts are over before anyone joins
    ids = [r["id"] for r in await server_db.fetch(
        "select id from realtime.messages where topic = $1 and private order by id", room)]
    token = user_token(server)
    since = int((time.time() - 600) * 1000)
    c = await RawClient.open(server.url, server.anon_key)
    try:
        reply = await c.join(f"realtime:{room}", {"private": True, "broadcast": {
            "self": False, "ack": False, "replay": {"since": since, "limit": 2}}}, token)
        assert reply["payload"]["status"] == "ok", reply
        got = [await c.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast") for _ in range(2)]
        assert [g["payload"] for g in got] == [
            {"type": "broadcast", "event": "ev", "payload": {"n": n}, "meta": {"replayed": True, "id": str(i)}}
            for n, i in ((2, ids[2]), (3, ids[3]))]
        await server_db.execute("select realtime.send('{\"n\": 4}'::jsonb, 'ev', $1, true)", room)
        live = await c.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert live["payload"] == {"type": "broadcast", "event": "ev", "payload": {"n": 4}}
        # Without a limit: Supabase's default of 10; since 0 includes the hour-old one.
        c2 = await RawClient.open(server.url, server.anon_key, "1.0.0")
        try:
            reply = await c2.join(f"realtime:{room}", {"private": True, "broadcast": {"replay": {"since": 0}}}, token)
            assert reply["payload"]["status"] == "ok"
            got = [await c2.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast") for _ in range(5)]
            assert [g["payload"]["payload"]["n"] for g in got] == [0, 1, 2, 3, 4]
            assert all(g["payload"]["meta"]["replayed"] is True for g in got)
        finally:
            await c2.close()
        # Replay is for private channels, with valid parameters.
        reply = await c.join(f"realtime:{room}-pub", {"broadcast": {"replay": {"since": since}}})
        assert reply["payload"] == {"status": "error", "response": {
            "reason": "UnableToReplayMessages: Replay is not allowed for public channels"}}
        reply = await c.join(f"realtime:{room}-bad", {"private": True, "broadcast": {"replay": {"since": "x"}}},
                             token)
        assert reply["payload"] == {"status": "error", "response": {
            "reason": "UnableToReplayMessages: Replay params are not valid"}}
    finally:
        await c.close()


@pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules").is_dir(), reason="node missing")
async def test_broadcast_replay_realtime_js(server: MadbaseProcess, server_db: asyncpg.Connection) -> None:
    room = "replayjs_" + uuid.uuid4().hex[:8]
    await server_db.execute(f"create policy read_{room} on realtime.messages for select to authenticated "
                            f"using (realtime.topic() = '{room}')")
    for n in (1, 2, 3):
        await server_db.execute("select realtime.send($1::jsonb, 'ev', $2, true)", f'{{"n": {n}}}', room)
    await asyncio.sleep(1.0)
    proc = await start_js("replay.mjs", js_env(server, TOKEN=user_token(server), ROOM=room,
                                               SINCE=str(int((time.time() - 600) * 1000)), LIMIT="2", COUNT="2"))
    got = (await collect(proc))[0]["got"]
    assert [g["payload"]["n"] for g in got] == [2, 3], got
    assert all(g["meta"]["replayed"] is True for g in got), got
