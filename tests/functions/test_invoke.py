"""`/functions/v1` against a real server: a C (WASI) function deployed through /admin/v1 and invoked over HTTP."""

from __future__ import annotations

import importlib.util
import time

import httpx
import jwt
import pytest

from tests.functions.conftest import admin, deploy, invoke, wat_module
from tests.support.servers import MadbaseProcess


@pytest.fixture(scope="module")
def echo(fn_server: MadbaseProcess, echo_wasm: bytes) -> dict[str, object]:
    return deploy(fn_server, "echo", echo_wasm, env={"GREETING": "hi"},
                  limits={"cpu_time_ms": 300, "memory_mb": 32, "wall_clock_ms": 3000})


def test_echo_bodies_and_request(fn_server: MadbaseProcess, echo: dict[str, object]) -> None:
    assert echo["version"] == 1 and echo["verify_jwt"] is True and echo["kind"] == "wasm"
    r = invoke(fn_server, "POST", "echo/sub/path?a=1&b=two", json={"hello": "world"})
    assert r.status_code == 200, r.text
    assert r.json() == {"hello": "world"}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-path-info"] == "/sub/path" and r.headers["x-query"] == "a=1&b=two"
    assert r.headers["x-script-name"] == "/echo" and r.headers["x-method"] == "POST"
    assert r.headers["x-echo-apikey"] == fn_server.anon_key
    assert r.headers["x-echo-authorization"] == f"Bearer {fn_server.anon_key}"
    binary = bytes(range(256)) * 10
    r = invoke(fn_server, "PUT", "echo", content=binary, headers={"content-type": "application/octet-stream"})
    assert r.content == binary and r.headers["x-method"] == "PUT"
    r = invoke(fn_server, "PATCH", "echo", content="plain text", headers={"content-type": "text/plain"})
    assert r.text == "plain text"
    r = invoke(fn_server, "POST", "echo", files={"file": ("a.txt", b"file body")}, data={"field": "v"})
    assert r.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b"file body" in r.content and b'name="field"' in r.content
    r = invoke(fn_server, "GET", "echo?x=1")
    assert r.status_code == 200 and r.headers["x-method"] == "GET" and r.content == b""
    r = invoke(fn_server, "DELETE", "echo")
    assert r.headers["x-method"] == "DELETE"


def test_trace_context_reaches_the_function(fn_server: MadbaseProcess, echo: dict[str, object]) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = invoke(fn_server, "GET", "echo", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
                                                   "x-correlation-id": "order-42"})
    seen = r.headers["x-echo-traceparent"]
    assert seen.startswith(f"00-{trace_id}-") and seen != f"00-{trace_id}-00f067aa0ba902b7-01"  # our span
    assert r.headers["x-echo-x-correlation-id"] == "order-42"
    r = invoke(fn_server, "GET", "echo")  # no incoming trace: the one the gateway started
    assert r.headers["x-echo-traceparent"].split("-")[1] != trace_id


def test_env_and_caller_jwt(fn_server: MadbaseProcess, echo: dict[str, object]) -> None:
    user = jwt.encode({"sub": "u1", "role": "authenticated", "exp": int(time.time()) + 600}, fn_server.jwt_secret)
    r = invoke(fn_server, "GET", "echo", token=user)
    assert r.headers["x-echo-authorization"] == f"Bearer {user}"
    for name, value in (("GREETING", "hi"), ("SUPABASE_ANON_KEY", fn_server.anon_key),
                        ("SUPABASE_SERVICE_ROLE_KEY", fn_server.service_role_key),
                        ("SUPABASE_PROJECT_REF", fn_server.project_ref), ("SUPABASE_URL", fn_server.url)):
        r = invoke(fn_server, "GET", f"echo/env?name={name}")
        assert (r.status_code, r.text) == (200, value), name
    assert invoke(fn_server, "GET", "echo/env?name=SUPABASE_DB_URL").status_code == 404


def test_verify_jwt(fn_server: MadbaseProcess, echo_wasm: bytes, echo: dict[str, object]) -> None:
    r = httpx.post(f"{fn_server.url}/functions/v1/echo", content=b"x")
    assert r.status_code == 401 and r.json()["message"] == "Missing authorization header"
    assert "x-relay-error" not in r.headers
    forged = jwt.encode({"role": "service_role"}, "not-the-secret-but-long-enough-0123456789")
    r = invoke(fn_server, "POST", "echo", token=forged)
    assert r.status_code == 401 and r.json()["message"] == "Invalid JWT"
    deploy(fn_server, "hook", echo_wasm, verify_jwt=False)
    r = httpx.post(f"{fn_server.url}/functions/v1/hook", content=b"webhook body")
    assert r.status_code == 200 and r.text == "webhook body"


def test_function_status_and_relay_errors(fn_server: MadbaseProcess, echo: dict[str, object]) -> None:
    r = invoke(fn_server, "POST", "echo/status?code=418")
    assert r.status_code == 418 and r.json() == {"error": "as asked"} and "x-relay-error" not in r.headers
    r = invoke(fn_server, "POST", "nope", headers={"origin": "http://app.test"})
    assert r.status_code == 404 and r.headers["x-relay-error"] == "true"
    assert r.json()["code"] == "NOT_FOUND"
    assert r.headers["access-control-allow-origin"] == "*"
    assert "x-relay-error" in r.headers["access-control-expose-headers"].lower()
    pre = httpx.options(f"{fn_server.url}/functions/v1/nope", headers={
        "origin": "http://app.test", "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, x-client-info, apikey, content-type"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "*"
    assert "x-client-info" in pre.headers["access-control-allow-headers"]
    crash = invoke(fn_server, "POST", "echo/crash")
    assert crash.status_code == 500 and crash.json()["code"] == "WORKER_ERROR"


def test_limits(fn_server: MadbaseProcess, echo: dict[str, object]) -> None:
    cpu = invoke(fn_server, "POST", "echo/spin")
    assert cpu.status_code == 546 and cpu.json()["code"] == "WORKER_LIMIT"
    mem = invoke(fn_server, "POST", "echo/eat")
    assert mem.status_code == 546 and "memory" in mem.json()["message"]
    r = admin(fn_server, "PATCH", "/functions/echo", json={"limits": {"cpu_time_ms": 60000, "memory_mb": 32,
                                                                       "wall_clock_ms": 300}})
    assert r.status_code == 200, r.text
    time.sleep(0.5)
    wall = invoke(fn_server, "POST", "echo/busy")
    assert wall.status_code == 504 and wall.json()["code"] == "WORKER_TIMEOUT"
    started = time.monotonic()
    asleep = invoke(fn_server, "POST", "echo/sleep")  # blocked in a host call: the service answers meanwhile
    assert asleep.status_code == 504 and time.monotonic() - started < 4.5
    big = invoke(fn_server, "POST", "echo", content=b"x" * 100, headers={"content-type": "text/plain"})
    assert big.status_code == 200
    admin(fn_server, "PATCH", "/functions/echo", json={"limits": {"cpu_time_ms": 300, "memory_mb": 32,
                                                                  "wall_clock_ms": 3000, "max_body_bytes": 50}})
    time.sleep(0.5)
    big = invoke(fn_server, "POST", "echo", content=b"x" * 100, headers={"content-type": "text/plain"})
    assert big.status_code == 413 and big.headers["x-relay-error"] == "true"
    admin(fn_server, "PATCH", "/functions/echo", json={"limits": {"cpu_time_ms": 300, "memory_mb": 32,
                                                                  "wall_clock_ms": 3000}})


def test_versions_rollback_and_logs(fn_server: MadbaseProcess) -> None:
    first = deploy(fn_server, "wat", wat_module("v1"))
    assert invoke(fn_server, "GET", "wat").text == "hello from wat v1"
    second = deploy(fn_server, "wat", wat_module("v2"))
    assert (first["version"], second["version"]) == (1, 2)
    assert invoke(fn_server, "GET", "wat").text == "hello from wat v2"
    versions = admin(fn_server, "GET", "/functions/wat/versions").json()["versions"]
    assert [(v["version"], v["active"]) for v in versions] == [(2, True), (1, False)]
    r = admin(fn_server, "POST", "/functions/wat/rollback", json={"version": 1})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert invoke(fn_server, "GET", "wat").text == "hello from wat v1"
    assert admin(fn_server, "POST", "/functions/wat/rollback", json={"version": 9}).status_code == 404
    listed = admin(fn_server, "GET", "/functions").json()
    assert {"echo", "wat"} <= {f["slug"] for f in listed["functions"]}
    time.sleep(1.5)  # logs are written in batches every second
    logs = admin(fn_server, "GET", "/functions/wat/logs?limit=2").json()["logs"]
    assert len(logs) == 2 and logs[0]["status"] == 200 and logs[0]["version"] == 1
    assert logs[0]["fuel"] > 0 and logs[0]["memory_bytes"] > 0
    metrics = httpx.get(f"{fn_server.url}/metrics").text
    assert 'madbase_function_invocations_total{function="wat"' in metrics
    assert "madbase_function_duration_seconds_bucket" in metrics
    r = admin(fn_server, "PATCH", "/functions/wat", json={"status": "PAUSED"})
    assert r.json()["status"] == "PAUSED"
    time.sleep(0.5)
    assert invoke(fn_server, "GET", "wat").status_code == 404
    assert admin(fn_server, "DELETE", "/functions/wat").status_code == 200
    assert admin(fn_server, "GET", "/functions/wat").status_code == 404


def test_deploy_refusals(fn_server: MadbaseProcess) -> None:
    url = f"{fn_server.url}/admin/v1/projects/{fn_server.project_ref}/functions"
    h = fn_server.admin_headers()
    assert httpx.post(url, json={"slug": "bad slug!", "wasm_base64": "AA=="}, headers=h).status_code == 400
    r = httpx.post(url, json={"slug": "junk", "wasm_base64": "AGFzbQ=="}, headers=h)
    assert r.status_code == 400 and "WebAssembly" in r.json()["message"]
    if importlib.util.find_spec("madbase.functions.js") is None:  # a server without the JavaScript runner
        r = httpx.post(url, json={"slug": "js", "source": "Deno.serve(() => new Response('x'))"}, headers=h)
        assert r.status_code == 400 and "JavaScript functions are not available" in r.json()["message"]
    r = httpx.post(url, json={"slug": "x", "wasm_base64": "AGFzbQ==", "env": {"SUPABASE_URL": "x"}}, headers=h)
    assert r.status_code == 400 and "reserved" in r.json()["message"]
    assert httpx.post(url, json={"slug": "x"}, headers={"Authorization": "Bearer nope"}).status_code == 401
