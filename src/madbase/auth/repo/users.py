"""Reading and creating users in `auth.users` (GoTrue's columns): the user row with its identities and factors.

Every function takes a connection of a transaction acting as supabase_auth_admin. Rows carry the user's
columns plus `_identities` and `_factors` (JSON) for `auth.users.user_json`.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from madbase.auth.repo import identities
from madbase.core import jsonutil
from madbase.core.types import DbConn

LOAD_SQL = """
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
_LOAD_WITH_SESSION_SQL = LOAD_SQL.replace("\nfrom auth.users u", """,
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

TOKEN_COLUMNS = frozenset({"confirmation_token", "recovery_token", "email_change_token_new",
                           "email_change_token_current", "reauthentication_token", "phone_change_token"})


def as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def lock(conn: DbConn, user_id: uuid.UUID) -> None:
    """Lock the user's row until the transaction ends (serialises concurrent changes of one user)."""
    await conn.execute("select 1 from auth.users where id = $1 for update", user_id)


async def load(conn: DbConn, user_id: uuid.UUID | str, *, for_update: bool = False) -> asyncpg.Record | None:
    if for_update:
        await lock(conn, as_uuid(user_id))
    return await conn.fetchrow(LOAD_SQL + " where u.id = $1", as_uuid(user_id))


async def load_with_session(conn: DbConn, user_id: uuid.UUID, session_id: uuid.UUID | None
                            ) -> asyncpg.Record | None:
    return await conn.fetchrow(_LOAD_WITH_SESSION_SQL, user_id, session_id)


async def find_by_email(conn: DbConn, email: str, aud: str = "authenticated") -> asyncpg.Record | None:
    return await conn.fetchrow(LOAD_SQL + " where lower(u.email) = lower($1) and u.aud = $2 "
                               "and u.is_sso_user = false and u.deleted_at is null", email, aud)


async def find_by_phone(conn: DbConn, phone: str, aud: str = "authenticated") -> asyncpg.Record | None:
    return await conn.fetchrow(LOAD_SQL + " where u.phone = $1 and u.aud = $2 and u.deleted_at is null",
                               phone, aud)


async def find_by_column(conn: DbConn, column: str, value: str) -> asyncpg.Record | None:
    """Lookup by one of the token columns (names come from a fixed set, never from input)."""
    assert column in TOKEN_COLUMNS
    return await conn.fetchrow(LOAD_SQL + f' where u."{column}" = $1 and u.deleted_at is null', value)


async def id_by_phone_change(conn: DbConn, phone: str) -> uuid.UUID | None:
    """The user waiting to confirm `phone` as a new number."""
    found: uuid.UUID | None = await conn.fetchval("select id from auth.users where phone_change = $1", phone)
    return found


async def id_by_email_or_change(conn: DbConn, email: str) -> uuid.UUID | None:
    """The user whose address or pending new address is `email` (lower-case)."""
    found: uuid.UUID | None = await conn.fetchval(
        "select id from auth.users where lower(email) = $1 or lower(email_change) = $1", email)
    return found


async def has_verified_factor(conn: DbConn, user_id: uuid.UUID) -> bool:
    found: bool = await conn.fetchval(
        "select exists(select 1 from auth.mfa_factors where user_id = $1 and status = 'verified')", user_id)
    return found


async def page(conn: DbConn, like: str | None, limit: int, offset: int) -> tuple[int, list[asyncpg.Record]]:
    """Admin listing: (total, one page newest first) of `authenticated` users, optionally filtered by an ILIKE
    pattern on the email or the metadata's full_name."""
    where = ("where u.aud = 'authenticated' and ($1::text is null or u.email ilike $1 "
             "or u.raw_user_meta_data->>'full_name' ilike $1)")
    total: int = await conn.fetchval("select count(*) from auth.users u " + where, like)
    rows = await conn.fetch(LOAD_SQL + " " + where + " order by u.created_at desc, u.id limit $2 offset $3",
                            like, limit, offset)
    return total, list(rows)


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
        await identities.insert(conn, uid, provider_id or str(uid), provider, data)
    return uid
