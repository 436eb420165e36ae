"""The dashboard served by the server itself at `/_/`: a platform service (no project, no apikey) answering
its committed static files. The browser code talks only to `/admin/v1` (session cookie + CSRF token) and the
public APIs, so everything it does is scriptable too. See docs/dashboard.md.

`/_/` and any path without a file extension answer `index.html` (the app routes by the URL's hash; a deep link
still loads the app); other paths answer the file or 404. GET and HEAD only. Every answer carries a strict
Content-Security-Policy (scripts and styles from this origin only, no framing).
"""

from __future__ import annotations

from madbase.core import jsonutil
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp, Headers, Receive, Scope, Send
from madbase.dashboard import files

PREFIX = "/_"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self' ws: wss:; frame-src 'none'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_SECURITY: Headers = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def _lookup(table: dict[str, files.StaticFile], path: str) -> files.StaticFile | None:
    rel = path[len(PREFIX):].lstrip("/")
    if ".." in rel.split("/"):
        return None
    if rel == "" or "." not in rel.rsplit("/", 1)[-1]:
        return table.get("index.html")
    return table.get(rel)


async def _plain(send: Send, status: int, message: str, extra: Headers | None = None) -> None:
    body = jsonutil.dumps({"message": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or ()), *_SECURITY]})
    await send({"type": "http.response.body", "body": body})


def build(runtime: Runtime) -> ASGIApp:
    table = files.load()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        path: str = scope["path"]
        method = scope["method"]
        if path == PREFIX:  # `/_` → `/_/`: relative module URLs resolve below the prefix
            await _plain(send, 308, "moved", [(b"location", b"/_/")])
            return
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, "method not allowed", [(b"allow", b"GET, HEAD")])
            return
        found = _lookup(table, path)
        if found is None:
            await _plain(send, 404, "no such dashboard file")
            return
        headers = dict(scope["headers"])
        common: Headers = [(b"content-type", found.content_type.encode()), (b"etag", found.etag.encode()),
                           (b"cache-control", b"no-cache"), (b"vary", b"accept-encoding"), *_SECURITY]
        if headers.get(b"if-none-match", b"").decode("latin-1") == found.etag:
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        body = found.body
        if found.gzipped is not None and b"gzip" in headers.get(b"accept-encoding", b""):
            body = found.gzipped
            common.append((b"content-encoding", b"gzip"))
        common.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": common})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app


service = Service(name="dashboard", prefix=PREFIX, build=build, platform=True, body_limit=1024)
