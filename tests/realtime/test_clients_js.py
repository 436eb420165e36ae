"""realtime-js (through supabase-js 2.119.0 under Node): postgres_changes with filters and RLS, broadcast,
presence, binary payloads, httpSend and the REST fallback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.realtime.conftest import user_token
from tests.realtime.test_changes import _setup
from tests.support.servers import MadbaseProcess

JS = Path(__file__).resolve().parents[1] / "js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules").is_dir(),
                                reason="node or tests/js/node_modules missing")


async def start_js(script: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node", "--experimental-websocket", str(JS / "realtime" / script), cwd=str(JS), env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def wait_line(proc: asyncio.subprocess.Process, expected: str, seconds: float = 20) -> None:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), seconds)).decode().strip()
        if line == expected:
            return
        if not line:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"node exited before {expected!r}: {err.decode()[-2000:]}")
        if line.startswith("{"):
            raise AssertionError(f"unexpected before {expected}: {line}")


async def collect(proc: asyncio.subprocess.Process, seconds: float = 30) -> list[dict[str, Any]]:
    out, err = await asyncio.wait_for(proc.communicate(), seconds)
    lines = out.decode().splitlines()
    assert "DONE" in lines, out.decode() + err.decode()[-2000:]
    return [json.loads(x) for x in lines if x.startswith("{")]


def js_env(server: MadbaseProcess, **extra: str) -> dict[str, str]:
    return {"SUPABASE_URL": server.url, "SUPABASE_KEY": server.anon_key, **extra}


async def test_js_changes_filter(server: MadbaseProcess, server_db: asyncpg.Connection, table_name: str) -> None:
    await _setup(server_db, table_name, full=True)
    proc = await start_js("changes.mjs", js_env(server, TABLE=table_name, FILTER="id=in.(1,3)", COUNT="3"))
    await wait_line(proc, "SUBSCRIBED")
    await server_db.execute(f"insert into {table_name} (id, title, meta, done) values "
                            "(1, 'one', '{\"a\": 1}', true), (2, 'two', null, false)")
    await server_db.execute(f"update {table_name} set title = 'uno' where id = 1")
    await server_db.execute(f"insert into {table_name} (id, title) values (3, 'three')")
    events = await collect(proc)
    assert [(e["eventType"], e["new"]["id"]) for e in events] == [("INSERT", 1), ("UPDATE", 1), ("INSERT", 3)]
    first = events[0]
    assert first["new"]["meta"] == {"a": 1} and first["new"]["done"] is True and first["old"] == {}
    assert first["schema"] == "public" and first["table"] == table_name and first["errors"] is None
    assert events[1]["old"]["title"] == "one" and events[1]["new"]["title"] == "uno"


async def test_js_rls_two_users(server: MadbaseProcess, server_db: asyncpg.Connection, table_name: str) -> None:
    await _setup(server_db, table_name, rls=True)
    ua, ub = str(uuid.uuid4()), str(uuid.uuid4())
    pa = await start_js("changes.mjs", js_env(server, TABLE=table_name, COUNT="2", EVENT="INSERT",
                                              TOKEN=user_token(server, ua)))
    pb = await start_js("changes.mjs", js_env(server, TABLE=table_name, COUNT="1", EVENT="INSERT",
                                              TOKEN=user_token(server, ub)))
    await wait_line(pa, "SUBSCRIBED")
    await wait_line(pb, "SUBSCRIBED")
    for i, owner in enumerate([ua, ub, ua], start=1):
        await server_db.execute(f"insert into {table_name} (id, owner) values ($1, $2)", i, owner)
    got_a = await collect(pa)
    got_b = await collect(pb)
    assert [e["new"]["id"] for e in got_a] == [1, 3] and all(e["new"]["owner"] == ua for e in got_a)
    assert [e["new"]["id"] for e in got_b] == [2]


async def test_js_broadcast_presence(server: MadbaseProcess) -> None:
    proc = await start_js("broadcast_presence.mjs", js_env(server, ROOM="room-" + uuid.uuid4().hex[:6]))
    out, err = await asyncio.wait_for(proc.communicate(), 40)
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert "timeout" not in result, (result, err.decode()[-2000:])
    assert result["trackStatus"] == "ok" and result["sendStatus"] == "ok" and result["binStatus"] == "ok"
    assert result["restStatus"] == "ok" and result["untrack"] == "ok"
    assert result["bPresence"]["alice"][0]["name"] == "Alice" and "presence_ref" in result["bPresence"]["alice"][0]
    assert result["bLeaves"] == ["alice"]
    events = {m["event"]: m["payload"] for m in result["bReceived"]}
    assert events["greet"] == {"text": "hello"}
    assert events["bin"] == {"binary": [1, 2, 255]}
    assert events["viahttp"] == {"via": "http"}
    assert events["rest"] == {"via": "rest"}
    assert any(m["event"] == "greet" for m in result["aReceived"])  # self: true


async def test_js_set_auth_reauthorises(server: MadbaseProcess, server_db: asyncpg.Connection,
                                        table_name: str) -> None:
    await _setup(server_db, table_name, rls=True)
    ua, ub = str(uuid.uuid4()), str(uuid.uuid4())
    proc = await asyncio.create_subprocess_exec(
        "node", "--experimental-websocket", str(JS / "realtime" / "reauth.mjs"), cwd=str(JS),
        env={**os.environ, **js_env(server, TABLE=table_name, TOKEN_A=user_token(server, ua),
                                    TOKEN_B=user_token(server, ub))},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    await wait_line(proc, "SUBSCRIBED")
    await server_db.execute(f"insert into {table_name} (id, owner) values (1, $1), (2, $2)", ua, ub)
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
    assert json.loads(line) == {"id": 1}
    proc.stdin.write(b"switch\n")
    await proc.stdin.drain()
    await wait_line(proc, "SWITCHED")
    await asyncio.sleep(0.5)
    await server_db.execute(f"insert into {table_name} (id, owner) values (3, $1), (4, $2)", ua, ub)
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
    assert json.loads(line) == {"id": 4}
    proc.stdin.write(b"quit\n")
    await proc.stdin.drain()
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert b"DONE" in out and b'"id":3' not in out
