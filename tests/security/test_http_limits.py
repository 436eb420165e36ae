"""Request heads are bounded before anything else happens: size, header count, request line (431 / 414).

The bytes of a head are counted as they arrive, before the HTTP parser buffers them, so an oversized head
costs the server no memory beyond the limit (the default server: MADBASE_MAX_HEADER_BYTES 64 KB in all,
MADBASE_MAX_HEADER_LINE_BYTES 16 KB per header line, MADBASE_MAX_URL_BYTES 32 KB, MADBASE_MAX_HEADERS 100).
"""

from __future__ import annotations

import json
import socket
import threading

import httpx

from tests.security.conftest import Project, no_500
from tests.security.rawhttp import address, read_response, rss_kb, send_all


def _request(project: Project, extra: list[str], path: str = "/rest/v1/") -> bytes:
    host, port = address(project.url)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}",
             *(f"{k}: {v}" for k, v in project.headers().items()), *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send(project: Project, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(address(project.url)) as sock:
        send_all(sock, raw)
        return read_response(sock)


def test_an_oversized_header_gets_431(project_a: Project) -> None:
    status, raw = _send(project_a, _request(project_a, ["x-big: " + "a" * 100_000]))
    assert status == 431, raw[:300]
    assert b"connection: close" in raw.lower()
    body = raw.partition(b"\r\n\r\n")[2]
    assert json.loads(body) == {"message": "Request header fields too large"}


def test_one_long_header_line_gets_431_even_under_the_total(project_a: Project) -> None:
    status, raw = _send(project_a, _request(project_a, ["x-big: " + "a" * 20_000]))
    assert status == 431, raw[:300]


def test_too_many_headers_get_431(project_a: Project) -> None:
    status, raw = _send(project_a, _request(project_a, [f"x-h{i}: v" for i in range(150)]))
    assert status == 431, raw[:300]
    status, raw = _send(project_a, _request(project_a, [f"x-h{i}: v" for i in range(10_000)]))
    assert status == 431, raw[:300]


def test_a_huge_request_line_gets_414(project_a: Project) -> None:
    status, raw = _send(project_a, _request(project_a, [], path="/rest/v1/items?select=" + "a" * 100_000))
    assert status in (414, 431), raw[:300]
    assert status == 414


def test_ordinary_large_heads_still_pass(project_a: Project, client: httpx.Client) -> None:
    headers = {**project_a.headers(), **{f"x-h{i}": "v" * 50 for i in range(80)}, "x-long": "b" * 12_000}
    r = no_500(client.get(project_a.url + "/rest/v1/", headers=headers))
    assert r.status_code == 200, r.text
    r = no_500(client.get(project_a.url + "/rest/v1/?select=" + "c" * 20_000, headers=project_a.headers()))
    assert r.status_code != 414


def test_giant_headers_do_not_grow_the_server(project_a: Project, client: httpx.Client) -> None:
    """Four connections each sending a 64 MB header: the server refuses early and its memory stays flat."""
    pid = project_a.server.proc.pid  # type: ignore[union-attr]
    before = rss_kb(pid)
    chunk = b"a" * (1 << 20)

    def flood() -> None:
        with socket.create_connection(address(project_a.url)) as sock:
            head = _request(project_a, []).removesuffix(b"\r\n\r\n") + b"\r\nx-huge: "
            if not send_all(sock, head):
                return
            for _ in range(64):
                if not send_all(sock, chunk):
                    return

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    grown_mb = (rss_kb(pid) - before) / 1024
    assert grown_mb < 20, grown_mb
    r = no_500(client.get(project_a.url + "/rest/v1/", headers=project_a.headers()))
    assert r.status_code == 200
