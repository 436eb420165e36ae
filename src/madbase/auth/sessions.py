"""Sessions, refresh-token rotation and the Session JSON (GoTrue's token issuing rules).

A session is a row in auth.sessions with its AMR claims in auth.mfa_amr_claims and a chain of refresh
tokens in auth.refresh_tokens (only SHA-256 digests stored). Refresh locks the session row, so two
concurrent refreshes of one token serialise: the second sees the token revoked with its child active and
gets that same child back (never a second live branch).
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from datetime import UTC, timedelta
from typing import Any

import asyncpg

from madbase.auth import audit, hooks, keys, tokens, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req
from madbase.core import jsonutil
from madbase.core.types import DbConn


async def add_amr(conn: DbConn, session_id: uuid.UUID, method: str) -> None:
    await conn.execute(
        """insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
           values ($1, now(), now(), $2, $3)
           on conflict (session_id, authentication_method) do update set updated_at = now()""",
        session_id, method, uuid.uuid4())


def token_after(req: Req, session_id: uuid.UUID, parent: str | None) -> str:
    secret = req.ctx.project.record.jwt_secret
    return tokens.child_refresh_token(secret, parent) if parent else tokens.root_refresh_token(secret, str(session_id))


async def new_refresh_token(conn: DbConn, req: Req, session_id: uuid.UUID, user_id: uuid.UUID,
                            parent: str | None) -> str:
    """Insert the session's next refresh token (child of `parent`, a digest; root when None)."""
    token = token_after(req, session_id, parent)
    await conn.execute(
        """insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent,
             session_id) values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)""",
        tokens.token_digest(token), str(user_id), parent, session_id)
    return token


async def rotate_active(conn: DbConn, req: Req, session_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """Revoke every live token of the session and issue the child of the newest one (MFA step-up, retries)."""
    active = await conn.fetchval(
        "with r as (update auth.refresh_tokens set revoked = true, updated_at = now() "
        "where session_id = $1 and not revoked returning id, token) select token from r order by id desc limit 1",
        session_id)
    if active is None:
        return None
    return await new_refresh_token(conn, req, session_id, user_id, active)


# After the session lock: re-read the presented token and, if it is live, revoke it and insert its child in the
# same statement (CTEs share the statement's snapshot, taken after the lock).
_ROTATE_SQL = """
with cur as (select id, revoked, updated_at from auth.refresh_tokens where token = $1),
upd as (update auth.refresh_tokens t set revoked = true, updated_at = now() from cur
        where t.id = cur.id and not cur.revoked returning t.id),
ins as (insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent,
          session_id)
        select '00000000-0000-0000-0000-000000000000', $2, $3, false, now(), now(), $1, $4 from upd returning id)
select cur.revoked, cur.updated_at, (select count(*) from ins) as inserted from cur
"""


def client_inet(req: Req) -> str | None:
    """The client IP if it is a valid address (for inet columns)."""
    try:
        return str(ipaddress.ip_address(req.ctx.client_ip))
    except ValueError:
        return None


async def create_session(conn: DbConn, req: Req, user_id: uuid.UUID, method: str, *, aal: str = "aal1",
                         factor_id: uuid.UUID | None = None,
                         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new session with one AMR method and its first refresh token; returns the Session JSON."""
    session_id = uuid.uuid4()
    await conn.execute(
        """insert into auth.sessions (id, user_id, created_at, updated_at, factor_id, aal, refreshed_at, user_agent,
             ip) values ($1, $2, now(), now(), $3, $4::auth.aal_level, now() at time zone 'utc', $5, $6::inet)""",
        session_id, user_id, factor_id, aal, req.user_agent, client_inet(req))
    await add_amr(conn, session_id, method)
    await conn.execute("update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1", user_id)
    await conn.execute("update auth.identities set last_sign_in_at = now() where user_id = $1", user_id)
    refresh = await new_refresh_token(conn, req, session_id, user_id, None)
    out = await session_json(conn, req, user_id, session_id, aal, refresh, extra, method=method)
    await audit.log(conn, req, "login", user_id, out["user"]["email"] or out["user"]["phone"],
                    {"provider": out["user"]["app_metadata"].get("provider", method), "method": method})
    return out


async def session_json(conn: DbConn, req: Req, user_id: uuid.UUID, session_id: uuid.UUID, aal: str,
                       refresh_token: str, extra: dict[str, Any] | None = None, *,
                       method: str = "token_refresh") -> dict[str, Any]:
    row = await users.load_with_session(conn, user_id, session_id)
    if row is None:
        raise AuthError("user_not_found", "User not found")
    return await _session_json_from_row(conn, req, row, session_id, aal, refresh_token, extra, method=method)


async def _session_json_from_row(conn: DbConn, req: Req, row: asyncpg.Record, session_id: uuid.UUID, aal: str,
                                 refresh_token: str, extra: dict[str, Any] | None = None, *,
                                 method: str = "token_refresh") -> dict[str, Any]:
    """The Session JSON from a row of users.load_with_session's shape (user columns, _amr)."""
    user = users.user_json(row)
    raw_amr = row["_amr"]
    amr: list[dict[str, Any]] = (jsonutil.loads(raw_amr) if isinstance(raw_amr, str) else raw_amr) or []
    lifetime = req.config.jwt_exp
    claims = tokens.access_token_claims(user=user, session_id=str(session_id), aal=aal, amr=amr,
                                        issuer=req.issuer, lifetime=lifetime)
    claims = await hooks.custom_access_token(conn, req, claims, method)
    key = await keys.current(req)
    access = keys.sign(claims, key) if key is not None else tokens.sign_access_token(
        claims, req.ctx.project.record.jwt_secret)
    out: dict[str, Any] = {"access_token": access, "token_type": "bearer", "expires_in": lifetime,
                           "expires_at": claims["exp"], "refresh_token": refresh_token, "user": user}
    if extra:
        out.update(extra)
    return out


# The whole rotation of a live token in one statement (one round trip): lock the token's session (`rs`), revoke
# the presented token if it is still live (`upd`: a concurrent refresh that committed first makes this update
# skip the row, as it re-checks `not revoked` on the newest row version), insert its child, touch the session,
# write the audit row, and return the user (users.load_with_session's columns) with the session's columns.
# `_rotated` = 0 means nothing was written (token unknown, already rotated, …): the caller takes the general path.
_FAST_REFRESH_SQL = """
with rs as (select id, user_id, created_at, not_after, refreshed_at, aal from auth.sessions
            where id = (select session_id from auth.refresh_tokens where token = $1) for update),
upd as (update auth.refresh_tokens t set revoked = true, updated_at = now() from rs
        where t.token = $1 and t.session_id = rs.id and not t.revoked returning t.id),
ins as (insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent,
          session_id)
        select '00000000-0000-0000-0000-000000000000', $2, rs.user_id::text, false, now(), now(), $1, rs.id
        from rs, upd returning id),
ss as (update auth.sessions x set refreshed_at = now() at time zone 'utc', updated_at = now(), user_agent = $3
       from rs, upd where x.id = rs.id returning x.id),
aud as (insert into auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
        select '00000000-0000-0000-0000-000000000000', $4, replace($5, '""" + "{actor}" + """', rs.user_id::text)::json,
          now(), $6 from rs, upd returning id)
""" + users.LOAD_FOR_SESSION_CTE_SQL.replace("\nfrom rs join", """,
  rs.id as _s_id, rs.created_at as _s_created_at, rs.not_after as _s_not_after,
  rs.refreshed_at as _s_refreshed_at, rs.aal::text as _s_aal,
  (select count(*) from ins) + (select count(*) from ss) + (select count(*) from aud) as _rotated
from rs join""")
_ACTOR = "{actor}"


async def _check_session(conn: DbConn, req: Req, *, session_id: uuid.UUID, user_id: uuid.UUID,
                         user: asyncpg.Record, created: Any, not_after: Any, refreshed_at: Any) -> None:
    """GoTrue's refresh-time checks of the user and the session (raise: the transaction rolls back)."""
    if user["deleted_at"] is not None:
        raise AuthError("user_not_found", "Invalid Refresh Token: User Not Found", status=400)
    if users.is_banned(user):
        raise AuthError("user_banned", "Invalid Refresh Token: User Banned")
    now = users.now()
    if not_after is not None and not_after < now:
        raise AuthError("session_expired", "Invalid Refresh Token: Session Expired")
    cfg = req.config
    if cfg.sessions_timebox > 0 and created is not None and created + timedelta(seconds=cfg.sessions_timebox) < now:
        raise AuthError("session_expired", "Invalid Refresh Token: Session Expired")
    if cfg.sessions_inactivity_timeout > 0:
        last_at = refreshed_at.replace(tzinfo=UTC) if refreshed_at is not None else created
        if last_at is not None and last_at + timedelta(seconds=cfg.sessions_inactivity_timeout) < now:
            raise AuthError("session_expired", "Invalid Refresh Token: Session Expired (Inactivity)")
    if cfg.sessions_single_per_user:
        # GoTrue: only the user's most recently refreshed (or created) session may refresh. Compared with this
        # session's values from before this refresh (the fast path has already touched its row).
        newer = await conn.fetchval(
            "select exists(select 1 from auth.sessions where user_id = $1 and id <> $2 and "
            "(coalesce(refreshed_at, created_at at time zone 'utc'), created_at) > "
            "(coalesce($3::timestamp, $4::timestamptz at time zone 'utc'), $4::timestamptz))",
            user_id, session_id, refreshed_at, created)
        if newer:
            raise AuthError("session_expired", "Invalid Refresh Token: Session Expired (Revoked by Newer Login)")


async def refresh(conn: DbConn, req: Req, token: str) -> dict[str, Any] | AuthError:
    """GoTrue's RefreshTokenGrant with rotation and the reuse interval (an error to commit-then-raise)."""
    digest = tokens.token_digest(token)
    secret = req.ctx.project.record.jwt_secret
    child = tokens.child_refresh_token(secret, digest)
    audit_id, payload, ip = audit.values(req, "token_refreshed", _ACTOR)
    row = await conn.fetchrow(_FAST_REFRESH_SQL, digest, tokens.token_digest(child), req.user_agent,
                              audit_id, payload, ip)
    if row is not None and row["_rotated"]:
        session_id: uuid.UUID = row["_s_id"]
        user_id: uuid.UUID = row["id"]
        await _check_session(conn, req, session_id=session_id, user_id=user_id, user=row,
                             created=row["_s_created_at"], not_after=row["_s_not_after"],
                             refreshed_at=row["_s_refreshed_at"])
        return await _session_json_from_row(conn, req, row, session_id, row["_s_aal"] or "aal1", child)
    return await _refresh_general(conn, req, token)


async def _refresh_general(conn: DbConn, req: Req, token: str) -> dict[str, Any] | AuthError:
    """The general path: unknown tokens, sessions without a live token, rotated tokens (reuse rules)."""
    digest = tokens.token_digest(token)
    # Find the token's session and lock it in one statement; the token row is re-read after the lock.
    session = await conn.fetchrow(
        "select s.*, u.banned_until, u.deleted_at from auth.sessions s join auth.users u on u.id = s.user_id "
        "where s.id = (select session_id from auth.refresh_tokens where token = $1) for update of s", digest)
    if session is None:
        known = await conn.fetchval("select true from auth.refresh_tokens where token = $1", digest)
        if not known:
            raise AuthError("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        raise AuthError("session_not_found", "Invalid Refresh Token: No Valid Session Found", status=400)
    session_id = session["id"]
    user_id = session["user_id"]
    await _check_session(conn, req, session_id=session_id, user_id=user_id, user=session,
                         created=session["created_at"], not_after=session["not_after"],
                         refreshed_at=session["refreshed_at"])
    aal: str = session["aal"] or "aal1"
    child = token_after(req, session_id, digest)
    current = await conn.fetchrow(_ROTATE_SQL, digest, tokens.token_digest(child), str(user_id), session_id)
    if current is None:
        raise AuthError("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    issued: str | None = child if current["inserted"] else None
    if issued is None:  # the presented token was already rotated
        active = await conn.fetchrow("select parent from auth.refresh_tokens where session_id = $1 and not revoked "
                                     "order by id desc limit 1", session_id)
        interval = timedelta(seconds=req.config.refresh_token_reuse_interval)
        if active is not None and active["parent"] == digest:
            issued = child  # the client lost our answer: the same child again
        elif current["updated_at"] + interval >= users.now():
            issued = await rotate_active(conn, req, session_id, user_id)  # inside the reuse interval: a fresh one
        if issued is None:
            if req.config.refresh_token_rotation_enabled:
                # Reuse outside the interval means the token leaked: end the whole session (its token family).
                await conn.execute("delete from auth.sessions where id = $1", session_id)
            # Returned, not raised: the caller commits the revocation before answering with the error.
            return AuthError("refresh_token_already_used", "Invalid Refresh Token: Already Used")
    await conn.execute(
        "with s as (update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now(), "
        "user_agent = $2 where id = $1) " + audit.INSERT_SQL, session_id, req.user_agent,
        *audit.values(req, "token_refreshed", user_id))
    return await session_json(conn, req, user_id, session_id, aal, issued)


def bearer_ids(req: Req) -> tuple[uuid.UUID, uuid.UUID | None, bool]:
    """The bearer's user id (bad_jwt without one), its session id (None when absent or not a UUID) and whether
    the token names a session at all."""
    claims = req.ctx.auth.claims
    sub = claims.get("sub")
    uid = users.parse_uuid(sub) if isinstance(sub, str) else None
    if uid is None:
        raise AuthError("bad_jwt", "invalid claim: missing sub claim")
    sid_raw = claims.get("session_id")
    named = isinstance(sid_raw, str) and bool(sid_raw)
    sid = users.parse_uuid(sid_raw) if isinstance(sid_raw, str) and sid_raw else None
    return uid, sid, named


async def require_session(conn: DbConn, req: Req) -> tuple[uuid.UUID, uuid.UUID | None, asyncpg.Record]:
    """The bearer's user (must exist) and session (if the token names one, it must exist); GoTrue's rules."""
    uid, sid, named = bearer_ids(req)
    user = await users.load_with_session(conn, uid, sid)
    if user is None:
        raise AuthError("user_not_found", "User from sub claim in JWT does not exist", status=403)
    if named and not user["_session_ok"]:
        raise AuthError("session_not_found", "Session from session_id claim in JWT does not exist")
    return uid, sid, user


async def logout(conn: DbConn, user_id: uuid.UUID, session_id: uuid.UUID | None, scope: str) -> None:
    if scope == "local":
        if session_id is not None:
            await conn.execute("delete from auth.sessions where id = $1", session_id)
    elif scope == "others":
        await conn.execute("delete from auth.sessions where user_id = $1 and id is distinct from $2",
                           user_id, session_id)
    else:
        await conn.execute("delete from auth.sessions where user_id = $1", user_id)


def now_unix() -> int:
    return int(time.time())
