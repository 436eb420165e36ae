"""Fixtures of the per-project operations suite: a server of its own (the suite creates users, buckets,
policies and runs SQL, which must not disturb the other suites), admins of each built-in role, and a small
client for /admin/v1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.admin.conftest import audit_count, control_sql
from tests.support.admins import admin_token
from tests.support.servers import MadbaseProcess, create_database, external_db_env

__all__ = ["Admin", "audit_count", "control_sql"]


@pytest.fixture(scope="package")
def ops_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "ops"))
    proc = MadbaseProcess(tmp_path_factory.mktemp("ops-server"), external_db_env(db_url)).start()
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Admin:
    """An /admin/v1 caller with one token."""

    server: MadbaseProcess
    token: str
    client: httpx.Client

    @property
    def ref(self) -> str:
        return self.server.project_ref

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """`path` relative to /admin/v1; `{ref}` is the server's project."""
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        url = self.server.url + "/admin/v1" + path.replace("{ref}", self.ref)
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.call("DELETE", path, **kwargs)

    def sql(self, query: str, *, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
        return self.post("/projects/{ref}/database/query", json={"query": query, **body}, headers=headers or {})


@pytest.fixture(scope="package")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c


@pytest.fixture(scope="package")
def platform(ops_server: MadbaseProcess, http: httpx.Client) -> Admin:
    """The local platform admin (every right, platform-wide)."""
    return Admin(ops_server, ops_server.admin_token, http)


def _role(server: MadbaseProcess, http: httpx.Client, role: str) -> Admin:
    return Admin(server, admin_token(server.db_url, role, server.project_ref), http)


@pytest.fixture(scope="package")
def owner(ops_server: MadbaseProcess, http: httpx.Client) -> Admin:
    """An owner of the project (not platform-wide)."""
    return _role(ops_server, http, "owner")


@pytest.fixture(scope="package")
def developer(ops_server: MadbaseProcess, http: httpx.Client) -> Admin:
    return _role(ops_server, http, "developer")


@pytest.fixture(scope="package")
def reader(ops_server: MadbaseProcess, http: httpx.Client) -> Admin:
    return _role(ops_server, http, "read_only")
