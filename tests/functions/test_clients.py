"""The official clients against deployed functions: functions-js (supabase-js 2.119.0) and supabase-py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from supabase import Client, ClientOptions, create_client
from supabase_functions.errors import FunctionsHttpError, FunctionsRelayError

from tests.functions.conftest import deploy
from tests.support.servers import MadbaseProcess

JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def functions(fn_server: MadbaseProcess, echo_wasm: bytes) -> tuple[str, str]:
    deploy(fn_server, "client-echo", echo_wasm, limits={"cpu_time_ms": 200, "wall_clock_ms": 5000})
    deploy(fn_server, "client-hook", echo_wasm, verify_jwt=False)
    return "client-echo", "client-hook"


def run_node(env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(["node", str(JS / "functions" / "invoke.mjs")], env={**os.environ, **env}, cwd=JS,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


async def test_supabase_js_invoke(fn_server: MadbaseProcess, functions: tuple[str, str]) -> None:
    out = await asyncio.to_thread(run_node, {"SUPABASE_URL": fn_server.url, "ANON_KEY": fn_server.anon_key,
                                             "ECHO": functions[0], "HOOK": functions[1]})
    assert out["json"] == {"data": {"hello": "world", "n": [1, 2]}, "error": None, "path": ""}
    assert out["text"]["data"] == "some text" and out["text"]["type"].startswith("text/plain")
    assert out["binary"] == {"data": [0, 1, 2, 255], "error": None}
    assert out["form"] == {"field": "value", "file": "file body", "error": None}
    get = out["get"]
    assert (get["method"], get["path"], get["query"], get["custom"]) == ("GET", "/sub", "x=1", "yes")
    assert get["clientInfo"].startswith("supabase-js") and get["apikey"] == fn_server.anon_key
    assert get["auth"] == f"Bearer {fn_server.anon_key}"
    assert out["non2xx"] == {"error": "http", "status": 418, "body": {"error": "as asked"}}
    assert out["missing"] == {"error": "relay", "status": 404}
    assert out["limit"] == {"error": "http", "status": 546, "code": "WORKER_LIMIT"}
    assert out["badJwt"] == {"error": "http", "status": 401}
    assert out["hookWithBadJwt"] == {"data": "hook body", "error": None}


def test_supabase_py_invoke(fn_server: MadbaseProcess, functions: tuple[str, str]) -> None:
    with httpx.Client(timeout=60) as http:
        _supabase_py(create_client(fn_server.url, fn_server.anon_key, ClientOptions(httpx_client=http)), functions)


def _supabase_py(client: Client, functions: tuple[str, str]) -> None:
    echo, hook = functions
    data = client.functions.invoke(echo, invoke_options={"body": {"a": 1}, "responseType": "json"})
    assert data == {"a": 1}
    assert client.functions.invoke(f"{echo}?q=1", invoke_options={"body": "text"}) == b"text"
    assert client.functions.invoke(echo, invoke_options={"body": b"\x00\x01"}) == b"\x00\x01"
    with pytest.raises(FunctionsHttpError) as http_error:
        client.functions.invoke(f"{echo}/status?code=409")
    assert http_error.value.status == 409
    with pytest.raises(FunctionsRelayError) as relay:
        client.functions.invoke("no-such-function")
    assert relay.value.status == 404
    client.functions.set_auth("garbage")
    with pytest.raises(FunctionsHttpError) as unauthorized:
        client.functions.invoke(echo, invoke_options={"body": "x"})
    assert unauthorized.value.status == 401
    assert client.functions.invoke(hook, invoke_options={"body": "ok"}) == b"ok"
