"""TUS 1.0 resumable uploads: the sans-I/O state machine alone, then the protocol over real HTTP, including
a PATCH cut off mid-way and resumed from the offset HEAD reports."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import uuid

import httpx
import pytest

from madbase.storage import tus
from tests.storage.conftest import user_token
from tests.support.servers import MadbaseProcess

V = {"Tus-Resumable": "1.0.0"}


def meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def test_state_machine_create_and_patch() -> None:
    headers = {"tus-resumable": "1.0.0", "upload-length": "10",
               "upload-metadata": meta(bucketName="b", objectName="x/y.bin", contentType="image/png",
                                       cacheControl="60"),
               "x-upsert": "true"}
    plan = tus.plan_create(headers, 100)
    assert (plan.bucket, plan.name, plan.content_type, plan.cache_control, plan.upsert, plan.length) == (
        "b", "x/y.bin", "image/png", "max-age=60", True, 10)
    with pytest.raises(tus.TusError) as e:
        tus.plan_create({**headers, "upload-length": "101"}, 100)
    assert e.value.status == 413
    with pytest.raises(tus.TusError) as e:
        tus.plan_create({**headers, "tus-resumable": "0.2.2"}, 100)
    assert e.value.status == 412
    with pytest.raises(tus.TusError) as e:
        tus.plan_create({k: v for k, v in headers.items() if k != "upload-length"}, 100)
    assert e.value.status == 400
    state = tus.UploadState("id", 10, "b", "x", "a/b", "no-cache", None, False, None, "service_role")
    patch = {"tus-resumable": "1.0.0", "content-type": tus.OFFSET_CONTENT_TYPE, "upload-offset": "4"}
    assert tus.check_patch(patch, state, 4) == 6
    with pytest.raises(tus.TusError) as e:
        tus.check_patch(patch, state, 3)
    assert e.value.status == 409
    with pytest.raises(tus.TusError) as e:
        tus.check_patch({**patch, "content-type": "text/plain"}, state, 4)
    assert e.value.status == 415
    with pytest.raises(tus.TusError) as e:
        tus.check_patch({**patch, "content-length": "7"}, state, 4)
    assert e.value.status == 413
    assert tus.parse_metadata("a ,b " + base64.b64encode(b"x").decode()) == {"a": "", "b": "x"}


async def _create(c: httpx.AsyncClient, headers: dict[str, str], bucket: str, name: str, length: int,
                  **extra: str) -> httpx.Response:
    return await c.post("/upload/resumable", headers={
        **headers, **V, "Upload-Length": str(length),
        "Upload-Metadata": meta(bucketName=bucket, objectName=name, contentType="application/octet-stream",
                                cacheControl="3600"), **extra})


async def _patch(c: httpx.AsyncClient, url: str, headers: dict[str, str], offset: int, data: bytes) -> httpx.Response:
    return await c.patch(url, content=data, headers={**headers, **V, "Upload-Offset": str(offset),
                                                     "Content-Type": "application/offset+octet-stream"})


async def test_tus_upload_in_chunks(client: httpx.AsyncClient, service_headers: dict[str, str], bucket: str) -> None:
    r = await client.options("/upload/resumable", headers=service_headers)
    assert r.status_code == 204 and r.headers["tus-version"] == "1.0.0"
    assert "creation" in r.headers["tus-extension"]
    data = os.urandom(3 * 300_000 + 17)
    r = await _create(client, service_headers, bucket, "tus/file.bin", len(data))
    assert r.status_code == 201, r.text
    url = r.headers["location"]
    assert "/storage/v1/upload/resumable/" in url
    r = await client.head(url, headers={**service_headers, **V})
    assert r.status_code == 200 and r.headers["upload-offset"] == "0"
    assert r.headers["upload-length"] == str(len(data)) and r.headers["cache-control"] == "no-store"
    offset = 0
    for start in range(0, len(data), 300_000):
        part = data[start:start + 300_000]
        r = await _patch(client, url, service_headers, offset, part)
        assert r.status_code == 204, r.text
        offset += len(part)
        assert r.headers["upload-offset"] == str(offset)
    got = await client.get(f"/object/{bucket}/tus/file.bin", headers=service_headers)
    assert got.content == data
    assert got.headers["etag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    r = await client.head(url, headers={**service_headers, **V})
    assert r.status_code == 404
    # the wrong offset and the wrong protocol version are refused
    r = await _create(client, service_headers, bucket, "tus/other.bin", 10)
    url = r.headers["location"]
    assert (await _patch(client, url, service_headers, 3, b"abc")).status_code == 409
    r = await client.patch(url, content=b"abc", headers={**service_headers, "Tus-Resumable": "0.1",
                                                         "Upload-Offset": "0",
                                                         "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 412
    # termination
    assert (await client.delete(url, headers={**service_headers, **V})).status_code == 204
    assert (await client.head(url, headers={**service_headers, **V})).status_code == 404
    # creation-with-upload
    r = await _create(client, service_headers, bucket, "tus/one-shot.txt", 5,
                      **{"Content-Type": "application/offset+octet-stream"})
    r = await client.post("/upload/resumable", content=b"hello", headers={
        **service_headers, **V, "Upload-Length": "5", "Content-Type": "application/offset+octet-stream",
        "Upload-Metadata": meta(bucketName=bucket, objectName="tus/one-shot2.txt")})
    assert r.status_code == 201 and r.headers["upload-offset"] == "5"
    assert (await client.get(f"/object/{bucket}/tus/one-shot2.txt", headers=service_headers)).content == b"hello"
    # an existing object without x-upsert: 409 at creation
    r = await _create(client, service_headers, bucket, "tus/file.bin", 4)
    assert r.status_code == 409


async def test_tus_resume_after_dropped_connection(client: httpx.AsyncClient, server: MadbaseProcess,
                                                   service_headers: dict[str, str], bucket: str) -> None:
    data = os.urandom(2 * 1024 * 1024)
    r = await _create(client, service_headers, bucket, "tus/resumed.bin", len(data))
    url = r.headers["location"]
    path = url.split(str(server.port), 1)[1]
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (f"PATCH {path} HTTP/1.1\r\nHost: localhost\r\napikey: {server.service_role_key}\r\n"
            f"Authorization: Bearer {server.service_role_key}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n")
    sent = 700_000
    sock.sendall(head.encode() + data[:sent])
    await asyncio.sleep(0.5)
    sock.close()
    offset = 0
    for _ in range(200):  # the server may still be reading what was sent before the cut
        r = await client.head(url, headers={**service_headers, **V})
        offset = int(r.headers["upload-offset"])
        if offset == sent:
            break
        await asyncio.sleep(0.1)
    assert offset == sent
    r = await client.get(f"/object/info/{bucket}/tus/resumed.bin", headers=service_headers)
    assert r.json()["code"] == "NoSuchKey"  # nothing visible before the upload completes
    r = await _patch(client, url, service_headers, offset, data[offset:])
    assert r.status_code == 204 and r.headers["upload-offset"] == str(len(data))
    got = await client.get(f"/object/{bucket}/tus/resumed.bin", headers=service_headers)
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert got.headers["etag"] == '"' + hashlib.md5(data).hexdigest() + '"'  # running digest survived the cut


async def test_tus_permissions_and_limits(client: httpx.AsyncClient, server: MadbaseProcess,
                                          service_headers: dict[str, str], bucket: str) -> None:
    r = await _create(client, server.headers(), bucket, "tus/anon.bin", 10)
    assert r.status_code == 403 and r.json()["statusCode"] == "403"
    r = await _create(client, service_headers, bucket, "tus/huge.bin", 10 * 1024**4)
    assert r.status_code == 413
    r = await _create(client, service_headers, "missing-bucket-tus", "x.bin", 10)
    assert r.status_code == 404
    r = await _create(client, service_headers, bucket, "tus/private.bin", 10)
    url = r.headers["location"]
    other = server.headers(user_token(server, str(uuid.uuid4())))
    assert (await client.head(url, headers={**other, **V})).status_code == 404
    assert (await _patch(client, url, other, 0, b"0123456789")).status_code == 404


def _tuspy_upload(server: MadbaseProcess, bucket: str, data: bytes) -> tuple[str, int]:
    import io

    from tusclient.client import TusClient

    client = TusClient(server.url + "/storage/v1/upload/resumable",
                       headers={"apikey": server.service_role_key,
                                "Authorization": f"Bearer {server.service_role_key}", "x-upsert": "true"})
    meta = {"bucketName": bucket, "objectName": "tuspy/video.bin", "contentType": "video/mp4",
            "cacheControl": "3600"}
    chunk = 256 * 1024
    first = client.uploader(file_stream=io.BytesIO(data), chunk_size=chunk, metadata=meta)
    first.upload(stop_at=3 * chunk)  # then the client "goes away"
    assert first.url is not None
    # a new client process resumes from the offset the server reports (HEAD)
    second = client.uploader(file_stream=io.BytesIO(data), chunk_size=chunk, metadata=meta, url=first.url)
    resumed_from = second.offset
    second.upload()
    return first.url, resumed_from


async def test_tus_with_a_real_client_resumes(client: httpx.AsyncClient, server: MadbaseProcess,
                                              service_headers: dict[str, str], bucket: str) -> None:
    data = os.urandom(2 * 1024 * 1024 + 123)
    _, resumed_from = await asyncio.to_thread(_tuspy_upload, server, bucket, data)
    assert resumed_from == 3 * 256 * 1024
    got = await client.get(f"/object/{bucket}/tuspy/video.bin", headers=service_headers)
    assert got.content == data and got.headers["content-type"] == "video/mp4"
    assert got.headers["etag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    assert got.headers["cache-control"] == "max-age=3600"
