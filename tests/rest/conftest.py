"""REST fixtures: the session server with `fixture.sql` loaded, and small HTTP helpers."""

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

from madbase.core.jwt import sign_hs256
from tests.support.servers import MadbaseProcess

FIXTURE = Path(__file__).with_name("fixture.sql")


@dataclass
class Rest:
    server: MadbaseProcess
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url + "/rest/v1"

    def headers(self, role: str = "anon", **extra: str) -> dict[str, str]:
        key = self.server.service_role_key if role == "service_role" else self.server.anon_key
        return {**self.server.headers(key=key, token=key), **extra}

    def user_token(self, sub: str, role: str = "authenticated") -> str:
        now = int(time.time())
        return sign_hs256({"sub": sub, "role": role, "aud": "authenticated", "iat": now, "exp": now + 3600},
                          self.server.jwt_secret)

    def get(self, path: str, role: str = "anon", headers: dict[str, str] | None = None,
            **params: Any) -> httpx.Response:
        return self.client.get(self.url + path, headers={**self.headers(role), **(headers or {})},
                               params=params or None)

    def request(self, method: str, path: str, role: str = "service_role", headers: dict[str, str] | None = None,
                **kw: Any) -> httpx.Response:
        return self.client.request(method, self.url + path, headers={**self.headers(role), **(headers or {})}, **kw)

    def sql(self, statement: str, fetch: bool = False) -> Any:
        async def run() -> Any:
            conn = await asyncpg.connect(self.server.db_url)
            try:
                return await (conn.fetch(statement) if fetch else conn.execute(statement))
            finally:
                await conn.close()

        return asyncio.run(run())

    def wait_for(self, path: str, status: int = 200, timeout: float = 10) -> httpx.Response:
        deadline = time.time() + timeout
        while True:
            r = self.get(path, role="service_role")
            if r.status_code == status or time.time() > deadline:
                return r
            time.sleep(0.1)


def resync_login_password(server: MadbaseProcess) -> None:
    """Login roles are cluster-wide and every default project's is "authenticator": a server another test
    started on the same cluster re-set its password, and this server could no longer open connections.
    Put this project's password back (a test-isolation workaround; see the report)."""
    from madbase.core.control import ControlStore
    from madbase.core.secretbox import SecretBox
    from madbase.core.tenants import ensure_login_role
    from tests.support.servers import MASTER_KEY

    async def run() -> None:
        pool = await asyncpg.create_pool(server.db_url, min_size=1, max_size=1)
        try:
            record = await ControlStore(pool, SecretBox(MASTER_KEY)).get(server.project_ref)
            assert record is not None
            async with pool.acquire() as conn:
                await ensure_login_role(conn, record.login_role, record.login_password)  # type: ignore[arg-type]
        finally:
            await pool.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def rest(server: MadbaseProcess) -> Iterator[Rest]:
    resync_login_password(server)
    client = httpx.Client(timeout=30)
    r = Rest(server, client)
    boot = client.get(r.url + "/", headers=r.headers())  # bootstraps the tenant (migrations, roles)
    assert boot.status_code == 200, boot.text
    r.sql(FIXTURE.read_text())
    r.sql("notify pgrst, 'reload schema'")
    assert r.wait_for("/todos").status_code == 200
    try:
        yield r
    finally:
        client.close()
