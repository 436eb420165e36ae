"""The WASM runner on its own: CGI round trip, on-disk compile cache, limits, sandbox, host fetch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from madbase.functions.abi import FunctionRequest, FunctionResult
from madbase.functions.runner import Limits
from madbase.functions.wasm import WasmRunner, decode_fetch_request
from tests.functions.conftest import wat_module

FAST = Limits(cpu_time_ms=300, memory_mb=32, wall_clock_ms=5000)


def req(path: str, query: str = "", body: bytes = b"", method: str = "POST",
        headers: tuple[tuple[str, str], ...] = ()) -> FunctionRequest:
    return FunctionRequest(method, "/echo" + path, query, (("host", "localhost:8000"), *headers), body)


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> WasmRunner:
    return WasmRunner(tmp_path_factory.mktemp("cache"))


def test_wat_module_and_disk_cache(tmp_path: Path) -> None:
    first = WasmRunner(tmp_path)
    prepared = first.prepare(wat_module("cached"))
    assert prepared.compiled and list(tmp_path.glob("*.cwasm"))
    second = WasmRunner(tmp_path).prepare(wat_module("cached"))  # another process: deserialized, not compiled
    assert not second.compiled
    result = first.invoke(prepared, req(""), {}, Limits(), None)
    assert (result.status, result.body, result.error) == (200, b"hello from wat cached", None)
    assert ("x-wat", "yes") in result.headers


def test_invalid_modules_refused(runner: WasmRunner) -> None:
    with pytest.raises(ValueError, match="not a valid WebAssembly module"):
        runner.prepare(b"\0asm garbage")
    with pytest.raises(ValueError, match="does not provide"):
        runner.prepare(bytes(__import__("wasmtime").wat2wasm(
            '(module (import "env" "socket" (func)) (func (export "_start")))')))
    with pytest.raises(ValueError, match="_start"):
        runner.prepare(bytes(__import__("wasmtime").wat2wasm("(module)")))


def test_echo_request(runner: WasmRunner, echo_wasm: bytes) -> None:
    prepared = runner.prepare(echo_wasm)
    result = runner.invoke(prepared, req("/sub/path", "a=1", b'{"x":1}', headers=(("content-type", "application/json"),
                                                                                ("authorization", "Bearer t"))),
                           {"FOO": "bar"}, FAST, None)
    assert result.error is None and result.status == 200
    headers = dict(result.headers)
    assert result.body == b'{"x":1}'
    assert headers["content-type"] == "application/json"
    assert headers["x-path-info"] == "/sub/path" and headers["x-query"] == "a=1"
    assert headers["x-echo-authorization"] == "Bearer t"
    assert "echo POST /sub/path" in result.logs
    assert result.fuel_used > 0 and result.memory_bytes > 0


def test_env_status_and_failures(runner: WasmRunner, echo_wasm: bytes) -> None:
    prepared = runner.prepare(echo_wasm)
    assert runner.invoke(prepared, req("/env", "name=FOO"), {"FOO": "bar"}, FAST, None).body == b"bar"
    assert runner.invoke(prepared, req("/status", "code=418"), {}, FAST, None).status == 418
    crash = runner.invoke(prepared, req("/crash"), {}, FAST, None)
    assert crash.error == "crash" and "about to crash" in crash.logs
    assert runner.invoke(prepared, req("/exit"), {}, FAST, None).error == "crash"
    garbage = runner.invoke(prepared, req("/garbage"), {}, FAST, None)
    assert garbage.error == "crash" and "header section" in garbage.logs


def test_cpu_limit(runner: WasmRunner, echo_wasm: bytes) -> None:
    result = runner.invoke(runner.prepare(echo_wasm), req("/spin"), {}, Limits(cpu_time_ms=100, wall_clock_ms=60_000),
                           None)
    assert result.error == "cpu" and "CPU time limit" in result.logs


def test_wall_clock_limit(runner: WasmRunner, echo_wasm: bytes) -> None:
    started = time.monotonic()
    result = runner.invoke(runner.prepare(echo_wasm), req("/busy"), {}, Limits(cpu_time_ms=60_000, wall_clock_ms=300),
                           None)
    assert result.error == "wall"
    assert time.monotonic() - started < 5


def test_memory_limit(runner: WasmRunner, echo_wasm: bytes) -> None:
    result = runner.invoke(runner.prepare(echo_wasm), req("/eat"), {}, Limits(memory_mb=16, wall_clock_ms=60_000),
                           None)
    assert result.error == "memory" and "malloc failed" in result.logs
    assert result.memory_bytes <= 16 * 2**20
    big = bytes(__import__("wasmtime").wat2wasm('(module (memory 512) (func (export "_start")))'))
    assert runner.invoke(runner.prepare(big), req(""), {}, Limits(memory_mb=16), None).error == "memory"


def test_no_filesystem(runner: WasmRunner, echo_wasm: bytes) -> None:
    result = runner.invoke(runner.prepare(echo_wasm), req("/sandbox"), {}, FAST, None)
    assert result.body == b'{"read_etc_passwd":false,"write_tmp":false,"read_cwd":false}'


def test_host_fetch(runner: WasmRunner, echo_wasm: bytes) -> None:
    prepared = runner.prepare(echo_wasm)
    seen: list[FunctionRequest] = []

    def fetch(request: FunctionRequest) -> FunctionResult:
        seen.append(request)
        if "allowed" not in request.path:
            return FunctionResult(0, (), b"", "", 0, 0, "blocked")
        return FunctionResult(201, (("content-type", "text/plain"),), b"upstream", "", 0, 0, None)

    ok = runner.invoke(prepared, req("/fetch", "url=http://allowed.test/x"), {}, FAST, fetch)
    assert ok.body == b"upstream" and dict(ok.headers)["x-upstream-status"] == "201"
    assert seen[0] == FunctionRequest("GET", "http://allowed.test/x", "", (("x-from", "wasm"),), b"")
    refused = runner.invoke(prepared, req("/fetch", "url=http://other.test/"), {}, FAST, fetch)
    assert refused.status == 502 and refused.body == b'{"fetch_error":-1}' and "refused" in refused.logs
    none = runner.invoke(prepared, req("/fetch", "url=http://allowed.test/"), {}, FAST, None)
    assert none.body == b'{"fetch_error":-1}'


def test_decode_fetch_request() -> None:
    assert decode_fetch_request(b"POST https://a/b\r\nX-A: 1\r\n\r\nbody") == FunctionRequest(
        "POST", "https://a/b", "", (("x-a", "1"),), b"body")
    assert decode_fetch_request(b"GET http://a/") == FunctionRequest("GET", "http://a/", "", (), b"")
    assert decode_fetch_request(b"") is None
    assert decode_fetch_request(b"GET http://a/\r\nbad header\r\n\r\n") is None
