"""Storage request bodies are bounded wherever they are collected (the kit's reader, multipart fields and part
headers): a hostile body gets storage's 400, never a 500 and never unbounded memory."""

from __future__ import annotations

import httpx

from tests.security.conftest import Project, make_bucket, storage_error


def _multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"XyZ") -> bytes:
    out = bytearray()
    for headers, body in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + body + b"\r\n"
    out += b"--" + boundary + b"--\r\n"
    return bytes(out)


def test_multipart_part_headers_are_bounded(project_a: Project, client: httpx.Client) -> None:
    bucket = make_bucket(project_a, client)
    headers = project_a.headers("service_role", **{"content-type": "multipart/form-data; boundary=XyZ"})
    huge = b'Content-Disposition: form-data; name="metadata"\r\nX-Pad: ' + b"a" * 64 * 1024
    body = _multipart([(huge, b"{}"), (b'Content-Disposition: form-data; name=""; filename="f"', b"data")])
    storage_error(client.post(f"{project_a.url}/storage/v1/object/{bucket}/a.txt", content=body, headers=headers))
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b'Content-Disposition: form-data; name="x"'
    body = _multipart([(many, b"1"), (b'Content-Disposition: form-data; name=""; filename="f"', b"data")])
    storage_error(client.post(f"{project_a.url}/storage/v1/object/{bucket}/b.txt", content=body, headers=headers))


def test_multipart_fields_are_bounded_together(project_a: Project, client: httpx.Client) -> None:
    bucket = make_bucket(project_a, client)
    headers = project_a.headers("service_role", **{"content-type": "multipart/form-data; boundary=XyZ"})
    fields = [(b'Content-Disposition: form-data; name="f%d"' % i, b"v" * 600_000) for i in range(3)]
    body = _multipart([*fields, (b'Content-Disposition: form-data; name=""; filename="f"', b"data")])
    r = client.post(f"{project_a.url}/storage/v1/object/{bucket}/c.txt", content=body, headers=headers)
    assert storage_error(r)["message"] == "Multipart field too large"
    fields = [(b'Content-Disposition: form-data; name="f%d"' % i, b"v") for i in range(100)]
    body = _multipart([*fields, (b'Content-Disposition: form-data; name=""; filename="f"', b"data")])
    r = client.post(f"{project_a.url}/storage/v1/object/{bucket}/d.txt", content=body, headers=headers)
    assert storage_error(r)["message"] == "Too many multipart fields"
    # an ordinary storage-js body still works
    body = _multipart([(b'Content-Disposition: form-data; name="cacheControl"', b"3600"),
                       (b'Content-Disposition: form-data; name=""; filename="blob"\r\nContent-Type: text/plain',
                        b"hello")])
    r = client.post(f"{project_a.url}/storage/v1/object/{bucket}/ok.txt", content=body, headers=headers)
    assert r.status_code == 200, r.text


def test_json_bodies_are_bounded(project_a: Project, client: httpx.Client) -> None:
    bucket = make_bucket(project_a, client)
    headers = project_a.headers("service_role", **{"content-type": "application/json"})
    big = b'{"paths": ["' + b"p" * (2 * 1024 * 1024) + b'"]}'
    r = client.post(f"{project_a.url}/storage/v1/object/sign/{bucket}", content=big, headers=headers)
    assert storage_error(r)["message"] == "Request body too large"
    r = client.post(f"{project_a.url}/storage/v1/object/list/{bucket}", content=b'{"prefix": ', headers=headers)
    assert storage_error(r)["message"] == "Body is not valid JSON"
