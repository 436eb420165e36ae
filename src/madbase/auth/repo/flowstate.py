"""PKCE flow states (`auth.flow_state`) and the OAuth round trips in flight (`auth.madbase_oauth_state`).
Every function takes a connection of a transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

import uuid

import asyncpg

from madbase.core.types import DbConn


async def insert(conn: DbConn, flow_id: uuid.UUID, user_id: uuid.UUID | None, challenge_method: str,
                 challenge: str, provider: str, method: str) -> None:
    await conn.execute(
        """insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, code_challenge, provider_type,
             created_at, updated_at, authentication_method)
           values ($1, $2, $3, $4::auth.code_challenge_method, $5, $6, now(), now(), $7)""",
        flow_id, user_id, str(uuid.uuid4()), challenge_method, challenge, provider, method)


async def delete_abandoned(conn: DbConn) -> None:
    """Housekeeping: flows started more than a day ago and never finished."""
    await conn.execute("delete from auth.flow_state where created_at < now() - interval '24 hours'")


async def lock_by_code(conn: DbConn, auth_code: str) -> asyncpg.Record | None:
    return await conn.fetchrow("select * from auth.flow_state where auth_code = $1 for update", auth_code)


async def delete(conn: DbConn, flow_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.flow_state where id = $1", flow_id)


async def issue_code_for_user(conn: DbConn, user_id: uuid.UUID, method: str) -> str | None:
    """Issue the auth code of the user's newest flow (one of `method` first); None when the user has none."""
    code: str | None = await conn.fetchval(
        """update auth.flow_state set auth_code_issued_at = now(), updated_at = now()
           where id = (select id from auth.flow_state where user_id = $1
                       order by (authentication_method = $2) desc, created_at desc limit 1)
           returning auth_code""", user_id, method)
    return code


async def issue_code_for_oauth(conn: DbConn, flow_id: uuid.UUID, user_id: uuid.UUID, provider_access_token: str | None,
                               provider_refresh_token: str | None) -> str | None:
    """The OAuth sign-in finished: the flow gets its user and the provider's tokens; its auth code."""
    code: str | None = await conn.fetchval(
        """update auth.flow_state set user_id = $2, provider_access_token = $3, provider_refresh_token = $4,
             auth_code_issued_at = now(), updated_at = now() where id = $1 returning auth_code""",
        flow_id, user_id, provider_access_token, provider_refresh_token)
    return code


async def insert_oauth_state(conn: DbConn, state: str, provider: str, redirect_to: str, flow_id: uuid.UUID | None,
                             nonce: str | None, link_user: uuid.UUID | None) -> None:
    """An OAuth authorization in flight; states older than an hour are dropped on the way."""
    await conn.execute(
        "insert into auth.madbase_oauth_state (id, provider, redirect_to, flow_state_id, nonce, link_user_id) "
        "values ($1, $2, $3, $4, $5, $6)", state, provider, redirect_to, flow_id, nonce, link_user)
    await conn.execute("delete from auth.madbase_oauth_state where created_at < now() - interval '1 hour'")


async def take_oauth_state(conn: DbConn, state: str) -> asyncpg.Record | None:
    """The state of a callback (at most 10 minutes old), removed so that it is used once."""
    return await conn.fetchrow("delete from auth.madbase_oauth_state where id = $1 "
                               "and created_at > now() - interval '10 minutes' returning *", state)
