"""Session fixtures: one throwaway PostgreSQL cluster (started by the same code as the embedded default,
`wal_level=logical`), fresh databases per need, and real `madbase start` processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port


def pytest_configure(config: pytest.Config) -> None:
    # pytest's shared temp root prunes "old" numbered folders at every session start, including folders
    # another concurrently running session (another checkout, CI) still uses: give each session its own.
    if not config.option.basetemp:
        config.option.basetemp = os.path.join(tempfile.gettempdir(), f"madbase-pytest-{os.getpid()}")


def pytest_unconfigure(config: pytest.Config) -> None:
    basetemp = str(config.option.basetemp or "")
    if os.path.basename(basetemp) == f"madbase-pytest-{os.getpid()}":
        shutil.rmtree(basetemp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    root = Path(tempfile.mkdtemp(prefix="madbase-test-pg-"))
    cluster = PgCluster(root, free_port(), "postgres", fsync=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def fresh_db(pg_cluster: PgCluster) -> str:
    return await create_database(pg_cluster)


@pytest.fixture(scope="session")
def server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    """One running server for the session, on its own database of the test cluster."""
    db_url = asyncio.run(create_database(pg_cluster, "srv"))
    env = external_db_env(db_url, MADBASE_BASE_DOMAIN="madbase.localhost")
    proc = MadbaseProcess(tmp_path_factory.mktemp("server"), env).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def server_db(server: MadbaseProcess) -> AsyncIterator[object]:
    """A superuser connection to the session server's project database."""
    import asyncpg

    conn = await asyncpg.connect(server.db_url)
    try:
        yield conn
    finally:
        await conn.close()
