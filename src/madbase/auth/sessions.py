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
from madbase.auth.repo import identities as identity_repo
from madbase.auth.repo import sessions as session_repo
from madbase.auth.repo import users as user_repo
from madbase.auth.repo import userupdates
from madbase.core import jsonutil
from madbase.core.types import DbConn


def token_after(req: Req, session_id: uuid.UUID, parent: str | None) -> str:
    secret = req.ctx.project.record.jwt_secret
    return tokens.child_refresh_token(secret, parent) if parent else tokens.root_refresh_token(secret, str(session_id))


async def new_refresh_token(conn: DbConn, req: Req, session_id: uuid.UUID, user_id: uuid.UUID,
                            parent: str | None) -> str:
    """Insert the session's next refresh token (child of `parent`, a digest; root when None)."""
    token = token_after(req, session_id, parent)
    await session_repo.insert_refresh_token(conn, tokens.token_digest(token), user_id, parent, session_id)
    return token


async def rotate_active(conn: DbConn, req: Req, session_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """Revoke every live token of the session and issue the child of the newest one (MFA step-up, retries)."""
    active = await session_repo.revoke_live_tokens(conn, session_id)
    if active is None:
        return None
    return await new_refresh_token(conn, req, session_id, user_id, active)


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
    await session_repo.insert(conn, session_id, user_id, factor_id, aal, req.user_agent, client_inet(req))
    await session_repo.add_amr(conn, session_id, method)
    await userupdates.touch_sign_in(conn, user_id)
    await identity_repo.touch_sign_in(conn, user_id)
    refresh = await new_refresh_token(conn, req, session_id, user_id, None)
    out = await session_json(conn, req, user_id, session_id, aal, refresh, extra, method=method)
    await audit.log(conn, req, "login", user_id, out["user"]["email"] or out["user"]["phone"],
                    {"provider": out["user"]["app_metadata"].get("provider", method), "method": method})
    return out


async def session_json(conn: DbConn, req: Req, user_id: uuid.UUID, session_id: uuid.UUID, aal: str,
                       refresh_token: str, extra: dict[str, Any] | None = None, *,
                       method: str = "token_refresh") -> dict[str, Any]:
    row = await user_repo.load_with_session(conn, user_id, session_id)
    if row is None:
        raise AuthError("user_not_found", "User not found")
    return await _session_json_from_row(conn, req, row, session_id, aal, refresh_token, extra, method=method)


async def _session_json_from_row(conn: DbConn, req: Req, row: asyncpg.Record, session_id: uuid.UUID, aal: str,
                                 refresh_token: str, extra: dict[str, Any] | None = None, *,
                                 method: str = "token_refresh") -> dict[str, Any]:
    """The Session JSON from a row of user_repo.load_with_session's shape (user columns, _amr)."""
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
        if await session_repo.newer_session_exists(conn, user_id, session_id, refreshed_at, created):
            raise AuthError("session_expired", "Invalid Refresh Token: Session Expired (Revoked by Newer Login)")


async def refresh(conn: DbConn, req: Req, token: str) -> dict[str, Any] | AuthError:
    """GoTrue's RefreshTokenGrant with rotation and the reuse interval (an error to commit-then-raise)."""
    digest = tokens.token_digest(token)
    secret = req.ctx.project.record.jwt_secret
    child = tokens.child_refresh_token(secret, digest)
    audit_id, payload, ip = audit.values(req, "token_refreshed", session_repo.ACTOR)
    row = await session_repo.fast_refresh(conn, digest, tokens.token_digest(child), req.user_agent,
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
    session = await session_repo.lock_by_token(conn, digest)
    if session is None:
        if not await session_repo.token_known(conn, digest):
            raise AuthError("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        raise AuthError("session_not_found", "Invalid Refresh Token: No Valid Session Found", status=400)
    session_id = session["id"]
    user_id = session["user_id"]
    await _check_session(conn, req, session_id=session_id, user_id=user_id, user=session,
                         created=session["created_at"], not_after=session["not_after"],
                         refreshed_at=session["refreshed_at"])
    aal: str = session["aal"] or "aal1"
    child = token_after(req, session_id, digest)
    current = await session_repo.rotate(conn, digest, tokens.token_digest(child), user_id, session_id)
    if current is None:
        raise AuthError("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    issued: str | None = child if current["inserted"] else None
    if issued is None:  # the presented token was already rotated
        live, parent = await session_repo.live_token_parent(conn, session_id)
        interval = timedelta(seconds=req.config.refresh_token_reuse_interval)
        if live and parent == digest:
            issued = child  # the client lost our answer: the same child again
        elif current["updated_at"] + interval >= users.now():
            issued = await rotate_active(conn, req, session_id, user_id)  # inside the reuse interval: a fresh one
        if issued is None:
            if req.config.refresh_token_rotation_enabled:
                # Reuse outside the interval means the token leaked: end the whole session (its token family).
                await session_repo.delete(conn, session_id)
            # Returned, not raised: the caller commits the revocation before answering with the error.
            return AuthError("refresh_token_already_used", "Invalid Refresh Token: Already Used")
    await session_repo.touch_refreshed(conn, session_id, req.user_agent, *audit.values(req, "token_refreshed", user_id))
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


def bearer_id_texts(req: Req) -> tuple[str, str | None, bool]:
    """`bearer_ids` as canonical UUID texts (for a statement's text parameters)."""
    claims = req.ctx.auth.claims
    uid = users.uuid_text(claims.get("sub"))
    if uid is None:
        raise AuthError("bad_jwt", "invalid claim: missing sub claim")
    sid_raw = claims.get("session_id")
    named = isinstance(sid_raw, str) and bool(sid_raw)
    return uid, users.uuid_text(sid_raw) if named else None, named


async def require_session(conn: DbConn, req: Req) -> tuple[uuid.UUID, uuid.UUID | None, asyncpg.Record]:
    """The bearer's user (must exist) and session (if the token names one, it must exist); GoTrue's rules."""
    uid, sid, named = bearer_ids(req)
    user = await user_repo.load_with_session(conn, uid, sid)
    if user is None:
        raise AuthError("user_not_found", "User from sub claim in JWT does not exist", status=403)
    if named and not user["_session_ok"]:
        raise AuthError("session_not_found", "Session from session_id claim in JWT does not exist")
    return uid, sid, user


async def logout(conn: DbConn, user_id: uuid.UUID, session_id: uuid.UUID | None, scope: str) -> None:
    if scope == "local":
        if session_id is not None:
            await session_repo.delete(conn, session_id)
    elif scope == "others":
        await session_repo.delete_others(conn, user_id, session_id)
    else:
        await session_repo.delete_of_user(conn, user_id)


def now_unix() -> int:
    return int(time.time())
