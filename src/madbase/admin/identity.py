"""Who calls /admin/v1: a request's credential → the `Principal` (core/platform.py) with its roles' rights.

Credentials, in this order:
- `Authorization: Bearer mbp_…`: a personal access token, or the local token the server writes to
  `<data dir>/admin.token` at every start (kind `local`, the built-in local platform admin);
- the session cookie `mb_admin_session` set at login (mutations must carry its CSRF token, see `csrf_token`).

Every secret is random (256 bits) and stored as its SHA-256 digest: a stolen table gives no usable
credential, and a lookup by digest needs no constant-time comparison of secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.platform import Principal

TOKEN_PREFIX = "mbp_"
SESSION_COOKIE = "mb_admin_session"
LOCAL_ADMIN_ID = "00000000-0000-0000-0000-00000000000a"
_CSRF_CONTEXT = b"madbase-admin-csrf"
_MAX_CREDENTIAL = 200  # longer bearer/cookie values are refused unread


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a session: derived from its secret (nothing stored), given once at login; a
    cookie-authenticated mutation must send it in `x-csrf-token`. Knowing it reveals nothing of the cookie."""
    mac = hmac.new(session_secret.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_ok(session_secret: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(session_secret).encode(), sent.encode("latin-1"))


def bearer(headers: dict[str, str] | Any) -> str | None:
    raw = headers.get("authorization")
    if not raw:
        return None
    scheme, _, token = raw.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_CREDENTIAL:
        return None
    return token


def session_cookie(headers: dict[str, str] | Any) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == SESSION_COOKIE:
            value = value.strip().strip('"')
            return value if 0 < len(value) <= _MAX_CREDENTIAL else None
    return None


# The admin's role assignments as [{"rights": [...], "ref": ref|null}, ...] beside the credential's row.
_ROLES = """
coalesce((select jsonb_agg(jsonb_build_object('rights', r.rights, 'ref', ra.project_ref))
          from madbase_control.role_assignments ra join madbase_control.roles r on r.name = ra.role
          where ra.admin_id = a.id), '[]'::jsonb) as roles
"""

_TOKEN_SQL = f"""
select t.id::text as credential_id, t.kind, t.rights as token_rights, t.projects as token_projects,
       a.id::text as admin_id, a.email, {_ROLES}
from madbase_control.access_tokens t join madbase_control.admins a on a.id = t.admin_id
where t.token_digest = $1 and t.revoked_at is null and (t.expires_at is null or t.expires_at > now())
  and not a.disabled
"""
_TOKEN_SEEN = """
update madbase_control.access_tokens set last_used_at = now()
where id = $1::uuid and (last_used_at is null or last_used_at < now() - interval '1 minute')
"""

_SESSION_SQL = f"""
select s.id::text as credential_id, s.mfa, a.id::text as admin_id, a.email, {_ROLES}
from madbase_control.sessions s join madbase_control.admins a on a.id = s.admin_id
where s.token_digest = $1 and s.revoked_at is null and s.expires_at > now() and not a.disabled
"""
_SESSION_SEEN = """
update madbase_control.sessions set last_seen_at = now()
where id = $1::uuid and last_seen_at < now() - interval '1 minute'
"""


def _roles(raw: Any) -> tuple[tuple[tuple[str, ...], ...], dict[str, tuple[tuple[str, ...], ...]]]:
    items = jsonutil.loads(raw) if isinstance(raw, str) else raw
    platform: list[tuple[str, ...]] = []
    projects: dict[str, list[tuple[str, ...]]] = {}
    for item in items:
        rights = tuple(item["rights"])
        if item["ref"] is None:
            platform.append(rights)
        else:
            projects.setdefault(item["ref"], []).append(rights)
    return tuple(platform), {ref: tuple(v) for ref, v in projects.items()}


async def from_token(pool: asyncpg.Pool, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = await pool.fetchrow(_TOKEN_SQL, digest(token))
    if row is None:
        return None
    await pool.execute(_TOKEN_SEEN, row["credential_id"])
    platform, projects = _roles(row["roles"])
    local = row["kind"] == "local"
    return Principal(
        admin_id=row["admin_id"], email=row["email"], method="local" if local else "token",
        platform=platform, projects=projects,
        token_rights=tuple(row["token_rights"]) if row["token_rights"] is not None else None,
        token_projects=frozenset(row["token_projects"]) if row["token_projects"] is not None else None,
        credential_id=row["credential_id"])


async def from_session(pool: asyncpg.Pool, secret: str) -> Principal | None:
    row = await pool.fetchrow(_SESSION_SQL, digest(secret))
    if row is None:
        return None
    await pool.execute(_SESSION_SEEN, row["credential_id"])
    platform, projects = _roles(row["roles"])
    return Principal(admin_id=row["admin_id"], email=row["email"], method="session", platform=platform,
                     projects=projects, credential_id=row["credential_id"], mfa=row["mfa"])
