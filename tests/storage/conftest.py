"""Storage test helpers: an HTTP client on the session server, user JWTs minted with the project's secret,
unique bucket names, and the own-folder RLS policies used by the RLS tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from madbase.core.jwt import sign_hs256
from tests.support.servers import MadbaseProcess


def user_token(server: MadbaseProcess, sub: str | None = None, *, role: str = "authenticated",
               expires_in: int = 3600) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub or str(uuid.uuid4()), "role": role, "aud": "authenticated",
                              "iat": now, "exp": now + expires_in}
    return sign_hs256(claims, server.jwt_secret)


def storage_url(server: MadbaseProcess) -> str:
    return server.url + "/storage/v1"


@pytest.fixture
async def client(server: MadbaseProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=storage_url(server), timeout=60) as c:
        yield c


@pytest.fixture
def service_headers(server: MadbaseProcess) -> dict[str, str]:
    return server.headers(key=server.service_role_key)


@pytest.fixture
def bucket_name() -> str:
    return "b-" + uuid.uuid4().hex[:10]


@pytest.fixture
async def bucket(client: httpx.AsyncClient, service_headers: dict[str, str], bucket_name: str) -> str:
    r = await client.post("/bucket", json={"id": bucket_name, "name": bucket_name, "public": False},
                          headers=service_headers)
    assert r.status_code == 200, r.text
    return bucket_name
