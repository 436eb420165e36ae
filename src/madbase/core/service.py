"""How a service package plugs into the gateway: its prefix, ASGI app factory and error shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from madbase.core import jsonutil
from madbase.core.errors import GatewayError, Kind
from madbase.core.kit.routing import Route
from madbase.core.types import ASGIApp, Headers, Receive, Scope, Send

if TYPE_CHECKING:
    from madbase.core.runtime import Runtime


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    status: int
    body: bytes
    headers: Headers = field(default_factory=list)


def kong_error(err: GatewayError) -> ErrorResponse:
    """The shape Supabase's API gateway (Kong) answers with: `{"message": ..., "hint"?: ...}`."""
    body: dict[str, str] = {"message": err.message}
    if err.hint:
        body["hint"] = err.hint
    headers: Headers = []
    if err.retry_after is not None:
        headers.append((b"retry-after", str(err.retry_after).encode()))
    return ErrorResponse(err.status, jsonutil.dumps(body), headers)


# Kinds decided by the gateway itself in Supabase (Kong) keep Kong's shape whatever the service.
GATEWAY_KINDS = frozenset({Kind.NO_API_KEY, Kind.INVALID_API_KEY, Kind.PROJECT_NOT_FOUND, Kind.PROJECT_DISABLED,
                           Kind.RATE_LIMITED, Kind.BODY_TOO_LARGE})


def _never_open(method: str, path: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    prefix: str
    build: Callable[[Runtime], ASGIApp]
    render_error: Callable[[GatewayError], ErrorResponse] = kong_error
    # Paths (below the prefix) that need no apikey, as Supabase's gateway leaves them open.
    is_open: Callable[[str, str], bool] = _never_open
    # Max request body in bytes; None = the server-wide limit, 0 = unlimited (the service enforces its own).
    body_limit: int | None = None
    # Whether the gateway answers CORS preflights for this service (functions answer their own).
    handles_preflight: bool = True
    # A platform service (/admin/v1) is no project's API: the gateway resolves no project and checks no
    # apikey (the service authenticates its callers itself); its RequestContext has `project_or_none=None`.
    platform: bool = False
    # Control-plane routes this service contributes to /admin/v1 (patterns relative to /admin/v1, e.g.
    # `/projects/{ref}/users`; handlers take core/platform.AdminRequest; each declares `right=`). app.py hands
    # them to the admin service, which never imports the service.
    admin_routes: tuple[Route[Any], ...] = ()


def not_implemented(name: str) -> Callable[[Runtime], ASGIApp]:
    """An app answering a clear JSON 404 for a service that is not built yet."""

    def build(runtime: Runtime) -> ASGIApp:
        body = jsonutil.dumps({"message": f"The {name} API is not available on this server yet",
                               "code": "not_implemented"})

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        return app

    return build
