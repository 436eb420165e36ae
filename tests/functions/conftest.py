"""Edge-function fixtures: test modules built for real (C with Debian's clang + wasi-libc, WAT with
wasmtime.wat2wasm), a server of its own with a control database, and a deploy helper using /admin/v1."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import wasmtime

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MadbaseProcess, create_database, external_db_env

MODULES = Path(__file__).parent / "modules"

# A minimal WAT command module: answers a fixed CGI response through fd_write (WASI preview 1).
HELLO_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Content-Type: text/plain\\r\\nX-Wat: yes\\r\\n\\r\\nhello from wat %s")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const %d))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def wat_module(tag: str = "v1") -> bytes:
    text = "Content-Type: text/plain\r\nX-Wat: yes\r\n\r\nhello from wat " + tag
    return bytes(wasmtime.wat2wasm(HELLO_WAT % (tag, len(text.encode()))))


def build_c(source: Path, out: Path) -> bytes:
    subprocess.run(["clang", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wl,--strip-all", "-o", str(out),
                    str(source)], check=True, capture_output=True, timeout=120)
    return out.read_bytes()


@pytest.fixture(scope="session")
def echo_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_c(MODULES / "echo.c", tmp_path_factory.mktemp("wasm") / "echo.wasm")


@pytest.fixture(scope="package")
def fn_server(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadbaseProcess]:
    db_url = asyncio.run(create_database(pg_cluster, "fn"))
    proc = MadbaseProcess(tmp_path_factory.mktemp("fn-server"), external_db_env(db_url)).start()
    try:
        yield proc
    finally:
        proc.stop()


def deploy(server: MadbaseProcess, slug: str, wasm: bytes, **manifest: Any) -> dict[str, Any]:
    """Deploy a .wasm through the admin API (JSON, base64) and return the function as answered."""
    body = {"slug": slug, "wasm_base64": base64.b64encode(wasm).decode(), **manifest}
    r = httpx.post(f"{server.url}/admin/v1/projects/{server.project_ref}/functions", json=body,
                   headers=server.admin_headers(), timeout=120)
    assert r.status_code == 201, r.text
    return dict(r.json())


def admin(server: MadbaseProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("timeout", 60)
    return httpx.request(method, f"{server.url}/admin/v1/projects/{server.project_ref}{path}",
                         headers=server.admin_headers(), **kwargs)


def invoke(server: MadbaseProcess, method: str, path: str, *, token: str | None = None, **kwargs: Any
           ) -> httpx.Response:
    headers = {**server.headers(token), **kwargs.pop("headers", {})}
    return httpx.request(method, f"{server.url}/functions/v1/{path}", headers=headers, timeout=60, **kwargs)
