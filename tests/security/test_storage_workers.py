"""Forwarded headers and concurrent resumable uploads.

* `X-Forwarded-For/-Host/-Proto` are believed only from `MADBASE_TRUSTED_PROXIES`: the security server trusts
  nobody, a second server (two worker processes) trusts 127.0.0.1.
* Two clients writing the same TUS upload, or creating the same object path, at the same time on a
  two-worker server: the loser gets a TUS/Storage conflict (404/409/423), never a 500, and the stored
  object is exactly one client's bytes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.security.conftest import Project, make_bucket, no_500
from tests.support.servers import MadbaseProcess, create_database, external_db_env

TUS = {"tus-resumable": "1.0.0"}


def _meta(bucket: str, name: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                    {"bucketName": bucket, "objectName": name, "contentType": "application/octet-stream"}.items())


@pytest.fixture(scope="module")
def workers_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    import asyncio as aio

    db_url = aio.run(create_database(pg_cluster, "secw"))
    env = external_db_env(db_url, MADBASE_WORKERS="2", MADBASE_TRUSTED_PROXIES="127.0.0.1/32, 10.0.0.0/8")
    proc = MadbaseProcess(tmp_path_factory.mktemp("security-workers"), env).start()
    try:
        yield proc
    finally:
        proc.stop()


def _server_project(server: MadbaseProcess) -> Project:
    return Project(server, server.project_ref, server.db_url, server.anon_key, server.service_role_key,
                   server.jwt_secret)


def _tus_create(project: Project, client: httpx.Client, bucket: str, name: str, **headers: str) -> httpx.Response:
    return no_500(client.post(project.url + "/storage/v1/upload/resumable", headers=project.headers(
        "service_role", **TUS, **{"upload-length": "10", "upload-metadata": _meta(bucket, name)}, **headers)))


def test_forwarded_headers_of_an_untrusted_peer_are_ignored(project_a: Project, client: httpx.Client) -> None:
    bucket = make_bucket(project_a, client)
    r = _tus_create(project_a, client, bucket, "loc.bin", **{"x-forwarded-host": "evil.example",
                                                            "x-forwarded-proto": "https"})
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith(f"{project_a.url}/storage/v1/upload/resumable/"), r.headers["location"]
    who = client.get(project_a.url + "/gateway/v1/whoami",
                     headers=project_a.headers(**{"x-forwarded-for": "203.0.113.9"})).json()
    assert who["client_ip"] == "127.0.0.1"


def test_forwarded_headers_of_a_trusted_proxy_are_honoured(workers_server: MadbaseProcess,
                                                           client: httpx.Client) -> None:
    project = _server_project(workers_server)
    bucket = make_bucket(project, client)
    r = _tus_create(project, client, bucket, "loc.bin", **{"x-forwarded-host": "api.example.com",
                                                          "x-forwarded-proto": "https"})
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith("https://api.example.com/storage/v1/upload/resumable/")
    # even a trusted proxy's host must be a host: anything else falls back
    r = _tus_create(project, client, bucket, "loc2.bin", **{"x-forwarded-host": "evil.example/x?y=",
                                                           "x-forwarded-proto": "javascript"})
    assert r.headers["location"].startswith("http://localhost/storage/v1/upload/resumable/"), r.headers["location"]

    def ip(forwarded: str | None) -> str:
        extra = {"x-forwarded-for": forwarded} if forwarded is not None else {}
        return str(client.get(project.url + "/gateway/v1/whoami", headers=project.headers(**extra)).json()["client_ip"])

    assert ip(None) == "127.0.0.1"
    assert ip("203.0.113.9") == "203.0.113.9"
    # the right-most hop that is not a trusted proxy is the client; what it wrote further left is not believed
    assert ip("198.51.100.7, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert ip("not-an-ip") == "127.0.0.1"


@pytest.fixture
async def aclient() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60) as c:
        yield c


async def _slow(data: bytes, pieces: int = 8, pause: float = 0.05) -> AsyncIterator[bytes]:
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        yield data[i:i + step]
        await asyncio.sleep(pause)


async def test_concurrent_patches_of_one_upload_across_workers(workers_server: MadbaseProcess,
                                                               aclient: httpx.AsyncClient) -> None:
    project = _server_project(workers_server)
    with httpx.Client(timeout=30) as c:
        bucket = make_bucket(project, c)
    base = project.url + "/storage/v1"
    for attempt in range(3):
        size = 512 * 1024
        data = hashlib.sha256(str(attempt).encode()).digest() * (size // 32)
        name = f"race-{attempt}.bin"
        r = await aclient.post(base + "/upload/resumable", headers=project.headers(
            "service_role", **TUS, **{"upload-length": str(size), "upload-metadata": _meta(bucket, name)}))
        assert r.status_code == 201, r.text
        url = r.headers["location"]
        patch = project.headers("service_role", **TUS, **{"upload-offset": "0",
                                                         "content-type": "application/offset+octet-stream",
                                                         "content-length": str(size)})
        results = await asyncio.gather(*[aclient.patch(url, content=_slow(data), headers=patch) for _ in range(6)])
        statuses = sorted(no_500(x).status_code for x in results)
        assert statuses.count(204) == 1, statuses
        assert set(statuses) <= {204, 404, 409, 423}, statuses
        got = await aclient.get(f"{base}/object/{bucket}/{name}", headers=project.headers("service_role"))
        assert got.status_code == 200 and got.content == data, (len(got.content), size)


async def test_concurrent_creates_of_one_object_path_across_workers(workers_server: MadbaseProcess,
                                                                    aclient: httpx.AsyncClient) -> None:
    project = _server_project(workers_server)
    with httpx.Client(timeout=30) as c:
        bucket = make_bucket(project, c)
    base = project.url + "/storage/v1"
    for upsert in ("false", "true"):
        name = f"same-{upsert}-{uuid.uuid4().hex[:6]}.bin"
        bodies = [bytes([65 + i]) * (300 * 1024) for i in range(6)]

        async def create(body: bytes, name: str, upsert: str) -> httpx.Response:
            return await aclient.post(base + "/upload/resumable", content=_slow(body), headers=project.headers(
                "service_role", **TUS, **{"upload-length": str(len(body)), "upload-metadata": _meta(bucket, name),
                                          "content-type": "application/offset+octet-stream", "x-upsert": upsert,
                                          "content-length": str(len(body))}))

        results = await asyncio.gather(*[create(b, name, upsert) for b in bodies])
        statuses = [no_500(x).status_code for x in results]
        assert set(statuses) <= {201, 409, 423}, statuses
        complete = [x for x in results if x.status_code == 201 and x.headers.get("upload-offset") == str(300 * 1024)]
        if upsert == "false":
            assert len(complete) == 1 and statuses.count(201) >= 1, statuses
        got = await aclient.get(f"{base}/object/{bucket}/{name}", headers=project.headers("service_role"))
        assert got.status_code == 200 and got.content in bodies
