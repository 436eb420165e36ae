"""Fixtures of the key tests: two server processes sharing one control database (a key changed through one
must work or stop working on the other), and helpers for /admin/v1 and for project requests."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env


class Keys:
    """The pair of servers and the calls the tests make."""

    def __init__(self, a: MadbaseProcess, b: MadbaseProcess) -> None:
        self.a = a
        self.b = b
        self.ref = a.project_ref
        self.http = httpx.Client(timeout=30)

    def admin(self, method: str, path: str, json: Any = None, *, token: str | None = None,
              params: dict[str, str] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.a.admin_token}"}
        return self.http.request(method, f"{self.a.url}/admin/v1/projects/{self.ref}{path}", json=json,
                                 headers=headers, params=params)

    def whoami(self, apikey: str | None, bearer: str | None = None, *, server: MadbaseProcess | None = None
               ) -> httpx.Response:
        headers = {}
        if apikey is not None:
            headers["apikey"] = apikey
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.http.get(f"{(server or self.a).url}/gateway/v1/whoami", headers=headers)

    def role(self, apikey: str | None, bearer: str | None = None, *, server: MadbaseProcess | None = None
             ) -> str | int:
        """The role the gateway gives these credentials, or the HTTP status when it refuses them."""
        r = self.whoami(apikey, bearer, server=server)
        return str(r.json()["role"]) if r.status_code == 200 else r.status_code

    def current_keys(self) -> dict[str, str]:
        """The legacy keys in clear, as the platform admin sees them with reveal=true."""
        listed = self.admin("GET", "/api-keys", params={"reveal": "true"}).json()
        return {k["name"]: k["api_key"] for k in listed if k["type"] == "legacy" and "expires_at" not in k}

    def sign_up(self, email: str, password: str = "correct-horse-9", *, apikey: str | None = None) -> dict[str, Any]:
        key = apikey or self.current_keys()["anon"]
        r = self.http.post(f"{self.a.url}/auth/v1/signup", json={"email": email, "password": password},
                           headers={"apikey": key, "Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture(scope="package")
def keys_env(pg_cluster: PgCluster) -> Iterator[Keys]:
    root = Path(tempfile.mkdtemp(prefix="madbase-keys-"))
    db_url = asyncio.run(create_database(pg_cluster, "keys"))
    env = external_db_env(db_url, MADBASE_ACCESS_LOG="false")
    a = MadbaseProcess(root / "a", env).start()
    b = MadbaseProcess(root / "b", env)
    try:
        b.start()
        env_ = Keys(a, b)
        yield env_
        env_.http.close()
    finally:
        b.stop()
        a.stop()
