"""Secrets (sealed in the control DB), outbound fetch through the allow-list, a deploy seen by a second server
process within a second, and the per-function concurrency bound."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.admin.conftest import control_sql
from tests.functions.conftest import admin, deploy, invoke, wat_module
from tests.support.servers import MadbaseProcess, external_db_env


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"upstream saw {self.path} from {self.headers.get('x-from')}".encode()
        self.send_response(203)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[int, int]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Upstream) for _ in range(2)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield servers[0].server_address[1], servers[1].server_address[1]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_secrets_visible_to_functions_and_sealed(fn_server: MadbaseProcess, echo_wasm: bytes) -> None:
    deploy(fn_server, "secrets", echo_wasm)
    r = admin(fn_server, "POST", "/secrets", json=[{"name": "STRIPE_KEY", "value": "sk_test_very_secret"},
                                                   {"name": "OTHER", "value": "2"}])
    assert r.status_code == 201, r.text
    listed = admin(fn_server, "GET", "/secrets").json()
    names = [s["name"] for s in listed]  # other tests of the package may have set secrets of their own
    assert {"OTHER", "STRIPE_KEY"} <= set(names) and names == sorted(names)
    assert all(set(s) == {"name", "updated_at"} for s in listed)
    time.sleep(0.5)
    assert invoke(fn_server, "GET", "secrets/env?name=STRIPE_KEY").text == "sk_test_very_secret"
    rows = control_sql(fn_server, "select name, value_enc from madbase_control.secrets where project_ref = $1 "
                       "and name = any($2)", fn_server.project_ref, ["STRIPE_KEY", "OTHER"], fetch=True)
    assert len(rows) == 2 and all(b"very_secret" not in bytes(r["value_enc"]) for r in rows)
    dump = control_sql(fn_server, "select string_agg(t::text, ' ') as t from madbase_control.secrets t", fetch=True)
    assert "very_secret" not in dump[0]["t"]
    assert admin(fn_server, "POST", "/secrets", json=[{"name": "SUPABASE_X", "value": "1"}]).status_code == 400
    assert admin(fn_server, "DELETE", "/secrets", json=["STRIPE_KEY"]).json()["deleted"] == 1
    time.sleep(0.5)
    assert invoke(fn_server, "GET", "secrets/env?name=STRIPE_KEY").status_code == 404
    audit = control_sql(fn_server, "select string_agg(details::text, ' ') as d from madbase_control.audit_log",
                        fetch=True)
    assert "very_secret" not in (audit[0]["d"] or "")


def test_fetch_allow_list(fn_server: MadbaseProcess, echo_wasm: bytes, upstreams: tuple[int, int]) -> None:
    allowed_port, other_port = upstreams
    deploy(fn_server, "fetcher", echo_wasm, allowed_hosts=[f"127.0.0.1:{allowed_port}"])
    r = invoke(fn_server, "GET", f"fetcher/fetch?url=http://127.0.0.1:{allowed_port}/hello")
    assert r.status_code == 200 and r.headers["x-upstream-status"] == "203"
    assert r.text == "upstream saw /hello from wasm"
    r = invoke(fn_server, "GET", f"fetcher/fetch?url=http://127.0.0.1:{other_port}/hello")
    assert r.status_code == 502 and r.json() == {"fetch_error": -1}
    r = invoke(fn_server, "GET", "fetcher/fetch?url=file:///etc/passwd")
    assert r.json() == {"fetch_error": -1}
    # the project's own API is always reachable (here: REST without a key answers 401)
    r = invoke(fn_server, "GET", f"fetcher/fetch?url={fn_server.url}/rest/v1/")
    assert r.status_code == 200 and r.headers["x-upstream-status"] == "401"
    time.sleep(1.5)
    logs = admin(fn_server, "GET", "/functions/fetcher/logs").json()["logs"]
    assert any("refused: host not allowed" in entry["logs"] for entry in logs)


def test_deploy_seen_by_second_process(fn_server: MadbaseProcess, tmp_path_factory: pytest.TempPathFactory) -> None:
    deploy(fn_server, "multi", wat_module("one"))
    second = MadbaseProcess(tmp_path_factory.mktemp("fn-second"), external_db_env(fn_server.db_url)).start()
    try:
        def call(proc: MadbaseProcess) -> str:
            return invoke(proc, "GET", "multi").text

        assert call(second) == "hello from wat one"  # loaded and cached by the second process
        assert invoke(second, "GET", "late").status_code == 404  # remembered as missing by the second process
        deploy(fn_server, "multi", wat_module("two"))
        deploy(fn_server, "late", wat_module("late"))
        deadline = time.monotonic() + 1.0
        while call(second) != "hello from wat two" or invoke(second, "GET", "late").status_code != 200:
            assert time.monotonic() < deadline, "the second process still serves the old version"
            time.sleep(0.05)
    finally:
        second.stop()


def test_concurrency_bound(fn_server: MadbaseProcess, echo_wasm: bytes) -> None:
    deploy(fn_server, "narrow", echo_wasm, limits={"max_concurrency": 1, "queue": 1, "cpu_time_ms": 60000,
                                                   "wall_clock_ms": 1500})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return list(await asyncio.gather(*[
                client.post(f"{fn_server.url}/functions/v1/narrow/busy", headers=fn_server.headers())
                for _ in range(4)]))

    with ThreadPoolExecutor(1) as pool:
        results = pool.submit(asyncio.run, burst()).result()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(504) == 2 and statuses.count(503) == 2, statuses
    full = next(r for r in results if r.status_code == 503)
    assert full.headers["x-relay-error"] == "true" and full.headers["retry-after"] == "1"
