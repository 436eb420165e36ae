"""Identities in `auth.identities`: one per (provider, provider_id), owned by one user.

Every function takes a connection of a transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.types import DbConn


async def insert(conn: DbConn, user_id: uuid.UUID, provider_id: str, provider: str, data: dict[str, Any]) -> None:
    await conn.execute(
        """insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
             created_at, updated_at) values ($1, $2, $3::jsonb, $4, now(), now(), now())""",
        provider_id, user_id, jsonutil.dumps_str(data), provider)


async def owner(conn: DbConn, provider_id: str, provider: str) -> uuid.UUID | None:
    """The user owning the provider's identity, if any."""
    found: uuid.UUID | None = await conn.fetchval(
        "select user_id from auth.identities where provider_id = $1 and provider = $2", provider_id, provider)
    return found


async def refresh_data(conn: DbConn, provider_id: str, provider: str, data: dict[str, Any]) -> None:
    """A sign-in through the provider: its latest claims and the sign-in time."""
    await conn.execute("update auth.identities set identity_data = $3::jsonb, last_sign_in_at = now(), "
                       "updated_at = now() where provider_id = $1 and provider = $2",
                       provider_id, provider, jsonutil.dumps_str(data))


async def of_user(conn: DbConn, user_id: uuid.UUID) -> list[asyncpg.Record]:
    """(id, provider) of each identity of the user."""
    return list(await conn.fetch("select id, provider from auth.identities where user_id = $1", user_id))


async def delete(conn: DbConn, identity_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.identities where id = $1", identity_id)


async def delete_of_user(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.identities where user_id = $1", user_id)


async def mark_verified(conn: DbConn, user_id: uuid.UUID, provider: str) -> None:
    """`email_verified` (email identity) or `phone_verified` (phone identity) becomes true."""
    assert provider in ("email", "phone")
    flag = jsonutil.dumps_str({f"{provider}_verified": True})
    await conn.execute("update auth.identities set identity_data = identity_data || $2::jsonb "
                       "where user_id = $1 and provider = $3", user_id, flag, provider)


async def touch_sign_in(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("update auth.identities set last_sign_in_at = now() where user_id = $1", user_id)


async def set_email(conn: DbConn, user_id: uuid.UUID, email: str) -> bool:
    """The email identity's address follows the user's; False when the user has no email identity."""
    updated = await conn.execute(
        """update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text),
             updated_at = now() where user_id = $1 and provider = 'email'""", user_id, email)
    return updated != "UPDATE 0"


async def add_email_identity(conn: DbConn, user_id: uuid.UUID, email: str) -> None:
    """An anonymous (or OAuth-only) user gains a verified email identity (none when one exists)."""
    await conn.execute(
        """insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at,
             updated_at) values ($3, $1, jsonb_build_object('sub', $3::text, 'email', $2::text,
             'email_verified', true, 'phone_verified', false), 'email', now(), now(), now())
           on conflict (provider_id, provider) do nothing""", user_id, email, str(user_id))
