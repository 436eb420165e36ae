"""Functions from three toolchains through one ABI: WAT (wasmtime.wat2wasm), C (Debian clang + wasi-libc; the
other suites) and AssemblyScript (npm assemblyscript + @assemblyscript/wasi-shim, pinned in asc/)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.functions.conftest import deploy, invoke, wat_module
from tests.support.servers import MadbaseProcess

ASC = Path(__file__).parent / "asc"


@pytest.fixture(scope="module")
def asc_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if not (ASC / "node_modules" / ".bin" / "asc").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ASC, check=True,
                       capture_output=True, timeout=300)
    out = tmp_path_factory.mktemp("asc") / "hello.wasm"
    subprocess.run([str(ASC / "node_modules" / ".bin" / "asc"), "hello.ts", "--config",
                    "node_modules/@assemblyscript/wasi-shim/asconfig.json", "-O2", "-o", str(out)], cwd=ASC,
                   check=True, capture_output=True, timeout=300)
    return out.read_bytes()


def test_assemblyscript_function(fn_server: MadbaseProcess, asc_wasm: bytes) -> None:
    deploy(fn_server, "asc-hello", asc_wasm)
    r = invoke(fn_server, "POST", "asc-hello?name=ada", content=b"12345")
    assert r.status_code == 200, r.text
    assert r.json() == {"greeting": "hello ada", "method": "POST", "body_bytes": 5}
    assert r.headers["x-language"] == "AssemblyScript"


def test_wat_function(fn_server: MadbaseProcess) -> None:
    deploy(fn_server, "wat-hello", wat_module("lang"))
    r = invoke(fn_server, "GET", "wat-hello")
    assert (r.status_code, r.text, r.headers["x-wat"]) == (200, "hello from wat lang", "yes")
