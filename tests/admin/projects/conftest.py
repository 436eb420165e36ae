"""Project-management fixtures: a server of its own (short delete grace period, fast usage samples) on a
database of the session cluster, helpers for /admin/v1 as its local platform admin, and SQL on the cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env

GRACE = 3  # seconds a soft-deleted project waits before a hard delete
SAMPLE = 0.5  # seconds between usage samples


def project_env(db_url: str) -> dict[str, str]:
    return external_db_env(db_url, MADBASE_PROJECT_DELETE_GRACE=str(GRACE), MADBASE_USAGE_SAMPLE_SECONDS=str(SAMPLE),
                           MADBASE_BASE_DOMAIN="madbase.localhost")


@pytest.fixture(scope="package")
def pm_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "pm"))
    proc = MadbaseProcess(tmp_path_factory.mktemp("pm-server"), project_env(db_url)).start()
    try:
        yield proc
    finally:
        proc.stop()


class Admin:
    """/admin/v1 of one server as a given bearer (default: the local platform admin)."""

    def __init__(self, server: MadbaseProcess, token: str | None = None) -> None:
        self.server = server
        self.token = token

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token or self.server.admin_token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.server.url + "/admin/v1" + path, headers=headers, timeout=60, **kwargs)


@pytest.fixture
def admin(pm_server: MadbaseProcess) -> Admin:
    return Admin(pm_server)


def sql(dsn: str, statement: str, *args: Any, fetch: bool = False) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await (conn.fetch(statement, *args) if fetch else conn.execute(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def audit_count(server: MadbaseProcess) -> int:
    return int(sql(server.db_url, "select count(*) as n from madbase_control.audit_log", fetch=True)[0]["n"])


def project_headers(ref: str, key: str, token: str | None = None) -> dict[str, str]:
    return {"apikey": key, "Authorization": f"Bearer {token or key}", "x-project-ref": ref}


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> float:
    """Seconds until `predicate()` held (AssertionError after `timeout`)."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
