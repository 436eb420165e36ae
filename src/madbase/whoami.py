"""`GET /gateway/v1/whoami`: the gateway's own authenticated no-op route (project resolved, JWT verified).

Useful to check a key or token against a server, and the fixed point the gateway benchmark measures.
"""

from __future__ import annotations

from madbase.core import jsonutil
from madbase.core.context import get_context
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp, Receive, Scope, Send


def build(runtime: Runtime) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        body = jsonutil.dumps({"project_ref": ctx.project.ref, "role": ctx.auth.role,
                               "sub": ctx.auth.user_id, "request_id": ctx.request_id})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


service = Service(name="gateway", prefix="/gateway/v1", build=build)
