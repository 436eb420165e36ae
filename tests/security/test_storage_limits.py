"""Storage limits: hostile `expiresIn` values get a 400 in storage's shape (never a 500), and a signed URL
stops working the second it expires (no JWT leeway)."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from tests.security.conftest import Project, make_bucket, no_500, storage_error


@pytest.fixture(scope="module")
def signed_bucket(project_a: Project) -> str:
    with httpx.Client(timeout=30) as c:
        bucket = make_bucket(project_a, c)
        r = c.post(f"{project_a.url}/storage/v1/object/{bucket}/f.txt", content=b"hello",
                   headers=project_a.headers("service_role", **{"content-type": "text/plain"}))
        assert r.status_code == 200, r.text
        return bucket


HOSTILE_EXPIRES = [b'"inf"', b'"Infinity"', b'"-inf"', b'"NaN"', b"1e999", b"-1e999", b"1e308", b"-1", b"0",
                   b"1.5", b'"1.5"', b'"1e3"', b"100000000000000000000000000000000", b'"99999999999999999999"',
                   b"null", b"true", b"[]", b"{}", b'""', b'" "', b'"60s"', b'"\\u0661\\u0662"', b"-0"]


@pytest.mark.parametrize("raw", HOSTILE_EXPIRES)
def test_hostile_expires_in_is_a_400(project_a: Project, signed_bucket: str, client: httpx.Client,
                                     raw: bytes) -> None:
    headers = project_a.headers("service_role", **{"content-type": "application/json"})
    one = client.post(f"{project_a.url}/storage/v1/object/sign/{signed_bucket}/f.txt",
                      content=b'{"expiresIn": ' + raw + b"}", headers=headers)
    storage_error(one)
    many = client.post(f"{project_a.url}/storage/v1/object/sign/{signed_bucket}",
                       content=b'{"paths": ["f.txt"], "expiresIn": ' + raw + b"}", headers=headers)
    storage_error(many)


def test_reasonable_expires_in_values_still_work(project_a: Project, signed_bucket: str,
                                                 client: httpx.Client) -> None:
    for value in (1, 60, 60.0, "60", 10 * 365 * 86400):
        r = no_500(client.post(f"{project_a.url}/storage/v1/object/sign/{signed_bucket}/f.txt",
                               json={"expiresIn": value}, headers=project_a.headers("service_role")))
        assert r.status_code == 200, (value, r.text)


def test_a_signed_url_expires_on_time(project_a: Project, signed_bucket: str, client: httpx.Client) -> None:
    r = client.post(f"{project_a.url}/storage/v1/object/sign/{signed_bucket}/f.txt", json={"expiresIn": 1},
                    headers=project_a.headers("service_role"))
    assert r.status_code == 200, r.text
    url = project_a.url + "/storage/v1" + r.json()["signedURL"]
    first = client.get(url, headers={"x-project-ref": project_a.ref})
    assert first.status_code == 200 and first.content == b"hello"
    time.sleep(2.2)  # past `exp` (whole seconds) but well inside the 30 s user JWTs are allowed
    late = no_500(client.get(url, headers={"x-project-ref": project_a.ref}))
    body = storage_error(late, "InvalidJWT")
    assert "expired" in body["message"]


def test_too_many_paths_to_sign_is_a_400(project_a: Project, signed_bucket: str, client: httpx.Client) -> None:
    r = client.post(f"{project_a.url}/storage/v1/object/sign/{signed_bucket}",
                    json={"expiresIn": 60, "paths": [f"p{i}" for i in range(5000)]},
                    headers=project_a.headers("service_role"))
    storage_error(r)


@pytest.mark.parametrize("limit", [b'"' + b"9" * 400 + b'MB"', b"1e308", b"1180591620717411303424", b'"1e5"', b"-1",
                                   b'"\\u00b2MB"', b'"NaN"'])
def test_hostile_bucket_size_limits_are_a_400(project_a: Project, client: httpx.Client, limit: bytes) -> None:
    r = client.post(f"{project_a.url}/storage/v1/bucket", content=b'{"id": "lim-x", "file_size_limit": ' + limit + b"}",
                    headers=project_a.headers("service_role", **{"content-type": "application/json"}))
    storage_error(r)


def test_non_ascii_digits_in_headers_and_cursors_are_a_400(project_a: Project, signed_bucket: str,
                                                           client: httpx.Client) -> None:
    """`str.isdigit()` accepts `²` (a latin-1 header byte) and `٣`; `int()` then fails: a 500 before."""
    base = f"{project_a.url}/storage/v1"
    meta = "bucketName " + "ZmFrZQ==" + ",objectName " + "eC5iaW4="
    for value in (b"\xb2", b"1\xb2", b"0" * 30):
        headers = [(k.encode(), v.encode()) for k, v in project_a.headers("service_role").items()]
        headers += [(b"tus-resumable", b"1.0.0"), (b"upload-length", value), (b"upload-metadata", meta.encode())]
        r = no_500(client.post(base + "/upload/resumable", headers=headers))
        assert 400 <= r.status_code < 500, (value, r.status_code, r.text)
    for cursor in ("\u00b2", "\u0663", "1" * 40):
        r = client.post(f"{base}/object/list-v2/{signed_bucket}", json={"cursor": cursor},
                        headers=project_a.headers("service_role"))
        storage_error(r)


def test_stored_header_values_cannot_inject_response_headers(project_a: Project, signed_bucket: str,
                                                             client: httpx.Client) -> None:
    """contentType / cacheControl arrive in TUS metadata (base64) and multipart fields, where CR/LF and other
    control characters can hide; they come back as response headers on download."""
    base = f"{project_a.url}/storage/v1"
    evil = "text/plain\r\nx-injected: 1"
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in {
        "bucketName": signed_bucket, "objectName": "inj-tus.txt", "contentType": evil,
        "cacheControl": "max-age=1\r\nx-injected: 2"}.items())
    r = no_500(client.post(base + "/upload/resumable", content=b"data", headers=project_a.headers(
        "service_role", **{"tus-resumable": "1.0.0", "upload-length": "4", "upload-metadata": meta,
                           "content-type": "application/offset+octet-stream"})))
    made = [r.status_code < 300]
    r = no_500(client.post(f"{base}/object/{signed_bucket}/inj-form.txt", headers=project_a.headers("service_role"),
                           files={"": ("f.txt", b"data", "text/plain")},
                           data={"cacheControl": "3600\r\nx-injected: 3\r\n"}))
    made.append(r.status_code < 300)
    for name, ok in zip(("inj-tus.txt", "inj-form.txt"), made, strict=True):
        if not ok:
            continue  # refused at upload: fine too
        for path in (f"/object/{signed_bucket}/{name}", f"/object/info/{signed_bucket}/{name}"):
            got = no_500(client.get(base + path, headers=project_a.headers("service_role")))
            assert got.status_code == 200, got.text
            assert "x-injected" not in got.headers
            assert all("\n" not in v and "\r" not in v for v in got.headers.values())


def test_a_hand_written_row_with_unsafe_headers_is_served_safely(project_a: Project, signed_bucket: str,
                                                                 client: httpx.Client) -> None:
    base = f"{project_a.url}/storage/v1"
    r = client.post(f"{base}/object/{signed_bucket}/hand.txt", content=b"hand",
                    headers=project_a.headers("service_role", **{"content-type": "text/plain"}))
    assert r.status_code == 200, r.text
    project_a.sql("update storage.objects set metadata = metadata || jsonb_build_object('mimetype', $1::text, "
                  "'cacheControl', $2::text) where bucket_id = $3 and name = 'hand.txt'",
                  "text/plain\r\nx-injected: 1", "max-age=1\n\u20ac", signed_bucket)
    got = no_500(client.get(f"{base}/object/{signed_bucket}/hand.txt", headers=project_a.headers("service_role")))
    assert got.status_code == 200 and got.content == b"hand"
    assert "x-injected" not in got.headers and got.headers["cache-control"] == "no-cache"
