"""The caller's own identity routes: login and logout, who am I, password, sessions, personal access
tokens and TOTP (routes in admin/service.py).

Login: per-IP rate limit (`MADBASE_ADMIN_LOGIN_PER_IP_PER_MINUTE`) and per-account lockout
(`MADBASE_ADMIN_LOCKOUT_FAILURES` failures in `MADBASE_ADMIN_LOCKOUT_MINUTES`, counted by e-mail whether or not
such an admin exists), the same Argon2 work and the same answer for an unknown e-mail and a wrong password
("Invalid login credentials"), then the TOTP code (or a recovery code) when the admin enrolled one.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from madbase.admin import accounts, credentials, passwords, totp
from madbase.admin.http import body, control, text
from madbase.admin.identity import csrf_token
from madbase.core.errors import GatewayError, Kind
from madbase.core.kit import Response
from madbase.core.kit.message import MessageError
from madbase.core.platform import AdminRequest, Principal

INVALID_LOGIN = "Invalid login credentials"
MFA_REQUIRED = "A TOTP code is required: send totp_code (or a recovery_code)"


def _session_only(request: AdminRequest) -> Principal:
    principal = request.admin
    if principal.method != "session":
        raise MessageError(403, "Forbidden: this needs a signed-in session (not a token)")
    return principal


async def _login_key(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 320:
        raise MessageError(400, "email and password are required")
    return value.strip().lower()


async def _locked(pool: asyncpg.Pool, key: str, failures: int, minutes: float) -> bool:
    count = await pool.fetchval("select count(*) from madbase_control.login_failures "
                                "where email_key = $1 and at > now() - make_interval(secs => $2)", key, minutes * 60)
    return bool(count >= failures)


async def _fail(pool: asyncpg.Pool, key: str, ip: str, message: str) -> MessageError:
    await pool.execute("insert into madbase_control.login_failures (email_key, ip) values ($1, $2)", key, ip)
    return MessageError(401, message)


async def _second_factor(request: AdminRequest, pool: asyncpg.Pool, key: str, admin_id: str,
                         form: dict[str, Any]) -> bool:
    """True when a second factor was given and accepted; False when none is enrolled; raises otherwise."""
    if not await totp.enabled(pool, admin_id):
        return False
    code, recovery = form.get("totp_code"), form.get("recovery_code")
    box = request.ctx.runtime.box
    if isinstance(code, str) and code:
        if await totp.accept_code(pool, box, admin_id, code):
            return True
        raise await _fail(pool, key, request.ctx.client_ip, "Invalid TOTP code")
    if isinstance(recovery, str) and recovery:
        if await totp.accept_recovery_code(pool, admin_id, recovery):
            return True
        raise await _fail(pool, key, request.ctx.client_ip, "Invalid recovery code")
    raise MessageError(401, MFA_REQUIRED)


SessionStart = tuple[dict[str, Any], list[tuple[str, str]]]


async def _start_session(request: AdminRequest, conn: asyncpg.Pool | Any, admin_id: str, email: str, *,
                         mfa: bool) -> SessionStart:
    """A new session for the caller: (the answer's JSON — admin, session, CSRF token —, its Set-Cookie)."""
    settings = request.ctx.runtime.settings
    secret, session_id, expires = await credentials.new_session(
        conn, admin_id, mfa=mfa, ip=request.ctx.client_ip, user_agent=request.headers.get("user-agent"),
        hours=settings.admin_session_hours)
    return ({"admin": {"id": admin_id, "email": email},
             "session": {"id": session_id, "expires_at": expires.isoformat(), "mfa": mfa},
             "csrf_token": csrf_token(secret)},
            [("set-cookie", credentials.cookie(request, secret, expires)), ("cache-control", "no-store")])


def _answer(started: SessionStart, **extra: Any) -> Response:
    payload, headers = started
    return Response.json({**payload, **extra}, headers=headers)


async def login(request: AdminRequest) -> Response:
    runtime = request.ctx.runtime
    settings = runtime.settings
    retry = runtime.limiter.hit("admin-login:" + request.ctx.client_ip, settings.admin_login_per_ip_per_minute)
    if retry is not None:
        raise GatewayError(Kind.RATE_LIMITED, "Too many login attempts; try again later", retry_after=retry)
    form = await body(request)
    key = await _login_key(form.get("email"))
    password = form.get("password")
    if not isinstance(password, str) or not password:
        raise MessageError(400, "email and password are required")
    pool = control(request)
    if await _locked(pool, key, settings.admin_lockout_failures, settings.admin_lockout_minutes):
        raise GatewayError(Kind.RATE_LIMITED, "Too many failed logins for this account; try again later",
                           retry_after=int(settings.admin_lockout_minutes * 60))
    row = await accounts.login_row(pool, key)
    if not await passwords.verify(row["password_hash"] if row is not None else None, password) or row is None:
        raise await _fail(pool, key, request.ctx.client_ip, INVALID_LOGIN)
    mfa = await _second_factor(request, pool, key, row["id"], form)
    await pool.execute("delete from madbase_control.login_failures where email_key = $1 "
                       "or at < now() - interval '1 day'", key)
    await credentials.purge_expired(pool)
    request.principal = Principal(row["id"], row["email"], "session")  # the audit record's actor
    started = await _start_session(request, pool, row["id"], row["email"], mfa=mfa)
    await request.audit("admin.login", f"admins/{row['id']}", {"mfa": mfa})
    return _answer(started)


async def logout(request: AdminRequest) -> Response:
    principal = _session_only(request)
    assert principal.credential_id is not None
    await credentials.revoke_session(control(request), principal.admin_id, principal.credential_id)
    await request.audit("admin.logout", f"sessions/{principal.credential_id}")
    return Response(204, headers=[("set-cookie", credentials.cookie(request, "", None))])


async def me(request: AdminRequest) -> Response:
    principal = request.admin
    found = await accounts.get_admin(control(request), principal.admin_id)
    assert found is not None
    # the rights patterns of each role held, platform-wide and per project (what `Principal.allows` reads), so
    # a client such as the dashboard can hide what the caller may not do; the server still checks every call
    rights = {"platform": [list(r) for r in principal.platform],
              "projects": {ref: [list(r) for r in roles] for ref, roles in principal.projects.items()}}
    return Response.json({**found, "method": principal.method, "rights": rights,
                          "token_scope": None if principal.method != "token" else {
                              "rights": list(principal.token_rights) if principal.token_rights is not None else None,
                              "projects": sorted(principal.token_projects)
                              if principal.token_projects is not None else None}})


async def change_password(request: AdminRequest) -> Response:
    principal = _session_only(request)
    form = await body(request)
    pool = control(request)
    current, new = form.get("current_password"), form.get("new_password")
    if not isinstance(current, str) or not await passwords.verify(
            await accounts.password_hash(pool, principal.admin_id), current):
        raise MessageError(400, "current_password is wrong")
    problem = passwords.policy_problem(new)
    if problem:
        raise MessageError(400, problem)
    assert isinstance(new, str)
    encoded = await passwords.hash_password(new)
    async with pool.acquire() as conn, conn.transaction():
        await accounts.update_admin(conn, principal.admin_id, password_hash=encoded)
        await credentials.revoke_sessions(conn, principal.admin_id)  # every other browser signs in again
        started = await _start_session(request, conn, principal.admin_id, principal.email, mfa=principal.mfa)
    await request.audit("admin.password.change", f"admins/{principal.admin_id}")
    return _answer(started)


# -- sessions ----------------------------------------------------------------------------------------------
async def list_sessions(request: AdminRequest) -> Response:
    principal = request.admin
    rows = await credentials.list_sessions(control(request), principal.admin_id, principal.credential_id)
    return Response.json({"sessions": rows})


async def revoke_session(request: AdminRequest) -> Response:
    principal = request.admin
    session_id = request.params[0]
    if not accounts.is_uuid(session_id) or not await credentials.revoke_session(
            control(request), principal.admin_id, session_id):
        raise MessageError(404, "Session not found")
    await request.audit("admin.session.revoke", f"sessions/{session_id}")
    if principal.method == "session" and session_id == principal.credential_id:
        return Response(204, headers=[("set-cookie", credentials.cookie(request, "", None))])
    return Response(204)


# -- personal access tokens --------------------------------------------------------------------------------
async def list_tokens(request: AdminRequest) -> Response:
    return Response.json({"tokens": await credentials.list_tokens(control(request), request.admin.admin_id)})


async def create_token(request: AdminRequest) -> Response:
    principal = request.admin
    if principal.method == "token":
        raise MessageError(403, "Forbidden: a personal access token cannot create tokens")
    name, rights, projects, expires = credentials.token_scope(await body(request))
    pool = control(request)
    for ref in projects or ():
        if not await accounts.project_exists(pool, ref):
            raise MessageError(400, f"Unknown project: {ref}")
    token, shown = await credentials.create_token(pool, principal.admin_id, name, rights, projects, expires)
    await request.audit("admin.token.create", f"tokens/{shown['id']}",
                        {"name": name, "rights": rights, "projects": projects, "expires_at": shown["expires_at"]})
    return Response.json({**shown, "token": token}, 201, headers={"cache-control": "no-store"})


async def revoke_token(request: AdminRequest) -> Response:
    token_id = request.params[0]
    if not accounts.is_uuid(token_id) or not await credentials.revoke_token(
            control(request), request.admin.admin_id, token_id):
        raise MessageError(404, "Token not found")
    await request.audit("admin.token.revoke", f"tokens/{token_id}")
    return Response(204)


# -- TOTP --------------------------------------------------------------------------------------------------
async def totp_enrol(request: AdminRequest) -> Response:
    principal = _session_only(request)
    pool = control(request)
    if await totp.enabled(pool, principal.admin_id):
        raise MessageError(409, "TOTP is already enabled; disable it first to enrol again")
    secret = await totp.start_enrolment(pool, request.ctx.runtime.box, principal.admin_id)
    await request.audit("admin.totp.enrol", f"admins/{principal.admin_id}")
    return Response.json({"secret": secret, "uri": totp.uri(secret, principal.email)},
                         headers={"cache-control": "no-store"})


async def totp_verify(request: AdminRequest) -> Response:
    principal = _session_only(request)
    code = text((await body(request)).get("code"), "code", 20)
    pool = control(request)
    found = await totp.factor(pool, request.ctx.runtime.box, principal.admin_id)
    if found is None or found[1]:
        raise MessageError(409, "No TOTP enrolment is waiting for a code (POST /me/totp first)")
    if not await totp.accept_code(pool, request.ctx.runtime.box, principal.admin_id, code):
        raise MessageError(400, "Invalid TOTP code")
    async with pool.acquire() as conn, conn.transaction():
        codes = await totp.activate(conn, principal.admin_id)
        await credentials.revoke_sessions(conn, principal.admin_id)  # a privilege change: a new session id
        started = await _start_session(request, conn, principal.admin_id, principal.email, mfa=True)
    await request.audit("admin.totp.enable", f"admins/{principal.admin_id}")
    return _answer(started, recovery_codes=codes)


async def _check_factor(request: AdminRequest, pool: asyncpg.Pool, admin_id: str) -> None:
    form = await body(request)
    code, recovery = form.get("code"), form.get("recovery_code")
    box = request.ctx.runtime.box
    if isinstance(code, str) and code and await totp.accept_code(pool, box, admin_id, code):
        return
    if isinstance(recovery, str) and recovery and await totp.accept_recovery_code(pool, admin_id, recovery):
        return
    raise MessageError(400, "A valid TOTP code (code) or recovery code (recovery_code) is required")


async def totp_disable(request: AdminRequest) -> Response:
    principal = _session_only(request)
    pool = control(request)
    if not await totp.enabled(pool, principal.admin_id):
        raise MessageError(404, "TOTP is not enabled")
    await _check_factor(request, pool, principal.admin_id)
    async with pool.acquire() as conn, conn.transaction():
        await totp.remove(conn, principal.admin_id)
        await credentials.revoke_sessions(conn, principal.admin_id)
        started = await _start_session(request, conn, principal.admin_id, principal.email, mfa=False)
    await request.audit("admin.totp.disable", f"admins/{principal.admin_id}")
    return _answer(started)


async def totp_recovery_codes(request: AdminRequest) -> Response:
    principal = _session_only(request)
    pool = control(request)
    if not await totp.enabled(pool, principal.admin_id):
        raise MessageError(404, "TOTP is not enabled")
    await _check_factor(request, pool, principal.admin_id)
    async with pool.acquire() as conn, conn.transaction():
        codes = await totp.renew_recovery_codes(conn, principal.admin_id)
    await request.audit("admin.totp.recovery_codes", f"admins/{principal.admin_id}")
    return Response.json({"recovery_codes": codes}, headers={"cache-control": "no-store"})
