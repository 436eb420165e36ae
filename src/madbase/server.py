"""`madbase start`: prepare the database (embedded or given), start the runtime, serve, shut down cleanly.

Order on start: lock the data folder → bind the API port → start the embedded PostgreSQL (if no
DATABASE_URL) → migrate the control plane, create the default project on the first run → bootstrap the
default project's database → print URL and keys → serve. On SIGINT/SIGTERM: stop accepting, let in-flight
requests finish (bounded by MADBASE_SHUTDOWN_TIMEOUT), close pools, stop the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import asyncpg
import uvicorn

from madbase import statefile
from madbase.app import build_app
from madbase.config import Settings
from madbase.core import logging as mblogging
from madbase.core.pgcluster import PgCluster
from madbase.core.runtime import Endpoints, Runtime, StartupError
from madbase.core.secretbox import SecretBox, load_or_create_key_file

CONTROL_DB = "madbase"


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "server.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        state = statefile.ServerState.read(data_dir)
        who = f" (pid {state.pid}, {state.api_url})" if state else ""
        handle.close()
        raise StartupError(f"another MadBase server is already running with data folder {data_dir}{who}") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == 98 else f"cannot be bound ({exc.strerror})"
        raise StartupError(f"port {port} on {host} {reason} (use --port or MADBASE_PORT)") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def master_key(settings: Settings) -> str:
    if settings.master_key is not None:
        return settings.master_key.get_secret_value()
    if not settings.embedded:
        raise StartupError("MADBASE_MASTER_KEY is required when DATABASE_URL is set (it encrypts project secrets)")
    return load_or_create_key_file(settings.data_dir / "master.key")


async def ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        if not await conn.fetchval("select exists(select 1 from pg_database where datname = $1)", name):
            statement = await conn.fetchval("select format('create database %I', $1::text)", name)
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(statement)
    finally:
        await conn.close()


def print_banner(state: statefile.ServerState, out: TextIO) -> None:
    rows = [
        ("API URL", state.api_url),
        ("REST URL", state.api_url + "/rest/v1"),
        ("Realtime URL", state.api_url.replace("http", "ws", 1) + "/realtime/v1"),
        ("DB URL", state.db_url),
        ("Project ref", state.project_ref),
        ("JWT secret", state.jwt_secret),
        ("anon key", state.anon_key),
        ("service_role key", state.service_role_key),
    ]
    width = max(len(k) for k, _ in rows)
    out.write("MadBase is running.\n\n")
    for key, value in rows:
        out.write(f"{key.rjust(width)}: {value}\n")
    out.write("\n")
    out.flush()


async def _serve(settings: Settings, sock: socket.socket, cluster: PgCluster | None) -> None:
    if cluster is not None:
        await asyncio.to_thread(cluster.start)
        admin = cluster.dsn("postgres")
        try:
            await ensure_database(admin, CONTROL_DB)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StartupError(f"the embedded PostgreSQL is not usable: {exc}") from exc
        endpoints = Endpoints(control_dsn=cluster.dsn(CONTROL_DB), default_db_url=admin)
        db_url = admin
    else:
        assert settings.database_url is not None
        endpoints = Endpoints(control_dsn=settings.control_database_url or settings.database_url,
                              default_db_url=settings.database_url)
        db_url = settings.database_url
    runtime = Runtime(settings, SecretBox(master_key(settings)), endpoints)
    try:
        await runtime.start()
        refs = runtime.projects.active_refs
        project = runtime.projects.resolve(refs[0]).record if refs else None
        state = statefile.ServerState(
            pid=os.getpid(), api_url=settings.public_url, db_url=db_url, embedded_db=cluster is not None,
            project_ref=project.ref if project else "", anon_key=project.anon_key if project else "",
            service_role_key=project.service_role_key if project else "",
            jwt_secret=project.jwt_secret if project else "", started_at=datetime.now(UTC).isoformat(),
        )
        state.write(settings.data_dir)
        print_banner(state, sys.stderr)
        config = uvicorn.Config(
            build_app(runtime), lifespan="on", http="httptools", ws="websockets-sansio", log_level="warning",
            access_log=False, timeout_graceful_shutdown=int(settings.shutdown_timeout) or None,
            server_header=False, date_header=True, proxy_headers=False, ws_per_message_deflate=False,
        )
        server = uvicorn.Server(config)
        await server.serve(sockets=[sock])
    finally:
        statefile.remove(settings.data_dir)
        await runtime.close()


def _note_signal(signum: int, frame: object) -> None:
    """Installed before serving: uvicorn re-raises the stop signal after draining, and the default handlers
    would kill the process before the pools close and the embedded PostgreSQL stops."""


def run(settings: Settings) -> None:
    """Run the server until a signal; raises StartupError / ClusterError with one-line messages."""
    mblogging.configure(settings.log_level)
    signal.signal(signal.SIGTERM, _note_signal)
    signal.signal(signal.SIGINT, _note_signal)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with data_dir_lock(settings.data_dir):
        sock = bind_socket(settings.host, settings.port)
        cluster = None
        if settings.embedded:
            cluster = PgCluster(settings.data_dir, settings.db_port, settings.postgres_password.get_secret_value(),
                                fsync=settings.postgres_fsync)
        try:
            _run_loop(_serve(settings, sock, cluster))
        finally:
            sock.close()
            if cluster is not None:
                cluster.stop()


def _run_loop(main: object) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]
