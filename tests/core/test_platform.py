"""Platform regressions with real `madbase start` processes: the embedded PostgreSQL runs Supabase's SQL
(pgcrypto, uuid-ossp), a changed --db-port, signals during start, checks of an external database,
`madbase stop` and `status -o env`. (Settings reaching every worker: tests/security/test_worker_settings.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import bcrypt
import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from madbase.pgext.pidigits import blowfish_words
from tests.support.servers import MASTER_KEY, MadbaseProcess, create_database, external_db_env, free_port


def madbase_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "madbase", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


# -- 16: Supabase's SQL runs on the default project ------------------------------------------------------------
async def test_default_project_runs_supabase_extension_sql(server_db: asyncpg.Connection) -> None:
    conn = server_db
    await conn.execute('create extension if not exists "uuid-ossp" with schema extensions')
    await conn.execute("create extension if not exists pgcrypto with schema extensions")
    v4 = await conn.fetchval("select extensions.uuid_generate_v4()")
    assert v4.version == 4
    v5 = await conn.fetchval("select extensions.uuid_generate_v5(extensions.uuid_ns_url(), 'https://x.example')")
    import uuid

    assert v5 == uuid.uuid5(uuid.NAMESPACE_URL, "https://x.example")
    assert await conn.fetchval("select extensions.uuid_generate_v3(extensions.uuid_ns_dns(), 'a.example')") == \
        uuid.uuid3(uuid.NAMESPACE_DNS, "a.example")
    assert (await conn.fetchval("select extensions.uuid_generate_v1()")).version == 1
    # The database's search_path ("$user", public, extensions, as Supabase's) finds them unqualified, as
    # tutorials write them.
    hashed = await conn.fetchval("select crypt('x', gen_salt('bf'))")
    assert hashed.startswith("$2a$06$") and len(hashed) == 60
    assert await conn.fetchval("select extensions.crypt('x', $1) = $1", hashed)
    assert not await conn.fetchval("select extensions.crypt('y', $1) = $1", hashed)
    assert bcrypt.checkpw(b"x", hashed.encode())  # what GoTrue (auth) verifies sign-ins with
    other = bcrypt.hashpw("pässwörd".encode(), bcrypt.gensalt(4)).decode()
    assert await conn.fetchval("select extensions.crypt('pässwörd', $1)", other) == other
    for algo in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
        import hashlib
        import hmac

        assert await conn.fetchval("select extensions.digest('abc', $1)", algo) == hashlib.new(algo, b"abc").digest()
        assert await conn.fetchval("select extensions.hmac('data', 'k', $1)", algo) == \
            hmac.new(b"k", b"data", algo).digest()
    assert len(await conn.fetchval("select extensions.gen_random_bytes(40)")) == 40
    with pytest.raises(asyncpg.PostgresError, match="invalid salt"):
        await conn.fetchval("select extensions.crypt('x', 'not a salt')")
    available = {r["name"] for r in await conn.fetch("select name from pg_available_extensions")}
    assert {"pgcrypto", "uuid-ossp", "pg_stat_statements", "vector"} <= available


def test_blowfish_tables_are_pi() -> None:
    sql = (Path(__file__).parents[2] / "src/madbase/pgext/extension/pgcrypto--1.3.sql").read_text()
    words = blowfish_words()
    assert "'{" + ",".join(map(str, words[:18])) + "}'" in sql
    for box in range(4):
        assert "'[0:255]={" + ",".join(map(str, words[18 + 256 * box:18 + 256 * (box + 1)])) + "}'" in sql


def test_sha1_is_one_implementation_in_both_extensions() -> None:
    """Each extension carries its own SHA-1 (either may be installed alone, in the same schema, so they cannot
    share a function): the two bodies must stay the same text, fixed together."""
    folder = Path(__file__).parents[2] / "src/madbase/pgext/extension"

    def body(file: str, name: str) -> str:
        sql = (folder / file).read_text()
        start = sql.index(f"{name}(data bytea) returns bytea")
        return sql[start:sql.index("$f$;", start)].split("\n", 1)[1]

    assert body("pgcrypto--1.3.sql", "_madbase_sha1") == body("uuid-ossp--1.1.sql", "_madbase_uuid_sha1")


# -- 18: another --db-port on an existing data folder; signals during start -----------------------------------
def test_embedded_restart_with_another_db_port(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"MADBASE_POSTGRES_FSYNC": "false"}
    first = MadbaseProcess(data, env, args=["--db-port", str(free_port())], flags=True).start(timeout=120)
    try:
        async def seed() -> None:
            conn = await asyncpg.connect(first.db_url)
            await conn.execute("create table kept (v text); insert into kept values ('survives')")
            await conn.close()

        asyncio.run(seed())
    finally:
        assert first.stop() == 0
    # As a killed server leaves it: the cluster still running on the old port.
    leftover = PgCluster(data, int(first.db_url.rsplit(":", 1)[1].split("/")[0]), "postgres", fsync=False)
    leftover.start()
    assert leftover.is_running()
    second = MadbaseProcess(data, env, port=first.port, args=["--db-port", str(free_port())],
                            flags=True).start(timeout=120)
    try:
        assert second.db_url != first.db_url and second.project_ref == first.project_ref
        r = httpx.get(second.url + "/gateway/v1/whoami?db=1", headers=second.headers())
        assert r.status_code == 200, r.text

        async def check() -> tuple[str, object]:
            conn = await asyncpg.connect(second.db_url)
            try:
                return (await conn.fetchval("select v from kept"),
                        await conn.fetchval("select extensions.uuid_generate_v4()"))
            finally:
                await conn.close()

        kept, generated = asyncio.run(check())
        assert kept == "survives" and generated is not None
    finally:
        assert second.stop() == 0
    assert not (data / "pg" / "postmaster.pid").exists()


@contextlib.contextmanager
def silent_tcp_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and never answers: a database that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(sock.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1]), held
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


def test_sigterm_while_starting_exits_promptly(tmp_path: Path) -> None:
    with silent_tcp_server() as (port, connected):
        env = {**os.environ, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{port}/db", "MADBASE_MASTER_KEY": MASTER_KEY,
               "MADBASE_DATA_DIR": str(tmp_path / "d"), "MADBASE_PORT": str(free_port())}
        proc = subprocess.Popen([sys.executable, "-m", "madbase", "start"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not connected and time.monotonic() < deadline:  # until it waits on the database
            time.sleep(0.1)
        assert connected and proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
        assert time.monotonic() - sent < 5, "the signal must cut the start short, not wait for a timeout"
        assert proc.returncode == 0 and "stopped while starting" in err and "Traceback" not in err


# -- 17: an external database without logical replication -------------------------------------------------------
@pytest.fixture(scope="module")
def replica_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """A cluster with wal_level=replica (what a stock PostgreSQL has)."""
    cluster = PgCluster(tmp_path_factory.mktemp("replica-pg"), free_port(), "postgres", fsync=False)
    cluster.start()
    try:
        async def lower() -> None:
            conn = await asyncpg.connect(cluster.dsn())
            await conn.execute("alter system set wal_level = replica")
            await conn.close()

        asyncio.run(lower())
        cluster.stop()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


async def test_external_database_without_logical_wal(replica_cluster: PgCluster, tmp_path: Path) -> None:
    db_url = await create_database(replica_cluster, "nowal")
    proc = await asyncio.to_thread(MadbaseProcess(tmp_path / "srv", external_db_env(db_url)).start)
    try:
        assert "Warning: wal_level is replica" in proc.output()
        async with httpx.AsyncClient() as client:
            ready = await client.get(proc.url + "/ready")
        assert ready.status_code == 200
        assert any("wal_level is replica" in w for w in ready.json()["warnings"])
        import websockets

        url = proc.url.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={proc.anon_key}&vsn=1.0.0"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"topic": "realtime:any", "event": "phx_join", "ref": "1", "join_ref": "1",
                                      "payload": {"config": {"postgres_changes": [
                                          {"event": "*", "schema": "public", "table": "t"}]}}}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
        assert reply["event"] == "phx_reply" and reply["payload"]["status"] == "error", reply
        assert "wal_level must be logical" in reply["payload"]["response"]["reason"]
    finally:
        proc.stop()


# -- 20: madbase stop, status -o env ---------------------------------------------------------------------------
def test_stop_command_and_env_output(pg_cluster: PgCluster, tmp_path: Path) -> None:
    db_url = asyncio.run(create_database(pg_cluster, "stopcmd"))
    proc = MadbaseProcess(tmp_path / "srv", external_db_env(db_url)).start()
    env = {"MADBASE_DATA_DIR": str(proc.data_dir)}
    try:
        out = madbase_cli("status", "-o", "env", env=env)
        assert out.returncode == 0 and f'export ANON_KEY="{proc.anon_key}"' in out.stdout.splitlines()
        shell = subprocess.run(["bash", "-c", 'eval "$0"; echo "$API_URL"', out.stdout], capture_output=True,
                               text=True)
        assert shell.stdout.strip() == proc.url
        # Values are quoted for eval: a hostile database password expands nothing.
        state = json.loads((proc.data_dir / "state.json").read_text())
        marker = proc.data_dir / "expanded"
        hostile = f'postgresql://u:a"b$(touch {marker})`id`\\@127.0.0.1:5432/postgres'
        (proc.data_dir / "state.json").write_text(json.dumps({**state, "db_url": hostile}))
        out = madbase_cli("status", "-o", "env", env=env)
        shell = subprocess.run(["bash", "-c", 'eval "$0"; printf %s "$DB_URL"', out.stdout], capture_output=True,
                               text=True)
        assert shell.stdout == hostile and not marker.exists()
        (proc.data_dir / "state.json").write_text(json.dumps(state))
        stopped = madbase_cli("stop", "--data-dir", str(proc.data_dir))
        assert stopped.returncode == 0 and "MadBase stopped" in stopped.stdout, stopped.stderr
        assert proc.proc is not None and proc.proc.poll() == 0  # gone (and reaped: exit code 0) when stop returns
        assert not (proc.data_dir / "state.json").exists()
        again = madbase_cli("stop", env=env)
        assert again.returncode == 1 and "no MadBase server is running" in again.stderr
    finally:
        proc.stop()


def test_db_port_error_names_the_flag(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = madbase_cli("start", "--port", str(free_port()), "--db-port", str(busy.getsockname()[1]),
                          "--data-dir", str(tmp_path / "d"))
    assert out.returncode == 1 and "--db-port" in out.stderr and "Traceback" not in out.stderr


def test_help_has_no_odd_metavars() -> None:
    for args in ((), ("start",), ("status",), ("stop",)):
        out = madbase_cli(*args, "--help", env={"COLUMNS": "120"})
        assert out.returncode == 0 and "<bool>" not in out.stdout and "BOOLEAN" not in out.stdout, out.stdout


async def test_database_checks_name_missing_privileges(pg_cluster: PgCluster) -> None:
    """A login without REPLICATION and CREATEROLE gets one sentence for each (start warning, /ready)."""
    from madbase.core.dbchecks import database_warnings

    admin = await asyncpg.connect(pg_cluster.dsn())
    try:
        await admin.execute("drop role if exists plain_login")
        await admin.execute("create role plain_login login password 'pw'")
        warnings = await database_warnings(pg_cluster.dsn(user="plain_login", password="pw"))
        assert any("no REPLICATION privilege" in w for w in warnings), warnings
        assert any("CREATEROLE" in w for w in warnings), warnings
        assert await database_warnings(pg_cluster.dsn()) == []  # the superuser on a logical cluster: all fine
        unreachable = await database_warnings("postgresql://u:p@127.0.0.1:1/db")
        assert len(unreachable) == 1 and "cannot be reached" in unreachable[0]
    finally:
        await admin.execute("drop role if exists plain_login")
        await admin.close()


def test_stop_command_reaches_a_server_still_starting(tmp_path: Path) -> None:
    """No state.json yet (waiting on its database): `madbase stop` finds it through the data folder's lock."""
    with silent_tcp_server() as (port, connected):
        data = tmp_path / "d"
        env = {**os.environ, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{port}/db", "MADBASE_MASTER_KEY": MASTER_KEY,
               "MADBASE_DATA_DIR": str(data), "MADBASE_PORT": str(free_port())}
        proc = subprocess.Popen([sys.executable, "-m", "madbase", "start"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not connected and time.monotonic() < deadline:
                time.sleep(0.1)
            assert connected and not (data / "state.json").exists()
            out = madbase_cli("stop", "--data-dir", str(data), timeout=30)
            assert out.returncode == 0 and f"MadBase stopped (pid {proc.pid})" in out.stdout, out.stderr
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            proc.wait()
