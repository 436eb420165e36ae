"""What an operator watches through /admin/v1: realtime connections and the replication slot, recent
request logs (filled by the gateway, filtered by service, status, path and time, paged), and the OpenAPI
document listing every route of the table."""

from __future__ import annotations

import asyncio
import time

import httpx
from openapi_spec_validator import validate

from madbase.app import services
from tests.admin.ops.conftest import Admin
from tests.realtime.wsclient import RawClient
from tests.support.servers import MadbaseProcess


def _admin_table() -> list[tuple[str, str]]:
    admin = next(s for s in services() if s.name == "admin")
    return sorted((m, r.pattern) for r in admin.admin_routes for m in r.methods)


def test_openapi_lists_every_route_of_the_table(reader: Admin) -> None:
    r = reader.get("/openapi.json")  # any admin may read it
    assert r.status_code == 200, r.text
    doc = r.json()
    validate(doc)
    listed = sorted((method.upper(), path) for path, ops in doc["paths"].items() for method in ops)
    expected = sorted((m, p.replace("*", "")) for m, p in _admin_table())
    assert listed == expected
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    op = doc["paths"]["/projects/{ref}/database/query"]["post"]
    assert op["x-madbase-right"] == "database.write" and op["operationId"] == "admin.database.query"
    assert httpx.get(reader.server.url + "/admin/v1/openapi.json", timeout=30).status_code == 401


def test_request_logs(platform: Admin, ops_server: MadbaseProcess) -> None:
    marker = f"/rest/v1/log_marker_{time.time_ns()}"
    since = time.time() - 1
    with httpx.Client(timeout=30) as c:
        c.get(ops_server.url + marker, headers=ops_server.headers())
        c.get(ops_server.url + "/auth/v1/settings", headers=ops_server.headers())
        c.get(ops_server.url + marker + "?apikey=secret-in-query", headers=ops_server.headers())
    r = platform.get("/projects/{ref}/logs", params={"path": marker})
    assert r.status_code == 200, r.text
    logs = r.json()["logs"]
    assert len(logs) == 2 and all(e["path"] == marker and e["service"] == "rest" for e in logs)
    entry = logs[0]
    assert entry["status"] == 404 and entry["method"] == "GET" and entry["client_ip"] == "127.0.0.1"
    assert entry["request_id"] and entry["duration_ms"] >= 0 and entry["timestamp"] >= since
    assert "secret-in-query" not in r.text
    assert platform.get("/projects/{ref}/logs", params={"path": marker, "status": "4xx"}).json()["logs"]
    assert not platform.get("/projects/{ref}/logs", params={"path": marker, "status": "200"}).json()["logs"]
    assert not platform.get("/projects/{ref}/logs", params={"path": marker, "service": "auth"}).json()["logs"]
    auth = platform.get("/projects/{ref}/logs", params={"service": "auth", "since": str(since)}).json()["logs"]
    assert any(e["path"] == "/auth/v1/settings" for e in auth)
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since - 3600))
    assert not platform.get("/projects/{ref}/logs", params={"path": marker, "until": iso}).json()["logs"]
    page = platform.get("/projects/{ref}/logs", params={"path": marker, "limit": "1"}).json()
    assert len(page["logs"]) == 1 and page["next_cursor"]
    rest = platform.get("/projects/{ref}/logs", params={"path": marker, "cursor": page["next_cursor"]}).json()
    assert [e["id"] for e in rest["logs"]] == [logs[1]["id"]] and rest["next_cursor"] is None
    # admin requests are no project's traffic
    assert not platform.get("/projects/{ref}/logs", params={"path": "/admin/"}).json()["logs"]
    for bad in ({"status": "abc"}, {"since": "yesterday"}, {"limit": "0"}, {"cursor": "x"}):
        r = platform.get("/projects/{ref}/logs", params=bad)
        assert r.status_code == 400 and set(r.json()) == {"message"}, bad


def test_realtime_connections_and_replication(platform: Admin, ops_server: MadbaseProcess) -> None:
    async def scenario() -> None:
        client = await RawClient.open(ops_server.url, ops_server.anon_key)
        try:
            reply = await client.join("realtime:ops-room", {
                "postgres_changes": [{"event": "*", "schema": "public", "table": "notes_rt"}]})
            assert reply["payload"]["status"] in ("ok", "error")
            await client.join("realtime:lobby", {"presence": {"key": "ada", "enabled": True}})
            r = await asyncio.to_thread(platform.get, "/projects/{ref}/realtime/connections")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["process_sockets"] >= 1 and body["node"]
            [conn] = [c for c in body["connections"]
                      if {ch["topic"] for ch in c["channels"]} == {"realtime:ops-room", "realtime:lobby"}]
            assert conn["role"] == "anon" and conn["client_ip"] == "127.0.0.1" and conn["vsn"] == "2.0.0"
            lobby = next(ch for ch in conn["channels"] if ch["topic"] == "realtime:lobby")
            assert lobby["presence_key"] == "ada" and lobby["private"] is False
        finally:
            await client.close()

    platform.sql("create table if not exists public.notes_rt (id int primary key)", role="postgres")
    asyncio.run(scenario())
    r = platform.get("/projects/{ref}/realtime/replication")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["wal_level"] == "logical" and body["slot_name"].startswith("madbase")
    assert body["consumer"]["node"]
    deadline = time.time() + 20
    while body["slot"] is None and time.time() < deadline:  # the slot is made when the hub starts
        time.sleep(0.3)
        body = platform.get("/projects/{ref}/realtime/replication").json()
    assert body["slot"] is not None and body["slot"]["plugin"] == "pgoutput", body
    assert body["slot"]["retained_bytes"] is not None
