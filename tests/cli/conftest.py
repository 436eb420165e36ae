"""CLI fixtures: a server of its own (the CLI finds it through its data folder, as `madbase status` does),
and `cli(...)` running the real `madbase` command in a subprocess with a private config folder."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env

NO_ROUTE = "no route matched with those values"

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="package")
def cli_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "cli"))
    proc = MadbaseProcess(tmp_path_factory.mktemp("cli-server"), external_db_env(db_url)).start()
    try:
        yield proc
    finally:
        proc.stop()


def run_cli(args: list[str], *, cwd: Path, env: dict[str, str], stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MADBASE_") and k not in ("DATABASE_URL",)}
    return subprocess.run([sys.executable, "-m", "madbase", *args], capture_output=True, text=True, cwd=cwd,
                          env={**base, **env}, input=stdin, timeout=timeout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def cli(cli_server: MadbaseProcess, workdir: Path, config_dir: Path) -> Cli:
    """`madbase <args>` against the local server (found through MADBASE_DATA_DIR, no login)."""
    def call(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), cwd=workdir, stdin=stdin, timeout=timeout,
                       env={"MADBASE_DATA_DIR": str(cli_server.data_dir), "MADBASE_CONFIG_DIR": str(config_dir),
                            **(env or {})})
    return call


def skip_without_route(result: subprocess.CompletedProcess[str]) -> None:
    """Commands whose routes are built on other branches run for real once merged; until then the server
    answers 404 "no route matched" and the test is skipped (never mocked)."""
    if result.returncode != 0 and NO_ROUTE in result.stderr:
        pytest.skip("route not on this branch yet: " + result.stderr.strip())
