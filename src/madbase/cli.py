"""The `madbase` command: `start` the server, `stop` it, `status` of a running one, `admin create`, `version`;
and the control-plane commands of clicmds/ (login, projects, keys, config, users, functions, secrets, db, gen)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from madbase import __version__, admincli, statefile
from madbase.clicmds import registry


def _plain_help_option(option: Any) -> Any:
    """Typer labels the --help flag `<bool>` in help screens; a flag takes no value, so show none."""
    if option is not None:
        option.metavar = ""
    return option


class _Group(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))


class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_option(super().get_help_option(ctx))


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, cls=_Group,
                  help="MadBase: the Supabase API in one process.")


# `madbase admin …` (src/madbase/admincli.py)
admin_app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_Group,
                        help="Manage the control plane's admins (through the running local server).")
admin_app.command("create", cls=_Command)(admincli.create)
app.add_typer(admin_app, name="admin")

# login, projects, keys, config, users, functions, secrets, db push, gen types (src/madbase/clicmds/)
registry.register(app, _Group, _Command)


class Output(StrEnum):
    pretty = "pretty"
    json = "json"
    env = "env"


def _fail(message: str, code: int = 1) -> None:
    sys.stderr.write(f"madbase: {message}\n")
    raise typer.Exit(code)


def _lean_server_process() -> None:
    """Called before a server process imports anything else. Its logs are JSON (core/logging.py), but
    structlog imports rich and pygments for console rendering whenever rich is installed (typer brings it
    in): ≈ 5 MB of RSS per server process for nothing. A None entry in sys.modules makes that import fail,
    and structlog falls back to plain rendering. (Pretty exceptions are off, so typer does not need rich.)"""
    if "structlog" not in sys.modules:
        sys.modules.setdefault("rich", None)  # type: ignore[arg-type]


def _settings(**overrides: object):  # type: ignore[no-untyped-def]
    from madbase.config import ConfigError, load_settings

    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        _fail(str(exc), 2)


@app.command(cls=_Command)
def start(
    port: Annotated[int | None, typer.Option(metavar="PORT", help="API port (MADBASE_PORT, default 54321)")] = None,
    data_dir: Annotated[Path | None, typer.Option(metavar="DIR",
                                                  help="Data folder (MADBASE_DATA_DIR, default ./.madbase)")] = None,
    host: Annotated[str | None, typer.Option(metavar="ADDRESS",
                                             help="Listen address (MADBASE_HOST, default 127.0.0.1)")] = None,
    db_port: Annotated[int | None, typer.Option(
        metavar="PORT", help="Embedded PostgreSQL port (MADBASE_DB_PORT, default 54322)")] = None,
    workers: Annotated[int | None, typer.Option(metavar="N", help="Server processes (MADBASE_WORKERS, default 1)")]
    = None,
) -> None:
    """Start the server (with an embedded PostgreSQL unless DATABASE_URL is set)."""
    _lean_server_process()
    from madbase.core.migrations import MigrationError
    from madbase.core.pgcluster import ClusterError
    from madbase.core.runtime import StartupError
    from madbase.core.secretbox import SecretBoxError
    from madbase.core.tenants import BootstrapError
    from madbase.server import StartInterrupted, run

    settings = _settings(port=port, data_dir=data_dir, host=host, db_port=db_port, workers=workers)
    try:
        run(settings)
    except StartInterrupted as exc:
        sys.stderr.write(f"madbase: {exc}\n")  # asked to stop: not a failure
    except (StartupError, ClusterError, BootstrapError, MigrationError, SecretBoxError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command(hidden=True, cls=_Command)
def worker(fd: Annotated[int, typer.Option(metavar="FD", help="Inherited listening socket")]) -> None:
    """A worker process of a multi-process `start` (started by it, not by hand)."""
    _lean_server_process()
    import os

    from madbase.core.runtime import StartupError
    from madbase.server import WORKER_ENV_SETTINGS, run_worker, settings_of_worker

    raw = os.environ.get(WORKER_ENV_SETTINGS)
    try:
        run_worker(settings_of_worker(raw) if raw else _settings(), fd)
    except StartupError as exc:
        _fail(str(exc))


@app.command(cls=_Command)
def status(
    output: Annotated[Output, typer.Option("--output", "-o", metavar="FORMAT",
                                           help="pretty, json or env (export lines for a shell)")] = Output.pretty,
    data_dir: Annotated[Path | None, typer.Option(metavar="DIR",
                                                  help="Data folder of the server (MADBASE_DATA_DIR)")] = None,
) -> None:
    """Show where a running server listens, with its URL and keys."""
    settings = _settings(data_dir=data_dir)
    state = _running(settings.data_dir)
    healthy = _healthy(state.api_url)
    values = {
        "api_url": state.api_url, "rest_url": state.api_url + "/rest/v1",
        "realtime_url": state.api_url.replace("http", "ws", 1) + "/realtime/v1",
        "db_url": state.db_url, "project_ref": state.project_ref, "jwt_secret": state.jwt_secret,
        "anon_key": state.anon_key, "service_role_key": state.service_role_key,
    }
    if output is Output.json:
        print(json.dumps({**values, "pid": state.pid, "healthy": healthy, "embedded_db": state.embedded_db},
                         indent=2))
    elif output is Output.env:
        for key, value in values.items():  # for `eval "$(madbase status -o env)"`: nothing in a value expands
            quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
            print(f'export {key.upper()}="{quoted}"')
    else:
        print(f"MadBase is {'running' if healthy else 'starting or unhealthy'} (pid {state.pid}, "
              f"{'embedded PostgreSQL' if state.embedded_db else 'external PostgreSQL'}).\n")
        rows = statefile.rows(state)
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key.rjust(width)}: {value}")


@app.command(cls=_Command)
def stop(
    data_dir: Annotated[Path | None, typer.Option(metavar="DIR",
                                                  help="Data folder of the server (MADBASE_DATA_DIR)")] = None,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="How long to wait for it to exit")] = 60,
) -> None:
    """Stop the server running with this data folder: in-flight requests finish, then it exits."""
    settings = _settings(data_dir=data_dir)
    state = statefile.ServerState.read(settings.data_dir)
    if state is not None and statefile.pid_alive(state.pid) and _is_madbase(state.pid):
        pid: int | None = state.pid
    else:  # still starting (no state.json yet): the data folder's lock holder
        pid = _lock_holder(settings.data_dir)
    if pid is None:
        _fail(f"no MadBase server is running with data folder {settings.data_dir}")
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"MadBase stopped (pid {pid}).")
        return
    except PermissionError:
        _fail(f"not allowed to stop the MadBase server (pid {pid}) of data folder {settings.data_dir}")
    deadline = time.monotonic() + timeout
    while statefile.pid_alive(pid):
        if time.monotonic() > deadline:
            _fail(f"the MadBase server (pid {pid}) did not stop within {timeout:g}s")
        time.sleep(0.1)
    print(f"MadBase stopped (pid {pid}).")


def _lock_holder(data_dir: Path) -> int | None:
    """The pid written into `server.lock` by the server holding it, or None when nobody holds it."""
    import fcntl

    try:
        with (data_dir / "server.lock").open("r") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = handle.read().strip()
                return int(text) if text.isdigit() and _is_madbase(int(text)) else None
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except OSError:
        return None


def _running(data_dir: Path) -> statefile.ServerState:
    """The state of the server running with `data_dir`, or exit 1 saying there is none."""
    state = statefile.ServerState.read(data_dir)
    if state is None or not statefile.pid_alive(state.pid) or not _is_madbase(state.pid):
        _fail(f"no MadBase server is running with data folder {data_dir}")
    assert state is not None
    return state


def _is_madbase(pid: int) -> bool:
    """False when the pid of a stale state file now belongs to another program (where /proc tells)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"madbase" in cmdline


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@app.command(cls=_Command)
def migrate(
    control_only: Annotated[bool, typer.Option("--control-only", help="Only the control plane's schema")] = False,
) -> None:
    """Migrate the control plane and every project's database to this version (docs/operations.md)."""
    import asyncio

    from madbase.migrate import MigrateError
    from madbase.migrate import migrate as run_migrate

    settings = _settings()
    if settings.master_key is None:
        _fail("MADBASE_MASTER_KEY is required (it decrypts the projects' database credentials)", 2)
    assert settings.master_key is not None
    try:
        report = asyncio.run(run_migrate(settings, settings.master_key.get_secret_value(),
                                         control_only=control_only))
    except MigrateError as exc:
        _fail(str(exc))
        return
    for line in report.lines():
        print(line)
    if report.failed:
        raise typer.Exit(1)


@app.command(cls=_Command)
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()
