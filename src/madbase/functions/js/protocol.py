"""The host ↔ guest protocol of the JS runtime, sans I/O (docs/functions-js.md, "Protocol").

In: stdin carries one JSON line (method, url, headers, body length, fresh entropy) and then the body bytes.
Out: the guest writes frames to stdout, each `<kind> <meta length> <body length>\\n<meta JSON><body>`:
K booted, R response, X failure ({"kind": "memory"}), F outbound fetch ({id, method, url, headers}), S idle
state ({"timer": ms until the next timer or -1, "fetches": n}). Host → guest calls are small JS expressions.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

from madbase.functions.abi import FunctionRequest, FunctionResult


@dataclass(frozen=True, slots=True)
class Frame:
    kind: str
    meta: dict[str, Any]
    body: bytes


class FrameReader:
    """Accumulates stdout bytes and yields complete frames."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            head = self._buf[:nl].split(b" ")
            if len(head) != 3 or not head[1].isdigit() or not head[2].isdigit():
                raise ValueError("malformed frame from the JS runtime")
            meta_len, body_len = int(head[1]), int(head[2])
            end = nl + 1 + meta_len + body_len
            if len(self._buf) < end:
                break
            meta = json.loads(self._buf[nl + 1:nl + 1 + meta_len])
            frames.append(Frame(head[0].decode(), meta, self._buf[nl + 1 + meta_len:end]))
            self._buf = self._buf[end:]
        return frames


def header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def request_url(request: FunctionRequest) -> str:
    """The URL `req.url` shows: `/<name>[/<sub>]` on the caller's host, as Supabase's edge runtime does."""
    host = header(request.headers, "x-forwarded-host") or header(request.headers, "host") or "localhost"
    proto = (header(request.headers, "x-forwarded-proto") or "http").split(",")[0].strip() or "http"
    path = request.path
    if path.startswith("/functions/v1/"):
        path = path[len("/functions/v1"):]
    if not path.startswith("/"):
        path = "/" + path
    url = f"{proto}://{host.split(',')[0].strip()}{path}"
    return f"{url}?{request.query}" if request.query else url


def stdin_for(request: FunctionRequest, remote_addr: str | None = None) -> bytes:
    head = {
        "method": request.method.upper(),
        "url": request_url(request),
        "headers": [[k, v] for k, v in request.headers],
        "body_length": len(request.body),
        "entropy": os.urandom(32).hex(),
        "remote_addr": remote_addr or header(request.headers, "x-forwarded-for") or "127.0.0.1",
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + request.body


def fetch_request(frame: Frame) -> FunctionRequest:
    """An F frame as the OutboundFetch record: `path` is the absolute URL (query included), `query` empty."""
    meta = frame.meta
    headers = tuple((str(k), str(v)) for k, v in meta.get("headers", []))
    return FunctionRequest(str(meta["method"]), str(meta["url"]), "", headers, frame.body)


def settle_call(fetch_id: int, result: FunctionResult) -> bytes:
    """The JS expression that resolves (or rejects) fetch `fetch_id` with the host's result."""
    if result.error is not None:
        reason = {"blocked": "the host is not in this function's allow-list",
                  "network": "network error"}.get(result.error, result.error)
        message = f"error sending request: {reason}"
        return f"__madbase.reject({fetch_id},{json.dumps(message)})".encode()
    headers = json.dumps([[k, v] for k, v in result.headers], ensure_ascii=False)
    try:
        # text bodies travel as a JS string literal (cheap to parse); anything else as base64
        text = result.body.decode("utf-8")
        body = json.dumps(text, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return f"__madbase.settle({fetch_id},{result.status},\"\",{headers},{body})".encode()
    except UnicodeDecodeError:
        b64 = base64.b64encode(result.body).decode()
        return f"__madbase.settleB64({fetch_id},{result.status},\"\",{headers},\"{b64}\")".encode()
