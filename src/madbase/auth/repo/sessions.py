"""Sessions in `auth.sessions`, their AMR claims (`auth.mfa_amr_claims`) and their refresh-token chains
(`auth.refresh_tokens`, SHA-256 digests only). Every function takes a connection of a transaction acting as
supabase_auth_admin; the token rules themselves live in `auth/sessions.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from madbase.auth.repo import audit
from madbase.auth.repo.users import LOAD_FOR_SESSION_CTE_SQL
from madbase.core.types import DbConn


async def insert(conn: DbConn, session_id: uuid.UUID, user_id: uuid.UUID, factor_id: uuid.UUID | None, aal: str,
                 user_agent: str, ip: str | None) -> None:
    await conn.execute(
        """insert into auth.sessions (id, user_id, created_at, updated_at, factor_id, aal, refreshed_at, user_agent,
             ip) values ($1, $2, now(), now(), $3, $4::auth.aal_level, now() at time zone 'utc', $5, $6::inet)""",
        session_id, user_id, factor_id, aal, user_agent, ip)


async def add_amr(conn: DbConn, session_id: uuid.UUID, method: str) -> None:
    await conn.execute(
        """insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
           values ($1, now(), now(), $2, $3)
           on conflict (session_id, authentication_method) do update set updated_at = now()""",
        session_id, method, uuid.uuid4())


async def aal(conn: DbConn, session_id: uuid.UUID | None) -> str | None:
    found: str | None = await conn.fetchval("select aal::text from auth.sessions where id = $1", session_id)
    return found


async def created_at(conn: DbConn, session_id: uuid.UUID | None) -> datetime | None:
    found: datetime | None = await conn.fetchval("select created_at from auth.sessions where id = $1", session_id)
    return found


async def step_up(conn: DbConn, session_id: uuid.UUID, factor_id: uuid.UUID) -> None:
    """The session reached AAL2 with `factor_id`."""
    await conn.execute("update auth.sessions set aal = 'aal2', factor_id = $2, updated_at = now() where id = $1",
                       session_id, factor_id)


async def step_down_factor(conn: DbConn, factor_id: uuid.UUID) -> None:
    """Sessions that reached AAL2 with a now removed factor fall back to AAL1."""
    await conn.execute("update auth.sessions set aal = 'aal1', factor_id = null where factor_id = $1", factor_id)


async def delete(conn: DbConn, session_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.sessions where id = $1", session_id)


async def delete_others(conn: DbConn, user_id: uuid.UUID, keep: uuid.UUID | None) -> None:
    await conn.execute("delete from auth.sessions where user_id = $1 and id is distinct from $2", user_id, keep)


async def delete_of_user(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.sessions where user_id = $1", user_id)


async def insert_refresh_token(conn: DbConn, digest: str, user_id: uuid.UUID, parent: str | None,
                               session_id: uuid.UUID) -> None:
    await conn.execute(
        """insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent,
             session_id) values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)""",
        digest, str(user_id), parent, session_id)


async def revoke_live_tokens(conn: DbConn, session_id: uuid.UUID) -> str | None:
    """Revoke every live token of the session; the digest of the newest one (None when there was none)."""
    newest: str | None = await conn.fetchval(
        "with r as (update auth.refresh_tokens set revoked = true, updated_at = now() "
        "where session_id = $1 and not revoked returning id, token) select token from r order by id desc limit 1",
        session_id)
    return newest


async def newer_session_exists(conn: DbConn, user_id: uuid.UUID, session_id: uuid.UUID,
                               refreshed_at: datetime | None, created: datetime | None) -> bool:
    """Whether another session of the user was refreshed (or created) after this one's values from before."""
    found: bool = await conn.fetchval(
        "select exists(select 1 from auth.sessions where user_id = $1 and id <> $2 and "
        "(coalesce(refreshed_at, created_at at time zone 'utc'), created_at) > "
        "(coalesce($3::timestamp, $4::timestamptz at time zone 'utc'), $4::timestamptz))",
        user_id, session_id, refreshed_at, created)
    return found


# The whole rotation of a live token in one statement (one round trip): lock the token's session (`rs`), revoke
# the presented token if it is still live (`upd`: a concurrent refresh that committed first makes this update
# skip the row, as it re-checks `not revoked` on the newest row version), insert its child, touch the session,
# write the audit row, and return the user (repo.users.load_with_session's columns) with the session's columns.
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
""" + LOAD_FOR_SESSION_CTE_SQL.replace("\nfrom rs join", """,
  rs.id as _s_id, rs.created_at as _s_created_at, rs.not_after as _s_not_after,
  rs.refreshed_at as _s_refreshed_at, rs.aal::text as _s_aal,
  (select count(*) from ins) + (select count(*) from ss) + (select count(*) from aud) as _rotated
from rs join""")
# Where the audit payload of the fast refresh gets the user id (known only inside the statement).
ACTOR = "{actor}"


async def fast_refresh(conn: DbConn, digest: str, child_digest: str, user_agent: str, audit_id: uuid.UUID,
                       payload: str, ip: str) -> asyncpg.Record | None:
    """The one-statement rotation above; the row (user + `_s_*` session columns + `_rotated`) or None."""
    return await conn.fetchrow(_FAST_REFRESH_SQL, digest, child_digest, user_agent, audit_id, payload, ip)


async def lock_by_token(conn: DbConn, digest: str) -> asyncpg.Record | None:
    """The token's session (with its user's ban and deletion times), locked."""
    return await conn.fetchrow(
        "select s.*, u.banned_until, u.deleted_at from auth.sessions s join auth.users u on u.id = s.user_id "
        "where s.id = (select session_id from auth.refresh_tokens where token = $1) for update of s", digest)


async def token_known(conn: DbConn, digest: str) -> bool:
    return bool(await conn.fetchval("select true from auth.refresh_tokens where token = $1", digest))


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


async def rotate(conn: DbConn, digest: str, child_digest: str, user_id: uuid.UUID,
                 session_id: uuid.UUID) -> asyncpg.Record | None:
    """(revoked, updated_at, inserted) of the presented token after rotating it if live; None if unknown."""
    return await conn.fetchrow(_ROTATE_SQL, digest, child_digest, str(user_id), session_id)


async def live_token_parent(conn: DbConn, session_id: uuid.UUID) -> tuple[bool, str | None]:
    """(whether the session has a live token, the newest live token's parent digest)."""
    row = await conn.fetchrow("select parent from auth.refresh_tokens where session_id = $1 and not revoked "
                              "order by id desc limit 1", session_id)
    return (False, None) if row is None else (True, row["parent"])


async def touch_refreshed(conn: DbConn, session_id: uuid.UUID, user_agent: str, audit_id: uuid.UUID,
                          payload: str, ip: str) -> None:
    """The session was refreshed (time, user agent) and the audit row written, in one statement."""
    await conn.execute(
        "with s as (update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now(), "
        "user_agent = $2 where id = $1) " + audit.INSERT_SQL, session_id, user_agent, audit_id, payload, ip)
