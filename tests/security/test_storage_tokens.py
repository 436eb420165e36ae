"""Signed-URL tokens say what they allow — purpose, project, bucket, path, upsert — and nothing else passes:
a download token is no upload token, a create-only upload token never overwrites (whatever `x-upsert` says),
no token crosses paths, buckets or projects, and the other credentials storage takes (TUS upload URLs, public
and render paths, bearer tokens) do not stand in for one another."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import pytest

from madbase.core.jwt import sign_hs256
from tests.security.conftest import Project, make_bucket, no_500, storage_error


def _s(project: Project) -> str:
    return project.url + "/storage/v1"


def _put(project: Project, client: httpx.Client, bucket: str, name: str, data: bytes) -> None:
    r = client.post(f"{_s(project)}/object/{bucket}/{name}", content=data,
                    headers=project.headers("service_role", **{"content-type": "text/plain", "x-upsert": "true"}))
    assert r.status_code == 200, r.text


def _read(project: Project, client: httpx.Client, bucket: str, name: str) -> bytes | None:
    r = client.get(f"{_s(project)}/object/{bucket}/{name}", headers=project.headers("service_role"))
    return r.content if r.status_code == 200 else None


def _download_token(project: Project, client: httpx.Client, bucket: str, name: str, expires: int = 600) -> str:
    r = client.post(f"{_s(project)}/object/sign/{bucket}/{name}", json={"expiresIn": expires},
                    headers=project.headers("service_role"))
    assert r.status_code == 200, r.text
    return str(r.json()["signedURL"]).split("token=", 1)[1]


def _upload_token(project: Project, client: httpx.Client, bucket: str, name: str, upsert: bool) -> str:
    extra = {"x-upsert": "true"} if upsert else {}
    r = client.post(f"{_s(project)}/object/upload/sign/{bucket}/{name}", json={},
                    headers=project.headers("service_role", **extra))
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _signed_put(project: Project, client: httpx.Client, bucket: str, name: str, token: str, data: bytes,
                upsert: str | None = None) -> httpx.Response:
    # As storage-js's uploadToSignedUrl: no apikey needed beyond the client's, x-upsert always sent.
    headers = project.headers(**{"content-type": "text/plain"})
    if upsert is not None:
        headers["x-upsert"] = upsert
    return no_500(client.put(f"{_s(project)}/object/upload/sign/{bucket}/{name}", params={"token": token},
                             content=data, headers=headers))


@pytest.fixture(scope="module")
def bucket_a(project_a: Project) -> str:
    with httpx.Client(timeout=30) as c:
        return make_bucket(project_a, c)


def test_a_download_token_is_not_an_upload_token(project_a: Project, bucket_a: str, client: httpx.Client) -> None:
    _put(project_a, client, bucket_a, "dl.txt", b"original")
    token = _download_token(project_a, client, bucket_a, "dl.txt")
    for upsert in ("true", "false", None):
        storage_error(_signed_put(project_a, client, bucket_a, "dl.txt", token, b"overwritten", upsert), "InvalidJWT")
    # nor for a new object at a path it was never meant for
    storage_error(_signed_put(project_a, client, bucket_a, "dl.txt.new", token, b"x", "true"), "InvalidJWT")
    assert _read(project_a, client, bucket_a, "dl.txt") == b"original"


def test_an_upload_token_is_not_a_download_token(project_a: Project, bucket_a: str, client: httpx.Client) -> None:
    _put(project_a, client, bucket_a, "secret.txt", b"secret")
    token = _upload_token(project_a, client, bucket_a, "secret.txt", upsert=True)
    r = no_500(client.get(f"{_s(project_a)}/object/sign/{bucket_a}/secret.txt", params={"token": token},
                          headers={"x-project-ref": project_a.ref}))
    storage_error(r, "InvalidJWT")
    assert b"secret" not in r.content


def test_a_create_only_upload_token_never_overwrites(project_a: Project, bucket_a: str, client: httpx.Client) -> None:
    name = f"once-{uuid.uuid4().hex[:6]}.txt"
    token = _upload_token(project_a, client, bucket_a, name, upsert=False)
    assert _signed_put(project_a, client, bucket_a, name, token, b"first", "false").status_code == 200
    # the same token again, asking for an overwrite: refused as a duplicate, bytes unchanged
    body = storage_error(_signed_put(project_a, client, bucket_a, name, token, b"second", "true"), "Duplicate")
    assert body["statusCode"] == "409"
    assert _read(project_a, client, bucket_a, name) == b"first"
    # minted before someone else created the object: still no overwrite
    late = f"late-{uuid.uuid4().hex[:6]}.txt"
    token = _upload_token(project_a, client, bucket_a, late, upsert=False)
    _put(project_a, client, bucket_a, late, b"theirs")
    storage_error(_signed_put(project_a, client, bucket_a, late, token, b"mine", "true"), "Duplicate")
    assert _read(project_a, client, bucket_a, late) == b"theirs"


def test_an_upsert_token_overwrites_as_storage_js_sends_it(project_a: Project, bucket_a: str,
                                                           client: httpx.Client) -> None:
    """createSignedUploadUrl(path, {upsert: true}) then uploadToSignedUrl (which sends `x-upsert: false`)."""
    _put(project_a, client, bucket_a, "up.txt", b"old")
    token = _upload_token(project_a, client, bucket_a, "up.txt", upsert=True)
    assert _signed_put(project_a, client, bucket_a, "up.txt", token, b"new", "false").status_code == 200
    assert _read(project_a, client, bucket_a, "up.txt") == b"new"


def test_tokens_are_bound_to_bucket_and_path(project_a: Project, bucket_a: str, client: httpx.Client) -> None:
    other = make_bucket(project_a, client)
    _put(project_a, client, bucket_a, "p/a.txt", b"a")
    _put(project_a, client, other, "p/a.txt", b"other bucket")
    dl = _download_token(project_a, client, bucket_a, "p/a.txt")
    up = _upload_token(project_a, client, bucket_a, "p/new.txt", upsert=True)
    for bucket, name in ((other, "p/a.txt"), (bucket_a, "p/a.txt2"), (bucket_a, "p//a.txt"),
                         (bucket_a, "P/a.txt")):
        r = no_500(client.get(f"{_s(project_a)}/object/sign/{bucket}/{name}", params={"token": dl},
                              headers={"x-project-ref": project_a.ref}))
        assert r.status_code >= 400 and b"other bucket" not in r.content
    for bucket, name in ((other, "p/new.txt"), (bucket_a, "p/new.txt.x")):
        assert _signed_put(project_a, client, bucket, name, up, b"x", "true").status_code >= 400
    assert _read(project_a, client, other, "p/new.txt") is None


def test_tokens_of_one_project_are_refused_by_the_other(project_a: Project, project_b: Project,
                                                        client: httpx.Client) -> None:
    shared = "shared-" + uuid.uuid4().hex[:8]
    for project in (project_a, project_b):
        make_bucket(project, client, shared)
        _put(project, client, shared, "f.txt", f"data of {project.ref}".encode())
    for own, other in ((project_a, project_b), (project_b, project_a)):
        dl = _download_token(other, client, shared, "f.txt")
        up = _upload_token(other, client, shared, "f.txt", upsert=True)
        r = no_500(client.get(f"{_s(own)}/object/sign/{shared}/f.txt", params={"token": dl},
                              headers={"x-project-ref": own.ref}))
        storage_error(r, "InvalidJWT")
        r = no_500(client.put(f"{_s(own)}/object/upload/sign/{shared}/f.txt", params={"token": up},
                              content=b"crossed", headers={**own.headers(), "x-upsert": "true"}))
        storage_error(r, "InvalidJWT")
        assert _read(own, client, shared, "f.txt") == f"data of {own.ref}".encode()
        # even a token signed with this project's own secret must name this project
        now = int(time.time())
        forged = sign_hs256({"url": f"{shared}/f.txt", "purpose": "download", "ref": other.ref, "iat": now,
                             "exp": now + 60}, own.jwt_secret)
        r = no_500(client.get(f"{_s(own)}/object/sign/{shared}/f.txt", params={"token": forged},
                              headers={"x-project-ref": own.ref}))
        storage_error(r, "InvalidJWT")


def test_other_jwts_of_the_project_are_not_url_tokens(project_a: Project, bucket_a: str,
                                                      client: httpx.Client) -> None:
    """A user's access token, the anon key, a token shaped like the old `{url}` tokens: none opens a signed URL;
    and a URL token is no bearer token."""
    _put(project_a, client, bucket_a, "jwt.txt", b"jwt")
    now = int(time.time())
    url = f"{bucket_a}/jwt.txt"
    candidates = [
        project_a.anon_key,
        project_a.service_role_key,
        project_a.user_token(str(uuid.uuid4()), url=url),
        sign_hs256({"url": url, "iat": now, "exp": now + 60}, project_a.jwt_secret),
        sign_hs256({"url": url, "purpose": "upload", "upsert": True, "ref": project_a.ref, "iat": now,
                    "exp": now + 60}, project_a.jwt_secret),
        sign_hs256({"url": url, "purpose": "download", "ref": project_a.ref, "iat": now}, project_a.jwt_secret),
    ]
    for token in candidates:
        r = no_500(client.get(f"{_s(project_a)}/object/sign/{bucket_a}/jwt.txt", params={"token": token},
                              headers={"x-project-ref": project_a.ref}))
        storage_error(r, "InvalidJWT")
    for token in candidates[2:4] + candidates[5:]:  # [4] is a genuine upload token (tested below it is no more)
        r = no_500(client.put(f"{_s(project_a)}/object/upload/sign/{bucket_a}/jwt.txt", params={"token": token},
                              content=b"x", headers={**project_a.headers(), "x-upsert": "true"}))
        assert r.status_code >= 400
    assert _read(project_a, client, bucket_a, "jwt.txt") == b"jwt"
    dl = _download_token(project_a, client, bucket_a, "jwt.txt")
    r = no_500(client.get(f"{_s(project_a)}/object/{bucket_a}/jwt.txt", headers=project_a.headers(token=dl)))
    assert r.status_code >= 400 and r.content != b"jwt"


def test_public_render_and_tus_paths_take_no_url_token(project_a: Project, project_b: Project, bucket_a: str,
                                                       client: httpx.Client) -> None:
    _put(project_a, client, bucket_a, "priv.txt", b"private")
    dl = _download_token(project_a, client, bucket_a, "priv.txt")
    for path in (f"/object/public/{bucket_a}/priv.txt", f"/object/info/public/{bucket_a}/priv.txt",
                 f"/render/image/sign/{bucket_a}/priv.txt", f"/render/image/public/{bucket_a}/priv.txt",
                 f"/object/authenticated/{bucket_a}/priv.txt"):
        r = no_500(client.get(_s(project_a) + path, params={"token": dl}, headers=project_a.headers()))
        assert r.status_code >= 400 and b"private" not in r.content, (path, r.status_code)
    # a TUS upload URL belongs to its project and its creator
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                    {"bucketName": bucket_a, "objectName": "tus-x.txt", "contentType": "text/plain"}.items())
    user = project_a.user_token(str(uuid.uuid4()))
    r = no_500(client.post(_s(project_a) + "/upload/resumable", headers=project_a.headers(
        "service_role", **{"tus-resumable": "1.0.0", "upload-length": "4", "upload-metadata": meta})))
    assert r.status_code == 201, r.text
    upload_id = r.headers["location"].rsplit("/", 1)[1]
    patch = {"tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream"}
    for headers in (project_b.headers("service_role", **patch), project_a.headers(token=user, **patch),
                    project_a.headers(**patch)):
        url = (project_b if headers["x-project-ref"] == project_b.ref else project_a).url
        r = no_500(client.patch(f"{url}/storage/v1/upload/resumable/{upload_id}", content=b"evil", headers=headers))
        assert r.status_code == 404, r.text
    assert _read(project_a, client, bucket_a, "tus-x.txt") is None
