"""Start real MadBase server processes (the `madbase start` command) against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from madbase.core.pgcluster import PgCluster

MASTER_KEY = "test-master-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def create_database(cluster: PgCluster, prefix: str = "t") -> str:
    """A fresh, empty database on the test cluster; returns its superuser DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    return cluster.dsn(name)


@dataclass
class MadbaseProcess:
    """One `madbase start` subprocess; read its URL and keys from its data folder's state file."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    state: dict[str, object] = field(default_factory=dict)
    #: extra `madbase start` arguments; with flags=True the port and data folder go as --port / --data-dir
    #: (not MADBASE_PORT / MADBASE_DATA_DIR), and cwd is where the process runs
    args: list[str] = field(default_factory=list)
    flags: bool = False
    cwd: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def anon_key(self) -> str:
        return str(self.state["anon_key"])

    @property
    def service_role_key(self) -> str:
        return str(self.state["service_role_key"])

    @property
    def jwt_secret(self) -> str:
        return str(self.state["jwt_secret"])

    @property
    def project_ref(self) -> str:
        return str(self.state["project_ref"])

    @property
    def db_url(self) -> str:
        return str(self.state["db_url"])

    def start(self, timeout: float = 60) -> MadbaseProcess:
        env = {**os.environ, **self.env, "MADBASE_PORT": str(self.port), "MADBASE_DATA_DIR": str(self.data_dir)}
        args = list(self.args)
        if self.flags:
            for name in ("MADBASE_PORT", "MADBASE_DATA_DIR", "PORT"):
                env.pop(name, None)
            args += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        env.setdefault("LOG_LEVEL", "WARNING")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "server.out"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "madbase", "start", *args], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.cwd)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"madbase exited with {self.proc.returncode}: {self.output()[-2000:]}")
            state_file = self.data_dir / "state.json"
            if state_file.exists():
                try:
                    if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                        self.state = json.loads(state_file.read_text())
                        return self
                except (httpx.HTTPError, ValueError):
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("madbase did not become healthy in time: " + self.output()[-2000:])

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    @property
    def admin_token(self) -> str:
        """The local platform admin's token this start wrote to the data folder (what the local CLI uses)."""
        return (self.data_dir / "admin.token").read_text().strip()

    def admin_headers(self, **extra: str) -> dict[str, str]:
        """Headers of an /admin/v1 request as the local platform admin."""
        return {"Authorization": f"Bearer {self.admin_token}", **extra}

    def headers(self, token: str | None = None, *, key: str | None = None) -> dict[str, str]:
        apikey = key or self.anon_key
        return {"apikey": apikey, "Authorization": f"Bearer {token or apikey}"}


def external_db_env(db_url: str, **extra: str) -> dict[str, str]:
    """Environment for a server using an existing database (no embedded PostgreSQL).

    Login roles are cluster-wide and each server's bootstrap sets its role's password, so every test server
    on the shared cluster gets a login role of its own."""
    return {"DATABASE_URL": db_url, "MADBASE_MASTER_KEY": MASTER_KEY,
            "MADBASE_DB_LOGIN_ROLE": f"auth_{uuid.uuid4().hex[:12]}", **extra}
