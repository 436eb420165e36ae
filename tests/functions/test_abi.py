"""The CGI (WAGI) encoding of requests and responses, sans I/O."""

from __future__ import annotations

import pytest

from madbase.functions.abi import (
    AbiError,
    FunctionRequest,
    cgi_environ,
    encode_cgi_response,
    parse_cgi_response,
    request_url,
)
from madbase.functions.runner import Limits, limits_from

REQ = FunctionRequest("post", "/hello/a/b", "x=1&y=2",
                      (("host", "localhost:8000"), ("content-type", "application/json"), ("x-a", "1"),
                       ("x-a", "2"), ("authorization", "Bearer t")), b"{}")


def test_environ_carries_request_and_headers() -> None:
    env = dict(cgi_environ(REQ, {"FOO": "bar", "PATH_INFO": "shadow", "HTTP_HOST": "shadow"}))
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/hello"
    assert env["PATH_INFO"] == "/a/b"
    assert env["QUERY_STRING"] == "x=1&y=2"
    assert env["REQUEST_URI"] == "/hello/a/b?x=1&y=2"
    assert env["X_FULL_URL"] == "http://localhost:8000/functions/v1/hello/a/b?x=1&y=2"
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "2"
    assert env["HTTP_X_A"] == "1, 2"
    assert env["HTTP_AUTHORIZATION"] == "Bearer t"
    assert env["HTTP_HOST"] == "localhost:8000"
    assert env["SERVER_NAME"] == "localhost" and env["SERVER_PORT"] == "8000"
    assert env["FOO"] == "bar"
    assert "HTTP_CONTENT_TYPE" not in env


def test_request_url_honours_forwarded_headers() -> None:
    req = FunctionRequest("GET", "/f", "", (("host", "a"), ("x-forwarded-proto", "https"),
                                            ("x-forwarded-host", "api.example.com")), b"")
    assert request_url(req) == "https://api.example.com/functions/v1/f"


@pytest.mark.parametrize("raw, status, headers, body", [
    (b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope\n\nx", 404, (("content-type", "text/plain"),),
     b"nope\n\nx"),
    (b"Content-Type: a/b\n\n\r\n\r\nz", 200, (("content-type", "a/b"),), b"\r\n\r\nz"),
    (b"Location: /x\n\n", 302, (("location", "/x"),), b""),
    (b"\r\nbody", 200, (), b"body"),
    (b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", 200, (("set-cookie", "a=1"), ("set-cookie", "b=2")), b""),
])
def test_parse_response(raw: bytes, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> None:
    assert parse_cgi_response(raw) == (status, headers, body)


@pytest.mark.parametrize("raw", [b"", b"hello world", b"Status: abc\n\n", b"Status: 99\n\n", b"bad header\n\n",
                                 b"x y: 1\n\n", b"A: " + b"x" * 70000 + b"\n\n"])
def test_malformed_responses(raw: bytes) -> None:
    with pytest.raises(AbiError):
        parse_cgi_response(raw)


def test_encode_roundtrip() -> None:
    raw = encode_cgi_response(201, [("content-type", "application/json")], b'{"a":1}')
    assert parse_cgi_response(raw) == (201, (("content-type", "application/json"),), b'{"a":1}')


def test_limits_from_config() -> None:
    assert limits_from(None) == Limits()
    assert limits_from({"cpu_time_ms": 50, "memory_mb": 10**9}) == Limits(cpu_time_ms=50, memory_mb=2048)
    with pytest.raises(ValueError):
        limits_from({"wall_clock_ms": "1"})
