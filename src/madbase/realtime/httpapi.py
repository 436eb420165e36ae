"""Realtime's HTTP endpoints on the request kit (core/kit): the broadcast API and the status route.

Routes (below `/realtime/v1`; the WebSocket path `/websocket` is not routed here, see app.py):
  POST /api/broadcast                              {"messages":[{topic,event,payload,private}]} → 202
  POST /api/broadcast/{name}/events/{event}        JSON or binary body → 202
  GET  /api/status                                 service_role only: sockets, subscriptions, WAL lag

Bodies are read by the kit's bounded reader (8 MB, Plug's default parser limit: 413 past it; each message's
payload is limited per project on top). A client that disconnects mid-body raises ClientGone: a truncated
body is never broadcast. Every refusal is a `RealtimeHttpError`, rendered once as `{"message", ...}` with its
status (Supabase Realtime's shape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from madbase.core import jsonutil
from madbase.core.context import RequestContext
from madbase.core.kit import BodyErrors, Request, Response, Route, RouteTable, ServiceKit, route
from madbase.core.types import Receive, Scope
from madbase.realtime import protocol as pr
from madbase.realtime.limits import PAYLOAD_TOO_LARGE, payload_size
from madbase.realtime.rls import may_access_topic

if TYPE_CHECKING:
    from madbase.realtime.app import RealtimeApp
    from madbase.realtime.hub import ProjectHub

PREFIX = "/realtime/v1"
# Whole request body (Plug's default parser limit); each message's payload is limited per project.
MAX_BODY = 8_000_000


class RealtimeHttpError(Exception):
    """A refusal of the HTTP API: status and the JSON body (`message`, sometimes `errors`)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **extra}


class Call(Request):
    """The kit's request plus the realtime app (hubs, fan-out)."""

    __slots__ = ("app",)

    def __init__(self, app: RealtimeApp, scope: Scope, receive: Receive, ctx: RequestContext, *,
                 params: tuple[str, ...] = (), subpath: str = "", operation: str = "", body_limit: int = 0,
                 body_errors: BodyErrors | None = None) -> None:
        super().__init__(scope, receive, ctx, params=params, subpath=subpath, operation=operation,
                         body_limit=body_limit, body_errors=body_errors)
        self.app = app


def _loads(raw: bytes) -> Any:
    try:
        return jsonutil.loads(raw)
    except (ValueError, jsonutil.JSONDecodeError):
        raise RealtimeHttpError(400, "Invalid JSON body") from None


async def _may_send_private(ctx: RequestContext, hub: ProjectHub, name: str) -> bool:
    if ctx.auth.role == "service_role":
        return True
    await hub.ready()
    pool = await hub.pool()
    return await may_access_topic(pool, name, "broadcast", ctx.auth.role, ctx.auth.claims_json, write=True)


def _take_rate(hub: ProjectHub, count: int) -> None:
    """The project's messages-per-second limit for HTTP broadcasts (Supabase's 429 messages)."""
    limit = hub.limits.events_per_second
    if hub.events_rate.take(limit, count):
        return
    message = ("Too many messages to broadcast, please reduce the batch size" if count > 1
               and hub.events_rate.count < limit else "You have exceeded your rate limit")
    raise RealtimeHttpError(429, message)


async def broadcast_many(call: Call) -> Response:
    ctx, app = call.ctx, call.app
    body = _loads(await call.read())
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        raise RealtimeHttpError(422, "messages must be a list")
    hub = app.hub_for(ctx)
    for item in messages:
        if not isinstance(item, dict) or not isinstance(item.get("topic"), str) \
                or not isinstance(item.get("event"), str):
            raise RealtimeHttpError(422, "each message needs a topic and an event")
    limits = hub.limits
    sizes = [payload_size(item.get("payload", {})) for item in messages]
    if any(size > limits.max_payload_bytes for size in sizes):
        # Supabase's changeset errors, one entry per message; the status is 413 (Payload Too Large).
        errors = [{"payload": [PAYLOAD_TOO_LARGE]} if size > limits.max_payload_bytes else {} for size in sizes]
        raise RealtimeHttpError(413, PAYLOAD_TOO_LARGE, errors={"messages": errors})
    _take_rate(hub, len(messages))
    for item in messages:
        name = item["topic"].removeprefix("realtime:")
        if item.get("private") and not await _may_send_private(ctx, hub, name):
            continue
        payload = {"type": "broadcast", "event": item["event"], "payload": item.get("payload", {})}
        app.broadcast(hub, pr.room_of("realtime:" + name, bool(item.get("private"))), payload)
    return Response(202)


async def broadcast_one(call: Call) -> Response:
    ctx, app = call.ctx, call.app
    name, event = call.params
    raw = await call.read()
    payload: Any = raw
    if (call.header("content-type") or "").startswith("application/json"):
        payload = _loads(raw) if raw else {}
    hub = app.hub_for(ctx)
    if payload_size(payload) > hub.limits.max_payload_bytes:
        raise RealtimeHttpError(413, PAYLOAD_TOO_LARGE, errors={"payload": [PAYLOAD_TOO_LARGE]})
    _take_rate(hub, 1)
    private = call.query.get("private", "false") == "true"
    if private and not await _may_send_private(ctx, hub, name):
        raise RealtimeHttpError(403, "You do not have permissions to write to this Channel topic")
    app.broadcast(hub, pr.room_of("realtime:" + name, private),
                  {"type": "broadcast", "event": event, "payload": payload})
    return Response(202)


async def status(call: Call) -> Response:
    app = call.app
    hub = app.hubs.get(call.ctx.project.ref)
    body: dict[str, Any] = {"node": app.node, "sockets": app.sockets}
    if hub is not None:
        body.update({
            "topics": len(hub.topics),
            "subscriptions": len(hub.index),
            "ghosts": len(hub.ghosts),
            "consumer": hub.consumer_running,
            "slot": hub.store.slot, "lag_bytes": hub.lag_bytes, "lagging": hub.lagging,
            "delivered": hub.delivery.delivered, "replication_error": hub.pg_error, "log_gaps": hub.log_gaps,
        })
    return Response.json(body)


Handler = Callable[[Call], Awaitable[Response]]

ROUTES: RouteTable[Handler] = RouteTable([
    route("POST", "/api/broadcast", broadcast_many, name="realtime.broadcast.many", body_limit=MAX_BODY),
    route("POST", "/api/broadcast/{name}/events/{event}", broadcast_one, name="realtime.broadcast.one",
          body_limit=MAX_BODY),
    route("GET", "/api/status", status, name="realtime.status", roles=("service_role",)),
])


def _render(err: Exception) -> Response:
    assert isinstance(err, RealtimeHttpError)
    return Response.json(err.body, err.status)


def _not_found(method: str, path: str) -> Exception:
    return RealtimeHttpError(404, "Not found")


def _forbidden(route: Route[Any], ctx: RequestContext) -> Exception:
    return RealtimeHttpError(403, "service_role required")


KIT = ServiceKit(name="realtime", prefix=PREFIX, error_type=RealtimeHttpError, render=_render,
                 not_found=_not_found, forbidden=_forbidden,
                 body_errors=BodyErrors(too_large=lambda limit: RealtimeHttpError(413, "Payload too large"),
                                        bad_json=lambda message: RealtimeHttpError(400, "Invalid JSON body")))
