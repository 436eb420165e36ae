"""Buckets against the real server: create/get/list/update/empty/delete, errors in Storage's shape."""

from __future__ import annotations

import httpx

from tests.support.servers import MadbaseProcess


async def test_create_get_list_update(client: httpx.AsyncClient, service_headers: dict[str, str],
                                      bucket_name: str) -> None:
    r = await client.post("/bucket", json={"id": bucket_name, "name": bucket_name, "public": True,
                                           "file_size_limit": "1MB", "allowed_mime_types": ["image/*"]},
                          headers=service_headers)
    assert r.status_code == 200 and r.json() == {"name": bucket_name}
    r = await client.get(f"/bucket/{bucket_name}", headers=service_headers)
    body = r.json()
    assert r.status_code == 200
    assert body["id"] == body["name"] == bucket_name
    assert body["public"] is True and body["file_size_limit"] == 1_000_000  # decimal, as Storage
    assert body["allowed_mime_types"] == ["image/*"] and body["type"] == "STANDARD"
    assert body["created_at"].endswith("Z")
    r = await client.get("/bucket", headers=service_headers)
    assert bucket_name in [b["id"] for b in r.json()]
    r = await client.get("/bucket", params={"search": bucket_name, "limit": 5}, headers=service_headers)
    assert [b["id"] for b in r.json()] == [bucket_name]
    r = await client.put(f"/bucket/{bucket_name}", json={"id": bucket_name, "public": False,
                                                         "file_size_limit": None, "allowed_mime_types": None},
                         headers=service_headers)
    assert r.status_code == 200 and r.json() == {"message": "Successfully updated"}
    body = (await client.get(f"/bucket/{bucket_name}", headers=service_headers)).json()
    assert body["public"] is False and body["file_size_limit"] is None and body["allowed_mime_types"] is None


async def test_duplicate_and_missing(client: httpx.AsyncClient, service_headers: dict[str, str], bucket: str) -> None:
    r = await client.post("/bucket", json={"id": bucket, "name": bucket}, headers=service_headers)
    assert r.status_code == 400
    assert r.json()["statusCode"] == "409" and r.json()["error"] == "Duplicate"
    r = await client.get("/bucket/does-not-exist", headers=service_headers)
    assert r.status_code == 400
    assert r.json() == {"statusCode": "404", "code": "NoSuchBucket", "error": "Bucket not found",
                        "message": "Bucket not found"}
    r = await client.post("/bucket", json={"id": "bad/name"}, headers=service_headers)
    assert r.status_code == 400 and r.json()["code"] == "InvalidBucketName"
    r = await client.post("/bucket", json={"id": "x-" + bucket, "file_size_limit": "lots"}, headers=service_headers)
    assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"


async def test_delete_refused_when_not_empty_then_empty(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                        bucket: str) -> None:
    for name in ("a.txt", "dir/b.txt"):
        r = await client.post(f"/object/{bucket}/{name}", content=b"x", headers=service_headers)
        assert r.status_code == 200
    r = await client.request("DELETE", f"/bucket/{bucket}", json={}, headers=service_headers)
    assert r.status_code == 400 and r.json()["statusCode"] == "409"
    assert r.json()["message"] == "The bucket you tried to delete is not empty"
    r = await client.post(f"/bucket/{bucket}/empty", json={}, headers=service_headers)
    assert r.status_code == 200
    r = await client.post(f"/object/list/{bucket}", json={"prefix": ""}, headers=service_headers)
    assert r.json() == []
    r = await client.request("DELETE", f"/bucket/{bucket}", json={}, headers=service_headers)
    assert r.status_code == 200 and r.json() == {"message": "Successfully deleted"}
    r = await client.get(f"/bucket/{bucket}", headers=service_headers)
    assert r.json()["code"] == "NoSuchBucket"


async def test_anon_cannot_create_or_see_buckets(client: httpx.AsyncClient, server: MadbaseProcess,
                                                 bucket: str) -> None:
    anon = server.headers()
    r = await client.post("/bucket", json={"id": "anon-" + bucket}, headers=anon)
    assert r.status_code == 400 and r.json()["statusCode"] == "403"
    r = await client.get("/bucket", headers=anon)
    assert r.status_code == 200 and bucket not in [b["id"] for b in r.json()]
    r = await client.get(f"/bucket/{bucket}", headers=anon)
    assert r.json()["code"] == "NoSuchBucket"


async def test_unknown_route_and_bad_jwt(client: httpx.AsyncClient, server: MadbaseProcess) -> None:
    r = await client.get("/nothing-here", headers=server.headers())
    assert r.status_code == 404 and r.json()["statusCode"] == "404"
    r = await client.get("/bucket", headers={"apikey": server.anon_key, "Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidJWT"
