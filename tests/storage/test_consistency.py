"""Bytes and metadata never diverge: aborted uploads leave nothing visible and no leftovers, concurrent
same-path uploads end with one intact object, delete removes bytes, a crash's leftovers are swept."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env


def storage_root(server: MadbaseProcess) -> Path:
    return server.data_dir / "storage" / server.project_ref


def version_files(server: MadbaseProcess) -> set[str]:
    root = storage_root(server) / "objects"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def tmp_files(server: MadbaseProcess) -> list[Path]:
    """Partial writes in the backend's `.tmp/` (each writing process's `<owner>.lock` is not one)."""
    tmp = storage_root(server) / ".tmp"
    return [p for p in tmp.iterdir() if not p.name.endswith(".lock")] if tmp.exists() else []


def start_partial_upload(server: MadbaseProcess, bucket: str, name: str, declared: int, sent: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (f"POST /storage/v1/object/{bucket}/{name} HTTP/1.1\r\nHost: localhost\r\n"
            f"apikey: {server.service_role_key}\r\nAuthorization: Bearer {server.service_role_key}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n")
    sock.sendall(head.encode())
    chunk = b"z" * 65536
    left = sent
    while left > 0:
        sock.sendall(chunk[:left])
        left -= len(chunk)
    return sock


async def wait_for(predicate: Any, limit: float = 10.0) -> bool:
    deadline = time.time() + limit
    while time.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())


async def test_abort_mid_upload_leaves_nothing(client: httpx.AsyncClient, server: MadbaseProcess,
                                               service_headers: dict[str, str], bucket: str) -> None:
    before = version_files(server)
    sock = start_partial_upload(server, bucket, "aborted.bin", 20 * 1024 * 1024, 3 * 1024 * 1024)
    await wait_for(lambda: bool(tmp_files(server)), 5)
    sock.close()
    assert await wait_for(lambda: not tmp_files(server), 30), "temporary bytes were not removed"
    r = await client.get(f"/object/info/{bucket}/aborted.bin", headers=service_headers)
    assert r.json()["code"] == "NoSuchKey"
    assert version_files(server) == before


async def test_concurrent_same_path_uploads(client: httpx.AsyncClient, server: MadbaseProcess, server_db: Any,
                                            service_headers: dict[str, str], bucket: str) -> None:
    payloads = [os.urandom(512 * 1024) for _ in range(6)]

    async def put(data: bytes) -> int:
        r = await client.post(f"/object/{bucket}/same.bin", content=data,
                              headers={**service_headers, "x-upsert": "true",
                                       "content-type": "application/octet-stream"})
        return r.status_code

    statuses = await asyncio.gather(*(put(p) for p in payloads))
    assert statuses == [200] * len(payloads)
    r = await client.get(f"/object/{bucket}/same.bin", headers=service_headers)
    assert r.content in payloads
    assert r.headers["etag"] == '"' + hashlib.md5(r.content).hexdigest() + '"'
    versions = {row["version"] for row in await server_db.fetch("select version from storage.objects")}
    assert version_files(server) == versions  # no orphan bytes, no row without bytes

    # without upsert: exactly one wins, the others get 409, no bytes left behind
    async def post(data: bytes) -> httpx.Response:
        return await client.post(f"/object/{bucket}/once.bin", content=data, headers=service_headers)

    results = await asyncio.gather(*(post(p) for p in payloads))
    assert sorted(r.status_code for r in results) == [200] + [400] * (len(payloads) - 1)
    assert all(r.json()["statusCode"] == "409" for r in results if r.status_code == 400)
    versions = {row["version"] for row in await server_db.fetch("select version from storage.objects")}
    assert version_files(server) == versions

    # delete removes row and bytes
    r = await client.request("DELETE", f"/object/{bucket}", json={"prefixes": ["same.bin", "once.bin"]},
                             headers=service_headers)
    assert len(r.json()) == 2
    versions = {row["version"] for row in await server_db.fetch("select version from storage.objects")}
    assert version_files(server) == versions


async def test_crash_leftovers_are_swept(pg_cluster: PgCluster, tmp_path: Path) -> None:
    db_url = await create_database(pg_cluster, "crash")
    proc = MadbaseProcess(tmp_path / "srv", external_db_env(db_url)).start()
    try:
        headers = proc.headers(key=proc.service_role_key)
        async with httpx.AsyncClient(base_url=proc.url + "/storage/v1", timeout=30) as c:
            assert (await c.post("/bucket", json={"id": "crash"}, headers=headers)).status_code == 200
            assert (await c.post("/object/crash/kept.txt", content=b"kept", headers=headers)).status_code == 200
        sock = start_partial_upload(proc, "crash", "half.bin", 10 * 1024 * 1024, 2 * 1024 * 1024)
        assert await wait_for(lambda: bool(tmp_files(proc)), 20)
        proc.stop(signal.SIGKILL)
        sock.close()
        assert tmp_files(proc), "the crash should have left a partial file"
        orphan = storage_root(proc) / "objects" / "de" / "deadbeef-orphan"
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"bytes whose row was never committed")
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("update madbase_control.projects set config = config || "
                               "'{\"storage\": {\"sweep_grace_seconds\": 0}}'::jsonb")
        finally:
            await conn.close()
        proc.start()
        assert await wait_for(lambda: not tmp_files(proc) and not orphan.exists(), 30), "leftovers not swept"
        async with httpx.AsyncClient(base_url=proc.url + "/storage/v1", timeout=30) as c:
            assert (await c.get("/object/crash/kept.txt", headers=headers)).content == b"kept"
            r = await c.get("/object/info/crash/half.bin", headers=headers)
            assert r.json()["code"] == "NoSuchKey"
    finally:
        proc.stop()


async def test_refusals_before_and_after_the_bytes(client: httpx.AsyncClient, server: MadbaseProcess,
                                                   server_db: Any, service_headers: dict[str, str],
                                                   bucket_name: str) -> None:
    """Small bodies are checked at commit, large ones before the body is read: same answers, no bytes left."""
    from tests.storage.conftest import user_token

    r = await client.post("/bucket", json={"id": bucket_name, "file_size_limit": 400_000,
                                           "allowed_mime_types": ["text/*"]}, headers=service_headers)
    assert r.status_code == 200
    user = server.headers(user_token(server))
    for size in (10, 300_000):
        data = b"x" * size
        h = {**service_headers, "content-type": "text/plain"}
        assert (await client.post(f"/object/{bucket_name}/f{size}.txt", content=data, headers=h)).status_code == 200
        cases = [
            (f"/object/no-such-bucket-{size}/a.txt", h, data, "NoSuchBucket"),
            (f"/object/{bucket_name}/f{size}.txt", h, data, "Duplicate"),
            (f"/object/{bucket_name}/img{size}.png", {**h, "content-type": "image/png"}, data, "InvalidMimeType"),
            (f"/object/{bucket_name}/u{size}.txt", {**user, "content-type": "text/plain"}, data, "AccessDenied"),
        ]
        for url, headers, body, code in cases:
            r = await client.post(url, content=body, headers=headers)
            assert r.status_code == 400 and r.json()["code"] == code, (size, url, r.text)
    r = await client.post(f"/object/{bucket_name}/big.txt", content=b"x" * 400_001,
                          headers={**service_headers, "content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["statusCode"] == "413"
    versions = {row["version"] for row in await server_db.fetch("select version from storage.objects")}
    assert version_files(server) == versions
