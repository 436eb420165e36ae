"""Browser sessions and personal access tokens: creating, listing (never a secret) and revoking them.

A session is a random secret in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the request came over
HTTPS), scoped to /admin/v1, expiring after `MADBASE_ADMIN_SESSION_HOURS`; a new one is made at every login
and privilege change (TOTP enabled/disabled, password changed), when the admin's other sessions end too.
A personal access token (`mbp_…`) is shown once, expires (at most a year), may be narrowed to rights and
projects, and is revoked one by one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from madbase.admin import identity
from madbase.core.kit.message import MessageError
from madbase.core.platform import AdminRequest, is_pattern
from madbase.core.types import DbConn

MAX_TOKENS = 100  # per admin
MAX_TOKEN_DAYS = 366
DEFAULT_TOKEN_DAYS = 30


# -- sessions ----------------------------------------------------------------------------------------------
async def new_session(conn: DbConn | asyncpg.Pool, admin_id: str, *, mfa: bool, ip: str, user_agent: str | None,
                      hours: float) -> tuple[str, str, datetime]:
    """Store a new session; returns (secret, id, expiry)."""
    secret = identity.new_secret()
    expires = datetime.now(UTC) + timedelta(hours=hours)
    session_id = await conn.fetchval(
        "insert into madbase_control.sessions (admin_id, token_digest, mfa, ip, user_agent, expires_at) "
        "values ($1::uuid, $2, $3, $4, $5, $6) returning id::text", admin_id, identity.digest(secret), mfa, ip,
        (user_agent or "")[:300], expires)
    return secret, str(session_id), expires


def cookie(request: AdminRequest, secret: str, expires: datetime | None) -> str:
    """The Set-Cookie value for `secret` (None expiry: clear the cookie)."""
    secure = request.scheme == "https" or (request.ctx.via_trusted_proxy
                                           and request.headers.get("x-forwarded-proto", "").lower() == "https")
    parts = [f"{identity.SESSION_COOKIE}={secret}", "Path=/admin/v1", "HttpOnly", "SameSite=Strict"]
    if expires is None:
        parts.append("Max-Age=0")
    else:
        parts.append(f"Max-Age={max(0, int((expires - datetime.now(UTC)).total_seconds()))}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def session_json(row: asyncpg.Record, current: str | None) -> dict[str, Any]:
    return {"id": row["id"], "created_at": row["created_at"].isoformat(),
            "last_seen_at": row["last_seen_at"].isoformat(), "expires_at": row["expires_at"].isoformat(),
            "ip": row["ip"], "user_agent": row["user_agent"], "mfa": row["mfa"], "current": row["id"] == current}


async def list_sessions(pool: asyncpg.Pool, admin_id: str, current: str | None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "select id::text as id, created_at, last_seen_at, expires_at, ip, user_agent, mfa "
        "from madbase_control.sessions where admin_id = $1::uuid and revoked_at is null and expires_at > now() "
        "order by created_at desc limit 1000", admin_id)
    return [session_json(r, current) for r in rows]


async def revoke_session(pool: asyncpg.Pool | DbConn, admin_id: str, session_id: str) -> bool:
    result = await pool.execute(
        "update madbase_control.sessions set revoked_at = now() "
        "where id = $1::uuid and admin_id = $2::uuid and revoked_at is null", session_id, admin_id)
    return result.endswith(" 1")


async def revoke_sessions(conn: asyncpg.Pool | DbConn, admin_id: str) -> int:
    """End every session of an admin (privilege change, password change, disabled by another admin)."""
    result = await conn.execute("update madbase_control.sessions set revoked_at = now() "
                                "where admin_id = $1::uuid and revoked_at is null", admin_id)
    return int(result.split()[-1])


async def purge_expired(pool: asyncpg.Pool) -> None:
    """Drop sessions ended more than a day ago (bounded table; called at login)."""
    await pool.execute("delete from madbase_control.sessions where coalesce(revoked_at, expires_at) "
                       "< now() - interval '1 day'")


# -- personal access tokens --------------------------------------------------------------------------------
def _text_list(value: object, name: str, check: Any, limit: int = 100) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) and check(v) for v in value):
        raise MessageError(400, f"{name} must be a list of at most {limit} valid entries")
    return sorted(set(value))


def token_scope(body: dict[str, Any]) -> tuple[str, list[str] | None, list[str] | None, datetime]:
    """Validated (name, rights, projects, expiry) of a token request."""
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        raise MessageError(400, "name must be a string of 1 to 200 characters")
    rights = _text_list(body.get("rights"), "rights", is_pattern)
    projects = _text_list(body.get("projects"), "projects", lambda v: 0 < len(v) <= 40)
    days = body.get("expires_in_days", DEFAULT_TOKEN_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
        raise MessageError(400, f"expires_in_days must be an integer from 1 to {MAX_TOKEN_DAYS}")
    return name.strip(), rights, projects, datetime.now(UTC) + timedelta(days=days)


def token_json(row: asyncpg.Record) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {"id": row["id"], "name": row["name"], "hint": row["hint"] + "…",
            "rights": list(row["rights"]) if row["rights"] is not None else None,
            "projects": list(row["projects"]) if row["projects"] is not None else None,
            "created_at": iso(row["created_at"]), "expires_at": iso(row["expires_at"]),
            "last_used_at": iso(row["last_used_at"]), "revoked_at": iso(row["revoked_at"])}


_TOKEN_COLUMNS = "id::text as id, name, hint, rights, projects, created_at, expires_at, last_used_at, revoked_at"


async def create_token(pool: asyncpg.Pool, admin_id: str, name: str, rights: list[str] | None,
                       projects: list[str] | None, expires: datetime) -> tuple[str, dict[str, Any]]:
    live = await pool.fetchval("select count(*) from madbase_control.access_tokens where admin_id = $1::uuid "
                               "and kind = 'pat' and revoked_at is null and expires_at > now()", admin_id)
    if live >= MAX_TOKENS:
        raise MessageError(400, f"An admin may hold at most {MAX_TOKENS} live tokens; revoke some first")
    token = identity.new_secret(identity.TOKEN_PREFIX)
    row = await pool.fetchrow(
        "insert into madbase_control.access_tokens (admin_id, name, token_digest, hint, rights, projects, expires_at) "
        f"values ($1::uuid, $2, $3, $4, $5, $6, $7) returning {_TOKEN_COLUMNS}", admin_id, name,
        identity.digest(token), token[:8], rights, projects, expires)
    assert row is not None
    return token, token_json(row)


async def list_tokens(pool: asyncpg.Pool, admin_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"select {_TOKEN_COLUMNS} from madbase_control.access_tokens "
                            "where admin_id = $1::uuid and kind = 'pat' order by created_at desc limit 1000", admin_id)
    return [token_json(r) for r in rows]


async def revoke_token(pool: asyncpg.Pool, admin_id: str, token_id: str) -> bool:
    result = await pool.execute(
        "update madbase_control.access_tokens set revoked_at = now() "
        "where id = $1::uuid and admin_id = $2::uuid and kind = 'pat' and revoked_at is null", token_id, admin_id)
    return result.endswith(" 1")
