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
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TextIO, TypeVar

import asyncpg
import uvicorn
from pydantic import SecretStr

from madbase import projectconfig, statefile
from madbase.admin.bootstrap import first_admin, write_local_token
from madbase.app import build_app
from madbase.config import Settings
from madbase.core import logging as mblogging
from madbase.core.pgcluster import PgCluster
from madbase.core.runtime import Endpoints, Runtime, StartupError
from madbase.core.secretbox import SecretBox, load_or_create_key_file
from madbase.core.workermetrics import WorkerMetrics
from madbase.httpprotocol import HttpLimits, protocol_class
from madbase.wsprotocol import LeanWebSocket

CONTROL_DB = "madbase"
T = TypeVar("T")


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
    # The holder's pid, for `madbase stop` before state.json exists (a start still preparing PostgreSQL).
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
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
    rows = statefile.rows(state)
    width = max(len(k) for k, _ in rows)
    out.write("MadBase is running.\n\n")
    for key, value in rows:
        out.write(f"{key.rjust(width)}: {value}\n")
    out.write("\n")
    out.flush()


def print_first_admin(created: tuple[str, str] | None, out: TextIO) -> None:
    """The first admin's login, printed once (the password is stored only as an Argon2id hash)."""
    if created is None:
        return
    email, password = created
    out.write(f"Admin created: {email}\nAdmin password: {password}\n"
              "(shown once: sign in at /admin/v1/login and change it, or add admins with `madbase admin create`)\n\n")
    out.flush()


async def _admin_at_start(pool: asyncpg.Pool, settings: Settings) -> tuple[str, str] | None:
    """The control plane's start: the local token for the CLI, the first admin when there is none."""
    await write_local_token(pool, settings.data_dir)
    return await first_admin(pool, settings.admin_email)


def print_warnings(warnings: list[str], out: TextIO) -> None:
    for warning in warnings:
        out.write(f"Warning: {warning}\n")
    out.flush()


async def prepare_endpoints(settings: Settings, cluster: PgCluster | None) -> Endpoints:
    """Start the embedded PostgreSQL (if any) and say where the control plane and default project live."""
    if cluster is None:
        assert settings.database_url is not None
        return Endpoints(control_dsn=settings.control_database_url or settings.database_url,
                         default_db_url=settings.database_url)
    starting = asyncio.ensure_future(asyncio.to_thread(cluster.start))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        # The thread goes on: let pg_ctl finish, so that the caller's cluster.stop() finds the server.
        with contextlib.suppress(Exception):
            await starting
        raise
    admin = cluster.dsn("postgres")
    try:
        await ensure_database(admin, CONTROL_DB)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StartupError(f"the embedded PostgreSQL is not usable: {exc}") from exc
    moved_from = None
    if cluster.previous_port is not None and cluster.previous_port != cluster.port:
        moved_from = cluster.dsn("", port=cluster.previous_port)
    return Endpoints(control_dsn=cluster.dsn(CONTROL_DB), default_db_url=admin, moved_from=moved_from)


def _state(settings: Settings, runtime: Runtime, endpoints: Endpoints, embedded: bool) -> statefile.ServerState:
    refs = runtime.projects.active_refs
    project = runtime.projects.resolve(refs[0]).record if refs else None
    return statefile.ServerState(
        pid=os.getpid(), api_url=settings.public_url, db_url=endpoints.default_db_url or "", embedded_db=embedded,
        project_ref=project.ref if project else "", anon_key=project.anon_key if project else "",
        service_role_key=project.service_role_key if project else "",
        jwt_secret=project.jwt_secret if project else "", started_at=datetime.now(UTC).isoformat(),
    )


def start_config() -> projectconfig.StartConfig:
    """The default project's settings from the environment and supabase/config.toml (one-line errors)."""
    try:
        return projectconfig.load()
    except projectconfig.ProjectConfigError as exc:
        raise StartupError(str(exc)) from None


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(max_head_bytes=settings.max_header_bytes, max_line_bytes=settings.max_header_line_bytes,
                      max_url_bytes=settings.max_url_bytes, max_headers=settings.max_headers,
                      header_timeout=settings.header_timeout, body_idle_timeout=settings.body_idle_timeout,
                      body_min_rate=settings.body_min_rate)


async def _serve(settings: Settings, sock: socket.socket, endpoints: Endpoints, *, publish_state: bool,
                 embedded: bool, worker: int | None = None) -> None:
    # Workers of a multi-process start find the settings applied by the supervisor's preparation.
    runtime = Runtime(settings, SecretBox(master_key(settings)), endpoints,
                      start_config() if publish_state else None)
    siblings: WorkerMetrics | None = None
    try:
        await _interruptible(runtime.start())
        if worker is not None and settings.workers > 1 and WorkerMetrics.supported():
            # /metrics answered by any worker shows every worker's series (core/workermetrics.py)
            siblings = WorkerMetrics(settings.data_dir, worker, settings.workers, runtime.metrics.render)
            await siblings.start()
            runtime.metrics.gather = siblings.gather
        if publish_state:
            assert runtime.control_pool is not None
            created = await _admin_at_start(runtime.control_pool, settings)
            state = _state(settings, runtime, endpoints, embedded)
            state.write(settings.data_dir)
            print_banner(state, sys.stderr)
            print_first_admin(created, sys.stderr)
            print_warnings(runtime.db_warnings, sys.stderr)
        config = uvicorn.Config(
            # interface: the gateway's __call__ is a plain function returning a coroutine (see gateway.py),
            # which uvicorn's auto-detection would take for ASGI 2.
            build_app(runtime), lifespan="on", http=protocol_class(http_limits(settings)), ws=LeanWebSocket,
            interface="asgi3",
            log_level="warning", access_log=False, timeout_graceful_shutdown=int(settings.shutdown_timeout) or None,
            server_header=False, date_header=True, proxy_headers=False, ws_per_message_deflate=False,
        )
        server = DrainingServer(config, runtime, settings.drain_seconds)
        await server.serve(sockets=[sock])
    finally:
        if publish_state:
            statefile.remove(settings.data_dir)
        if siblings is not None:
            await siblings.close()
        await runtime.close()


class DrainingServer(uvicorn.Server):
    """uvicorn's server with readiness off first: the first SIGTERM/SIGINT turns `/ready` to 503 and keeps
    serving for `drain_seconds`, so a balancer stops sending new requests before the listener closes; then
    uvicorn's own graceful shutdown (stop accepting, finish in-flight requests) runs. A second signal stops
    at once."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime, drain_seconds: float) -> None:
        super().__init__(config)
        self._runtime = runtime
        self._drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._runtime.accepting = False
        if self._drain_seconds > 0 and self._drain_until is None and not self.should_exit:
            self._captured_signals.append(sig)  # re-raised after shutdown, as uvicorn does
            self._drain_until = time.monotonic() + self._drain_seconds
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and not self.should_exit and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


async def _prepare_only(settings: Settings, cluster: PgCluster | None
                        ) -> tuple[Endpoints, statefile.ServerState, list[str], tuple[str, str] | None]:
    """For a multi-worker start: migrate, create the default project, read the banner facts, then let go."""
    endpoints = await prepare_endpoints(settings, cluster)
    runtime = Runtime(settings, SecretBox(master_key(settings)), endpoints, start_config())
    try:
        await runtime.start()
        assert runtime.control_pool is not None
        created = await _admin_at_start(runtime.control_pool, settings)
        return endpoints, _state(settings, runtime, endpoints, cluster is not None), runtime.db_warnings, created
    finally:
        await runtime.close()


class StartInterrupted(StartupError):
    """SIGTERM or SIGINT arrived before the server was serving: it stopped cleanly instead."""


async def _interruptible(step: Awaitable[T]) -> T:
    """Run a start step (PostgreSQL, migrations, bootstrap: possibly long, or hanging on a database that does
    not answer) so that SIGTERM / SIGINT cancel it and the process exits, stopping its PostgreSQL. Once
    serving, uvicorn owns the signals. Only signals the process still handles (_note_signal) are watched."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(step)
    interrupted: list[int] = []

    def on_signal(signum: int) -> None:
        interrupted.append(signum)
        task.cancel()

    watched = [s for s in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(s) is _note_signal]
    for signum in watched:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise StartInterrupted("stopped while starting (signal received)") from None
        raise
    finally:
        for signum in watched:
            loop.remove_signal_handler(signum)
            signal.signal(signum, _note_signal)


def _note_signal(signum: int, frame: object) -> None:
    """Installed before serving: uvicorn re-raises the stop signal after draining, and the default handlers
    would kill the process before the pools close and the embedded PostgreSQL stops."""


WORKER_ENV_CONTROL = "MADBASE_WORKER_CONTROL_DSN"
WORKER_ENV_DEFAULT_DB = "MADBASE_WORKER_DEFAULT_DB_URL"
WORKER_ENV_SETTINGS = "MADBASE_WORKER_SETTINGS"
WORKER_ENV_INDEX = "MADBASE_WORKER_INDEX"


def settings_for_worker(settings: Settings) -> str:
    """The supervisor's settings as JSON, every field by name: command-line flags (`--data-dir`, `--port`,
    ...) exist only in the supervisor's Settings, so workers must not rebuild theirs from the environment.
    Secrets travel in the clear through the child's environment, which only the same user can read."""
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value.resolve())
        values[name] = value
    return json.dumps(values)


def settings_of_worker(raw: str) -> Settings:
    return Settings(**json.loads(raw))


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
                    endpoints = await _interruptible(prepare_endpoints(settings, cluster))
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
    result: list[tuple[Endpoints, statefile.ServerState, list[str], tuple[str, str] | None]] = []

    async def prepare() -> None:
        result.append(await _interruptible(_prepare_only(settings, cluster)))

    _run_loop(prepare())
    endpoints, state, warnings, created = result[0]
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    # The master key as resolved here (setting or the data folder's key file), so workers need not read it.
    resolved = settings.model_copy(update={"master_key": SecretStr(master_key(settings))})
    env = {**os.environ, WORKER_ENV_CONTROL: endpoints.control_dsn,
           WORKER_ENV_DEFAULT_DB: endpoints.default_db_url or "", WORKER_ENV_SETTINGS: settings_for_worker(resolved)}

    def spawn(index: int) -> subprocess.Popen[bytes]:
        fd = sock.fileno()
        return subprocess.Popen([sys.executable, "-m", "madbase", "worker", "--fd", str(fd)], pass_fds=(fd,),
                                env={**env, WORKER_ENV_INDEX: str(index)})

    children = [spawn(i) for i in range(settings.workers)]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state.write(settings.data_dir)
    print_banner(state, sys.stderr)
    print_first_admin(created, sys.stderr)
    print_warnings(warnings, sys.stderr)
    try:
        while True:
            alive = [c for c in children if c.poll() is None]
            if stopping and not alive:
                break
            if not stopping:
                for i, child in enumerate(children):
                    if child.poll() is not None:
                        children[i] = spawn(i)
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
        index = os.environ.get(WORKER_ENV_INDEX, "")
        _run_loop(_serve(settings, sock, endpoints, publish_state=False, embedded=False,
                         worker=int(index) if index.isdigit() else None))
    finally:
        sock.detach()


def _run_loop(main: object) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]
