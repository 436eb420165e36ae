"""The `madbase` command: `start` the server, `status` of a running one, `version`."""

from __future__ import annotations

import json
import sys
import urllib.request
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from madbase import __version__, statefile

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="MadBase: the Supabase API in one process.")


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


@app.command()
def start(
    port: Annotated[int | None, typer.Option(help="API port (MADBASE_PORT, default 54321)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (MADBASE_DATA_DIR, default ./.madbase)")] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (MADBASE_HOST, default 127.0.0.1)")] = None,
    db_port: Annotated[int | None, typer.Option(help="Embedded PostgreSQL port (MADBASE_DB_PORT, default 54322)")]
    = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (MADBASE_WORKERS, default 1)")] = None,
) -> None:
    """Start the server (with an embedded PostgreSQL unless DATABASE_URL is set)."""
    _lean_server_process()
    from madbase.core.migrations import MigrationError
    from madbase.core.pgcluster import ClusterError
    from madbase.core.runtime import StartupError
    from madbase.core.secretbox import SecretBoxError
    from madbase.core.tenants import BootstrapError
    from madbase.server import run

    settings = _settings(port=port, data_dir=data_dir, host=host, db_port=db_port, workers=workers)
    try:
        run(settings)
    except (StartupError, ClusterError, BootstrapError, MigrationError, SecretBoxError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command(hidden=True)
def worker(fd: Annotated[int, typer.Option(help="Inherited listening socket")]) -> None:
    """A worker process of a multi-process `start` (started by it, not by hand)."""
    _lean_server_process()
    from madbase.core.runtime import StartupError
    from madbase.server import run_worker

    try:
        run_worker(_settings(), fd)
    except StartupError as exc:
        _fail(str(exc))


@app.command()
def status(
    output: Annotated[Output, typer.Option("--output", "-o", help="pretty, json or env")] = Output.pretty,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder of the server (MADBASE_DATA_DIR)")] = None,
) -> None:
    """Show where a running server listens, with its URL and keys."""
    settings = _settings(data_dir=data_dir)
    state = statefile.ServerState.read(settings.data_dir)
    if state is None or not statefile.pid_alive(state.pid):
        _fail(f"no MadBase server is running with data folder {settings.data_dir}")
        return
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
        for key, value in values.items():
            print(f'{key.upper()}="{value}"')
    else:
        print(f"MadBase is {'running' if healthy else 'starting or unhealthy'} (pid {state.pid}, "
              f"{'embedded PostgreSQL' if state.embedded_db else 'external PostgreSQL'}).\n")
        width = max(len(k) for k in values)
        for key, value in values.items():
            print(f"{key.replace('_', ' ').rjust(width)}: {value}")


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()
