"""The kit's ASGI glue: one dispatcher per service — route, guards, typed request, handler, response, timing.

    app = Dispatcher(ServiceKit(name="storage", prefix="/storage/v1", ...), table, make_request)

For each HTTP request the dispatcher
1. strips the service prefix and finds the route (`RouteTable.match`; none: the service's `not_found`);
2. applies the route's guards in order: role (`forbidden`), rate limit (the gateway's 429 with Retry-After);
3. builds the request (`make_request`, e.g. a subclass of `Request` carrying the service's state) with the
   route's params, operation name, body limit and the service's body errors, and calls the handler;
4. renders the service's own error type with the service's `render` (gateway errors go on to the gateway,
   which renders them once in the service's shape; a client gone mid-body ends the request unanswered);
5. times the stages — `route`, what the handler marks itself (e.g. `db`, `backend`), `handler` for the rest,
   `send` — adds `Server-Timing` when the project has `server_timing_enabled`, and records every stage in the
   stage histogram.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from madbase.core.context import RequestContext, get_context
from madbase.core.errors import GatewayError, Kind
from madbase.core.kit.request import BodyErrors, Request
from madbase.core.kit.response import Response
from madbase.core.kit.routing import Route, RouteTable
from madbase.core.kit.timing import Stages
from madbase.core.types import Receive, Scope, Send

R = TypeVar("R", bound=Request)


class RequestFactory(Protocol[R]):  # type: ignore[misc]
    def __call__(self, scope: Scope, receive: Receive, ctx: RequestContext, *, params: tuple[str, ...],
                 subpath: str, operation: str, body_limit: int, body_errors: BodyErrors) -> R: ...


@dataclass(frozen=True, slots=True)
class ServiceKit:
    """A service's vocabulary for the dispatcher: its name (metrics label), URL prefix, error type and how it
    renders, and its refusals for a missing route, a role not allowed and bad bodies."""

    name: str
    prefix: str
    error_type: type[Exception]
    render: Callable[[Exception], Response]
    not_found: Callable[[str, str], Exception]
    forbidden: Callable[[Route[Any], RequestContext], Exception]
    body_errors: BodyErrors
    # the stages named in Server-Timing, in this order (None: all of them); the histogram gets every stage
    timing_header: tuple[str, ...] | None = None


def check_guards(route: Route[Any], ctx: RequestContext, kit: ServiceKit) -> None:
    """Role, then rate limit: raise the refusal, or return."""
    if route.roles is not None and ctx.auth.role not in route.roles:
        raise kit.forbidden(route, ctx)
    rule = route.rate
    if rule is not None:
        limit = rule.per_minute(ctx)
        if limit > 0:
            retry = ctx.runtime.limiter.hit(f"{kit.name}:{rule.key}:{ctx.client_ip}", limit)
            if retry is not None:
                raise GatewayError(Kind.RATE_LIMITED, "Too many requests", retry_after=retry)


class Dispatcher(Generic[R]):
    """The ASGI app of one service built on the kit."""

    __slots__ = ("kit", "make_request", "table")

    def __init__(self, kit: ServiceKit, table: RouteTable[Callable[[R], Awaitable[Response]]],
                 make_request: RequestFactory[R]) -> None:
        self.kit = kit
        self.table = table
        self.make_request = make_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        ctx = get_context(scope)
        stages = Stages()
        kit = self.kit
        method: str = scope["method"]
        path: str = scope["path"]
        sub = path[len(kit.prefix):] or "/"
        response: Response
        try:
            found = self.table.match(method, sub)
            if found is None:
                raise kit.not_found(method, path)
            route = found.route
            check_guards(route, ctx, kit)
            request = self.make_request(scope, receive, ctx, params=found.params, subpath=sub,
                                        operation=route.name, body_limit=route.body_limit,
                                        body_errors=kit.body_errors)
            request.stages = stages
            stages.mark("route")
            response = await route.handler(request)
        except kit.error_type as err:
            response = kit.render(err)
        stages.mark("handler")
        if ctx.project.config.get("server_timing_enabled"):
            response.add_header("server-timing", stages.header(kit.timing_header))
        await response.send(send)
        stages.mark("send")
        stages.observe(ctx.runtime.metrics, kit.name)
