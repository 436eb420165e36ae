"""A MadBase server whose project stores bytes in S3 (moto in server mode): the same API end to end."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.storage.conftest import make_s3_bucket
from tests.support.servers import MadbaseProcess, create_database, external_db_env


@pytest.fixture(scope="module")
def s3_server(pg_cluster: PgCluster, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[MadbaseProcess, str]]:
    import asyncio

    db_url = asyncio.run(create_database(pg_cluster, "s3"))
    proc = MadbaseProcess(tmp_path_factory.mktemp("s3srv"), external_db_env(db_url)).start()
    s3_bucket = make_s3_bucket(moto_endpoint)
    config = {"storage": {"backend": "s3", "file_size_limit": "110MB",  # decimal: above the 96 MiB test body
                          "s3": {"bucket": s3_bucket, "endpoint": moto_endpoint, "region": "us-east-1",
                                 "access_key_id": "test", "secret_access_key": "test", "prefix": "madbase"}}}

    async def configure() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("update madbase_control.projects set config = config || $1::jsonb", json.dumps(config))
        finally:
            await conn.close()

    asyncio.run(configure())
    proc.stop()
    proc.start()
    try:
        yield proc, s3_bucket
    finally:
        proc.stop()


def s3_keys(endpoint: str, bucket: str) -> list[str]:
    r = httpx.get(f"{endpoint}/{bucket}", params={"list-type": "2", "prefix": "madbase/"}, timeout=10)
    return [part.split("</Key>")[0] for part in r.text.split("<Key>")[1:]]


async def test_s3_backend_end_to_end(s3_server: tuple[MadbaseProcess, str], moto_endpoint: str,
                                     tmp_path: Path) -> None:
    proc, s3_bucket = s3_server
    h = proc.headers(key=proc.service_role_key)
    data = os.urandom(11 * 1024 * 1024)
    async with httpx.AsyncClient(base_url=proc.url + "/storage/v1", timeout=60) as c:
        assert (await c.post("/bucket", json={"id": "media"}, headers=h)).status_code == 200
        r = await c.post("/object/media/big/file.bin", content=data,
                         headers={**h, "content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        keys = s3_keys(moto_endpoint, s3_bucket)
        assert len(keys) == 1 and keys[0].startswith("madbase/objects/")
        got = await c.get("/object/media/big/file.bin", headers=h)
        assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()
        assert got.headers["etag"] == '"' + hashlib.md5(data).hexdigest() + '"'
        r = await c.get("/object/media/big/file.bin", headers={**h, "range": "bytes=5000000-5000099"})
        assert r.status_code == 206 and r.content == data[5000000:5000100]
        r = await c.post("/object/copy", json={"bucketId": "media", "sourceKey": "big/file.bin",
                                               "destinationKey": "big/copy.bin"}, headers=h)
        assert r.status_code == 200
        r = await c.post("/object/move", json={"bucketId": "media", "sourceKey": "big/copy.bin",
                                               "destinationKey": "moved.bin"}, headers=h)
        assert r.status_code == 200
        assert (await c.get("/object/media/moved.bin", headers={**h, "range": "bytes=0-9"})).content == data[:10]
        assert len(s3_keys(moto_endpoint, s3_bucket)) == 2
        r = await c.post("/object/media/big/file.bin", content=b"small now",
                         headers={**h, "x-upsert": "true", "content-type": "text/plain"})
        assert r.status_code == 200
        assert len(s3_keys(moto_endpoint, s3_bucket)) == 2  # the replaced version's bytes were deleted
        # TUS into S3 (staged locally, moved into the bucket at completion)
        payload = os.urandom(300_000)
        md = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                      for k, v in {"bucketName": "media", "objectName": "tus.bin"}.items())
        r = await c.post("/upload/resumable", headers={**h, "Tus-Resumable": "1.0.0",
                                                       "Upload-Length": str(len(payload)), "Upload-Metadata": md})
        url = r.headers["location"]
        r = await c.patch(url, content=payload, headers={**h, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                                                         "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 204
        assert (await c.get("/object/media/tus.bin", headers=h)).content == payload
        r = await c.request("DELETE", "/object/media", json={"prefixes": ["big/file.bin", "moved.bin", "tus.bin"]},
                            headers=h)
        assert len(r.json()) == 3
        assert s3_keys(moto_endpoint, s3_bucket) == []


async def test_s3_streaming_memory_stays_flat(s3_server: tuple[MadbaseProcess, str]) -> None:
    import psutil

    from tests.storage.test_large import RssSampler

    proc, _ = s3_server
    assert proc.proc is not None
    h = proc.headers(key=proc.service_role_key)
    size = 96 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    sent = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(size // len(block)):
            chunk = i.to_bytes(8, "big") + block[8:]
            sent.update(chunk)
            yield chunk

    async with httpx.AsyncClient(base_url=proc.url + "/storage/v1", timeout=120) as c:
        await c.post("/bucket", json={"id": "stream"}, headers=h)
        await c.post("/object/stream/warm.bin", content=os.urandom(12 * 1024 * 1024), headers=h)
        await c.get("/object/stream/warm.bin", headers=h)
        baseline = psutil.Process(proc.proc.pid).memory_info().rss
        with RssSampler(proc.proc.pid) as up:
            r = await c.post("/object/stream/big.bin", content=body(),
                             headers={**h, "content-type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        got = hashlib.sha256()
        with RssSampler(proc.proc.pid) as down:
            async with c.stream("GET", "/object/stream/big.bin", headers=h) as resp:
                async for chunk in resp.aiter_raw():
                    got.update(chunk)
    assert got.hexdigest() == sent.hexdigest()
    growth = max(up.peak, down.peak) - baseline
    print(f"\nS3 96 MB: RSS +{(up.peak - baseline) / 2**20:.1f} MB up, +{(down.peak - baseline) / 2**20:.1f} MB down")
    assert growth < 30 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MB"
