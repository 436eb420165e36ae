"""The socket endpoint with a raw client: heartbeat, join replies, errors, broadcast, presence, leave."""

from __future__ import annotations

import asyncio

import pytest

from tests.realtime.conftest import user_token
from tests.realtime.wsclient import RawClient
from tests.support.servers import MadbaseProcess


@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
async def test_heartbeat_join_leave(server: MadbaseProcess, vsn: str) -> None:
    c = await RawClient.open(server.url, server.anon_key, vsn)
    try:
        ref = await c.push("phoenix", "heartbeat", {})
        hb = await c.next()
        assert hb == {"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}},
                      "ref": ref, "join_ref": None}
        reply = await c.join("realtime:room1", {"postgres_changes": [
            {"event": "*", "schema": "public", "table": "nope", "filter": "id=eq.1"}]})
        assert reply["payload"]["status"] == "ok"
        echoed = reply["payload"]["response"]["postgres_changes"]
        assert len(echoed) == 1 and isinstance(echoed[0]["id"], int)
        assert {k: v for k, v in echoed[0].items() if k != "id"} == {"event": "*", "schema": "public",
                                                                     "table": "nope", "filter": "id=eq.1"}
        assert reply["join_ref"] == reply["ref"] == c.join_ref
        system = await c.next()
        assert system["event"] == "system" and system["ref"] is None
        assert system["payload"] == {"channel": "room1", "extension": "postgres_changes",
                                     "message": "Subscribed to PostgreSQL", "status": "ok"}
        ref = await c.push("realtime:room1", "phx_leave", {}, c.join_ref)
        assert (await c.next())["payload"]["status"] == "ok"
        assert (await c.next())["event"] == "phx_close"
    finally:
        await c.close()


async def test_fragmented_and_large_frames(server: MadbaseProcess) -> None:
    """Through the server's own WebSocket layer (madbase.wsprotocol): a fragmented heartbeat, a 2 MB broadcast
    sent back to its sender, and the server's answer to a ping."""
    c = await RawClient.open(server.url, server.anon_key)
    try:
        await c.ws.send(iter(['["7","7","phoe', 'nix","heart', 'beat",{}]']))
        assert (await c.next())["ref"] == "7"
        await c.join("realtime:big", {"broadcast": {"self": True, "ack": False}})
        body = "y" * (2 * 1024 * 1024)
        await c.push("realtime:big", "broadcast", {"type": "broadcast", "event": "big", "payload": {"b": body}},
                     c.join_ref)
        got = await c.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert got["payload"]["payload"]["b"] == body
        await asyncio.wait_for(await c.ws.ping(b"x"), 5)
    finally:
        await c.close()


async def test_join_errors(server: MadbaseProcess) -> None:
    c = await RawClient.open(server.url, server.anon_key)
    try:
        reply = await c.join("realtime:", {})
        assert reply["payload"]["status"] == "error"
        assert "TopicNameRequired" in reply["payload"]["response"]["reason"]
        expired = user_token(server, ttl=-120)
        reply = await c.join("realtime:x", {}, token=expired)
        assert reply["payload"]["response"]["reason"].startswith("InvalidJWTToken: Token has expired")
        reply = await c.join("realtime:x", {}, token="garbage")
        assert reply["payload"]["response"]["reason"].startswith("InvalidJWTToken")
        reply = await c.join("realtime:x", {"postgres_changes": [{"event": "*", "schema": "public",
                                                                 "table": "t", "filter": "id=zz.1"}]})
        assert reply["payload"]["status"] == "error"
        ref = await c.push("realtime:notjoined", "broadcast", {"type": "broadcast", "event": "e", "payload": {}})
        msg = await c.next()
        assert msg["ref"] == ref and msg["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    finally:
        await c.close()


async def test_bad_apikey_refused(server: MadbaseProcess) -> None:
    from websockets.exceptions import InvalidStatus
    with pytest.raises(InvalidStatus) as info:
        await RawClient.open(server.url, "wrong")
    assert info.value.response.status_code == 401


async def test_broadcast_self_ack_and_binary(server: MadbaseProcess) -> None:
    a = await RawClient.open(server.url, server.anon_key)
    b = await RawClient.open(server.url, server.anon_key, "1.0.0")
    try:
        await a.join("realtime:chat", {"broadcast": {"self": True, "ack": True}})
        await b.join("realtime:chat", {})
        ref = await a.push("realtime:chat", "broadcast", {"type": "broadcast", "event": "hi", "payload": {"n": 1}},
                           a.join_ref)
        got_a = [await a.next(), await a.next()]
        assert {"topic": "realtime:chat", "event": "phx_reply", "payload": {"status": "ok", "response": {}},
                "ref": ref, "join_ref": a.join_ref} in got_a
        assert {"join_ref": None, "ref": None, "topic": "realtime:chat", "event": "broadcast",
                "payload": {"type": "broadcast", "event": "hi", "payload": {"n": 1}}} in got_a
        msg = await b.next()
        assert msg == {"topic": "realtime:chat", "event": "broadcast", "ref": None, "join_ref": None,
                       "payload": {"type": "broadcast", "event": "hi", "payload": {"n": 1}}}
        # binary kind 3 push from b's side is only possible on vsn 2: a sends, a (self) gets kind 4.
        topic, event = b"realtime:chat", b"bin"
        frame = bytes([3, 0, 0, len(topic), len(event), 0, 0]) + topic + event + b"\x00\x01\xfe"
        await a.ws.send(frame)
        kind, data = await a.until(lambda m: isinstance(m, tuple))
        assert kind == "binary" and data == bytes([4, len(topic), len(event), 0, 0]) + topic + event + b"\x00\x01\xfe"
    finally:
        await a.close()
        await b.close()


async def test_presence(server: MadbaseProcess) -> None:
    a = await RawClient.open(server.url, server.anon_key)
    b = await RawClient.open(server.url, server.anon_key, "1.0.0")
    try:
        await a.join("realtime:lobby", {"presence": {"key": "alice", "enabled": True}})
        assert (await a.next())["event"] == "presence_state"
        ref = await a.push("realtime:lobby", "presence", {"type": "presence", "event": "track",
                                                          "payload": {"status": "online"}}, a.join_ref)
        msgs = [await a.next(), await a.next()]
        diff = next(m for m in msgs if m["event"] == "presence_diff")
        assert any(m["event"] == "phx_reply" and m["ref"] == ref for m in msgs)
        metas = diff["payload"]["joins"]["alice"]["metas"]
        assert metas[0]["status"] == "online" and "phx_ref" in metas[0] and diff["payload"]["leaves"] == {}
        await b.join("realtime:lobby", {"presence": {"key": "bob", "enabled": True}})
        state = await b.next()
        assert state["event"] == "presence_state" and state["payload"]["alice"]["metas"][0]["status"] == "online"
        await a.close()
        diff = await b.until(lambda m: isinstance(m, dict) and m.get("event") == "presence_diff")
        assert "alice" in diff["payload"]["leaves"] and diff["payload"]["joins"] == {}
    finally:
        await b.close()


async def test_private_channel_rls(server: MadbaseProcess, server_db: object) -> None:
    import asyncpg
    assert isinstance(server_db, asyncpg.Connection)
    room = "priv-" + str(id(server_db))
    await server_db.execute(
        f"create policy read_{room.replace('-', '_')} on realtime.messages for select to authenticated "
        f"using (realtime.topic() = '{room}' and (auth.jwt() ->> 'member') = 'yes')")
    await server_db.execute(
        f"create policy write_{room.replace('-', '_')} on realtime.messages for insert to authenticated "
        f"with check (realtime.topic() = '{room}' and (auth.jwt() ->> 'writer') = 'yes')")
    member = user_token(server, member="yes", writer="yes")
    reader = user_token(server, member="yes")
    stranger = user_token(server)
    a = await RawClient.open(server.url, server.anon_key)
    b = await RawClient.open(server.url, server.anon_key)
    c = await RawClient.open(server.url, server.anon_key)
    try:
        denied = await c.join(f"realtime:{room}", {"private": True}, stranger)
        assert denied["payload"]["status"] == "error"
        assert denied["payload"]["response"]["reason"].startswith("Unauthorized")
        assert (await a.join(f"realtime:{room}", {"private": True, "broadcast": {"ack": True}}, member)
                )["payload"]["status"] == "ok"
        assert (await b.join(f"realtime:{room}", {"private": True, "broadcast": {"ack": True}}, reader)
                )["payload"]["status"] == "ok"
        await a.push(f"realtime:{room}", "broadcast", {"type": "broadcast", "event": "e", "payload": {"ok": 1}},
                     a.join_ref)
        got = await b.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert got["payload"]["payload"] == {"ok": 1}
        ref = await b.push(f"realtime:{room}", "broadcast", {"type": "broadcast", "event": "e", "payload": {}},
                           b.join_ref)
        reply = await b.until(lambda m: isinstance(m, dict) and m.get("ref") == ref)
        assert reply["payload"]["status"] == "error"  # the reader may not write
    finally:
        for x in (a, b, c):
            await x.close()


async def test_broadcast_rest_endpoints(server: MadbaseProcess) -> None:
    import httpx
    c = await RawClient.open(server.url, server.anon_key)
    p = await RawClient.open(server.url, server.anon_key)
    try:
        await c.join("realtime:news", {})
        await p.join("realtime:news", {"private": True}, server.service_role_key)
        async with httpx.AsyncClient(base_url=server.url + "/realtime/v1") as http:
            r = await http.post("/api/broadcast", headers=server.headers(), json={"messages": [
                {"topic": "news", "event": "one", "payload": {"n": 1}},
                {"topic": "news", "event": "secret", "payload": {}, "private": True}]})
            assert r.status_code == 202 and r.content == b""
            r = await http.post("/api/broadcast/news/events/two", headers=server.headers(), json={"n": 2})
            assert r.status_code == 202
            r = await http.post("/api/broadcast/news/events/raw",
                                headers={**server.headers(), "content-type": "application/octet-stream"},
                                content=b"\x01\x02")
            assert r.status_code == 202
            r = await http.post("/api/broadcast/news/events/x?private=true", headers=server.headers(), json={})
            assert r.status_code == 403
            r = await http.post("/api/broadcast", headers=server.headers(key=server.service_role_key),
                                json={"messages": [{"topic": "news", "event": "three", "payload": {},
                                                    "private": True}]})
            assert r.status_code == 202
            r = await http.post("/api/broadcast", headers=server.headers(), content=b"{nope")
            assert r.status_code == 400 and "message" in r.json()
            r = await http.post("/api/broadcast", headers=server.headers(), json={"messages": [{"topic": 1}]})
            assert r.status_code == 422
            r = await http.get("/api/status", headers=server.headers())
            assert r.status_code == 403
        got = []
        while len(got) < 3:
            m = await c.next()
            if isinstance(m, tuple):
                got.append(("binary", m[1]))
            elif m.get("event") == "broadcast":
                got.append((m["payload"]["event"], m["payload"]["payload"]))
        assert got[0] == ("one", {"n": 1}) and got[1] == ("two", {"n": 2})
        assert got[2][0] == "binary" and got[2][1].endswith(b"raw\x01\x02")
        # The private message reaches the private channel of that name only (as Supabase's separate topics).
        m = await p.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert (m["payload"]["event"], m["payload"]["payload"]) == ("three", {})
        with pytest.raises(TimeoutError):
            await c.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast", 0.5)
    finally:
        await c.close()
        await p.close()
