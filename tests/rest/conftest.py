"""REST fixtures: a project of its own on the session server (own database and login role, `fixture.sql`
loaded), for the duration of this test package, and small HTTP helpers.

The session server's database is shared with every other service's tests (which create tables such as
`public.profiles`), so the REST suite runs against a second project selected with `x-project-ref`; it is
deleted again when the package finishes, so the server is back to one (implicit) project for the others.
"""

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
from tests.support.servers import MASTER_KEY, MadbaseProcess, create_database

FIXTURE = Path(__file__).with_name("fixture.sql")


@dataclass
class Rest:
    server: MadbaseProcess
    client: httpx.Client
    ref: str
    db_url: str
    anon_key: str
    service_role_key: str
    jwt_secret: str

    @property
    def url(self) -> str:
        return self.server.url + "/rest/v1"

    def headers(self, role: str = "anon", **extra: str) -> dict[str, str]:
        key = self.service_role_key if role == "service_role" else self.anon_key
        return {"apikey": key, "Authorization": f"Bearer {key}", "x-project-ref": self.ref, **extra}

    def user_token(self, sub: str, role: str = "authenticated") -> str:
        now = int(time.time())
        return sign_hs256({"sub": sub, "role": role, "aud": "authenticated", "iat": now, "exp": now + 3600},
                          self.jwt_secret)

    def get(self, path: str, role: str = "anon", headers: dict[str, str] | None = None,
            **params: Any) -> httpx.Response:
        return self.client.get(self.url + path, headers={**self.headers(role), **(headers or {})},
                               params=params or None)

    def request(self, method: str, path: str, role: str = "service_role", headers: dict[str, str] | None = None,
                **kw: Any) -> httpx.Response:
        return self.client.request(method, self.url + path, headers={**self.headers(role), **(headers or {})}, **kw)

    def sql(self, statement: str, fetch: bool = False) -> Any:
        """Run SQL as superuser in this project's database."""
        return _run_sql(self.db_url, statement, fetch)

    def set_config(self, patch: str) -> None:
        """Merge a JSON object into this project's config (the server picks it up through NOTIFY)."""
        _run_sql(self.server.db_url, "update madbase_control.projects set config = config || "
                 f"'{patch}'::jsonb where ref = '{self.ref}'", False)

    def unset_config(self, key: str) -> None:
        _run_sql(self.server.db_url, f"update madbase_control.projects set config = config - '{key}' "
                 f"where ref = '{self.ref}'", False)

    def wait_for(self, path: str, status: int = 200, timeout: float = 10) -> httpx.Response:
        deadline = time.time() + timeout
        while True:
            r = self.get(path, role="service_role")
            if r.status_code == status or time.time() > deadline:
                return r
            time.sleep(0.1)


def _run_sql(dsn: str, statement: str, fetch: bool) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await (conn.fetch(statement) if fetch else conn.execute(statement))
        finally:
            await conn.close()

    return asyncio.run(run())


async def _control(server: MadbaseProcess, action: str, **kw: Any) -> Any:
    pool = await asyncpg.create_pool(server.db_url, min_size=1, max_size=1)
    try:
        store = ControlStore(pool, SecretBox(MASTER_KEY))
        if action == "create":
            return await store.create(**kw)
        await pool.execute("delete from madbase_control.projects where ref = $1", kw["ref"])
        return None
    finally:
        await pool.close()


@pytest.fixture(scope="package")
def rest(server: MadbaseProcess, pg_cluster: PgCluster) -> Iterator[Rest]:
    db_url = asyncio.run(create_database(pg_cluster, "rest"))
    record = asyncio.run(_control(server, "create", name="rest-tests", db_url=db_url,
                                  login_role="authenticator_rest"))
    client = httpx.Client(timeout=30)
    r = Rest(server, client, record.ref, db_url, record.anon_key, record.service_role_key, record.jwt_secret)
    try:
        deadline = time.time() + 15
        while True:  # the server learns of the project through NOTIFY; the first request bootstraps it
            boot = client.get(r.url + "/", headers=r.headers())
            if boot.status_code == 200 or time.time() > deadline:
                break
            time.sleep(0.1)
        assert boot.status_code == 200, boot.text
        r.sql(FIXTURE.read_text())
        r.sql("notify pgrst, 'reload schema'")
        assert r.wait_for("/todos").status_code == 200
        yield r
    finally:
        asyncio.run(_control(server, "delete", ref=record.ref))
        deadline = time.time() + 15
        while time.time() < deadline:  # back to one project: requests without a ref resolve again
            if client.get(server.url + "/rest/v1/", headers=server.headers()).status_code == 200:
                break
            time.sleep(0.1)
        client.close()
