"""`/functions/v1/<name>[/<subpath>]`: invoke a project's deployed function (docs/functions.md).

On the request kit: one route taking every method. For each request:
1. find the function (this process's registry; none or paused: 404 relay error — a browser's preflight for
   it is answered with CORS headers, so the page sees a relay error rather than a network failure);
2. verify the caller's JWT unless the function has `verify_jwt = false` (401 `Invalid JWT`, as Supabase);
3. read the body (capped by the function's `max_body_bytes`: 413), build the `FunctionRequest` (method, path
   `/<name>/<subpath>`, raw query, every header, body) and the environment (SUPABASE_URL, the keys, the
   project ref, SUPABASE_DB_URL when the project enables it, the manifest's variables, the project's secrets);
4. wait for a slot (per-function concurrency + queue: 503 relay error when full), run the function on the
   functions' thread pool (wasm releases the GIL) under its limits, and answer what it wrote — or 546
   WORKER_LIMIT (CPU, memory), 504 (wall clock), 500 WORKER_ERROR (crash), 503 BOOT_ERROR;
5. record the invocation (status, duration, fuel, memory, logs) and the per-function metrics.
Errors of ours are `{"code", "message"}` with CORS headers; relay-level ones add `x-relay-error: true`, which
functions-js turns into FunctionsRelayError (a function's own non-2xx stays a FunctionsHttpError).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from madbase.core import jsonutil, tracing
from madbase.core.apikeys import NEW_KEY_PREFIX
from madbase.core.authn import bearer_token
from madbase.core.context import RequestContext
from madbase.core.jwt import TokenError
from madbase.core.kit import BodyErrors, Dispatcher, Request, Response, RouteTable, ServiceKit, route
from madbase.core.kit.routing import Route
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.core.types import ASGIApp, Receive, Scope, Send
from madbase.functions.abi import FunctionRequest, FunctionResult
from madbase.functions.deploy import SLUG
from madbase.functions.gate import Gate, GateFull
from madbase.functions.hostfetch import HostFetch
from madbase.functions.invocations import FunctionMetrics, LogWriter
from madbase.functions.registry import Entry, JsUnavailable, Registry, Runners

PREFIX = "/functions/v1"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
CORS_ALLOW_HEADERS = ("authorization, x-client-info, apikey, content-type, x-region, x-retry-count, traceparent, "
                      "tracestate, baggage")
CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
_DROP_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
WALL_GRACE_S = 1.0  # past the function's wall clock, answer 504 even if a host call still blocks its thread
THREADS = 32


class FunctionError(Exception):
    """A failure of ours, rendered `{"code", "message"}` with CORS headers (and `x-relay-error` if `relay`)."""

    def __init__(self, status: int, code: str, message: str, *, relay: bool = False,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.relay = relay
        self.headers = headers


def _cors(origin_sent: bool) -> list[tuple[str, str]]:
    # with an Origin the gateway adds Access-Control-Allow-Origin itself (a second copy would void it)
    out = [("access-control-allow-headers", CORS_ALLOW_HEADERS), ("access-control-allow-methods", CORS_ALLOW_METHODS)]
    if not origin_sent:
        out.append(("access-control-allow-origin", "*"))
    return out


def _render(err: Exception) -> Response:
    assert isinstance(err, FunctionError)
    headers = [*_cors(True), *err.headers]
    if err.relay:
        headers.append(("x-relay-error", "true"))
    return Response(err.status, headers, jsonutil.dumps({"code": err.code, "message": err.message}),
                    media_type="application/json")


NOT_FOUND = "Requested function was not found"
_BODY_ERRORS = BodyErrors(
    too_large=lambda limit: FunctionError(413, "REQUEST_TOO_LARGE", f"Request body exceeds the limit of {limit} bytes",
                                          relay=True),
    bad_json=lambda message: FunctionError(400, "BAD_REQUEST", message),
)
_LIMIT_ERRORS = {
    "cpu": (546, "WORKER_LIMIT", "Function failed due to not having enough compute resources (CPU time limit)"),
    "memory": (546, "WORKER_LIMIT", "Function failed due to not having enough compute resources (memory limit)"),
    "wall": (504, "WORKER_TIMEOUT", "Function timed out (wall clock limit)"),
    "crash": (500, "WORKER_ERROR", "Function exited due to an error (please check logs)"),
    "boot": (503, "BOOT_ERROR", "Function failed to start (please check logs)"),
}


def project_api_url(runtime: Runtime, ref: str) -> str:
    """The URL a function reaches its project's API at (SUPABASE_URL)."""
    public = runtime.settings.public_url
    base = runtime.settings.base_domain
    if not base:
        return public
    scheme, _, rest = public.partition("://")
    port = rest.split("/", 1)[0].rpartition(":")[2] if ":" in rest.split("/", 1)[0] else ""
    return f"{scheme}://{ref}.{base}" + (f":{port}" if port else "")


class FunctionsApp:
    """The service's ASGI app: the kit's dispatcher plus the registry, log writer and thread pool it owns."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.executor = ThreadPoolExecutor(THREADS, thread_name_prefix="fn")
        self.registry: Registry | None = None
        self.logs: LogWriter | None = None
        self.gates: dict[tuple[str, str], Gate] = {}
        self.metrics = FunctionMetrics.of(runtime.metrics.registry)
        kit = ServiceKit(name="functions", prefix=PREFIX, error_type=FunctionError, render=_render,
                         not_found=lambda method, path: FunctionError(404, "NOT_FOUND", NOT_FOUND, relay=True),
                         forbidden=lambda r, ctx: FunctionError(401, "UNAUTHORIZED", "Invalid JWT"),
                         body_errors=_BODY_ERRORS)
        table: RouteTable[Callable[[Request], Awaitable[Response]]] = RouteTable(
            [route(METHODS, "/{name}", self.invoke, name="functions.invoke"),
             route(METHODS, "/{name}/{rest**}", self.invoke, name="functions.invoke.path")])
        self.dispatcher = Dispatcher(kit, table, Request)

    async def startup(self) -> None:
        pool = self.runtime.control_pool
        assert pool is not None
        runners = Runners(self.runtime.settings.data_dir / "functions-cache")
        self.registry = Registry(pool, self.runtime.box, runners, self.executor, self._defaults)
        await self.registry.start()
        self.logs = LogWriter(pool)
        await self.logs.start()

    async def shutdown(self) -> None:
        if self.registry is not None:
            await self.registry.close()
        if self.logs is not None:
            await self.logs.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _defaults(self, ref: str) -> dict[str, Any]:
        found = self.runtime.projects.lookup(ref)
        section = found[0].config.get("functions") if found else None
        return dict(section) if isinstance(section, dict) else {}

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return self.dispatcher(scope, receive, send)

    # -- invoke --------------------------------------------------------------------------------------------
    async def invoke(self, request: Request) -> Response:
        assert self.registry is not None and self.logs is not None
        ctx = request.ctx
        name = request.params[0]
        rest = request.params[1] if len(request.params) > 1 else None
        origin_sent = "origin" in request.headers
        preflight = request.method == "OPTIONS" and "access-control-request-method" in request.headers
        try:
            entry = await self.registry.get(ctx.project.ref, name) if SLUG.match(name) else None
        except JsUnavailable as exc:
            raise FunctionError(503, "BOOT_ERROR", str(exc), relay=True) from None
        except ValueError as exc:  # the artifact no longer prepares (a runtime upgrade?)
            raise FunctionError(503, "BOOT_ERROR", f"Function failed to start: {exc}", relay=True) from None
        if entry is None or entry.deployed.status != "active":
            if preflight:
                return Response(200, [*_cors(origin_sent), ("access-control-max-age", "3600")], b"")
            raise FunctionError(404, "NOT_FOUND", NOT_FOUND, relay=True)
        deployed = entry.deployed
        if deployed.verify_jwt and not preflight:
            _verify_jwt(ctx, request.header("authorization"))
        body = b"" if request.method in ("GET", "HEAD") else await request.read(entry.limits.max_body_bytes)
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        fn_request = FunctionRequest(
            request.method, f"/{name}/{rest}" if rest is not None else f"/{name}", raw_query,
            _with_trace(request.scope["headers"]), body)
        env = await self._env(ctx, entry)
        gate = self.gates.setdefault((ctx.project.ref, name), Gate())
        started = time.perf_counter()
        try:
            async with gate.enter(entry.max_concurrency, entry.queue):
                result = await self._run(entry, fn_request, env, ctx)
        except GateFull:
            raise FunctionError(503, "WORKER_LIMIT", "Too many concurrent invocations of this function",
                                relay=True, headers=(("retry-after", "1"),)) from None
        finally:
            if gate.idle:
                self.gates.pop((ctx.project.ref, name), None)
        elapsed = time.perf_counter() - started
        status = result.status if result.error is None else _LIMIT_ERRORS[result.error][0]
        self.logs.add(ctx.project.ref, name, deployed.version, ctx.request_id, request.method, fn_request.path, status,
                      result.error, elapsed * 1000, result.fuel_used, result.memory_bytes, result.logs)
        self.metrics.observe(ctx.project.ref, name, status, elapsed)
        if result.error is not None:
            status, code, message = _LIMIT_ERRORS[result.error]
            raise FunctionError(status, code, message, relay=result.error == "boot")
        headers = [(k, v) for k, v in result.headers if k.lower() not in _DROP_RESPONSE_HEADERS]
        if request.method == "HEAD":
            return Response(result.status, headers, b"")
        return Response(result.status, headers, result.body)

    async def _run(self, entry: Entry, fn_request: FunctionRequest, env: dict[str, str],
                   ctx: RequestContext) -> FunctionResult:
        limits = entry.limits
        deadline = time.monotonic() + limits.wall_clock_ms / 1000
        fetch = HostFetch(env["SUPABASE_URL"], ctx.project.ref, entry.deployed.allowed_hosts, deadline)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor, entry.runner.invoke, entry.prepared, fn_request, env, limits,
                                      fetch)
        try:
            return await asyncio.wait_for(asyncio.shield(future), limits.wall_clock_ms / 1000 + WALL_GRACE_S)
        except TimeoutError:
            # the thread finishes on its own (the runner stops wasm at its deadline; a blocked host call ends)
            return FunctionResult(504, (), b"", "[madbase] wall-clock limit reached while blocked in a host call",
                                  0, 0, "wall")

    async def _env(self, ctx: RequestContext, entry: Entry) -> dict[str, str]:
        assert self.registry is not None
        project = ctx.project
        record = project.record
        env = dict(entry.deployed.env)
        env.update(await self.registry.secrets(project.ref))
        env.update({
            "SUPABASE_URL": project_api_url(self.runtime, project.ref),
            "SUPABASE_ANON_KEY": record.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": record.service_role_key,
            "SUPABASE_PROJECT_REF": project.ref,
            "SB_EXECUTION_ID": ctx.request_id,
        })
        section = project.config.get("functions")
        if isinstance(section, dict) and section.get("expose_db_url") is True:
            env["SUPABASE_DB_URL"] = record.db_url
        return env


_TRACE_HEADERS = frozenset({"traceparent", "tracestate", "x-correlation-id"})


def _with_trace(raw: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """The caller's headers as the function sees them, with this request's trace context (core/tracing.py) in
    place of the caller's: the function's work joins the trace as a child of our span, as behind a proxy."""
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]
    trace = tracing.TRACE.get()
    if trace is None:
        return tuple(headers)
    own = [(k.decode(), v.decode()) for k, v in trace.response_headers()]
    return (*(h for h in headers if h[0] not in _TRACE_HEADERS), *own)


def _verify_jwt(ctx: RequestContext, authorization: str | None) -> None:
    """Supabase's `verify_jwt`: a bearer JWT signed for this project (a project API key is one)."""
    token = bearer_token(authorization)
    if token is None:
        raise FunctionError(401, "UNAUTHORIZED_NO_AUTH_HEADER", "Missing authorization header")
    if ctx.auth.token == token:
        return  # the gateway verified this bearer already (it falls back to anonymous, token None, if not)
    project = ctx.project
    if not token.startswith(NEW_KEY_PREFIX) and project.keys.get(token) is not None:
        return  # a legacy API key, rotated ones during their grace window included (as the gateway)
    if project.keys.is_retired(token):  # grace over: signed by a valid secret, yet never accepted again
        raise FunctionError(401, "UNAUTHORIZED_INVALID_JWT_FORMAT", "Invalid JWT")
    try:
        project.verifier.verify(token)
    except TokenError:
        raise FunctionError(401, "UNAUTHORIZED_INVALID_JWT_FORMAT", "Invalid JWT") from None


def build(runtime: Runtime) -> ASGIApp:
    return FunctionsApp(runtime)


def is_open(method: str, path: str) -> bool:
    """No apikey needed at the gateway: the function's `verify_jwt` decides (as Supabase's edge gateway)."""
    return True


def _admin_routes() -> tuple[Route[Any], ...]:
    from madbase.functions.adminroutes import ROUTES
    return ROUTES


service = Service(name="functions", prefix=PREFIX, build=build, is_open=is_open, handles_preflight=False,
                  body_limit=0, admin_routes=_admin_routes())
