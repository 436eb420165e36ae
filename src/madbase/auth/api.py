"""The auth service's one route table (like GoTrue's api.go), served by the core request kit.

`ROUTES` is auth's declared table: method, path, handler, guards, whether the route sends mail, and its stable
operation name. Guards: `user` (a signed-in user's bearer), `admin` (service_role or supabase_admin). It is
compiled into the kit's `RouteTable` (GET routes answer HEAD too), served by the kit's `Dispatcher`: the typed
request with its bounded body reader (`BODY_LIMIT`), the one `Response` type, stage timing (`Server-Timing`
when the project enables it, and the stage histogram). Handlers keep auth's vocabulary (`http.Req`/`Resp`)
and raise `AuthError`/`OAuthError`; those and the database's errors (`errors.DB_ERRORS`, mapped once) are
rendered here, in the shape the request's `X-Supabase-Api-Version` asks for.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import structlog

from madbase.auth import admin, config, keys, meta, mfa, oauth, otp, providers, ratelimit, signup, token, user, verify
from madbase.auth.errors import DB_ERRORS, AuthError, OAuthError, render, render_oauth
from madbase.auth.http import Headers, Req, Resp
from madbase.auth.mailer import Sender
from madbase.core import kit
from madbase.core.kit.txrunner import CONNECTION_ERRORS
from madbase.core.types import Receive, Scope, Send

if TYPE_CHECKING:
    from madbase.core.runtime import Runtime

log = structlog.get_logger("madbase.auth")

Handler = Callable[[Req], Awaitable[Resp]]
PREFIX = "/auth/v1"
USER = "user"
ADMIN = "admin"
# The most body bytes an auth request may carry (the largest legitimate ones are metadata, capped far below).
BODY_LIMIT = 1024 * 1024
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True, slots=True)
class Route:
    """One declared route: `pattern` is the path's segments; `name` the operation's stable name."""

    method: str
    pattern: tuple[str, ...]
    handler: Handler
    guards: tuple[str, ...] = ()
    mails: bool = False
    name: str = ""

    @property
    def path(self) -> str:
        return "/" + "/".join(self.pattern)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.path))


def route(method: str, path: str, handler: Handler, *guards: str, mails: bool = False) -> Route:
    # The operation name is the declared method and path (data, not the handler's Python name).
    return Route(method, tuple(p for p in path.split("/") if p), handler, guards, mails, f"auth:{method} {path}")


ROUTES: tuple[Route, ...] = (
    route("GET", "/health", meta.health),
    route("GET", "/settings", meta.settings),
    route("GET", "/.well-known/jwks.json", keys.jwks),
    route("POST", "/signup", signup.signup, mails=True),
    route("POST", "/token", token.token),
    route("POST", "/verify", verify.verify_post),
    route("GET", "/verify", verify.verify_get),
    route("GET", "/authorize", oauth.authorize),
    route("GET", "/callback", oauth.callback),
    route("POST", "/callback", oauth.callback),
    route("POST", "/sso", meta.sso),
    route("POST", "/otp", otp.otp, mails=True),
    route("POST", "/magiclink", otp.otp, mails=True),
    route("POST", "/recover", otp.recover, mails=True),
    route("POST", "/resend", otp.resend, mails=True),
    route("GET", "/user", user.get_user, USER),
    route("PUT", "/user", user.update_user, USER, mails=True),
    route("POST", "/logout", user.logout, USER),
    route("GET", "/reauthenticate", user.reauthenticate, USER, mails=True),
    route("GET", "/user/identities/authorize", oauth.link_authorize, USER),
    route("DELETE", "/user/identities/{identity_id}", oauth.unlink, USER),
    route("POST", "/factors", mfa.enroll, USER),
    route("POST", "/factors/{factor_id}/challenge", mfa.challenge, USER),
    route("POST", "/factors/{factor_id}/verify", mfa.verify, USER),
    route("DELETE", "/factors/{factor_id}", mfa.unenroll, USER),
    route("POST", "/invite", admin.invite, ADMIN, mails=True),
    route("GET", "/admin/users", admin.list_users, ADMIN),
    route("POST", "/admin/users", admin.create_user, ADMIN),
    route("GET", "/admin/users/{user_id}", admin.get_user, ADMIN),
    route("PUT", "/admin/users/{user_id}", admin.update_user, ADMIN),
    route("DELETE", "/admin/users/{user_id}", admin.delete_user, ADMIN),
    route("GET", "/admin/users/{user_id}/factors", admin.list_factors, ADMIN),
    route("DELETE", "/admin/users/{user_id}/factors/{factor_id}", admin.delete_factor, ADMIN),
    route("POST", "/admin/generate_link", admin.generate_link, ADMIN),
    route("POST", "/admin/signing_keys", keys.rotate, ADMIN),
    route("DELETE", "/admin/signing_keys/{kid}", keys.revoke, ADMIN),
)

# The declared routes as a kit table (handlers: the declarations), for lookups outside a request.
_DECLARED: kit.RouteTable[Route] = kit.RouteTable(kit.route(r.method, r.path, r, name=r.name) for r in ROUTES)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | bool | None:
    """(route, params); False when the path exists with another method; None when nothing matches."""
    found = _DECLARED.match(method, path)
    if found is not None:
        spec = found.route.handler
        return spec, dict(zip(spec.param_names, found.params, strict=True))
    return False if _DECLARED.allowed(path) else None


def _guard(req: Req, guards: tuple[str, ...]) -> None:
    auth = req.ctx.auth
    if USER in guards:
        if "authorization" not in req.headers:
            raise AuthError("no_authorization", "This endpoint requires a valid Bearer token")
        if not isinstance(auth.claims.get("sub"), str) or not auth.claims.get("sub"):
            raise AuthError("bad_jwt", "invalid claim: missing sub claim")
    if ADMIN in guards and auth.role not in ("service_role", "supabase_admin"):
        raise AuthError("not_admin", "User not allowed")


def _response(status: int, body: bytes, headers: Headers) -> kit.Response:
    """A kit Response from auth's raw parts (JSON unless the headers say otherwise)."""
    if body and not any(k == b"content-type" for k, _ in headers):
        headers = [*headers, (b"content-type", b"application/json")]
    out = kit.Response(status, None, body)
    out.headers = [*headers, *out.headers]
    return out


def _error(err: AuthError, api_version: str | None) -> kit.Response:
    if err.status >= 500:
        log.error("auth_error", code=err.code, error=err.message)
    return _response(*render(err, api_version))


class _Endpoint:
    """One declared route on the kit: body, auth's request, guards, handler, errors rendered, mail poked."""

    __slots__ = ("app", "spec")

    def __init__(self, app: AuthApp, spec: Route) -> None:
        self.app = app
        self.spec = spec

    async def __call__(self, request: kit.Request) -> kit.Response:
        spec = self.spec
        ctx = request.ctx
        headers = dict(request.headers)
        api_version = headers.get("x-supabase-api-version")
        try:
            body = await request.read()  # a truncated body is never acted on (ClientGone)
            pool = await self.app.runtime.pools.get(ctx.project)
            req = Req(method=request.method, path=request.subpath, query=dict(request.query), headers=headers,
                      body=body, ctx=ctx, config=config.for_project(ctx.project), pool=pool, scheme=request.scheme,
                      params=dict(zip(spec.param_names, request.params, strict=True)),
                      peer=str((request.scope.get("client") or ("",))[0]), stages=request.stages)
            _guard(req, spec.guards)
            resp = await spec.handler(req)
            if spec.mails:
                self.app.sender.watch(ctx.project)
                self.app.sender.poke()
        except AuthError as err:
            return _error(err, api_version)
        except OAuthError as oerr:
            return _response(*render_oauth(oerr))
        except _DB_FAILURES as exc:
            mapped = DB_ERRORS.map(exc)
            if not isinstance(mapped, AuthError):
                raise mapped from exc  # the database is unavailable: the gateway's 503, in auth's shape
            log.error("auth_db_error", path=request.subpath, error=str(exc))
            return _error(mapped, api_version)
        out_headers = list(resp.headers)
        if resp.content_type is not None:
            out_headers.append((b"content-type", resp.content_type))
        if api_version:
            out_headers.append((b"x-supabase-api-version", b"2024-01-01"))
        return _response(resp.status, resp.body if request.method != "HEAD" else b"", out_headers)


def _db_failures() -> tuple[type[BaseException], ...]:
    return (asyncpg.PostgresError, *CONNECTION_ERRORS)


_DB_FAILURES = _db_failures()


async def _no_route(request: kit.Request) -> kit.Response:
    """404 for a path auth does not serve, 405 for one it serves with other methods (GoTrue's shapes)."""
    err = AuthError("validation_failed", "Method Not Allowed", status=405) if _DECLARED.allowed(request.subpath) \
        else AuthError("not_found", "Not Found", status=404)
    return _error(err, request.headers.get("x-supabase-api-version"))


_KIT = kit.ServiceKit(
    name="auth", prefix=PREFIX, error_type=AuthError,
    # Only for refusals before auth's own endpoint runs (a method outside _ANY_METHOD): GoTrue's legacy shape.
    render=lambda err: _error(err, None) if isinstance(err, AuthError) else _error(AuthError("unexpected_failure",
                                                                                             "Unexpected error"), None),
    not_found=lambda method, path: AuthError("not_found", "Not Found", status=404),
    forbidden=lambda route, ctx: AuthError("not_admin", "User not allowed"),
    body_errors=kit.BodyErrors(
        too_large=lambda limit: AuthError("request_too_large", f"Request body is larger than {limit} bytes",
                                          status=413),
        bad_json=lambda message: AuthError("bad_json", "Could not parse request body as JSON")),
)


class AuthApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.sender = Sender(runtime)
        table: list[kit.Route[Callable[[kit.Request], Awaitable[kit.Response]]]] = [
            kit.route(("GET", "HEAD") if r.method == "GET" else r.method, r.path, _Endpoint(self, r), name=r.name,
                      body_limit=BODY_LIMIT) for r in ROUTES]
        table.append(kit.route(_ANY_METHOD, "/{rest**}", _no_route, name="auth:no_route"))
        self.dispatcher = kit.Dispatcher(_KIT, kit.RouteTable(table), kit.Request)

    async def startup(self) -> None:
        self.sender.start()

    async def shutdown(self) -> None:
        await self.sender.stop()
        await providers.close()
        await ratelimit.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.dispatcher(scope, receive, send)


def build(runtime: Runtime) -> AuthApp:
    return AuthApp(runtime)
