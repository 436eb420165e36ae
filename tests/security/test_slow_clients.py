"""Slow clients (slowloris) are timed out: a request head must arrive within MADBASE_HEADER_TIMEOUT, a body may pause
at most MADBASE_BODY_IDLE_TIMEOUT and must average MADBASE_BODY_MIN_RATE bytes/s; 408 where an answer can still
be sent, then the connection is closed. A server of its own with short timeouts keeps the tests quick."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.security.conftest import run_sql
from tests.security.rawhttp import address, closed_by_peer, read_response, send_all
from tests.support.servers import MadbaseProcess, create_database, external_db_env

TABLE = """
create table public.slow_notes (id serial primary key, body text);
grant select, insert on public.slow_notes to anon;
grant usage on sequence public.slow_notes_id_seq to anon;
"""


@pytest.fixture(scope="module")
def slow_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "slowcl"))
    env = external_db_env(db_url, MADBASE_HEADER_TIMEOUT="1", MADBASE_BODY_IDLE_TIMEOUT="1",
                          MADBASE_BODY_MIN_RATE="200")
    proc = MadbaseProcess(Path(tmp_path_factory.mktemp("slow-server")), env).start()
    try:
        run_sql(proc.db_url, TABLE)
        with httpx.Client(timeout=10) as client:
            deadline = time.time() + 15
            while time.time() < deadline:
                if client.get(proc.url + "/rest/v1/slow_notes", headers=proc.headers()).status_code == 200:
                    break
                time.sleep(0.2)
        yield proc
    finally:
        proc.stop()


def _head(server: MadbaseProcess, method: str = "POST", length: int | None = None) -> bytes:
    host, port = address(server.url)
    lines = [f"{method} /rest/v1/slow_notes HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             *(f"{k}: {v}" for k, v in server.headers().items())]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_trickled_request_head_gets_408(slow_server: MadbaseProcess) -> None:
    with socket.create_connection(address(slow_server.url)) as sock:
        head = _head(slow_server, "GET")[:-4]
        started = time.monotonic()
        sock.settimeout(5)
        for byte in head[:40]:  # one byte every 0.2 s: the head never completes
            if not send_all(sock, bytes([byte])):
                break
            time.sleep(0.2)
            if time.monotonic() - started > 4:
                break
        status, _ = read_response(sock, 5)
        took = time.monotonic() - started
    assert status == 408
    assert took < 4, took


def test_a_connection_that_sends_nothing_is_closed(slow_server: MadbaseProcess) -> None:
    with socket.create_connection(address(slow_server.url)) as sock:
        assert closed_by_peer(sock, 4)


def test_a_stalled_body_gets_408(slow_server: MadbaseProcess) -> None:
    with socket.create_connection(address(slow_server.url)) as sock:
        send_all(sock, _head(slow_server, length=1000) + b'{"body": "')
        started = time.monotonic()
        status, raw = read_response(sock, 6)
        took = time.monotonic() - started
    assert status == 408, raw[:300]
    assert took < 4, took


def test_a_trickled_body_gets_408(slow_server: MadbaseProcess) -> None:
    """Bytes arrive more often than the idle timeout, but far below the minimum rate."""
    with socket.create_connection(address(slow_server.url)) as sock:
        send_all(sock, _head(slow_server, length=1000))
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8:
            if not send_all(sock, b" "):
                closed = True
                break
            sock.settimeout(0.4)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed = True
                break
            assert data.startswith(b"HTTP/1.1 408"), data[:200]
            closed = True
            break
        took = time.monotonic() - started
    assert closed
    assert took < 5, took
    # nothing half-written: the truncated body was never acted on
    rows = run_sql(slow_server.db_url, "select count(*) from public.slow_notes", fetch=True)
    assert rows[0][0] == 0


def test_ordinary_uploads_with_pauses_still_work(slow_server: MadbaseProcess) -> None:
    body = b'{"body": "' + b"x" * 4000 + b'"}'
    with socket.create_connection(address(slow_server.url)) as sock:
        send_all(sock, _head(slow_server, length=len(body)))
        for i in range(0, len(body), 1000):
            send_all(sock, body[i:i + 1000])
            time.sleep(0.3)
        status, raw = read_response(sock, 5)
    assert status == 201, raw[:300]


def test_many_slow_clients_do_not_block_a_normal_request(slow_server: MadbaseProcess) -> None:
    socks = []
    try:
        for _ in range(50):
            sock = socket.create_connection(address(slow_server.url))
            send_all(sock, _head(slow_server, length=100_000) + b"[")
            socks.append(sock)
        with httpx.Client(timeout=5) as client:
            started = time.monotonic()
            r = client.get(slow_server.url + "/rest/v1/slow_notes", headers=slow_server.headers())
            assert r.status_code == 200
            assert time.monotonic() - started < 1
        # and all of them are gone within a few seconds
        assert all(closed_by_peer(sock, 5) for sock in socks)
    finally:
        for sock in socks:
            sock.close()


def test_a_body_cut_short_by_a_disconnect_is_never_acted_on(slow_server: MadbaseProcess) -> None:
    """A CSV body whose client leaves half-way: the rows that did arrive are not inserted."""
    host, port = address(slow_server.url)
    lines = ["POST /rest/v1/slow_notes HTTP/1.1", f"Host: {host}:{port}", "Content-Type: text/csv",
             *(f"{k}: {v}" for k, v in slow_server.headers().items()), "Content-Length: 10000"]
    with socket.create_connection((host, port)) as sock:
        send_all(sock, ("\r\n".join(lines) + "\r\n\r\nbody\ncut-short-1\ncut-short-2\n").encode())
        time.sleep(0.3)
    time.sleep(1)
    rows = run_sql(slow_server.db_url, "select count(*) from public.slow_notes where body like 'cut-short%'",
                   fetch=True)
    assert rows[0][0] == 0
