"""The `/rest/v1` ASGI app: the HTTP glue around REST's pipeline (after PostgREST's App.hs), on the request kit.

parse (`request.parse_request`: scope → `ApiRequest`) → plan (`planner`, through the plan memo `plancache`, on
the schema-cache snapshot) → execute (`execute`: the plan's statement in the request's one transaction) →
respond (`respond`: plan + row → `Response`). The kit (core/kit) routes (one route per HTTP method, all paths:
PostgREST resolves the rest itself), builds the typed request, reads the body (a client gone mid-body raises
ClientGone: a truncated body is never acted on), renders `ApiError` once in PostgREST's shape, sends the
response and times the stages; Server-Timing keeps PostgREST's names (plan, transaction, response), the stage
histogram gets every stage (route, parse, plan, transaction, response, handler, send).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from madbase.core.context import RequestContext
from madbase.core.kit import (
    BodyErrors,
    Dispatcher,
    Request,
    Response,
    Route,
    RouteTable,
    ServiceKit,
    TxSettings,
    route,
)
from madbase.core.runtime import Runtime
from madbase.core.types import Receive, Scope, Send
from madbase.rest import errors, plancache
from madbase.rest.cache import ProjectSchema, SchemaRegistry
from madbase.rest.execute import execute, runner_for, transaction_settings
from madbase.rest.openapi import VISIBILITY_SQL, Visibility, openapi_document
from madbase.rest.planner import DbPlan, PlanOptions, info_plan
from madbase.rest.request import ApiRequest, parse_request
from madbase.rest.respond import respond
from madbase.rest.response import JSON_CT, OPENAPI_CT
from madbase.rest.response import Response as RestResponse
from madbase.rest.schema import SchemaCache

log = structlog.get_logger("madbase.rest")

PREFIX = "/rest/v1"
# Errors a schema change may explain: the plan is retried once on a fresh snapshot
_RETRY_CODES = frozenset({"PGRST200", "PGRST202", "PGRST204", "PGRST205", "42703"})
_ALLOW = [(b"allow", b"OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE")]
_WITH_BODY = frozenset({"POST", "PATCH", "PUT"})
# operation names by method (every path: tables, views and /rpc/ alike are resolved by the planner)
_OPERATIONS = ((("GET", "HEAD"), "rest.read"), ("POST", "rest.create"), ("PATCH", "rest.update"),
               ("PUT", "rest.upsert"), ("DELETE", "rest.delete"), ("OPTIONS", "rest.options"))


def _render(err: Exception) -> Response:
    assert isinstance(err, errors.ApiError)
    return Response.raw(err.status, err.body(), [(b"content-type", JSON_CT),
                                                 (b"proxy-status", b"PostgREST; error=" + err.code.encode()),
                                                 *err.headers])


def _not_found(method: str, path: str) -> Exception:
    return errors.bad_method(method)  # every path is routed: only an unknown method gets here


def _forbidden(route: Route[Any], ctx: RequestContext) -> Exception:
    return errors.ApiError(403, "42501", f"permission denied for {route.name}")  # no REST route declares roles


# The gateway bounds the body (MADBASE_MAX_BODY_BYTES, 413 in its shape); REST adds no limit of its own.
BODY_ERRORS = BodyErrors(too_large=lambda limit: errors.ApiError(413, "PGRST413", "Payload Too Large"),
                         bad_json=errors.invalid_body)
KIT = ServiceKit(name="rest", prefix=PREFIX, error_type=errors.ApiError, render=_render, not_found=_not_found,
                 forbidden=_forbidden, body_errors=BODY_ERRORS, timing_header=("plan", "transaction", "response"))


class RestApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.registry = SchemaRegistry()
        default = runtime.settings.db_schemas
        self._default_schemas = tuple(s.strip() for s in default.split(",") if s.strip()) or ("public",)
        table: RouteTable[Callable[[Request], Awaitable[Response]]] = RouteTable(
            [route(methods, "/{path**}", self._handle, name=name) for methods, name in _OPERATIONS])
        self._dispatch: Dispatcher[Request] = Dispatcher(KIT, table, Request)

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
        await self._dispatch(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        """One request through parse → plan → execute → respond."""
        ctx = request.ctx
        method = request.method
        stages = request.stages
        headers, prefer = _headers(request.scope)
        subpath = request.path[len(PREFIX):]
        schemas = self.schemas_for(ctx.project.config)
        req = parse_request(method, subpath, request.scope.get("query_string", b"").decode("latin-1"), headers,
                            prefer, schemas)
        info = info_plan(req)
        if info is not None and info.kind == "options":
            return Response.raw(200, b"", list(_ALLOW))
        body = await request.read() if method in _WITH_BODY else b""
        pool = await ctx.runtime.pools.get(ctx.project)
        entry = self.registry.for_project(ctx.project, schemas)
        cache = await _schema_cache(ctx, entry, pool)
        config = ctx.project.config
        if info is not None:  # the root: the OpenAPI document
            if method not in ("GET", "HEAD"):
                raise errors.bad_method(method)
            return _sent(method, await self._openapi(ctx, pool, cache, req, headers))
        stages.mark("parse")
        plan = await _plan(req, entry, cache, body, _plan_options(config))
        explain = req.media if req.media.media == "plan" else None
        if explain is not None and not config.get("db_plan_enabled"):
            raise errors.unacceptable_media(headers.get("accept", ""))
        auth = ctx.auth
        settings = transaction_settings(auth, method, subpath, headers, req.schema, plan.prefs.timezone)
        pre = config.get("db_pre_request")
        stages.mark("plan")
        result = await execute(pool, settings, plan, pre_request=pre if isinstance(pre, str) and pre else None,
                               explain=explain, authenticated=auth.role != "anon")
        stages.mark("transaction")
        response = _sent(method, respond(plan, result))
        stages.mark("response")
        return response

    async def _openapi(self, ctx: RequestContext, pool: asyncpg.Pool, cache: SchemaCache, req: ApiRequest,
                       headers: dict[str, str]) -> RestResponse:
        """The OpenAPI document for the role's view of the schema, memoised per snapshot and visibility."""
        visible = await _visibility(ctx, pool, req.schema, headers)
        key = ("openapi", req.schema, headers.get("host", ""), visible.key())
        doc = cache.memo.get(key)
        if doc is None:
            if len(cache.memo) > 32:
                cache.memo.clear()
            doc = cache.memo[key] = openapi_document(cache, req.schema, key[2], PREFIX, visible)
        return RestResponse(200, doc, [(b"content-type", OPENAPI_CT)])


def _sent(method: str, response: RestResponse) -> Response:
    """The respond stage's answer as the kit's response (HEAD: no body, and a length of 0, as before)."""
    return Response.raw(response.status, b"" if method == "HEAD" else response.body, response.headers)


def _headers(scope: Scope) -> tuple[dict[str, str], list[str]]:
    """The request headers by lower-case name (repeated ones joined with ", "), and each Prefer header."""
    headers: dict[str, str] = {}
    prefer: list[str] = []
    for k, v in scope["headers"]:
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        if name == "prefer":
            prefer.append(value)
        headers[name] = value if name not in headers else headers[name] + ", " + value
    return headers, prefer


async def _schema_cache(ctx: RequestContext, entry: ProjectSchema, pool: asyncpg.Pool) -> SchemaCache:
    try:
        return await entry.get(pool)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        log.warning("schema_cache_load_failed", project_ref=ctx.project.ref, error=str(exc))
        raise errors.ApiError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.",
                              ) from None


def _plan_options(config: dict[str, Any]) -> PlanOptions:
    max_rows = config.get("db_max_rows")
    return PlanOptions(aggregates=bool(config.get("db_aggregates_enabled", False)),
                       max_rows=max_rows if isinstance(max_rows, int) and max_rows > 0 else None)


async def _plan(req: ApiRequest, entry: ProjectSchema, cache: SchemaCache, body: bytes,
                options: PlanOptions) -> DbPlan:
    """The plan (through the memo); an unknown name is planned once more on a reloaded snapshot when the
    schema may have changed since (PostgREST's schema-cache reload on a miss)."""
    try:
        return plancache.plan(req, cache, body, options)
    except errors.ApiError as err:
        if err.code not in _RETRY_CODES or not entry.refresh_on_miss():
            raise
    await entry.wait_reload()
    assert entry.cache is not None
    return plancache.plan(req, entry.cache, body, options)


async def _visibility(ctx: RequestContext, pool: asyncpg.Pool, schema: str, headers: dict[str, str]) -> Visibility:
    """What the request's role may see in `schema`, asked in a read-only request transaction of that role."""
    auth = ctx.auth
    settings = TxSettings.for_request(auth, method="GET", path="/", headers=headers)
    async with runner_for(auth.role != "anon").transaction(pool, settings, readonly=True) as conn:
        row = await conn.fetchrow(VISIBILITY_SQL, schema)
    assert row is not None
    return Visibility.from_row(row[0], row[1], row[2])


def build(runtime: Runtime) -> RestApp:
    return RestApp(runtime)
