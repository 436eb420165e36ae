"""The ASGI gateway: one entry point for every API, like Supabase's Kong in front of its services.

For each request: request id → CORS preflight → operational routes (/health, /ready, /metrics) → service by
path prefix → per-IP rate limit → project (subdomain, `x-project-ref`, or the only project) → per-project
rate limit → apikey + bearer → body limit → the service's ASGI app with a `RequestContext` in
`scope["madbase"]`. A platform service (/admin/v1) skips project, per-project limit and apikey: it
authenticates its own callers. Errors raised on the way are rendered once, in the service's wire shape.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Sequence
from urllib.parse import parse_qs

import structlog

from madbase.core import gcsettle, jsonutil, requestlog, serviceapps, tracing
from madbase.core.authn import ANONYMOUS, AuthContext, authenticate
from madbase.core.context import RequestContext
from madbase.core.errors import GatewayError, Kind
from madbase.core.requestscope import CURRENT as REQUEST_SCOPE
from madbase.core.requestscope import ClientGone, DisconnectWatch, RequestScope, client_gone
from madbase.core.runtime import Runtime
from madbase.core.service import GATEWAY_KINDS, ErrorResponse, Service, kong_error
from madbase.core.types import ASGIApp, Headers, Message, Receive, Scope, Send

log = structlog.get_logger("madbase.gateway")

EXPOSE_HEADERS = (
    b"Content-Range, Content-Location, Location, Preference-Applied, Range-Unit, X-Total-Count, Link, "
    b"X-Supabase-Api-Version, x-sb-error-code, x-relay-error, Retry-After, ETag, Content-Disposition, "
    b"Content-Length, Content-Type, X-Request-Id, Upload-Offset, Upload-Length, Tus-Resumable, Location, "
    b"traceparent, tracestate, X-Correlation-Id"
)
DEFAULT_ALLOW_HEADERS = (
    b"apikey, authorization, x-client-info, content-type, accept, accept-profile, content-profile, prefer, "
    b"range, range-unit, x-supabase-api-version, x-upsert, cache-control, content-encoding, x-metadata, "
    b"x-region, x-retry-count, traceparent, tracestate, baggage, x-project-ref, x-request-id, "
    b"tus-resumable, upload-length, upload-metadata, upload-offset, upload-defer-length, if-none-match"
)
ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD"
_JSON = (b"content-type", b"application/json")
_HEALTH_BODY = b'{"status":"ok"}'
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# refusals a project cache older than the caller's key or token would give (core/projects.refresh_after_miss)
_STALE_KINDS = frozenset({Kind.INVALID_API_KEY, Kind.JWT_INVALID})


# Request ids are UUID-shaped: a random prefix per process and a counter (a uuid4 per request cost more than
# the rest of the id handling together).
_ID_PREFIX = str(uuid.uuid4())[:24]
_id_counter = itertools.count(1)


def _request_id(raw: bytes | None) -> str:
    if raw and len(raw) <= 200 and raw.isascii():
        text = raw.decode()
        if text.isprintable():
            return text
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


class Gateway:
    def __init__(self, runtime: Runtime, services: Sequence[Service]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self._services = [(s.prefix, s) for s in services]
        self._apps: dict[str, ASGIApp] = {}
        self._base_suffix = "." + self.settings.base_domain if self.settings.base_domain else None
        self._trusted = self.settings.trusted_proxy_networks
        self._access_log = self.settings.access_log
        self._settling: asyncio.Task[None] | None = None
        # recent requests per project, for the control plane's logs route (core/requestlog.py)
        self._request_log = requestlog.for_runtime(runtime)

    # -- lifecycle -------------------------------------------------------------------------------------
    async def startup(self) -> None:
        for _, service in self._services:
            app = service.build(self.runtime)
            start = getattr(app, "startup", None)
            if start is not None:
                await start()
            self._apps[service.name] = app
            serviceapps.register(self.runtime, service.name, app)  # reached by the service's admin routes
        gcsettle.settle()
        self._settling = asyncio.get_running_loop().create_task(gcsettle.settle_after_warmup())

    async def shutdown(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
        for app in self._apps.values():
            stop = getattr(app, "shutdown", None)
            if stop is not None:
                try:
                    await stop()
                except Exception as exc:
                    log.warning("service_shutdown_failed", error=str(exc))

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the coroutine that does the work (uvicorn is told the interface is
        # ASGI 3): an idle WebSocket's task then holds no gateway frame, only the service's own.
        kind = scope["type"]
        if kind == "http":
            return self._http(scope, receive, send)
        if kind == "websocket":
            return self._websocket(scope, receive, send)
        if kind == "lifespan":
            return self._lifespan(receive, send)
        return _nothing()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- helpers ---------------------------------------------------------------------------------------
    def _service_for(self, path: str) -> Service | None:
        for prefix, service in self._services:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                return service
        return None

    def _project_ref(self, headers: dict[bytes, bytes]) -> str | None:
        raw = headers.get(b"x-project-ref")
        if raw:
            return raw.decode("latin-1").strip().lower() or None
        if self._base_suffix is not None:
            host = headers.get(b"host", b"").decode("latin-1").lower().rsplit(":", 1)[0]
            if host.endswith(self._base_suffix):
                sub = host[: -len(self._base_suffix)]
                if sub and "." not in sub:
                    return sub
        return None

    def _client_ip(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        forwarded = headers.get(b"x-forwarded-for")
        return self._trusted.client_ip(peer, forwarded.decode("latin-1") if forwarded else None)

    def _via_trusted_proxy(self, scope: Scope) -> bool:
        client = scope.get("client")
        return client is not None and self._trusted.trusts(str(client[0]))

    def _limit(self, key: str, limit: int) -> None:
        if limit > 0:
            retry = self.runtime.limiter.hit(key, limit)
            if retry is not None:
                raise GatewayError(Kind.RATE_LIMITED, "Rate limit exceeded", retry_after=retry)

    def _resolve(self, scope: Scope, headers: dict[bytes, bytes], service: Service, path: str,
                 request_id: str, client_ip: str) -> RequestContext:
        settings = self.settings
        self._limit("ip:" + client_ip, settings.rate_limit_ip_per_minute)
        if service.platform:  # no project, no apikey: the platform service authenticates its callers itself
            return RequestContext(request_id=request_id, project_or_none=None, auth=ANONYMOUS, runtime=self.runtime,
                                  client_ip=client_ip, via_trusted_proxy=self._via_trusted_proxy(scope))
        project = self.runtime.projects.resolve(self._project_ref(headers))
        self._limit("project:" + project.ref,
                    int(project.config.get("rate_limit_per_minute", settings.rate_limit_project_per_minute)))
        apikey_raw = headers.get(b"apikey")
        apikey = apikey_raw.decode("latin-1") if apikey_raw else None
        if apikey is None and b"apikey=" in scope.get("query_string", b""):
            values = parse_qs(scope["query_string"].decode("latin-1")).get("apikey")
            apikey = values[0] if values else None
        auth_raw = headers.get(b"authorization")
        authorization = auth_raw.decode("latin-1") if auth_raw else None
        sub = path[len(service.prefix):] or "/"
        open_path = service.is_open(scope.get("method", "GET"), sub)
        auth: AuthContext
        try:
            auth = authenticate(project, apikey, authorization, key_required=not open_path)
        except GatewayError:
            if not open_path:
                raise
            auth = ANONYMOUS  # an open route ignores a bad credential, as Supabase's gateway does
        return RequestContext(request_id=request_id, project_or_none=project, auth=auth, runtime=self.runtime,
                              client_ip=client_ip, via_trusted_proxy=self._via_trusted_proxy(scope))

    def _render(self, service: Service | None, err: GatewayError) -> ErrorResponse:
        if service is None or err.kind in GATEWAY_KINDS:
            return kong_error(err)
        return service.render_error(err)

    # -- HTTP ------------------------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        headers = dict(scope["headers"])
        request_id = _request_id(headers.get(b"x-request-id"))
        if path == "/health":
            await _respond(send, 200, _HEALTH_BODY,
                           [_JSON, (b"content-length", b"15"), (b"x-request-id", request_id.encode())])
            return
        started = time.perf_counter()
        origin = headers.get(b"origin")
        trace = tracing.begin(headers, request_id)  # W3C trace context + correlation id (core/tracing.py)
        tracing.TRACE.set(trace)
        extra: Headers = [(b"x-request-id", request_id.encode()), *trace.response_headers()]
        if origin is not None:
            extra += [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", EXPOSE_HEADERS)]
        service = self._service_for(path)
        method = scope["method"]
        if (method == "OPTIONS" and b"access-control-request-method" in headers
                and (service is None or service.handles_preflight)):
            allow = headers.get(b"access-control-request-headers") or DEFAULT_ALLOW_HEADERS
            await _respond(send, 200, b"", [
                (b"x-request-id", request_id.encode()), (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", allow), (b"access-control-max-age", b"3600"),
                (b"content-length", b"0")])
            return
        if service is None:
            await self._operational(path, send, extra)
            return
        status = 500
        project_ref = "-"
        client_ip = "-"
        structlog.contextvars.bind_contextvars(request_id=request_id, **trace.log_fields())

        response_started = False

        def send_wrapper(message: Message) -> Awaitable[None]:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                own = message.get("headers", ())
                # a response with its own CORS origin (an edge function's) keeps it: a second copy voids both
                if any(k == b"access-control-allow-origin" for k, _ in own):
                    message["headers"] = [*own, *(h for h in extra if not h[0].startswith(b"access-control-"))]
                else:
                    message["headers"] = [*own, *extra]
                if not self.runtime.accepting:  # draining: no keep-alive, the balancer reconnects elsewhere
                    message["headers"].append((b"connection", b"close"))
            return send(message)

        try:
            client_ip = self._client_ip(scope, headers)
            try:
                ctx = self._resolve(scope, headers, service, path, request_id, client_ip)
            except GatewayError as err:
                # a key or token another process issued a moment ago (rotation): re-read the projects once
                if err.kind not in _STALE_KINDS or not await self.runtime.projects.refresh_after_miss():
                    raise
                ctx = self._resolve(scope, headers, service, path, request_id, client_ip)
            if ctx.project_or_none is not None:
                project_ref = ctx.project_or_none.ref
            scope["madbase"] = ctx
            # the request transaction's view of this request: its disconnect watch (set by madbase.httpprotocol)
            # and the key its pool share counts against: API roles only (service_role is the operator's own), and
            # not a loopback peer (a proxy on this host that is not trusted: its address says nothing of who
            # the client is, and capping it would cap everyone together)
            watch: DisconnectWatch | None = scope.get("madbase.watch")
            share_key = None if ctx.auth.role == "service_role" or client_ip in _LOOPBACK else client_ip
            REQUEST_SCOPE.set(RequestScope(watch, share_key))
            receive = self._limited_receive(service, headers, receive)
            try:
                await self._apps[service.name](scope, receive, send_wrapper)
            except asyncio.CancelledError:
                if not client_gone(watch):
                    raise
                status = 499  # nginx's "client closed request": nobody is left to answer
            except ClientGone:
                status = 499
        except GatewayError as err:
            if err.status >= 500:
                log.error("gateway_error", kind=err.code, error=str(err.cause or err.message))
            if not response_started:
                rendered = self._render(service, err)
                await _respond(send_wrapper, rendered.status, rendered.body,
                               [_JSON, (b"content-length", str(len(rendered.body)).encode()), *rendered.headers])
        except Exception:
            log.exception("unhandled_error", path=path)
            if not response_started:
                rendered = self._render(service, GatewayError(Kind.INTERNAL, "Internal server error"))
                await _respond(send_wrapper, 500, rendered.body,
                               [_JSON, (b"content-length", str(len(rendered.body)).encode()), *rendered.headers])
        finally:
            elapsed = time.perf_counter() - started
            self.runtime.metrics.observe(service.name, status, project_ref, elapsed)
            if project_ref != "-":
                self._request_log.add(project_ref, request_id, method, service.name, path, status, elapsed,
                                      client_ip)
            if (method == "POST" and service.name == "auth" and path.endswith("/token")
                    and b"refresh_token" not in scope.get("query_string", b"")):
                self.runtime.metrics.observe_sign_in(project_ref, status)
            if self._access_log:
                log.info("request", method=method, route=service.prefix, path=path, status=status,
                         project_ref=project_ref, duration_ms=round(elapsed * 1000, 3))
            if self.runtime.tracer is not None:
                self.runtime.tracer.finish(trace, f"{method} {service.prefix}", status, {
                    "http.request.method": method, "url.path": path, "http.response.status_code": status,
                    "madbase.service": service.name, "madbase.project_ref": project_ref,
                    "madbase.request_id": request_id, "madbase.correlation_id": trace.correlation_id})
            structlog.contextvars.clear_contextvars()

    def _limited_receive(self, service: Service, headers: dict[bytes, bytes], receive: Receive) -> Receive:
        limit = self.settings.max_body_bytes if service.body_limit is None else service.body_limit
        if not limit:
            return receive
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise GatewayError(Kind.BODY_TOO_LARGE, f"Request body exceeds the limit of {limit} bytes")
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise GatewayError(Kind.BODY_TOO_LARGE, f"Request body exceeds the limit of {limit} bytes")
            return message

        return limited

    async def _operational(self, path: str, send: Send, extra: Headers) -> None:
        if path == "/ready":
            if not self.runtime.accepting:  # stopping (SIGTERM): out of the balancer first, then drain
                body = b'{"status":"unavailable","message":"shutting down"}'
                await _respond(send, 503, body, [_JSON, *extra])
                return
            ok = await self._control_reachable()
            body = b'{"status":"ok"}' if ok else b'{"status":"unavailable","message":"control database unreachable"}'
            if ok and self.runtime.db_warnings:  # still ready: REST, auth and storage work; see core/dbchecks.py
                body = jsonutil.dumps({"status": "ok", "warnings": self.runtime.db_warnings})
            await _respond(send, 200 if ok else 503, body, [_JSON, *extra])
        elif path == "/metrics":
            body = await self.runtime.metrics.render_all()
            await _respond(send, 200, body, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8"), *extra])
        else:
            body = jsonutil.dumps({"message": "no Route matched with those values"})
            await _respond(send, 404, body, [_JSON, *extra])

    async def _control_reachable(self) -> bool:
        pool = self.runtime.control_pool
        if pool is None:
            return False
        try:
            await asyncio.wait_for(pool.fetchval("select 1"), 2.0)
            return True
        except Exception:
            return False

    # -- WebSocket -------------------------------------------------------------------------------------
    def _websocket(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Resolve synchronously and return the service's coroutine itself: this runs for the whole life of
        the socket, so no gateway frame, header dict or scope reference should stay alive under it."""
        path: str = scope["path"]
        headers = dict(scope["headers"])
        request_id = _request_id(headers.get(b"x-request-id"))
        service = self._service_for(path)
        if service is None:
            return self._websocket_refuse(scope, receive, send, None, None)
        try:
            ctx = self._resolve(scope, headers, service, path, request_id, self._client_ip(scope, headers))
        except GatewayError as err:
            return self._websocket_refuse(scope, receive, send, service, err)
        scope["madbase"] = ctx
        return self._apps[service.name](scope, receive, send)

    async def _websocket_refuse(self, scope: Scope, receive: Receive, send: Send, service: Service | None,
                                err: GatewayError | None) -> None:
        await receive()
        if service is None or err is None:
            await send({"type": "websocket.close", "code": 1008})
            return
        rendered = self._render(service, err)
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": rendered.status,
                        "headers": [_JSON, *rendered.headers]})
            await send({"type": "websocket.http.response.body", "body": rendered.body})
        else:
            await send({"type": "websocket.close", "code": 1008})


async def _nothing() -> None:
    return None


async def _respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


