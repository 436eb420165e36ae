"""Storage test helpers: an HTTP client on the session server, user JWTs minted with the project's secret,
unique bucket names, and the own-folder RLS policies used by the RLS tests."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from madbase.core.jwt import sign_hs256
from tests.support.servers import MadbaseProcess, free_port


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


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3-protocol server (moto in server mode) in its own process, on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx.get(endpoint + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)


def make_s3_bucket(endpoint: str) -> str:
    name = "s3-" + uuid.uuid4().hex[:12]
    r = httpx.put(f"{endpoint}/{name}", timeout=10)
    assert r.status_code == 200, r.text
    return name
