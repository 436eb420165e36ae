"""Per-project limits as Supabase applies them, set in the project's config["realtime"]: payload size
(broadcast refused — an error reply when acked —, presence track shuts the channel, HTTP 413), messages per
second (channel shut down; HTTP 429), joins per second (join refused, socket closed), channels per client."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.realtime.test_clients_js import JS, collect, js_env, start_js
from tests.realtime.wsclient import RawClient
from tests.support.servers import MadbaseProcess, create_database, external_db_env

LIMITS = {"max_payload_size_in_kb": 1, "max_events_per_second": 5, "max_joins_per_second": 3,
          "max_channels_per_client": 2}


@pytest.fixture
async def limited(pg_cluster: PgCluster) -> AsyncIterator[MadbaseProcess]:
    db_url = await create_database(pg_cluster, "rtlim")
    srv = MadbaseProcess(Path(tempfile.mkdtemp(prefix="madbase-rt-")) / "srv", external_db_env(db_url))
    await asyncio.to_thread(srv.start)
    try:
        conn = await asyncpg.connect(srv.db_url)
        try:
            await conn.execute("update madbase_control.projects set config = jsonb_set(config, '{realtime}', "
                               "$1::jsonb) where ref = $2", json.dumps(LIMITS), srv.project_ref)
        finally:
            await conn.close()
        await asyncio.sleep(0.8)  # the server hears the change through NOTIFY
        yield srv
    finally:
        await asyncio.to_thread(srv.stop)


async def _fresh_second() -> None:
    """Counters use one-second windows of the (system-wide) monotonic clock: start at the top of one."""
    await asyncio.sleep(1.02 - time.monotonic() % 1)


def _event(name: str) -> Any:
    return lambda m: isinstance(m, dict) and m.get("event") == name


async def _broadcast(c: RawClient, topic: str, payload: Any) -> str:
    return await c.push(topic, "broadcast", {"type": "broadcast", "event": "e", "payload": payload}, c.join_ref)


async def test_payload_size_limit(limited: MadbaseProcess) -> None:
    srv = limited
    a = await RawClient.open(srv.url, srv.anon_key)
    b = await RawClient.open(srv.url, srv.anon_key, "1.0.0")
    try:
        await a.join("realtime:big", {"broadcast": {"self": False, "ack": True}})
        await b.join("realtime:big", {"presence": {"key": "bob", "enabled": True}})
        ref = await _broadcast(a, "realtime:big", {"blob": "x" * 1200})
        reply = await a.until(lambda m: _event("phx_reply")(m) and m["ref"] == ref)
        assert reply["payload"] == {"status": "error", "response": {"reason": "payload_size_exceeded"}}
        ref = await _broadcast(a, "realtime:big", {"small": 1})
        reply = await a.until(lambda m: _event("phx_reply")(m) and m["ref"] == ref)
        assert reply["payload"]["status"] == "ok"
        got = await b.until(_event("broadcast"))
        assert got["payload"]["payload"] == {"small": 1}  # the oversized one never reached b
        # An oversized presence track shuts the channel down, as Supabase does.
        await b.push("realtime:big", "presence", {"type": "presence", "event": "track",
                                                  "payload": {"blob": "y" * 1200}}, b.join_ref)
        system = await b.until(_event("system"))
        assert system["payload"] == {"channel": "big", "extension": "system", "status": "error",
                                     "message": "Track message size exceeded"}
        assert (await b.next())["event"] == "phx_close"
        async with httpx.AsyncClient() as http:
            headers = srv.headers(key=srv.service_role_key)
            r = await http.post(srv.url + "/realtime/v1/api/broadcast", headers=headers, json={"messages": [
                {"topic": "big", "event": "e", "payload": {"ok": 1}},
                {"topic": "big", "event": "e", "payload": {"blob": "z" * 1200}}]})
            assert r.status_code == 413
            assert r.json() == {"message": "Payload size exceeds tenant limit",
                                "errors": {"messages": [{}, {"payload": ["Payload size exceeds tenant limit"]}]}}
            r = await http.post(srv.url + "/realtime/v1/api/broadcast/big/events/e", headers=headers,
                                content=b"\0" * 1001, params={"private": "false"})
            assert r.status_code == 413 and r.json()["errors"] == {"payload": ["Payload size exceeds tenant limit"]}
            r = await http.post(srv.url + "/realtime/v1/api/broadcast", headers=headers,
                                json={"messages": [{"topic": "big", "event": "e", "payload": {"ok": 2}}]})
            assert r.status_code == 202
        assert (await a.until(_event("broadcast")))["payload"]["payload"] == {"ok": 2}
    finally:
        await a.close()
        await b.close()


async def test_rate_limits(limited: MadbaseProcess) -> None:
    srv = limited
    a = await RawClient.open(srv.url, srv.anon_key)
    c = await RawClient.open(srv.url, srv.anon_key, "1.0.0")
    d = await RawClient.open(srv.url, srv.anon_key)
    try:
        await a.join("realtime:fast", {})
        # Messages per second: the 6th message within a second shuts the channel down.
        await _fresh_second()
        for i in range(12):
            await _broadcast(a, "realtime:fast", {"i": i})
        system = await a.until(_event("system"))
        assert system["payload"]["message"] == "Too many messages per second"
        assert system["payload"]["status"] == "error"
        assert (await a.next())["event"] == "phx_close"
        async with httpx.AsyncClient() as http:
            headers = srv.headers(key=srv.service_role_key)
            await _fresh_second()
            r = await http.post(srv.url + "/realtime/v1/api/broadcast", headers=headers, json={"messages": [
                {"topic": "fast", "event": "e", "payload": {"i": i}} for i in range(6)]})
            assert r.status_code == 429
            assert r.json() == {"message": "Too many messages to broadcast, please reduce the batch size"}
        # Channels per client, then joins per second (the socket is disconnected).
        await _fresh_second()
        for name in ("c1", "c2"):
            assert (await c.join(f"realtime:{name}", {}))["payload"]["status"] == "ok"
        reply = await c.join("realtime:c3", {})
        assert reply["payload"] == {"status": "error",
                                    "response": {"reason": "ChannelRateLimitReached: Too many channels"}}
        assert (await d.join("realtime:d1", {}))["payload"]["status"] == "ok"
        reply = await d.join("realtime:d2", {})
        assert reply["payload"] == {"status": "error",
                                    "response": {"reason": "ClientJoinRateLimitReached: Too many joins per second"}}
        assert await d.until(lambda m: m == ("closed", None)) == ("closed", None)
    finally:
        await a.close()
        await c.close()
        await d.close()


@pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules").is_dir(), reason="node missing")
async def test_payload_limit_realtime_js(limited: MadbaseProcess) -> None:
    proc = await start_js("limits.mjs", js_env(limited, ROOM="jsbig", SIZE="1500"))
    out = (await collect(proc))[0]
    assert out["bigStatus"] == "error" and out["smallStatus"] == "ok", out
    assert out["restBig"] == "error" and str(out["httpBig"]).startswith("error"), out
    assert out["received"] == [{"small": 1}], out
