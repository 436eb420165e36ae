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
import subprocess
import sys
import time
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
from madbase.httpprotocol import HttpLimits, protocol_class
from madbase.wsprotocol import LeanWebSocket

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


async def prepare_endpoints(settings: Settings, cluster: PgCluster | None) -> Endpoints:
    """Start the embedded PostgreSQL (if any) and say where the control plane and default project live."""
    if cluster is None:
        assert settings.database_url is not None
        return Endpoints(control_dsn=settings.control_database_url or settings.database_url,
                         default_db_url=settings.database_url)
    await asyncio.to_thread(cluster.start)
    admin = cluster.dsn("postgres")
    try:
        await ensure_database(admin, CONTROL_DB)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StartupError(f"the embedded PostgreSQL is not usable: {exc}") from exc
    return Endpoints(control_dsn=cluster.dsn(CONTROL_DB), default_db_url=admin)


def _state(settings: Settings, runtime: Runtime, endpoints: Endpoints, embedded: bool) -> statefile.ServerState:
    refs = runtime.projects.active_refs
    project = runtime.projects.resolve(refs[0]).record if refs else None
    return statefile.ServerState(
        pid=os.getpid(), api_url=settings.public_url, db_url=endpoints.default_db_url or "", embedded_db=embedded,
        project_ref=project.ref if project else "", anon_key=project.anon_key if project else "",
        service_role_key=project.service_role_key if project else "",
        jwt_secret=project.jwt_secret if project else "", started_at=datetime.now(UTC).isoformat(),
    )


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(max_head_bytes=settings.max_header_bytes, max_line_bytes=settings.max_header_line_bytes,
                      max_url_bytes=settings.max_url_bytes, max_headers=settings.max_headers,
                      header_timeout=settings.header_timeout, body_idle_timeout=settings.body_idle_timeout,
                      body_min_rate=settings.body_min_rate)


async def _serve(settings: Settings, sock: socket.socket, endpoints: Endpoints, *, publish_state: bool,
                 embedded: bool) -> None:
    runtime = Runtime(settings, SecretBox(master_key(settings)), endpoints)
    try:
        await runtime.start()
        if publish_state:
            state = _state(settings, runtime, endpoints, embedded)
            state.write(settings.data_dir)
            print_banner(state, sys.stderr)
        config = uvicorn.Config(
            # interface: the gateway's __call__ is a plain function returning a coroutine (see gateway.py),
            # which uvicorn's auto-detection would take for ASGI 2.
            build_app(runtime), lifespan="on", http=protocol_class(http_limits(settings)), ws=LeanWebSocket,
            interface="asgi3",
            log_level="warning", access_log=False, timeout_graceful_shutdown=int(settings.shutdown_timeout) or None,
            server_header=False, date_header=True, proxy_headers=False, ws_per_message_deflate=False,
        )
        server = uvicorn.Server(config)
        await server.serve(sockets=[sock])
    finally:
        if publish_state:
            statefile.remove(settings.data_dir)
        await runtime.close()


async def _prepare_only(settings: Settings, cluster: PgCluster | None) -> tuple[Endpoints, statefile.ServerState]:
    """For a multi-worker start: migrate, create the default project, read the banner facts, then let go."""
    endpoints = await prepare_endpoints(settings, cluster)
    runtime = Runtime(settings, SecretBox(master_key(settings)), endpoints)
    try:
        await runtime.start()
        return endpoints, _state(settings, runtime, endpoints, cluster is not None)
    finally:
        await runtime.close()


def _note_signal(signum: int, frame: object) -> None:
    """Installed before serving: uvicorn re-raises the stop signal after draining, and the default handlers
    would kill the process before the pools close and the embedded PostgreSQL stops."""


WORKER_ENV_CONTROL = "MADBASE_WORKER_CONTROL_DSN"
WORKER_ENV_DEFAULT_DB = "MADBASE_WORKER_DEFAULT_DB_URL"


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
            if settings.workers <= 1:
                async def single() -> None:
                    endpoints = await prepare_endpoints(settings, cluster)
                    await _serve(settings, sock, endpoints, publish_state=True, embedded=cluster is not None)

                _run_loop(single())
            else:
                _supervise(settings, sock, cluster)
        finally:
            sock.close()
            if cluster is not None:
                cluster.stop()


def _supervise(settings: Settings, sock: socket.socket, cluster: PgCluster | None) -> None:
    """Run `settings.workers` worker processes on the shared listening socket; restart any that crash."""
    result: list[tuple[Endpoints, statefile.ServerState]] = []

    async def prepare() -> None:
        result.append(await _prepare_only(settings, cluster))

    _run_loop(prepare())
    endpoints, state = result[0]
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    env = {**os.environ, WORKER_ENV_CONTROL: endpoints.control_dsn,
           WORKER_ENV_DEFAULT_DB: endpoints.default_db_url or ""}
    if settings.master_key is None and cluster is not None:
        env["MADBASE_MASTER_KEY"] = master_key(settings)

    def spawn() -> subprocess.Popen[bytes]:
        fd = sock.fileno()
        return subprocess.Popen([sys.executable, "-m", "madbase", "worker", "--fd", str(fd)], pass_fds=(fd,), env=env)

    children = [spawn() for _ in range(settings.workers)]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state.write(settings.data_dir)
    print_banner(state, sys.stderr)
    try:
        while True:
            alive = [c for c in children if c.poll() is None]
            if stopping and not alive:
                break
            if not stopping:
                for i, child in enumerate(children):
                    if child.poll() is not None:
                        children[i] = spawn()
            time.sleep(0.2)
    finally:
        statefile.remove(settings.data_dir)
        for child in children:
            if child.poll() is None:
                child.kill()


def run_worker(settings: Settings, fd: int) -> None:
    """One worker of a multi-process start: serve on the inherited socket until told to stop."""
    mblogging.configure(settings.log_level)
    signal.signal(signal.SIGTERM, _note_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides; Ctrl-C reaches it too
    endpoints = Endpoints(control_dsn=os.environ[WORKER_ENV_CONTROL],
                          default_db_url=os.environ.get(WORKER_ENV_DEFAULT_DB) or None)
    sock = socket.socket(fileno=fd)
    try:
        _run_loop(_serve(settings, sock, endpoints, publish_state=False, embedded=False))
    finally:
        sock.detach()


def _run_loop(main: object) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]
