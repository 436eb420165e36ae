"""Outbound HTTP for functions (the `OutboundFetch` runners call): only to the project's own API and the
function's allowed hosts, no redirects followed (a redirect could leave the allow-list), bounded in time and size.

Allow-list entries: `host`, `host:port`, or `*.domain` (any subdomain, any port). The project's own API is
always allowed, and requests to it get `x-project-ref` so they reach the function's project on a
multi-project server.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from madbase.functions.abi import FunctionRequest, FunctionResult

MAX_RESPONSE_BYTES = 10 * 2**20
MAX_TIMEOUT_S = 30.0
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection",
                         "host", "content-length"})


def _host_port(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def allowed(url: str, own_api: str, hosts: Iterable[str]) -> bool:
    """May a function fetch `url`? Its own API (scheme-less host:port match) or an allow-listed host."""
    target = _host_port(url)
    if target is None:
        return False
    _, host, port = target
    own = _host_port(own_api)
    if own is not None and (own[1], own[2]) == (host, port):
        return True
    for entry in hosts:
        entry = entry.strip().lower()
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
            continue
        name, _, want_port = entry.rpartition(":") if entry.rsplit(":", 1)[-1].isdigit() else (entry, "", "")
        if name == host and (not want_port or int(want_port) == port):
            return True
    return False


class HostFetch:
    """One invocation's OutboundFetch (called on the invocation's worker thread, so it blocks)."""

    def __init__(self, own_api: str, project_ref: str, hosts: Iterable[str], deadline: float) -> None:
        self.own_api = own_api
        self.project_ref = project_ref
        self.hosts = tuple(hosts)
        self.deadline = deadline  # time.monotonic() of the invocation's wall-clock limit

    def __call__(self, request: FunctionRequest) -> FunctionResult:
        url = request.path
        if not allowed(url, self.own_api, self.hosts):
            return FunctionResult(0, (), b"", "", 0, 0, "blocked")
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        own = _host_port(self.own_api)
        target = _host_port(url)
        if own is not None and target is not None and (own[1], own[2]) == (target[1], target[2]):
            headers = [(k, v) for k, v in headers if k.lower() != "x-project-ref"] + [
                ("x-project-ref", self.project_ref)]
        timeout = max(0.1, min(MAX_TIMEOUT_S, self.deadline - time.monotonic()))
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client, \
                    client.stream(request.method, url, headers=headers, content=request.body or None) as resp:
                parts: list[bytes] = []
                size = 0
                for chunk in resp.iter_raw():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        return FunctionResult(0, (), b"", "", 0, 0, "network: response too large")
                    parts.append(chunk)
                out_headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1"))
                                    for k, v in resp.headers.raw if k.decode("latin-1").lower() not in _HOP_BY_HOP)
                return FunctionResult(resp.status_code, out_headers, b"".join(parts), "", 0, 0, None)
        except httpx.HTTPError as exc:
            return FunctionResult(0, (), b"", "", 0, 0, f"network: {type(exc).__name__}")
