"""Users in `auth.users` (GoTrue's columns): loading, JSON shape, creation and small updates.

All functions take a connection inside a transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from madbase.auth.errors import AuthError
from madbase.core import jsonutil
from madbase.core.types import DbConn

_LOAD_SQL = """
select u.*,
  coalesce((select json_agg(json_build_object(
      'identity_id', i.id, 'id', i.provider_id, 'user_id', i.user_id, 'identity_data', i.identity_data,
      'provider', i.provider, 'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at,
      'updated_at', i.updated_at, 'email', i.email) order by i.created_at)
    from auth.identities i where i.user_id = u.id), '[]') as _identities,
  (select json_agg(json_build_object(
      'id', f.id, 'friendly_name', coalesce(f.friendly_name, ''), 'factor_type', f.factor_type,
      'status', f.status, 'created_at', f.created_at, 'updated_at', f.updated_at,
      'last_challenged_at', f.last_challenged_at, 'phone', coalesce(f.phone, '')) order by f.created_at)
    from auth.mfa_factors f where f.user_id = u.id) as _factors
from auth.users u
"""

# The user plus, in the same round trip, whether session $2 is live and that session's AMR claims.
_LOAD_WITH_SESSION_SQL = _LOAD_SQL.replace("\nfrom auth.users u", """,
  exists(select 1 from auth.sessions s where s.id = $2 and s.user_id = u.id) as _session_ok,
  (select s.aal::text from auth.sessions s where s.id = $2) as _aal,
  (select json_agg(json_build_object('method', c.authentication_method,
      'timestamp', extract(epoch from c.updated_at)::bigint) order by c.updated_at desc)
    from auth.mfa_amr_claims c where c.session_id = $2) as _amr
from auth.users u""") + " where u.id = $1"

# The same columns for the user of a CTE `rs` (a session row) in a larger statement: `… from rs join auth.users u`.
LOAD_FOR_SESSION_CTE_SQL = _LOAD_WITH_SESSION_SQL.replace("$2", "rs.id").rsplit("from auth.users u", 1)[0] \
    + "from rs join auth.users u on u.id = rs.user_id"
assert "$" not in LOAD_FOR_SESSION_CTE_SQL


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return jsonutil.loads(value)
    return value


def user_json(row: asyncpg.Record) -> dict[str, Any]:
    """GoTrue's User JSON (omitempty fields left out when empty)."""
    out: dict[str, Any] = {"id": str(row["id"]), "aud": row["aud"] or "", "role": row["role"] or "",
                           "email": row["email"] or ""}
    optional = (("email_confirmed_at", "email_confirmed_at"), ("invited_at", "invited_at"))
    for key, col in optional:
        if row[col] is not None:
            out[key] = ts(row[col])
    out["phone"] = row["phone"] or ""
    for key, col in (("phone_confirmed_at", "phone_confirmed_at"), ("confirmation_sent_at", "confirmation_sent_at"),
                     ("confirmed_at", "confirmed_at"), ("recovery_sent_at", "recovery_sent_at")):
        if row[col] is not None:
            out[key] = ts(row[col])
    if row["email_change"]:
        out["new_email"] = row["email_change"]
    if row["email_change_sent_at"] is not None:
        out["email_change_sent_at"] = ts(row["email_change_sent_at"])
    if row["phone_change"]:
        out["new_phone"] = row["phone_change"]
    if row["phone_change_sent_at"] is not None:
        out["phone_change_sent_at"] = ts(row["phone_change_sent_at"])
    if row["reauthentication_sent_at"] is not None:
        out["reauthentication_sent_at"] = ts(row["reauthentication_sent_at"])
    if row["last_sign_in_at"] is not None:
        out["last_sign_in_at"] = ts(row["last_sign_in_at"])
    out["app_metadata"] = _json(row["raw_app_meta_data"]) or {}
    out["user_metadata"] = _json(row["raw_user_meta_data"]) or {}
    keys = row.keys()
    if "_identities" in keys:
        out["identities"] = _json(row["_identities"]) or []
        factors = _json(row["_factors"])
        if factors:
            out["factors"] = factors
    else:
        out["identities"] = []
    out["created_at"] = ts(row["created_at"])
    out["updated_at"] = ts(row["updated_at"])
    if row["banned_until"] is not None:
        out["banned_until"] = ts(row["banned_until"])
    if row["deleted_at"] is not None:
        out["deleted_at"] = ts(row["deleted_at"])
    out["is_anonymous"] = bool(row["is_anonymous"])
    return out


async def load(conn: DbConn, user_id: uuid.UUID | str, *, for_update: bool = False) -> asyncpg.Record | None:
    if for_update:
        await conn.execute("select 1 from auth.users where id = $1 for update", _uuid(user_id))
    return await conn.fetchrow(_LOAD_SQL + " where u.id = $1", _uuid(user_id))


async def load_with_session(conn: DbConn, user_id: uuid.UUID, session_id: uuid.UUID | None
                            ) -> asyncpg.Record | None:
    return await conn.fetchrow(_LOAD_WITH_SESSION_SQL, user_id, session_id)


async def find_by_email(conn: DbConn, email: str, aud: str = "authenticated") -> asyncpg.Record | None:
    return await conn.fetchrow(_LOAD_SQL + " where lower(u.email) = lower($1) and u.aud = $2 "
                               "and u.is_sso_user = false and u.deleted_at is null", email, aud)


async def find_by_phone(conn: DbConn, phone: str, aud: str = "authenticated") -> asyncpg.Record | None:
    return await conn.fetchrow(_LOAD_SQL + " where u.phone = $1 and u.aud = $2 and u.deleted_at is null",
                               phone, aud)


async def find_by_column(conn: DbConn, column: str, value: str) -> asyncpg.Record | None:
    """Lookup by one of the token columns (names come from a fixed set, never from input)."""
    assert column in TOKEN_COLUMNS
    return await conn.fetchrow(_LOAD_SQL + f' where u."{column}" = $1 and u.deleted_at is null', value)


TOKEN_COLUMNS = frozenset({"confirmation_token", "recovery_token", "email_change_token_new",
                           "email_change_token_current", "reauthentication_token", "phone_change_token"})


def _uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError):
        return None


async def create(conn: DbConn, *, email: str | None, phone: str | None, password_hash: str | None,
                 provider: str, user_metadata: dict[str, Any] | None, app_metadata: dict[str, Any] | None = None,
                 email_confirmed: bool = False, phone_confirmed: bool = False, is_anonymous: bool = False,
                 role: str = "authenticated", aud: str = "authenticated", user_id: uuid.UUID | None = None,
                 identity_data: dict[str, Any] | None = None, provider_id: str | None = None,
                 invited: bool = False) -> uuid.UUID:
    """Insert a user and (except for anonymous users) its first identity; returns the id."""
    uid = user_id or uuid.uuid4()
    app: dict[str, Any] = {}
    if not is_anonymous:
        app = {"provider": provider, "providers": [provider]}
    else:
        app = {"provider": "anonymous", "providers": ["anonymous"]}
    app.update(app_metadata or {})
    await conn.execute(
        """insert into auth.users (instance_id, id, aud, role, email, phone, encrypted_password, email_confirmed_at,
             phone_confirmed_at, raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
             is_anonymous, invited_at, confirmation_token, recovery_token, email_change_token_new, email_change,
             email_change_token_current, phone_change, phone_change_token, reauthentication_token)
           values ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, $5, $6,
             case when $7 then now() end, case when $8 then now() end, $9::jsonb, $10::jsonb, false, now(), now(),
             $11, case when $12 then now() end, '', '', '', '', '', '', '', '')""",
        uid, aud, role, email or None, phone or None, password_hash or "", email_confirmed, phone_confirmed,
        jsonutil.dumps_str(app), jsonutil.dumps_str(user_metadata or {}), is_anonymous, invited,
    )
    if not is_anonymous:
        data = identity_data
        if data is None:
            data = {"sub": str(uid), "email_verified": email_confirmed, "phone_verified": phone_confirmed}
            if email:
                data["email"] = email
            if phone:
                data["phone"] = phone
        await conn.execute(
            """insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
                 created_at, updated_at) values ($1, $2, $3::jsonb, $4, now(), now(), now())""",
            provider_id or str(uid), uid, jsonutil.dumps_str(data), provider)
    return uid


def check_metadata(value: dict[str, Any], limit: int, name: str) -> dict[str, Any]:
    """Refuse metadata larger than `limit` bytes of JSON: it is copied into every access token, every cached
    verification and every request's claims, so its size multiplies (GoTrue has no limit; docs/auth.md)."""
    size = len(jsonutil.dumps(value))
    if size > limit:
        raise AuthError("validation_failed", f"{name} is too large ({size} bytes of JSON, the limit is {limit})")
    return value


def merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """GoTrue's UpdateUserMetaData: shallow merge, a null value removes the key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def is_banned(row: asyncpg.Record) -> bool:
    banned: datetime | None = row["banned_until"]
    return banned is not None and banned > now()


def obfuscated_user(email: str, phone: str, provider: str, data: dict[str, Any]) -> dict[str, Any]:
    """What GoTrue answers for a signup of an existing address, so the response reveals nothing."""
    stamp = ts(now())
    out: dict[str, Any] = {"id": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated",
                           "email": email, "phone": phone, "confirmation_sent_at": stamp,
                           "app_metadata": {"provider": provider, "providers": [provider]},
                           "user_metadata": data, "identities": [], "created_at": stamp, "updated_at": stamp,
                           "is_anonymous": False}
    return out
