"""The `/rest/v1` ASGI app: request → `ApiRequest` → plan (cached schema) → one transaction → response.

Raw ASGI for a lean hot path. Each request runs its one main statement inside the foundation's
`request_transaction` (role, claims, request GUCs, read-only for GET/HEAD); PostgreSQL returns the JSON
body as one text value which is sent as is. Errors are rendered once, in PostgREST's shape.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import asyncpg
import structlog

from madbase.core import jsonutil
from madbase.core.context import RequestContext, get_context
from madbase.core.db import RequestGucs, request_gucs, request_transaction, run_request_statement
from madbase.core.requestscope import ClientGone
from madbase.core.runtime import Runtime
from madbase.core.types import Receive, Scope, Send
from madbase.rest import errors, plancache
from madbase.rest.cache import SchemaRegistry
from madbase.rest.handler import Action, location_header
from madbase.rest.openapi import VISIBILITY_SQL, Visibility, openapi_document
from madbase.rest.plan import PlanOptions
from madbase.rest.request import ApiRequest, parse_request
from madbase.rest.response import (
    CSV_CT,
    GEOJSON_CT,
    JSON_CT,
    OBJECT_CT,
    OPENAPI_CT,
    Response,
    content_range,
    range_status,
    single_object,
)
from madbase.rest.schema import SchemaCache
from madbase.rest.sql import explain_statement, pre_request_call, quote_ident

log = structlog.get_logger("madbase.rest")

PREFIX = "/rest/v1"
_RETRY_CODES = frozenset({"PGRST200", "PGRST202", "PGRST204", "PGRST205", "42703"})
# Preference-Applied lists the applied preferences in PostgREST's order
_APPLIED_ORDER = {k: i for i, k in enumerate(("resolution", "missing", "return", "params", "count", "tx", "handling",
                                              "timezone", "max-affected"))}
# Bodies PostgreSQL builds whole in the statement's own format (sql._csv_expr, GeoJSON), sent as they are
_SQL_BUILT = {"csv": CSV_CT, "geojson": GEOJSON_CT}
_METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"})


class _Rollback(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("rollback")
        self.response = response


class RestApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.registry = SchemaRegistry()
        default = runtime.settings.db_schemas
        self._default_schemas = tuple(s.strip() for s in default.split(",") if s.strip()) or ("public",)

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        await self.registry.close()

    def schemas_for(self, config: dict[str, Any]) -> tuple[str, ...]:
        raw = config.get("db_schemas")
        if isinstance(raw, str) and raw.strip():
            return tuple(s.strip() for s in raw.split(",") if s.strip())
        return self._default_schemas

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            response = await self._handle(scope, receive)
        except errors.ApiError as err:
            response = Response(err.status, err.body(), [(b"content-type", JSON_CT),
                                                         (b"proxy-status", b"PostgREST; error=" + err.code.encode()),
                                                         *err.headers])
        if scope["method"] == "HEAD":
            body = b""
        else:
            body = response.body
        headers = [*response.headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _openapi(self, ctx: RequestContext, pool: asyncpg.Pool, cache: SchemaCache, req: ApiRequest,
                       headers: dict[str, str]) -> Response:
        """The OpenAPI document for the role's view of the schema, memoised per snapshot and visibility."""
        visible = await _visibility(ctx, pool, req.schema, headers)
        key = ("openapi", req.schema, headers.get("host", ""), visible.key())
        doc = cache.memo.get(key)
        if doc is None:
            if len(cache.memo) > 32:
                cache.memo.clear()
            doc = cache.memo[key] = openapi_document(cache, req.schema, key[2], PREFIX, visible)
        return Response(200, doc, [(b"content-type", OPENAPI_CT)])

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        ctx = get_context(scope)
        method: str = scope["method"]
        if method not in _METHODS:
            raise errors.bad_method(method)
        headers: dict[str, str] = {}
        prefer: list[str] = []
        for k, v in scope["headers"]:
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            if name == "prefer":
                prefer.append(value)
            headers[name] = value if name not in headers else headers[name] + ", " + value
        subpath = scope["path"][len(PREFIX):]
        schemas = self.schemas_for(ctx.project.config)
        req = parse_request(method, subpath, scope.get("query_string", b"").decode("latin-1"), headers, prefer,
                            schemas)
        if method == "OPTIONS":
            return Response(200, b"", [(b"allow", b"OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE")])
        body = b""
        if method in ("POST", "PATCH", "PUT"):
            body = await _read_body(receive)
        pool = await ctx.runtime.pools.get(ctx.project)
        entry = self.registry.for_project(ctx.project, schemas)
        try:
            cache = await entry.get(pool)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("schema_cache_load_failed", project_ref=ctx.project.ref, error=str(exc))
            raise errors.ApiError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.",
                                  ) from None
        config = ctx.project.config
        max_rows = config.get("db_max_rows")
        options = PlanOptions(aggregates=bool(config.get("db_aggregates_enabled", False)),
                              max_rows=max_rows if isinstance(max_rows, int) and max_rows > 0 else None)
        if not req.target:
            if method not in ("GET", "HEAD"):
                raise errors.bad_method(method)
            return await self._openapi(ctx, pool, cache, req, headers)
        started = time.perf_counter()
        try:
            action = plancache.plan(req, cache, body, options)
        except errors.ApiError as err:
            if err.code not in _RETRY_CODES or not entry.refresh_on_miss():
                raise
            await entry.wait_reload()
            assert entry.cache is not None
            action = plancache.plan(req, entry.cache, body, options)
        if req.media.media == "plan" and not config.get("db_plan_enabled"):
            raise errors.unacceptable_media(headers.get("accept", ""))
        auth = ctx.auth
        gucs = request_gucs(auth.role, auth.claims, auth.claims_json, method=method, path=subpath,
                            headers=headers)
        names, values = [*gucs.names, "search_path"], [*gucs.values, f"{quote_ident(req.schema)}, public, extensions"]
        cookie = headers.get("cookie")
        if cookie:
            names.append("request.cookies")
            values.append(jsonutil.dumps_str(_cookies(cookie)))
        tz = req.prefer.get("timezone")
        if tz is not None and tz in _timezones():
            names.append("timezone")
            values.append(tz)
            action.applied.append(f"timezone={tz}")
        gucs = RequestGucs(names, values)
        authenticated = auth.role != "anon"
        planned_at = queried_at = time.perf_counter()
        pre = config.get("db_pre_request")
        try:
            if _one_statement(req, action, pre):
                stmt = action.statement
                row = await run_request_statement(pool, gucs, stmt.sql, stmt.args(), stmt.columns,
                                                  readonly=action.readonly)
                queried_at = time.perf_counter()
                response = _respond(req, action, row)
                _apply_response_gucs(response, row)
            else:
                async with request_transaction(pool, gucs, readonly=action.readonly) as conn:
                    if isinstance(pre, str) and pre:
                        await conn.execute(f"SELECT {pre_request_call(pre)}")
                    if req.media.media == "plan":
                        raise _Rollback(await _explain(conn, req, action))  # never keeps an ANALYZE's effects
                    row = await conn.fetchrow(action.statement.sql, *action.statement.bind())
                    planned = None
                    if action.planned is not None:
                        plan = await conn.fetchval(action.planned.sql, *action.planned.bind())
                        planned = int(jsonutil.loads(plan)[0]["Plan"]["Plan Rows"])
                    queried_at = time.perf_counter()
                    response = _respond(req, action, row, planned)
                    _apply_response_gucs(response, row)
                    if action.rollback:
                        raise _Rollback(response)
        except _Rollback as rb:
            response = rb.response
        except asyncpg.PostgresError as exc:
            raise errors.from_pg(exc, authenticated) from None
        except (asyncpg.InterfaceError, OSError) as exc:
            log.warning("database_client_error", project_ref=ctx.project.ref, error=str(exc))
            raise errors.ApiError(503, "PGRST001", "Database client error. Retrying the connection.") from None
        if config.get("server_timing_enabled"):
            done = time.perf_counter()
            timing = (f"plan;dur={(planned_at - started) * 1000:.3f}, "
                      f"transaction;dur={(queried_at - planned_at) * 1000:.3f}, "
                      f"response;dur={(done - queried_at) * 1000:.3f}")
            response.headers.append((b"server-timing", timing.encode()))
        return response


async def _visibility(ctx: RequestContext, pool: asyncpg.Pool, schema: str, headers: dict[str, str]) -> Visibility:
    """What the request's role may see in `schema`, asked in a read-only request transaction of that role."""
    auth = ctx.auth
    gucs = request_gucs(auth.role, auth.claims, auth.claims_json, method="GET", path="/", headers=headers)
    try:
        async with request_transaction(pool, gucs, readonly=True) as conn:
            row = await conn.fetchrow(VISIBILITY_SQL, schema)
    except asyncpg.PostgresError as exc:
        raise errors.from_pg(exc, auth.role != "anon") from None
    assert row is not None
    return Visibility.from_row(row[0], row[1], row[2])


async def _explain(conn: Any, req: ApiRequest, action: Action) -> Response:
    media = req.media
    stmt = explain_statement(action.statement, media.plan_json, media.plan_options)
    rows = await conn.fetch(stmt.sql, *stmt.bind())
    if media.plan_json:
        body = str(rows[0][0]).encode()
        ctype = b'application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8'
    else:
        body = "\n".join(str(r[0]) for r in rows).encode()
        ctype = b'application/vnd.pgrst.plan+text; for="application/json"; charset=utf-8'
    return Response(200, body, [(b"content-type", ctype)])


def _one_statement(req: ApiRequest, action: Action, pre_request: Any) -> bool:
    """Whether the request is its one statement and nothing after it can still undo it, so it may run in one
    round trip (`run_request_statement`, an implicit transaction). Reads always qualify; a write or a call
    only when no check after the statement (single object, max-affected) may need a rollback."""
    if pre_request or req.media.media == "plan" or action.planned is not None or action.rollback:
        return False
    return action.readonly or (not action.single and action.max_affected is None)


def _apply_response_gucs(response: Response, row: Any) -> None:
    """`response.headers` (JSON array of one-key objects) and `response.status` set by SQL during the request."""
    raw_headers, raw_status = row["resp_headers"], row["resp_status"]
    if raw_headers:
        try:
            items = jsonutil.loads(raw_headers)
        except ValueError:
            raise errors.ApiError(500, "PGRST111", "response.headers guc must be a JSON array composed of objects "
                                  "with a single key and a string value") from None
        if not isinstance(items, list):
            items = []
        for item in items:
            if isinstance(item, dict) and len(item) == 1:
                (k, v), = item.items()
                name = str(k).lower().encode("latin-1", "replace")
                response.headers = [h for h in response.headers if h[0] != name]
                response.headers.append((name, str(v).encode("latin-1", "replace")))
    if raw_status:
        if not raw_status.isdigit() or not 100 <= int(raw_status) <= 599:
            raise errors.ApiError(500, "PGRST112", "response.status guc must be a valid status code")
        response.status = int(raw_status)


def _cookies(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out[name] = value
    return out


@functools.cache
def _timezones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone  # a truncated body is never acted on
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _respond(req: ApiRequest, action: Action, row: Any, planned: int | None = None) -> Response:
    total: int | None = row["total"] if action.count else None
    if planned is not None and (action.estimate_above is None or (total or 0) > action.estimate_above):
        total = planned
    page: int = row["page"] or 0
    body_text: bytes | None = row["body"]
    headers: list[tuple[bytes, bytes]] = []
    if action.max_affected is not None and page > action.max_affected:
        raise errors.max_affected(page)
    if action.applied:
        applied = sorted(action.applied, key=lambda a: _APPLIED_ORDER.get(a.partition("=")[0], 99))
        headers.append((b"preference-applied", ", ".join(applied).encode()))
    if action.kind == "call" and action.scalar:
        if action.void:
            return Response(204, b"", headers)
        # a scalar result is one row to PostgREST's counts (`count: 1` in the clients)
        headers.append((b"content-range", content_range(0, page, page if action.count else None)))
        return Response(200, body_text or b"null", [(b"content-type", JSON_CT), *headers])
    media = req.media.media
    if action.kind == "read" or action.kind == "call":
        status = range_status(action.offset, page, total)
        if status == 416:
            raise errors.invalid_range(f"An offset of {action.offset} was requested, but there are only "
                                       f"{total} rows.")
        headers.append((b"content-range", content_range(action.offset, page, total)))
        if media in _SQL_BUILT:  # a composite result is one CSV row / a FeatureCollection too
            return Response(status, body_text or b"", [(b"content-type", _SQL_BUILT[media]), *headers])
        text = body_text or b"[]"
        if action.single:
            if action.object_result and page == 0:
                return Response(200, b"null", [(b"content-type", JSON_CT), *headers])
            text = single_object(text, page)
            ctype = JSON_CT if action.object_result else OBJECT_CT
            return Response(status, text, [(b"content-type", ctype), *headers])
        return Response(status, text, [(b"content-type", JSON_CT), *headers])
    # mutations
    status = action.status
    if action.upsert and (action.kind == "insert" or action.body_wanted):
        status = 201 if (row["inserted"] or 0) > 0 else 200
    if action.count:
        total = page
    if action.kind == "update":
        headers.append((b"content-range", content_range(0, page, total) if page else b"*/*"))
    else:
        headers.append((b"content-range", f"*/{total if total is not None else '*'}".encode()))
    if action.location_pk:
        loc = location_header(action.location_table, action.location_pk, row["location"])
        if loc is not None:
            headers.append((b"location", loc))
    if action.single:
        text = single_object(body_text or b"[]", page)
        if action.body_wanted:
            return Response(201 if status == 201 else 200, text, [(b"content-type", OBJECT_CT), *headers])
    if not action.body_wanted:
        return Response(status if action.kind == "insert" else 204, b"", headers)
    status = 201 if status == 201 else 200
    if media in _SQL_BUILT:
        return Response(status, body_text or b"", [(b"content-type", _SQL_BUILT[media]), *headers])
    text = body_text or b"[]"
    return Response(status, text, [(b"content-type", JSON_CT), *headers])


def build(runtime: Runtime) -> RestApp:
    return RestApp(runtime)
