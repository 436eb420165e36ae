"""Control-plane fixtures: a server of its own (tests here create admins, lock accounts and revoke tokens,
which must not disturb the other suites) with its default project, and helpers to reach /admin/v1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env


@pytest.fixture(scope="package")
def admin_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "adm"))
    proc = MadbaseProcess(tmp_path_factory.mktemp("admin-server"), external_db_env(db_url)).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def control_sql(server: MadbaseProcess, statement: str, *args: Any, fetch: bool = False) -> Any:
    """Run SQL in the server's control database (superuser)."""
    async def run() -> Any:
        conn = await asyncpg.connect(server.db_url)
        try:
            return await (conn.fetch(statement, *args) if fetch else conn.execute(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def audit_count(server: MadbaseProcess) -> int:
    return int(control_sql(server, "select count(*) as n from madbase_control.audit_log", fetch=True)[0]["n"])
