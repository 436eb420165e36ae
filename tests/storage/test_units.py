"""Pure parts without I/O: key and bucket-name rules, size/MIME limits, Range parsing, the list planner,
upload bodies (raw headers, streaming multipart parser)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from madbase.storage import bodies, errors, keys, limits, listing, ranges


def test_keys_and_bucket_names() -> None:
    assert keys.check_key("a/b c/ü.png") == "a/b c/ü.png"
    for bad in ("", "/abs", "dir/", "a//b", "a/../b", "./a", "tab\tname", "x" * 1025):
        with pytest.raises(errors.StorageError) as e:
            keys.check_key(bad)
        assert e.value.code == "InvalidKey"
    assert keys.normalize_upload_key("//a//b") == "a/b"
    assert keys.check_bucket_name("avatars-1.public") == "avatars-1.public"
    for bad in ("", "a/b", " lead", "x" * 101, None, 5):
        with pytest.raises(errors.StorageError):
            keys.check_bucket_name(bad)


def test_sizes_and_mime_types() -> None:
    # Decimal units with three significant digits, as Storage's parseFileSizeToBytes.
    assert limits.parse_size("20MB") == limits.parse_size("20mb") == 20_000_000
    assert limits.parse_size("1.5kb") == 1500 and limits.parse_size("2GB") == 2_000_000_000
    assert limits.parse_size("1.2345mb") == 1_230_000 and limits.parse_size("100b") == 100
    assert limits.parse_size(1000) == 1000
    assert limits.parse_size(None) is None and limits.parse_size(0) is None and limits.parse_size("") is None
    for bad in ("lots", -1, True, [1], "1tb", "1mib"):
        with pytest.raises(errors.StorageError):
            limits.parse_size(bad)
    assert limits.mime_allowed("image/png", ["image/*"])
    assert limits.mime_allowed("Text/Plain; charset=utf-8", ["text/plain"])
    assert not limits.mime_allowed("application/pdf", ["image/*", "text/plain"])
    assert limits.mime_allowed("anything/x", None)
    assert limits.effective_limit(100, 50) == 50 and limits.effective_limit(None, 0) == 0
    assert limits.effective_limit(None, 7) == 7


def test_ranges() -> None:
    assert ranges.parse_range(None, 10) is None
    assert ranges.parse_range("bytes=0-4", 10) == (0, 4)
    assert ranges.parse_range("bytes=5-", 10) == (5, 9)
    assert ranges.parse_range("bytes=-3", 10) == (7, 9)
    assert ranges.parse_range("bytes=8-100", 10) == (8, 9)
    assert ranges.parse_range("bytes=0-1,3-4", 10) is None
    assert ranges.parse_range("items=0-1", 10) is None
    for bad in ("bytes=10-", "bytes=5-2", "bytes=-0"):
        with pytest.raises(errors.StorageError) as e:
            ranges.parse_range(bad, 10)
        assert e.value.http == 416


def test_list_plan() -> None:
    plan = listing.plan_list({"prefix": "a/b", "limit": 5, "offset": 2, "search": "x",
                              "sortBy": {"column": "created_at", "order": "desc"}})
    assert (plan.prefix, plan.level, plan.limit, plan.offset, plan.column, plan.order) == (
        "a/b/", 3, 5, 2, "created_at", "desc")
    assert plan.args("bkt") == ["bkt", "a/b/", "x", 3, 5, 2, "a/b0"]
    assert listing.upper_bound("") is None and listing.upper_bound("a\U0010ffff") == "b"
    assert "order by kind, created_at desc" in plan.sql()
    assert listing.plan_list({}).level == 1
    for bad in ({"sortBy": {"column": "size"}}, {"sortBy": {"order": "up"}}, {"limit": -1}, {"prefix": 3},
                {"limit": "x"}):
        with pytest.raises(errors.StorageError):
            listing.plan_list(bad)


async def _feed(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("piece", [1, 7, 64, 100_000])
async def test_multipart_streaming(piece: int) -> None:
    payload = bytes(range(256)) * 40
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n3600\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"a\": 1}\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"\"; filename=\"blob\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--XyZ--\r\n")
    parsed = await bodies.multipart_body("multipart/form-data; boundary=XyZ", _feed(body, piece))
    assert parsed.content_type == "image/png" and parsed.cache_control == "max-age=3600"
    assert parsed.user_metadata == {"a": 1}
    assert b"".join([c async for c in parsed.chunks]) == payload


async def test_multipart_truncated_is_an_error() -> None:
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n" + b"a" * 1000)
    parsed = await bodies.multipart_body("multipart/form-data; boundary=XyZ", _feed(body, 100))
    with pytest.raises(errors.StorageError):
        _ = [c async for c in parsed.chunks]
    with pytest.raises(errors.StorageError):
        await bodies.multipart_body("multipart/form-data", _feed(body, 100))


def test_raw_body_headers() -> None:
    async def empty() -> AsyncIterator[bytes]:
        yield b""

    meta = base64.b64encode(b'{"k": "v"}').decode()
    raw = bodies.raw_body({"content-type": "image/png", "cache-control": "max-age=10", "x-metadata": meta,
                           "content-length": "12"}, empty())
    assert (raw.content_type, raw.cache_control, raw.user_metadata, raw.content_length) == (
        "image/png", "max-age=10", {"k": "v"}, 12)
    raw = bodies.raw_body({}, empty())
    assert raw.content_type == bodies.DEFAULT_CONTENT_TYPE and raw.cache_control == "no-cache"
    with pytest.raises(errors.StorageError):
        bodies.raw_body({"x-metadata": "!!notbase64"}, empty())
    assert bodies.cache_control_value("3600") == "max-age=3600"


def test_operation_names_are_explicit_and_unchanged() -> None:
    """`storage.operation` (what RLS policies see) is data on each route, equal to the names once derived from
    the handlers' module and function names: renaming code must not change what existing policies match."""
    from madbase.storage.app import ROUTES

    families = {"buckets": "bucket", "tus_http": "resumable"}
    for r in ROUTES.routes:
        module = r.handler.__module__.rsplit(".", 1)[-1]
        assert r.name == f"storage.{families.get(module, 'object')}.{r.handler.__name__}", r.pattern
    names = ROUTES.names()
    assert names["POST /object/{bucket}/{path*}"] == "storage.object.upload"
    assert names["GET /bucket"] == "storage.bucket.list_buckets"
    assert names["PATCH /upload/resumable/{upload_id}"] == "storage.resumable.patch"
    found = ROUTES.match("DELETE", "/object/b/")
    assert found is not None and found.route.name == "storage.object.remove_many"
    found = ROUTES.match("POST", "/object/sign/b/a/c.txt")
    assert found is not None and found.route.name == "storage.object.sign_one" and found.params == ("b", "a/c.txt")
