"""A shared JsRunner (QuickJS compiled once per machine, cached) and helpers to invoke a JS function."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from madbase.functions.abi import FunctionRequest, FunctionResult
from madbase.functions.js.runner import JsRunner
from madbase.functions.runner import Limits, OutboundFetch


@pytest.fixture(scope="session")
def js_runner() -> JsRunner:
    return JsRunner()


def request(method: str = "POST", path: str = "/hello", body: bytes | str | dict[str, Any] = b"",
            headers: dict[str, str] | None = None, query: str = "") -> FunctionRequest:
    hdrs = {"host": "localhost:54321", **(headers or {})}
    if isinstance(body, dict):
        body = json.dumps(body)
        hdrs.setdefault("content-type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    return FunctionRequest(method, path, query, tuple(hdrs.items()), body)


Invoke = Callable[..., FunctionResult]


@pytest.fixture
def invoke(js_runner: JsRunner) -> Invoke:
    """invoke(source, request=None, env=None, limits=None, fetch=None) with a fresh deploy of `source`."""

    def run(source: str | bytes, req: FunctionRequest | None = None, env: dict[str, str] | None = None,
            limits: Limits | None = None, fetch: OutboundFetch | None = None) -> FunctionResult:
        prepared = js_runner.prepare(source.encode() if isinstance(source, str) else source)
        return js_runner.invoke(prepared, req or request(), env or {}, limits or Limits(), fetch)

    return run
