"""Objects against the real server over HTTP: upload encodings, downloads, info, list, move/copy, remove,
signed URLs, Range/ETag/conditional requests, limits and errors."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator

import httpx

from tests.support.servers import MadbaseProcess


async def _up(client: httpx.AsyncClient, headers: dict[str, str], bucket: str, name: str, data: bytes = b"x",
              ctype: str = "text/plain", **extra: str) -> httpx.Response:
    return await client.post(f"/object/{bucket}/{name}", content=data,
                             headers={**headers, "content-type": ctype, **extra})


async def test_raw_upload_headers_metadata_and_info(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                    bucket: str) -> None:
    meta = base64.b64encode(json.dumps({"k": "v"}).encode()).decode()
    r = await _up(client, service_headers, bucket, "docs/readme.md", b"# hi", "text/markdown",
                  **{"cache-control": "max-age=60", "x-metadata": meta})
    assert r.status_code == 200, r.text
    assert r.json()["Key"] == f"{bucket}/docs/readme.md" and len(r.json()["Id"]) == 36
    r = await client.get(f"/object/{bucket}/docs/readme.md", headers=service_headers)
    assert r.content == b"# hi"
    assert r.headers["content-type"].startswith("text/markdown")
    assert r.headers["cache-control"] == "max-age=60"
    etag = '"' + hashlib.md5(b"# hi").hexdigest() + '"'
    assert r.headers["etag"] == etag and "last-modified" in r.headers and r.headers["content-length"] == "4"
    r = await client.get(f"/object/info/{bucket}/docs/readme.md", headers=service_headers)
    info = r.json()
    assert info["name"] == "docs/readme.md" and info["bucket_id"] == bucket and info["size"] == 4
    assert info["content_type"] == "text/markdown" and info["etag"] == etag and info["metadata"] == {"k": "v"}
    assert info["cache_control"] == "max-age=60" and info["version"]
    r = await client.head(f"/object/{bucket}/docs/readme.md", headers=service_headers)
    assert r.status_code == 200 and r.headers["content-length"] == "4" and r.content == b""
    r = await client.get(f"/object/info/{bucket}/docs/missing.md", headers=service_headers)
    assert r.status_code == 400
    assert r.json() == {"statusCode": "404", "code": "NoSuchKey", "error": "not_found", "message": "Object not found"}
    r = await client.get(f"/object/authenticated/{bucket}/docs/readme.md", headers=service_headers)
    assert r.content == b"# hi"


async def test_info_metadata_is_an_empty_object_when_none_was_given(
        client: httpx.AsyncClient, service_headers: dict[str, str], bucket: str) -> None:
    assert (await _up(client, service_headers, bucket, "plain.txt")).status_code == 200
    info = (await client.get(f"/object/info/{bucket}/plain.txt", headers=service_headers)).json()
    assert info["metadata"] == {}


async def test_multipart_uploads_both_field_names(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                  bucket: str) -> None:
    for field, name in (("", "js.png"), ("file", "py.png")):
        r = await client.post(f"/object/{bucket}/{name}", headers=service_headers,
                              data={"cacheControl": "3600", "metadata": json.dumps({"f": field})},
                              files={field: (name, b"\x89PNG-data", "image/png")})
        assert r.status_code == 200, r.text
        r = await client.get(f"/object/{bucket}/{name}", headers=service_headers)
        assert r.content == b"\x89PNG-data" and r.headers["content-type"] == "image/png"
        assert r.headers["cache-control"] == "max-age=3600"
        info = (await client.get(f"/object/info/{bucket}/{name}", headers=service_headers)).json()
        assert info["metadata"] == {"f": field}


async def test_duplicate_upsert_and_put(client: httpx.AsyncClient, service_headers: dict[str, str],
                                        bucket: str) -> None:
    assert (await _up(client, service_headers, bucket, "f.txt", b"one")).status_code == 200
    r = await _up(client, service_headers, bucket, "f.txt", b"two")
    assert r.status_code == 400
    assert r.json()["statusCode"] == "409" and r.json()["error"] == "Duplicate"
    r = await _up(client, service_headers, bucket, "f.txt", b"three", **{"x-upsert": "true"})
    assert r.status_code == 200
    assert (await client.get(f"/object/{bucket}/f.txt", headers=service_headers)).content == b"three"
    r = await client.put(f"/object/{bucket}/f.txt", content=b"four", headers=service_headers)
    assert r.status_code == 200
    assert (await client.get(f"/object/{bucket}/f.txt", headers=service_headers)).content == b"four"


async def test_missing_bucket_and_bad_keys(client: httpx.AsyncClient, service_headers: dict[str, str],
                                           bucket: str) -> None:
    r = await _up(client, service_headers, "no-such-bucket-x", "a.txt")
    assert r.status_code == 400 and r.json()["code"] == "NoSuchBucket"
    r = await _up(client, service_headers, bucket, "a/%2E%2E/b.txt")
    assert r.status_code == 400 and r.json()["code"] == "InvalidKey"
    r = await client.post(f"/object/{bucket}/x.txt", headers={**service_headers,
                                                              "content-type": "multipart/form-data; boundary=zz"},
                          content=b"garbage")
    assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"


async def test_list_folders_prefix_paging_sort_search(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                      bucket: str) -> None:
    for name in ("top.txt", "a/1.txt", "a/2.txt", "a/deep/3.txt", "b/4.txt", "Apple.txt"):
        assert (await _up(client, service_headers, bucket, name)).status_code == 200

    async def ls(**body: object) -> list[dict[str, object]]:
        r = await client.post(f"/object/list/{bucket}", json=body, headers=service_headers)
        assert r.status_code == 200, r.text
        return list(r.json())

    root = await ls(prefix="")
    assert [e["name"] for e in root] == ["a", "b", "Apple.txt", "top.txt"]
    assert root[0]["id"] is None and root[0]["metadata"] is None
    assert root[2]["id"] and root[2]["metadata"]["size"] == 1  # type: ignore[index]
    assert [e["name"] for e in await ls(prefix="a")] == ["deep", "1.txt", "2.txt"]
    assert [e["name"] for e in await ls(prefix="a/")] == ["deep", "1.txt", "2.txt"]
    assert [e["name"] for e in await ls(prefix="a/", limit=1, offset=1)] == ["1.txt"]
    desc = await ls(prefix="a/", sortBy={"column": "name", "order": "desc"})
    assert [e["name"] for e in desc] == ["deep", "2.txt", "1.txt"]
    assert [e["name"] for e in await ls(prefix="", search="ap")] == ["Apple.txt"]
    assert [e["name"] for e in await ls(prefix="a/", search="2")] == ["2.txt"]
    r = await client.post(f"/object/list/{bucket}", json={"sortBy": {"column": "size"}}, headers=service_headers)
    assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"


async def test_move_copy_across_buckets_and_remove(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                   bucket: str, server: MadbaseProcess) -> None:
    other = bucket + "-2"
    assert (await client.post("/bucket", json={"id": other}, headers=service_headers)).status_code == 200
    await _up(client, service_headers, bucket, "m/src.txt", b"payload")
    r = await client.post("/object/move", json={"bucketId": bucket, "sourceKey": "m/src.txt",
                                                "destinationKey": "m/dst.txt"}, headers=service_headers)
    assert r.status_code == 200 and r.json() == {"message": "Successfully moved"}
    assert (await client.get(f"/object/{bucket}/m/src.txt", headers=service_headers)).json()["code"] == "NoSuchKey"
    r = await client.post("/object/move", json={"bucketId": bucket, "sourceKey": "m/dst.txt",
                                                "destinationBucket": other, "destinationKey": "moved.txt"},
                          headers=service_headers)
    assert r.status_code == 200
    assert (await client.get(f"/object/{other}/moved.txt", headers=service_headers)).content == b"payload"
    r = await client.post("/object/copy", json={"bucketId": other, "sourceKey": "moved.txt",
                                                "destinationBucket": bucket, "destinationKey": "copy.txt"},
                          headers=service_headers)
    assert r.status_code == 200 and r.json()["Key"] == f"{bucket}/copy.txt"
    assert (await client.get(f"/object/{bucket}/copy.txt", headers=service_headers)).content == b"payload"
    assert (await client.get(f"/object/{other}/moved.txt", headers=service_headers)).content == b"payload"
    r = await client.post("/object/copy", json={"bucketId": other, "sourceKey": "moved.txt",
                                                "destinationBucket": bucket, "destinationKey": "copy.txt"},
                          headers=service_headers)
    assert r.json()["statusCode"] == "409"
    r = await client.post("/object/move", json={"bucketId": bucket, "sourceKey": "nope", "destinationKey": "x"},
                          headers=service_headers)
    assert r.json()["code"] == "NoSuchKey"
    r = await client.request("DELETE", f"/object/{bucket}", json={"prefixes": ["copy.txt", "nope.txt"]},
                             headers=service_headers)
    assert r.status_code == 200 and [o["name"] for o in r.json()] == ["copy.txt"]
    r = await client.request("DELETE", f"/object/{bucket}", json={"prefixes": ["copy.txt"]}, headers=service_headers)
    assert r.json() == []


async def test_public_and_signed_downloads(client: httpx.AsyncClient, service_headers: dict[str, str],
                                           bucket: str, server: MadbaseProcess) -> None:
    await _up(client, service_headers, bucket, "p/pic.txt", b"secret-bytes")
    r = await client.get(f"/object/public/{bucket}/p/pic.txt")
    assert r.status_code == 400 and r.json()["code"] == "NoSuchBucket"
    await client.put(f"/bucket/{bucket}", json={"public": True}, headers=service_headers)
    r = await client.get(f"/object/public/{bucket}/p/pic.txt")
    assert r.status_code == 200 and r.content == b"secret-bytes"
    r = await client.get(f"/object/public/{bucket}/p/pic.txt", params={"download": "my.txt"})
    assert r.headers["content-disposition"].startswith("attachment; filename=my.txt")
    await client.put(f"/bucket/{bucket}", json={"public": False}, headers=service_headers)
    r = await client.post(f"/object/sign/{bucket}/p/pic.txt", json={"expiresIn": 60}, headers=service_headers)
    signed = r.json()["signedURL"]
    assert signed.startswith(f"/object/sign/{bucket}/p/pic.txt?token=")
    r = await client.get(signed)
    assert r.status_code == 200 and r.content == b"secret-bytes"
    r = await client.get(f"/object/sign/{bucket}/p/other.txt?token=" + signed.split("token=")[1])
    assert r.status_code == 400 and r.json()["code"] == "InvalidJWT"
    r = await client.get(f"/object/sign/{bucket}/p/pic.txt?token=garbage")
    assert r.json()["code"] == "InvalidJWT"
    r = await client.post(f"/object/sign/{bucket}", json={"expiresIn": 60, "paths": ["p/pic.txt", "p/none.txt"]},
                          headers=service_headers)
    items = r.json()
    assert items[0]["error"] is None and items[0]["path"] == "p/pic.txt"
    assert items[1]["error"] and items[1]["signedURL"] is None
    assert (await client.get(items[0]["signedURL"])).content == b"secret-bytes"
    r = await client.post(f"/object/sign/{bucket}/p/none.txt", json={"expiresIn": 60}, headers=service_headers)
    assert r.json()["code"] == "NoSuchKey"


async def test_signed_upload_url(client: httpx.AsyncClient, service_headers: dict[str, str], bucket: str) -> None:
    r = await client.post(f"/object/upload/sign/{bucket}/up/new.bin", json={}, headers=service_headers)
    assert r.status_code == 200
    token = r.json()["token"]
    assert r.json()["url"].endswith("?token=" + token)
    r = await client.put(f"/object/upload/sign/{bucket}/up/new.bin", params={"token": token}, content=b"via-token",
                         headers={**service_headers, "content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.json()["Key"] == f"{bucket}/up/new.bin"
    assert (await client.get(f"/object/{bucket}/up/new.bin", headers=service_headers)).content == b"via-token"
    r = await client.put(f"/object/upload/sign/{bucket}/up/other.bin", params={"token": token}, content=b"x",
                         headers=service_headers)
    assert r.json()["code"] == "InvalidJWT"


async def test_range_etag_conditional(client: httpx.AsyncClient, service_headers: dict[str, str],
                                      bucket: str) -> None:
    data = bytes(range(256)) * 10
    await _up(client, service_headers, bucket, "r.bin", data, "application/octet-stream")
    url = f"/object/{bucket}/r.bin"
    r = await client.get(url, headers={**service_headers, "range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = await client.get(url, headers={**service_headers, "range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = await client.get(url, headers={**service_headers, "range": "bytes=2550-"})
    assert r.content == data[2550:]
    r = await client.get(url, headers={**service_headers, "range": "bytes=99999-"})
    assert r.status_code == 416 and r.json()["code"] == "InvalidRange"
    full = await client.get(url, headers=service_headers)
    etag, modified = full.headers["etag"], full.headers["last-modified"]
    r = await client.get(url, headers={**service_headers, "if-none-match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = await client.get(url, headers={**service_headers, "if-none-match": '"other"'})
    assert r.status_code == 200
    r = await client.get(url, headers={**service_headers, "if-modified-since": modified})
    assert r.status_code == 304


async def test_size_and_mime_limits(client: httpx.AsyncClient, service_headers: dict[str, str],
                                    bucket_name: str) -> None:
    r = await client.post("/bucket", json={"id": bucket_name, "file_size_limit": 1000,
                                           "allowed_mime_types": ["image/*", "text/plain"]}, headers=service_headers)
    assert r.status_code == 200
    r = await _up(client, service_headers, bucket_name, "big.txt", b"x" * 1001)
    assert r.status_code == 400 and r.json()["statusCode"] == "413"
    assert r.json() == {"statusCode": "413", "code": "EntityTooLarge", "error": "Payload too large",
                        "message": "The object exceeded the maximum allowed size"}

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    r = await client.post(f"/object/{bucket_name}/chunked.txt", content=chunked(),
                          headers={**service_headers, "content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["statusCode"] == "413"
    r = await client.get(f"/object/info/{bucket_name}/chunked.txt", headers=service_headers)
    assert r.json()["code"] == "NoSuchKey"
    r = await _up(client, service_headers, bucket_name, "doc.pdf", b"x", "application/pdf")
    assert r.status_code == 400
    assert r.json()["statusCode"] == "415" and r.json()["code"] == "InvalidMimeType"
    assert (await _up(client, service_headers, bucket_name, "ok.png", b"x", "image/png")).status_code == 200
    assert (await _up(client, service_headers, bucket_name, "ok.txt", b"x", "text/plain; charset=utf-8")
            ).status_code == 200


async def test_list_v2(client: httpx.AsyncClient, service_headers: dict[str, str], bucket: str) -> None:
    for name in ("a/1.txt", "a/2.txt", "a/deep/3.txt", "a/deep/4.txt", "b.txt"):
        assert (await _up(client, service_headers, bucket, name)).status_code == 200

    async def ls(**body: object) -> dict[str, object]:
        r = await client.post(f"/object/list-v2/{bucket}", json=body, headers=service_headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    flat = await ls()
    assert [o["name"] for o in flat["objects"]] == ["a/1.txt", "a/2.txt", "a/deep/3.txt", "a/deep/4.txt",  # type: ignore[attr-defined]
                                                    "b.txt"]
    assert flat["folders"] == [] and flat["hasNext"] is False
    tree = await ls(prefix="a/", with_delimiter=True)
    # As Storage's search_v2: `key` is the segment at the prefix's level, a folder's without the slash.
    assert tree["folders"] == [{"name": "a/deep/", "key": "deep"}]
    assert [(o["name"], o["key"]) for o in tree["objects"]] == [  # type: ignore[attr-defined]
        ("a/1.txt", "1.txt"), ("a/2.txt", "2.txt")]
    top = await ls(with_delimiter=True)
    assert top["folders"] == [{"name": "a/", "key": "a"}]
    assert [(o["name"], o["key"]) for o in top["objects"]] == [("b.txt", "b.txt")]  # type: ignore[attr-defined]
    assert all("key" not in o for o in flat["objects"])  # type: ignore[attr-defined]
    page = await ls(limit=2)
    assert page["hasNext"] is True and len(page["objects"]) == 2  # type: ignore[arg-type]
    rest = await ls(limit=10, cursor=page["nextCursor"])
    assert len(rest["objects"]) == 3 and rest["hasNext"] is False  # type: ignore[arg-type]


async def test_names_with_spaces_and_unicode(client: httpx.AsyncClient, service_headers: dict[str, str],
                                             bucket: str) -> None:
    name = "dir/hello world ü (1).txt"
    assert (await _up(client, service_headers, bucket, name, b"unicode")).status_code == 200
    assert (await client.get(f"/object/{bucket}/{name}", headers=service_headers)).content == b"unicode"
    r = await client.post(f"/object/sign/{bucket}/{name}", json={"expiresIn": 60}, headers=service_headers)
    signed = r.json()["signedURL"]
    assert signed.startswith(f"/object/sign/{bucket}/{name}?token=")  # raw, as Supabase (clients encode it)
    assert (await client.get(signed)).content == b"unicode"
    r = await client.post(f"/object/list/{bucket}", json={"prefix": "dir"}, headers=service_headers)
    assert [e["name"] for e in r.json()] == ["hello world ü (1).txt"]
    r = await client.get(f"/object/{bucket}/{name}", params={"download": ""}, headers=service_headers)
    assert r.headers["content-disposition"] == "attachment;"
    r = await client.get(f"/object/{bucket}/{name}", params={"download": "ü b.txt"}, headers=service_headers)
    assert r.headers["content-disposition"] == "attachment; filename=%C3%BC%20b.txt; filename*=UTF-8''%C3%BC%20b.txt;"


async def test_html_is_served_as_text(client: httpx.AsyncClient, service_headers: dict[str, str],
                                      bucket: str) -> None:
    await _up(client, service_headers, bucket, "x.html", b"<script>alert(1)</script>", "text/html; charset=utf-8")
    r = await client.get(f"/object/{bucket}/x.html", headers=service_headers)
    assert r.headers["content-type"].startswith("text/plain")


async def test_image_transformations_are_refused_clearly(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                         bucket: str) -> None:
    refusal = {"statusCode": "403", "code": "FeatureNotEnabled", "error": "FeatureNotEnabled",
               "message": "feature not enabled for this tenant"}
    r = await client.get(f"/render/image/authenticated/{bucket}/a.png", params={"width": 10}, headers=service_headers)
    assert r.status_code == 403 and r.json() == refusal
    # A signed URL asking for a transformation is refused, not signed for the untransformed original.
    assert (await _up(client, service_headers, bucket, "a.png", b"png", "image/png")).status_code == 200
    r = await client.post(f"/object/sign/{bucket}/a.png", json={"expiresIn": 60, "transform": {"width": 10}},
                          headers=service_headers)
    assert r.status_code == 403 and r.json() == refusal
    r = await client.post(f"/object/sign/{bucket}/a.png", json={"expiresIn": 60, "transform": None},
                          headers=service_headers)
    assert r.status_code == 200 and "signedURL" in r.json()


async def test_expired_signed_url(client: httpx.AsyncClient, service_headers: dict[str, str], bucket: str,
                                  server: MadbaseProcess) -> None:
    import time

    from madbase.core.jwt import sign_hs256

    await _up(client, service_headers, bucket, "exp.txt", b"x")
    past = int(time.time()) - 120
    token = sign_hs256({"url": f"{bucket}/exp.txt", "iat": past - 60, "exp": past}, server.jwt_secret)
    r = await client.get(f"/object/sign/{bucket}/exp.txt", params={"token": token})
    assert r.status_code == 400
    assert r.json() == {"statusCode": "400", "code": "InvalidJWT", "error": "Unauthorized", "message": "jwt expired"}
    r = await client.post(f"/object/sign/{bucket}/exp.txt", json={"expiresIn": 0}, headers=service_headers)
    assert r.json()["code"] == "InvalidRequest"


async def test_bad_input_is_a_clear_400_never_a_500(client: httpx.AsyncClient, service_headers: dict[str, str],
                                                    bucket: str) -> None:
    h = {**service_headers, "content-type": "application/json"}
    cases: list[tuple[str, str, object]] = [
        ("POST", "/bucket", b"{not json"), ("POST", "/bucket", b"[1,2]"), ("POST", "/bucket", {"id": 5}),
        ("POST", "/bucket", {"id": "ok-" + bucket, "public": "yes"}),
        ("POST", "/bucket", {"id": "ok2-" + bucket, "allowed_mime_types": "image/png"}),
        ("PUT", f"/bucket/{bucket}", {"file_size_limit": {"a": 1}}),
        ("POST", f"/object/list/{bucket}", {"limit": "many"}), ("POST", f"/object/list/{bucket}", {"sortBy": 3}),
        ("POST", f"/object/list-v2/{bucket}", {"cursor": "zz"}),
        ("POST", "/object/move", {"bucketId": bucket}), ("POST", "/object/copy", {"sourceKey": 1}),
        ("POST", "/object/move", {"bucketId": bucket, "sourceKey": "a", "destinationKey": "b",
                                  "destinationBucket": 7}),
        ("DELETE", f"/object/{bucket}", {"prefixes": "a"}), ("DELETE", f"/object/{bucket}", {}),
        ("POST", f"/object/sign/{bucket}/a.txt", {"expiresIn": "soon"}),
        ("POST", f"/object/sign/{bucket}", {"expiresIn": 60, "paths": "a"}),
        ("GET", "/bucket?limit=abc", None), ("GET", "/bucket?sortColumn=owner", None),
    ]
    for method, url, body in cases:
        content = body if isinstance(body, bytes) else None
        r = await client.request(method, url, headers=h, content=content,
                                 json=None if isinstance(body, bytes) or body is None else body)
        assert r.status_code == 400, (method, url, r.status_code, r.text)
        err = r.json()
        assert set(err) == {"statusCode", "code", "error", "message"}, err
    r = await client.post(f"/object/{bucket}/m.txt", content=b"x",
                          headers={**service_headers, "x-metadata": base64.b64encode(b"[1]").decode()})
    assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"


async def test_storage_metrics(client: httpx.AsyncClient, server: MadbaseProcess, service_headers: dict[str, str],
                               bucket: str) -> None:
    def value(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + "{") and f'project="{server.project_ref}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = (await client.get(server.url + "/metrics")).text
    await _up(client, service_headers, bucket, "m.bin", b"z" * 1000)
    await client.get(f"/object/{bucket}/m.bin", headers=service_headers)
    after = (await client.get(server.url + "/metrics")).text
    for series in ("madbase_storage_uploaded_bytes_total", "madbase_storage_downloaded_bytes_total"):
        assert value(after, series) - value(before, series) == 1000, series
