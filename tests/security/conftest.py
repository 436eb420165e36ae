"""Adversarial suite fixtures: a server of its own with **two projects** (own databases, keys and login roles),
so every probe can also check that nothing crosses from one project to the other.

The server is separate from the session server: some probes change a project's limits or hold connections, and
must not disturb the service suites."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from madbase.core.control import ControlStore
from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster
from madbase.core.secretbox import SecretBox
from tests.support.servers import MASTER_KEY, MadbaseProcess, create_database, external_db_env


@dataclass
class Project:
    """One project of the security server, with request helpers that always name it by `x-project-ref`."""

    server: MadbaseProcess
    ref: str
    db_url: str
    anon_key: str
    service_role_key: str
    jwt_secret: str

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, role: str = "anon", token: str | None = None, **extra: str) -> dict[str, str]:
        key = self.service_role_key if role == "service_role" else self.anon_key
        return {"apikey": key, "Authorization": f"Bearer {token or key}", "x-project-ref": self.ref, **extra}

    def user_token(self, sub: str, role: str = "authenticated", ttl: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        return sign_hs256({"sub": sub, "role": role, "aud": "authenticated", "iat": now, "exp": now + ttl,
                           **claims}, self.jwt_secret)

    def sql(self, statement: str, *args: Any, fetch: bool = False) -> Any:
        """Run SQL as superuser in this project's database."""
        return run_sql(self.db_url, statement, *args, fetch=fetch)

    def set_config(self, patch: dict[str, Any]) -> None:
        """Merge keys into this project's config (the server picks it up through NOTIFY)."""
        import json

        run_sql(self.server.db_url, "update madbase_control.projects set config = config || $1::jsonb where ref = $2",
                json.dumps(patch), self.ref)


def run_sql(dsn: str, statement: str, *args: Any, fetch: bool = False) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await (conn.fetch(statement, *args) if fetch else conn.execute(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


async def _create_project(server: MadbaseProcess, db_url: str, name: str) -> Any:
    pool = await asyncpg.create_pool(server.db_url, min_size=1, max_size=1)
    try:
        return await ControlStore(pool, SecretBox(MASTER_KEY)).create(
            name=name, db_url=db_url, login_role=f"authenticator_{name.replace('-', '_')}")
    finally:
        await pool.close()


@pytest.fixture(scope="package")
def sec_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "sec"))
    env = external_db_env(db_url, MADBASE_BASE_DOMAIN="madbase.localhost")
    proc = MadbaseProcess(tmp_path_factory.mktemp("security-server"), env).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="package")
def projects(sec_server: MadbaseProcess, pg_cluster: PgCluster) -> tuple[Project, Project]:
    """The security server's default project and a second one on its own database."""
    first = Project(sec_server, sec_server.project_ref, sec_server.db_url, sec_server.anon_key,
                    sec_server.service_role_key, sec_server.jwt_secret)
    db_url = asyncio.run(create_database(pg_cluster, "sec2"))
    record = asyncio.run(_create_project(sec_server, db_url, "sec-second"))
    second = Project(sec_server, record.ref, db_url, record.anon_key, record.service_role_key, record.jwt_secret)
    deadline = time.time() + 15
    with httpx.Client(timeout=10) as client:
        for project in (first, second):  # the server learns of the second project through NOTIFY
            while True:
                boot = client.get(project.url + "/rest/v1/", headers=project.headers())
                if boot.status_code == 200 or time.time() > deadline:
                    break
                time.sleep(0.1)
            assert boot.status_code == 200, boot.text
    return first, second


@pytest.fixture(scope="package")
def project_a(projects: tuple[Project, Project]) -> Project:
    return projects[0]


@pytest.fixture(scope="package")
def project_b(projects: tuple[Project, Project]) -> Project:
    return projects[1]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def no_500(response: httpx.Response) -> httpx.Response:
    """Every probe's baseline: no server error, no SQL text or traceback in the body."""
    assert response.status_code < 500 or response.status_code in (503, 504), (response.status_code, response.text)
    body = response.text
    for leak in ("Traceback", "asyncpg", "syntax error at or near", 'File "'):
        assert leak not in body, body
    return response


HERE = Path(__file__).parent


def storage_error(response: httpx.Response, code: str | None = None) -> dict[str, Any]:
    """A storage refusal: HTTP 4xx with Supabase Storage's error body (`statusCode`, `code`, `error`, `message`)."""
    no_500(response)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict) and {"statusCode", "error", "message"} <= body.keys(), body
    if code is not None:
        assert body.get("code") == code, body
    return body


def make_bucket(project: Project, client: httpx.Client, name: str | None = None, **options: Any) -> str:
    """A fresh storage bucket in `project` (created with the service role key)."""
    import uuid

    bucket = name or "sec-" + uuid.uuid4().hex[:10]
    r = client.post(project.url + "/storage/v1/bucket", json={"id": bucket, "name": bucket, **options},
                    headers=project.headers("service_role"))
    assert r.status_code == 200, r.text
    return bucket


def set_auth_config(project: Project, auth: dict[str, Any], wait: float = 15) -> str:
    """Replace `project`'s auth settings with `auth` plus a fresh site URL, and wait until the server uses them
    (seen through GET /verify, whose error redirect goes to the site URL). Returns that site URL; callers put
    the previous settings back with `set_auth_config(project, {})` (or their own)."""
    import uuid

    site = auth.get("site_url") or f"https://site-{uuid.uuid4().hex[:10]}.example.com"
    project.set_config({"auth": {**auth, "site_url": site}})
    deadline = time.time() + wait
    with httpx.Client(timeout=10) as client:
        while True:
            r = client.get(project.url + "/auth/v1/verify?type=signup&token=x", headers=project.headers())
            if r.headers.get("location", "").startswith(site) or time.time() > deadline:
                break
            time.sleep(0.05)
    assert r.headers.get("location", "").startswith(site), (r.status_code, r.headers)
    return str(site)
