"""The auth service's one route table (like GoTrue's api.go) and the ASGI app that dispatches it.

Each route names its guards: `user` (a signed-in user's bearer), `admin` (service_role or supabase_admin),
`aal2`-free by default. Handlers raise `AuthError`/`OAuthError`; everything is rendered here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import structlog

from madbase.auth import admin, config, keys, meta, mfa, oauth, otp, providers, ratelimit, signup, token, user, verify
from madbase.auth.errors import AuthError, OAuthError, render, render_oauth
from madbase.auth.http import Req, Resp, parse_query
from madbase.auth.mailer import Sender
from madbase.core.context import get_context
from madbase.core.requestscope import ClientGone
from madbase.core.types import Receive, Scope, Send

if TYPE_CHECKING:
    from madbase.core.runtime import Runtime

log = structlog.get_logger("madbase.auth")

Handler = Callable[[Req], Awaitable[Resp]]
PREFIX = "/auth/v1"
USER = "user"
ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    guards: tuple[str, ...] = ()
    mails: bool = False


def route(method: str, path: str, handler: Handler, *guards: str, mails: bool = False) -> Route:
    return Route(method, tuple(p for p in path.split("/") if p), handler, guards, mails)


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


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | bool | None:
    """(route, params); False when the path exists with another method; None when nothing matches."""
    parts = tuple(p for p in path.split("/") if p)
    other_method = False
    for r in ROUTES:
        if len(r.pattern) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(r.pattern, parts, strict=True):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            if r.method == method:
                return r, params
            other_method = True
    return False if other_method else None


def _guard(req: Req, guards: tuple[str, ...]) -> None:
    auth = req.ctx.auth
    if USER in guards:
        if "authorization" not in req.headers:
            raise AuthError("no_authorization", "This endpoint requires a valid Bearer token")
        if not isinstance(auth.claims.get("sub"), str) or not auth.claims.get("sub"):
            raise AuthError("bad_jwt", "invalid claim: missing sub claim")
    if ADMIN in guards and auth.role not in ("service_role", "supabase_admin"):
        raise AuthError("not_admin", "User not allowed")


class AuthApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.sender = Sender(runtime)

    async def startup(self) -> None:
        self.sender.start()

    async def shutdown(self) -> None:
        await self.sender.stop()
        await providers.close()
        await ratelimit.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        ctx = get_context(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"][len(PREFIX):] or "/"
        method = scope["method"]
        api_version = headers.get("x-supabase-api-version")
        found = match("GET" if method == "HEAD" else method, path)
        if not isinstance(found, tuple):
            err = AuthError("not_found", "Not Found", status=404) if found is None \
                else AuthError("validation_failed", "Method Not Allowed", status=405)
            await _send(send, *render(err, api_version))
            return
        r, params = found
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone  # a truncated body is never acted on
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            pool = await self.runtime.pools.get(ctx.project)
            req = Req(method=method, path=path, query=parse_query(scope.get("query_string", b"")), headers=headers,
                      body=body, ctx=ctx, config=config.for_project(ctx.project), pool=pool,
                      scheme=scope.get("scheme", "http"), params=params,
                      peer=str((scope.get("client") or ("",))[0]))
            _guard(req, r.guards)
            resp = await r.handler(req)
            if r.mails:
                self.sender.watch(ctx.project)
                self.sender.poke()
        except AuthError as err:
            if err.status >= 500:
                log.error("auth_error", code=err.code, error=err.message)
            await _send(send, *render(err, api_version))
            return
        except OAuthError as oerr:
            await _send(send, *render_oauth(oerr))
            return
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.error("auth_db_error", path=path, error=str(exc))
            await _send(send, *render(AuthError("unexpected_failure", "Database error", status=500), api_version))
            return
        out_headers = list(resp.headers)
        if resp.content_type is not None:
            out_headers.append((b"content-type", resp.content_type))
        if api_version:
            out_headers.append((b"x-supabase-api-version", b"2024-01-01"))
        await _send(send, resp.status, resp.body if method != "HEAD" else b"", out_headers)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    has_type = any(k == b"content-type" for k, _ in headers)
    if body and not has_type:
        headers = [*headers, (b"content-type", b"application/json")]
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def build(runtime: Runtime) -> AuthApp:
    return AuthApp(runtime)
