"""Realtime's contribution to the control plane (`Service(admin_routes=...)`, docs/admin-operations.md), with
the right realtime.read:

- `GET /projects/{ref}/realtime/connections`: the sockets of this server process that joined a channel of the
  project — client address, role, user, protocol version, their channels (topic, private, postgres_changes
  bindings, presence key) — and the process's socket count;
- `GET /projects/{ref}/realtime/replication`: the project's replication slot as PostgreSQL sees it (active,
  WAL retained, wal_status, the consumer's backend) and this process's consumer (running, lag, last error,
  subscriptions, ghosts).

Both read the running realtime app (its hubs, found through core/serviceapps.py): they describe this process
(`node`); behind a load balancer each process answers for its own sockets, while the slot is one per project.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from madbase.core import serviceapps
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.numbers import ascii_uint
from madbase.core.platform import AdminRequest
from madbase.realtime.store import slot_name

MAX_LISTED = 1000


def _app(request: AdminRequest) -> Any:
    app = serviceapps.app_of(request.ctx.runtime, "realtime")
    if app is None:
        raise MessageError(503, "the realtime service is not running")
    return app


def _channel_json(ch: Any) -> dict[str, Any]:
    return {"topic": ch.topic, "private": bool(ch.config.private), "role": ch.role,
            "postgres_changes": [{"schema": s.binding.schema, "table": s.binding.table, "event": s.binding.event,
                                  "filter": getattr(s.binding, "filter", None)} for s in ch.subs],
            "presence_key": ch.presence_key or None}


async def list_connections(request: AdminRequest) -> Response:
    app = _app(request)
    limit = ascii_uint(request.query.get("limit") or str(MAX_LISTED), 9)
    if limit is None or limit < 1:
        raise MessageError(400, "limit must be a positive integer")
    hub = app.hubs.get(request.project.ref)
    sockets: dict[int, tuple[Any, list[Any]]] = {}
    if hub is not None:
        for channels in list(hub.topics.values()):
            for ch in list(channels):
                outlet = ch.outlet
                sockets.setdefault(id(outlet), (outlet, []))[1].append(ch)
    out = []
    for outlet, channels in sockets.values():
        ctx = getattr(outlet, "ctx", None)
        out.append({
            "client_ip": getattr(ctx, "client_ip", None), "request_id": getattr(ctx, "request_id", None),
            "role": getattr(getattr(ctx, "auth", None), "role", None),
            "user_id": getattr(getattr(ctx, "auth", None), "user_id", None),
            "vsn": getattr(outlet, "vsn", None),
            "channels": sorted((_channel_json(ch) for ch in channels), key=lambda c: str(c["topic"])),
        })
        if len(out) >= min(limit, MAX_LISTED):
            break
    return Response.json({"connections": out, "next_cursor": None, "node": app.node,
                          "process_sockets": app.sockets})


async def replication(request: AdminRequest) -> Response:
    app = _app(request)
    project = request.project
    hub = app.hubs.get(project.ref)
    consumer: dict[str, Any] = {"node": app.node, "started": False}
    if hub is not None:
        consumer.update({"started": hub.started, "running": hub.consumer_running, "lag_bytes": hub.lag_bytes,
                         "lagging": hub.lagging, "error": hub.pg_error, "subscriptions": len(hub.index),
                         "ghosts": len(hub.ghosts), "topics": len(hub.topics), "delivered": hub.delivery.delivered,
                         "log_gaps": hub.log_gaps})
    pool = await request.ctx.runtime.pools.get(project)
    slot: dict[str, Any] | None = None
    try:
        async with pool.acquire() as conn:
            database = str(await conn.fetchval("select current_database()"))
            name = slot_name(database)
            row = await conn.fetchrow(
                "select slot_name, plugin, slot_type, active, active_pid, wal_status, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint as retained_bytes, "
                "confirmed_flush_lsn::text as confirmed_flush_lsn, restart_lsn::text as restart_lsn "
                "from pg_replication_slots where slot_name = $1", name)
            wal_level = await conn.fetchval("select current_setting('wal_level')")
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise MessageError(503, f"cannot reach the project database: {exc}") from None
    if row is not None:
        slot = dict(row)
    return Response.json({"slot_name": name, "slot": slot, "wal_level": wal_level, "consumer": consumer})


ADMIN_ROUTES: tuple[Route[Any], ...] = (
    route("GET", "/projects/{ref}/realtime/connections", list_connections, name="admin.realtime.connections",
          right="realtime.read"),
    route("GET", "/projects/{ref}/realtime/replication", replication, name="admin.realtime.replication",
          right="realtime.read"),
)
