"""The running server (a real `madbase start` process): gateway behaviour, isolation, CLI, lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from madbase.core import migrations
from madbase.core.control import ControlStore
from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster
from madbase.core.secretbox import SecretBox
from tests.support.servers import MASTER_KEY, MadbaseProcess, create_database, external_db_env, free_port


def madbase_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "madbase", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_health_ready_and_request_id(server: MadbaseProcess) -> None:
    r = httpx.get(server.url + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"} and r.headers["x-request-id"]
    r = httpx.get(server.url + "/ready", headers={"x-request-id": "req-123"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-123"


def test_missing_and_invalid_keys_get_supabase_errors(server: MadbaseProcess) -> None:
    r = httpx.get(server.url + "/gateway/v1/whoami")
    assert r.status_code == 401
    assert r.json() == {"message": "No API key found in request",
                        "hint": "No `apikey` request header or url param was found."}
    r = httpx.get(server.url + "/rest/v1/anything", headers={"apikey": "nope"})
    assert r.status_code == 401 and r.json()["message"] == "Invalid API key"
    expired = sign_hs256({"role": "authenticated", "sub": "u", "exp": int(time.time()) - 600}, server.jwt_secret)
    r = httpx.get(server.url + "/rest/v1/anything", headers=server.headers(expired))
    assert r.status_code == 401 and r.json()["code"] == "PGRST303" and r.json()["message"] == "JWT expired"
    r = httpx.get(server.url + "/rest/v1/anything", headers=server.headers("a.b.c"))
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"
    r = httpx.get(server.url + "/auth/v1/user", headers=server.headers(expired))
    assert r.status_code == 403 and r.json()["error_code"] == "bad_jwt"
    forged_role = sign_hs256({"role": "postgres"}, server.jwt_secret)
    r = httpx.get(server.url + "/gateway/v1/whoami", headers=server.headers(forged_role))
    assert r.status_code == 401
    r = httpx.get(server.url + "/nowhere")
    assert r.status_code == 404 and r.json() == {"message": "no Route matched with those values"}


def test_claims_reach_sql(server: MadbaseProcess) -> None:
    uid = "5a5c3b7e-0a0b-4c4d-8e8f-000000000001"
    token = sign_hs256({"role": "authenticated", "sub": uid, "email": "u@example.com",
                        "exp": int(time.time()) + 600}, server.jwt_secret)
    r = httpx.get(server.url + "/gateway/v1/whoami?db=1", headers=server.headers(token))
    assert r.status_code == 200
    db = r.json()["db"]
    assert db["current_user"] == "authenticated" and db["uid"] == uid and db["role"] == "authenticated"
    assert db["email"] == "u@example.com" and json.loads(db["claims"])["sub"] == uid
    assert db["method"] == "GET" and db["path"] == "/gateway/v1/whoami"
    r = httpx.get(server.url + "/gateway/v1/whoami?db=1", headers=server.headers(key=server.anon_key))
    assert r.json()["db"]["current_user"] == "anon" and r.json()["db"]["uid"] is None
    r = httpx.get(server.url + "/gateway/v1/whoami?db=1",
                  headers={"apikey": server.anon_key, "Authorization": f"Bearer {server.service_role_key}"})
    assert r.json()["db"]["current_user"] == "service_role"


def test_project_from_subdomain(server: MadbaseProcess) -> None:
    host = {"Host": f"{server.project_ref}.madbase.localhost:{server.port}"}
    r = httpx.get(server.url + "/gateway/v1/whoami", headers={**server.headers(), **host})
    assert r.status_code == 200 and r.json()["project_ref"] == server.project_ref
    r = httpx.get(server.url + "/gateway/v1/whoami",
                  headers={**server.headers(), "Host": "nosuchproject.madbase.localhost"})
    assert r.status_code == 404 and r.json()["message"] == "Project not found"


def test_cors(server: MadbaseProcess) -> None:
    r = httpx.options(server.url + "/rest/v1/items", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "apikey, authorization, x-client-info, content-type, prefer"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "prefer" in r.headers["access-control-allow-headers"]
    assert "PATCH" in r.headers["access-control-allow-methods"]
    r = httpx.get(server.url + "/gateway/v1/whoami", headers={"Origin": "http://x", **server.headers()})
    assert r.headers["access-control-allow-origin"] == "*"
    exposed = r.headers["access-control-expose-headers"]
    for name in ("Content-Range", "X-Supabase-Api-Version", "X-Total-Count", "Retry-After", "x-relay-error"):
        assert name in exposed


def test_metrics(server: MadbaseProcess) -> None:
    httpx.get(server.url + "/gateway/v1/whoami?db=1", headers=server.headers())
    text = httpx.get(server.url + "/metrics").text
    assert f'madbase_http_requests_total{{project="{server.project_ref}",service="gateway",status="200"}}' in text
    assert "madbase_http_request_duration_seconds_bucket" in text
    assert f'madbase_db_pool_max_size{{project="{server.project_ref}"}}' in text


def test_status_command(server: MadbaseProcess) -> None:
    out = madbase_cli("status", "-o", "json", env={"MADBASE_DATA_DIR": str(server.data_dir)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["api_url"] == server.url and data["anon_key"] == server.anon_key and data["healthy"]
    assert data["service_role_key"] == server.service_role_key and data["jwt_secret"] == server.jwt_secret
    env = madbase_cli("status", "-o", "env", env={"MADBASE_DATA_DIR": str(server.data_dir)})
    assert f'ANON_KEY="{server.anon_key}"' in env.stdout and f'API_URL="{server.url}"' in env.stdout
    missing = madbase_cli("status", env={"MADBASE_DATA_DIR": str(server.data_dir / "nope")})
    assert missing.returncode == 1 and "no MadBase server is running" in missing.stderr


async def test_two_projects_are_isolated(server: MadbaseProcess, pg_cluster: PgCluster) -> None:
    control = await asyncpg.create_pool(server.db_url, min_size=1, max_size=2)
    assert control is not None
    other_db = await create_database(pg_cluster, "projb")
    try:
        store = ControlStore(control, SecretBox(MASTER_KEY))
        b = await store.create(name="b", db_url=other_db, login_role="authenticator_b")
        headers_b = {"apikey": b.anon_key, "Authorization": f"Bearer {b.anon_key}", "x-project-ref": b.ref}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for _ in range(50):  # the server learns of the new project through NOTIFY
                r = await client.get("/gateway/v1/whoami?db=1", headers=headers_b)
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 200 and r.json()["project_ref"] == b.ref
            db_b = r.json()["db"]["database"]
            a = await client.get("/gateway/v1/whoami?db=1", headers={**server.headers(), "x-project-ref":
                                                                     server.project_ref})
            assert a.json()["db"]["database"] != db_b and db_b == other_db.rsplit("/", 1)[1]
            # With two projects there is no implicit default any more.
            r = await client.get("/gateway/v1/whoami", headers=server.headers())
            assert r.status_code == 404
            # A's key and A's user token are refused by B.
            r = await client.get("/gateway/v1/whoami", headers={**server.headers(), "x-project-ref": b.ref})
            assert r.status_code == 401 and r.json()["message"] == "Invalid API key"
            user_a = sign_hs256({"role": "authenticated", "sub": "x"}, server.jwt_secret)
            r = await client.get("/gateway/v1/whoami", headers={**headers_b, "Authorization": f"Bearer {user_a}"})
            assert r.status_code == 401
            # A project whose database is down answers 503 in the service's shape, no internals.
            c = await store.create(name="b", db_url="postgresql://postgres:pw@127.0.0.1:1/gone",
                                   login_role="authenticator_c")
            headers_c = {"apikey": c.anon_key, "x-project-ref": c.ref}
            for _ in range(50):
                r = await client.get("/gateway/v1/whoami", headers=headers_c)
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            r = await client.get("/gateway/v1/whoami?db=1", headers=headers_c)
            assert r.status_code == 503 and r.json() == {"message": "Database is not available"}
            # Disabled and deleted projects are refused.
            async def status_becomes(expected: int) -> int:
                for _ in range(100):  # the change reaches the server through NOTIFY
                    r = await client.get("/gateway/v1/whoami", headers=headers_b)
                    if r.status_code == expected:
                        break
                    await asyncio.sleep(0.1)
                return r.status_code

            await store.set_status(b.ref, "disabled")
            assert await status_becomes(403) == 403
            await store.set_status(b.ref, "deleted")
            assert await status_becomes(404) == 404
    finally:
        await control.execute("delete from madbase_control.projects where name = 'b'")
        await control.close()


def test_body_limit_and_rate_limit(pg_cluster: PgCluster, tmp_path: Path) -> None:
    if time.time() % 60 > 40:  # the limits are per clock minute: keep the whole test inside one window
        time.sleep(61 - time.time() % 60)
    db_url = asyncio.run(create_database(pg_cluster, "limits"))
    env = external_db_env(db_url, MADBASE_MAX_BODY_BYTES="2048", MADBASE_RATE_LIMIT_IP_PER_MINUTE="8",
                          LOG_LEVEL="INFO")
    one = MadbaseProcess(tmp_path / "one", env).start()
    two = MadbaseProcess(tmp_path / "two", env).start()
    try:
        r = httpx.post(one.url + "/gateway/v1/whoami", headers=one.headers(), content=b"x" * 1000)
        assert r.status_code == 200 and r.json()["body_bytes"] == 1000
        r = httpx.post(one.url + "/gateway/v1/whoami", headers=one.headers(), content=b"x" * 5000)
        assert r.status_code == 413

        def chunks() -> object:
            for _ in range(10):
                yield b"y" * 1000

        r = httpx.post(one.url + "/gateway/v1/whoami", headers=one.headers(), content=chunks())  # type: ignore[arg-type]
        assert r.status_code == 413
        time.sleep(0.6)  # counters synced through the control database
        statuses = []
        for i in range(8):
            target = one if i % 2 else two
            statuses.append(httpx.get(target.url + "/gateway/v1/whoami", headers=one.headers()).status_code)
            time.sleep(0.3)
        assert 429 in statuses, statuses  # 3 + 8 requests > 8 per minute across both processes
        limited = httpx.get(two.url + "/gateway/v1/whoami", headers=one.headers())
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert limited.json()["message"] == "Rate limit exceeded"
        lines = [json.loads(line) for line in two.output().splitlines() if line.startswith("{")]
        access = [line for line in lines if line.get("event") == "request"]
        assert access and all(line["request_id"] and line["status"] for line in access)
        assert any(line["status"] == 429 for line in access)
        assert {line["project_ref"] for line in access if line["status"] == 200} == {one.project_ref}
    finally:
        one.stop()
        two.stop()


def test_graceful_shutdown_finishes_in_flight_request(pg_cluster: PgCluster, tmp_path: Path) -> None:
    db_url = asyncio.run(create_database(pg_cluster, "drain"))
    proc = MadbaseProcess(tmp_path / "srv", external_db_env(db_url)).start()
    try:
        head = (f"POST /gateway/v1/whoami HTTP/1.1\r\nHost: x\r\napikey: {proc.anon_key}\r\n"
                f"Content-Length: 10\r\nConnection: close\r\n\r\n12345").encode()
        with socket.create_connection(("127.0.0.1", proc.port)) as sock:
            sock.sendall(head)
            time.sleep(0.3)
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(OSError):  # no new connections are accepted while draining
                socket.create_connection(("127.0.0.1", proc.port), timeout=1).close()
            sock.sendall(b"67890")
            sock.settimeout(10)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        assert b'"body_bytes":10' in data
        assert proc.proc.wait(20) == 0
        assert not (tmp_path / "srv" / "state.json").exists()
    finally:
        proc.stop()


def test_embedded_start_restart_keeps_data(tmp_path: Path) -> None:
    env = {"MADBASE_DB_PORT": str(free_port()), "MADBASE_POSTGRES_FSYNC": "false"}
    first = MadbaseProcess(tmp_path / "data", env).start(timeout=120)
    try:
        assert first.db_url.endswith("/postgres")

        async def write() -> None:
            conn = await asyncpg.connect(first.db_url)
            await conn.execute("create table kept (v text); insert into kept values ('survives')")
            await conn.close()

        asyncio.run(write())
        r = httpx.get(first.url + "/gateway/v1/whoami?db=1", headers=first.headers())
        assert r.status_code == 200 and r.json()["db"]["database"] == "postgres"
        # A second server on the same data folder is refused with one line.
        second = madbase_cli("start", "--port", str(free_port()),
                             env={**env, "MADBASE_DATA_DIR": str(tmp_path / "data")})
        assert second.returncode == 1 and "already running" in second.stderr and "Traceback" not in second.stderr
    finally:
        assert first.stop() == 0
    again = MadbaseProcess(tmp_path / "data", env, port=first.port).start(timeout=120)
    try:
        assert (again.project_ref, again.anon_key, again.service_role_key) == (
            first.project_ref, first.anon_key, first.service_role_key)

        async def read() -> str:
            conn = await asyncpg.connect(again.db_url)
            value = await conn.fetchval("select v from kept")
            await conn.close()
            return str(value)

        assert asyncio.run(read()) == "survives"
    finally:
        again.stop()
    pgdata = tmp_path / "data" / "pg"
    assert not (pgdata / "postmaster.pid").exists()  # the embedded PostgreSQL was stopped cleanly


def test_startup_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        ({"MADBASE_PORT": "abc"}, 2, "invalid setting MADBASE_PORT"),
        ({"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db", "MADBASE_MASTER_KEY": MASTER_KEY}, 1,
         "cannot reach the control database"),
        ({"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db"}, 1, "MADBASE_MASTER_KEY is required"),
    ]
    for env, code, text in cases:
        out = madbase_cli("start", env={"MADBASE_DATA_DIR": str(tmp_path / "d"), **env})
        assert out.returncode == code, (env, out.stderr)
        assert text in out.stderr and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = madbase_cli("start", "--port", str(port), env={"MADBASE_DATA_DIR": str(tmp_path / "p")})
        assert out.returncode == 1 and "already in use" in out.stderr and "Traceback" not in out.stderr


def test_migration_runner_records_control_track(server: MadbaseProcess) -> None:
    async def check() -> list[str]:
        conn = await asyncpg.connect(server.db_url)
        try:
            rows = await conn.fetch("select track, version from madbase_migrations.applied order by 1, 2")
            return [f"{r['track']}/{r['version']}" for r in rows]
        finally:
            await conn.close()

    recorded = asyncio.run(check())
    assert "control/0001" in recorded and "tenant/0001" in recorded
    assert len(recorded) == len(migrations.load("control")) + len(migrations.load("tenant"))


def test_several_worker_processes(pg_cluster: PgCluster, tmp_path: Path) -> None:
    db_url = asyncio.run(create_database(pg_cluster, "workers"))
    proc = MadbaseProcess(tmp_path / "srv", external_db_env(db_url, MADBASE_WORKERS="2")).start()
    assert proc.proc is not None
    try:
        def workers() -> list[int]:
            out = subprocess.run(["pgrep", "-P", str(proc.proc.pid)], capture_output=True, text=True)  # type: ignore[union-attr]
            return [int(p) for p in out.stdout.split()]

        deadline = time.time() + 30
        while len(workers()) < 2 and time.time() < deadline:
            time.sleep(0.2)
        first = workers()
        assert len(first) == 2
        with httpx.Client(base_url=proc.url) as client:
            assert all(client.get("/gateway/v1/whoami?db=1", headers=proc.headers()).status_code == 200
                       for _ in range(40))
        os.kill(first[0], signal.SIGKILL)  # a crashed worker is replaced
        deadline = time.time() + 30
        while (len(workers()) < 2 or first[0] in workers()) and time.time() < deadline:
            time.sleep(0.2)
        assert len(workers()) == 2 and first[0] not in workers()
        for _ in range(50):
            if httpx.get(proc.url + "/health").status_code == 200:
                break
    finally:
        assert proc.stop() == 0
    assert not (tmp_path / "srv" / "state.json").exists()
