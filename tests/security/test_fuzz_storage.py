"""Property-based fuzzing of the storage API's request shapes: hostile paths (traversal, percent-encoding,
unicode, control characters, very long), headers (content-type, x-upsert, cache-control, x-metadata, range,
TUS headers) and JSON bodies (bucket create/update, sign, list, move/copy, remove, TUS metadata). Whatever
arrives, the answer is never a 500 and never shows internals (`no_500`). Example counts are bounded so the
module runs in well under a minute."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import Project, make_bucket, no_500

# MADBASE_FUZZ_EXAMPLES=500 for a longer, randomised hunt (the default run is fixed and short).
_EXAMPLES = int(os.environ.get("MADBASE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=_EXAMPLES, deadline=None, derandomize="MADBASE_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_SEGMENTS = st.sampled_from(["..", ".", "", "%2e%2e", "%2F", "%00", "%ff", "%", "a%20b", "..%2f..", "~", "\\",
                             "con", "a" * 300, "ü", "\U0001d518", "\u202e", "\ufeff", "*", "?", "#", ";", "%25",
                             "x" * 1100, "f.txt", "dir", "p"])


def _text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=max_size)


PATHS = st.lists(st.one_of(_SEGMENTS, _text(20)), min_size=1, max_size=6).map("/".join)
HEADER_TEXT = st.one_of(st.sampled_from(["", "true", "TRUE", "false", "1", "-1", "99999999999999999999", "bytes=0-",
                                         "bytes=-1", "bytes=5-2", "bytes=0-0,2-3", "bytes=x", "max-age=-1",
                                         "text/plain", "image/png", "text/html; charset=utf-8",
                                         "multipart/form-data", "multipart/form-data; boundary=",
                                         "application/offset+octet-stream", "1.0.0", "0.2.2", "e30=", "!!!"]),
                        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
                        st.text(st.characters(min_codepoint=0xA0, max_codepoint=0xFF), min_size=1, max_size=4))
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                      st.floats(allow_nan=False, allow_infinity=False), _text(30),
                      st.sampled_from(["", "../..", "a/../../b", "*", "%", "f.txt", "dir/", "1e999", "inf",
                                       "name", "created_at", "asc", "desc", "image/*", "50MB", "-1"]))
JSON_ANY = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(_text(8), inner, max_size=4)),
                        max_leaves=12)


def _body(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), JSON_ANY, max_size=len(keys))


def _url(project: Project, *parts: str) -> str:
    return project.url + "/storage/v1/" + "/".join(quote(p, safe="/%") for p in parts)


@pytest.fixture(scope="module")
def fuzz(project_a: Project) -> Iterator[tuple[Project, httpx.Client, str]]:
    with httpx.Client(timeout=30) as c:
        bucket = make_bucket(project_a, c, public=True)
        r = c.post(_url(project_a, "object", bucket, "dir/f.txt"), content=b"0123456789",
                   headers=project_a.headers("service_role", **{"content-type": "text/plain"}))
        assert r.status_code == 200, r.text
        yield project_a, c, bucket


def _send(c: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    if isinstance(kwargs.get("headers"), dict):  # sent as latin-1 bytes: `²` and friends reach the server
        kwargs["headers"] = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in kwargs["headers"].items()]
    try:
        return no_500(c.request(method, url, **kwargs))
    except (httpx.InvalidURL, httpx.LocalProtocolError):  # the client itself refuses to send it: nothing to test
        return httpx.Response(400)


ROLES = st.sampled_from(["anon", "service_role"])


@FUZZ
@given(path=PATHS, bucket_mode=st.sampled_from(["real", "missing", "hostile"]), role=ROLES,
       method=st.sampled_from(["GET", "HEAD", "DELETE"]),
       kind=st.sampled_from(["object", "object/public", "object/authenticated", "object/info",
                             "object/info/public", "object/sign", "render/image/public", "cdn"]),
       rng=HEADER_TEXT, token=HEADER_TEXT)
def test_fuzz_object_paths(fuzz: tuple[Project, httpx.Client, str], path: str, bucket_mode: str, role: str,
                           method: str, kind: str, rng: str, token: str) -> None:
    project, c, real = fuzz
    bucket = {"real": real, "missing": "no-such-bucket", "hostile": "..%2f" + real}[bucket_mode]
    _send(c, method, _url(project, kind, bucket, path), params={"token": token, "download": token},
          headers=project.headers(role, range=rng, **{"if-none-match": token}))


@FUZZ
@given(path=st.one_of(PATHS, st.just("dir/f.txt")), role=ROLES,
       method=st.sampled_from(["POST", "PUT"]), ctype=HEADER_TEXT, upsert=HEADER_TEXT, cache=HEADER_TEXT,
       field=_text(30),
       meta=st.one_of(HEADER_TEXT, JSON_ANY.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode())),
       body=st.binary(max_size=256))
def test_fuzz_uploads(fuzz: tuple[Project, httpx.Client, str], path: str, role: str, method: str, ctype: str,
                      upsert: str, cache: str, field: str, meta: str, body: bytes) -> None:
    project, c, bucket = fuzz
    headers = project.headers(role, **{"content-type": ctype, "x-upsert": upsert, "cache-control": cache,
                                       "x-metadata": meta})
    stored = [_send(c, method, _url(project, "object", bucket, path), content=body, headers=headers)]
    stored.append(_send(c, method, _url(project, "object", bucket, path), files={"": ("f", body, ctype)},
                        headers=project.headers(role, **{"x-upsert": "true"}),
                        data={"cacheControl": field, "contentType": field, "metadata": meta}))
    if any(r.status_code == 200 for r in stored):  # what was stored comes back as headers: still no 500
        _send(c, "GET", _url(project, "object", bucket, path), headers=project.headers("service_role"))


@FUZZ
@given(body=_body(["id", "name", "public", "file_size_limit", "allowed_mime_types", "type", "owner"]), role=ROLES,
       target=st.one_of(st.just(None), _text(30)))
def test_fuzz_buckets(fuzz: tuple[Project, httpx.Client, str], body: dict[str, Any], role: str,
                      target: str | None) -> None:
    project, c, _ = fuzz
    if target is None:
        _send(c, "POST", _url(project, "bucket"), json=body, headers=project.headers(role))
    else:
        _send(c, "PUT", _url(project, "bucket", target or "x"), json=body, headers=project.headers(role))
        _send(c, "GET", _url(project, "bucket", target or "x"), headers=project.headers(role))
    _send(c, "GET", _url(project, "bucket"), params={k: str(v) for k, v in body.items()}, headers=project.headers(role))


@FUZZ
@given(path=PATHS, body=_body(["expiresIn", "paths", "transform", "download"]), role=ROLES,
       upsert=HEADER_TEXT, many=st.booleans())
def test_fuzz_signing(fuzz: tuple[Project, httpx.Client, str], path: str, body: dict[str, Any], role: str,
                      upsert: str, many: bool) -> None:
    project, c, bucket = fuzz
    if many:
        _send(c, "POST", _url(project, "object", "sign", bucket), json=body, headers=project.headers(role))
    else:
        _send(c, "POST", _url(project, "object", "sign", bucket, path), json=body, headers=project.headers(role))
        _send(c, "POST", _url(project, "object", "upload", "sign", bucket, path), json=body,
              headers=project.headers(role, **{"x-upsert": upsert}))


@FUZZ
@given(body=_body(["prefix", "limit", "offset", "sortBy", "search", "with_delimiter", "cursor", "options"]),
       role=ROLES, v2=st.booleans())
def test_fuzz_listing(fuzz: tuple[Project, httpx.Client, str], body: dict[str, Any], role: str, v2: bool) -> None:
    project, c, bucket = fuzz
    _send(c, "POST", _url(project, "object", "list-v2" if v2 else "list", bucket), json=body,
          headers=project.headers(role))


@FUZZ
@given(body=_body(["bucketId", "sourceKey", "destinationKey", "destinationBucket", "copyMetadata", "metadata"]),
       role=ROLES, op=st.sampled_from(["move", "copy"]), upsert=HEADER_TEXT, plausible=st.booleans())
def test_fuzz_move_copy(fuzz: tuple[Project, httpx.Client, str], body: dict[str, Any], role: str, op: str,
                        upsert: str, plausible: bool) -> None:
    project, c, bucket = fuzz
    if plausible:
        body = {"bucketId": bucket, "sourceKey": "dir/f.txt", **{k: v for k, v in body.items() if k != "bucketId"}}
        if op == "move":
            op = "copy"  # keep the fixture object in place
    _send(c, "POST", _url(project, "object", op), json=body, headers=project.headers(role, **{"x-upsert": upsert}))


@FUZZ
@given(body=st.one_of(_body(["prefixes"]), st.builds(lambda p: {"prefixes": p}, st.lists(PATHS, max_size=5))),
       role=ROLES, raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_fuzz_remove(fuzz: tuple[Project, httpx.Client, str], body: dict[str, Any], role: str,
                     raw: bytes | None) -> None:
    project, c, _ = fuzz
    other = "fuzz-remove"  # a bucket that may or may not exist: never the fixture's
    if raw is None:
        _send(c, "DELETE", _url(project, "object", other), json=body, headers=project.headers(role))
    else:
        _send(c, "DELETE", _url(project, "object", other), content=raw,
              headers=project.headers(role, **{"content-type": "application/json"}))


TUS_KEYS = ["bucketName", "objectName", "contentType", "cacheControl", "metadata", "filetype", ""]


@FUZZ
@given(meta=st.dictionaries(st.sampled_from(TUS_KEYS), st.one_of(_text(40), PATHS), max_size=5),
       raw_meta=st.one_of(st.none(), HEADER_TEXT), length=HEADER_TEXT, version=HEADER_TEXT, offset=HEADER_TEXT,
       ctype=HEADER_TEXT, upload_id=st.one_of(_text(40), st.sampled_from(["0" * 32, "..", "%2e%2e", "a" * 500])),
       body=st.binary(max_size=64), role=ROLES, real_bucket=st.booleans())
def test_fuzz_tus(fuzz: tuple[Project, httpx.Client, str], meta: dict[str, str], raw_meta: str | None,
                  length: str, version: str, offset: str, ctype: str, upload_id: str, body: bytes, role: str,
                  real_bucket: bool) -> None:
    project, c, bucket = fuzz
    if real_bucket:
        meta["bucketName"] = bucket
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    headers = {"tus-resumable": version, "upload-length": length,
               "upload-metadata": raw_meta if raw_meta is not None else encoded, "content-type": ctype,
               "upload-offset": offset, "x-upsert": "true" if real_bucket else "false"}
    r = _send(c, "POST", _url(project, "upload", "resumable"), content=body, headers=project.headers(role, **headers))
    if r.status_code == 201 and meta.get("objectName"):  # finished at creation: read it back
        _send(c, "GET", _url(project, "object", bucket, meta["objectName"]), headers=project.headers("service_role"))
    location = r.headers.get("location", "")
    target = location.rsplit("/", 1)[1] if location else upload_id
    for method in ("HEAD", "PATCH", "DELETE", "OPTIONS"):
        _send(c, method, _url(project, "upload", "resumable", target or "x"),
              content=body if method == "PATCH" else b"", headers=project.headers(role, **headers))
