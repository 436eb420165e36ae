"""MFA factors (`auth.mfa_factors`) and their challenges (`auth.mfa_challenges`). Every function takes a
connection of a transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from madbase.core.types import DbConn


async def count(conn: DbConn, user_id: uuid.UUID) -> int:
    found: int = await conn.fetchval("select count(*) from auth.mfa_factors where user_id = $1", user_id)
    return found


async def name_taken(conn: DbConn, user_id: uuid.UUID, friendly_name: str) -> bool:
    return bool(await conn.fetchval("select 1 from auth.mfa_factors where user_id = $1 and friendly_name = $2",
                                    user_id, friendly_name))


async def verified_phone_exists(conn: DbConn, user_id: uuid.UUID, phone: str) -> bool:
    return bool(await conn.fetchval("select 1 from auth.mfa_factors where user_id = $1 and factor_type = 'phone' "
                                    "and phone = $2 and status = 'verified'", user_id, phone))


async def insert_totp(conn: DbConn, factor_id: uuid.UUID, user_id: uuid.UUID, friendly_name: str,
                      secret: str) -> None:
    await conn.execute(
        """insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at,
             secret) values ($1, $2, $3, 'totp', 'unverified', now(), now(), $4)""",
        factor_id, user_id, friendly_name, secret)


async def insert_phone(conn: DbConn, factor_id: uuid.UUID, user_id: uuid.UUID, friendly_name: str,
                       phone: str) -> None:
    await conn.execute(
        """insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at,
             phone) values ($1, $2, $3, 'phone', 'unverified', now(), now(), $4)""",
        factor_id, user_id, friendly_name, phone)


async def get(conn: DbConn, factor_id: uuid.UUID, user_id: uuid.UUID) -> asyncpg.Record | None:
    """The user's factor (None for another user's)."""
    return await conn.fetchrow("select * from auth.mfa_factors where id = $1 and user_id = $2", factor_id, user_id)


async def mark_challenged(conn: DbConn, factor_id: uuid.UUID) -> None:
    await conn.execute("update auth.mfa_factors set last_challenged_at = now(), updated_at = now() where id = $1",
                       factor_id)


async def mark_verified(conn: DbConn, factor_id: uuid.UUID) -> None:
    await conn.execute("update auth.mfa_factors set status = 'verified', updated_at = now() where id = $1",
                       factor_id)


async def delete(conn: DbConn, factor_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.mfa_factors where id = $1", factor_id)


async def delete_of_user(conn: DbConn, user_id: uuid.UUID) -> None:
    await conn.execute("delete from auth.mfa_factors where user_id = $1", user_id)


async def delete_returning(conn: DbConn, factor_id: uuid.UUID, user_id: uuid.UUID) -> asyncpg.Record | None:
    """Remove the user's factor; its (id, factor_type, friendly_name, status), None when it was not there."""
    return await conn.fetchrow("delete from auth.mfa_factors where id = $1 and user_id = $2 "
                               "returning id, factor_type, friendly_name, status", factor_id, user_id)


async def insert_challenge(conn: DbConn, challenge_id: uuid.UUID, factor_id: uuid.UUID, ip: str,
                           otp_hash: str | None) -> datetime:
    """A new challenge of the factor; its creation time."""
    created: datetime = await conn.fetchval(
        "insert into auth.mfa_challenges (id, factor_id, created_at, ip_address, otp_code) "
        "values ($1, $2, now(), $3::inet, $4) returning created_at", challenge_id, factor_id, ip, otp_hash)
    return created


async def lock_challenge(conn: DbConn, challenge_id: uuid.UUID, factor_id: uuid.UUID) -> asyncpg.Record | None:
    """The factor's challenge, locked (concurrent verifications of one challenge serialise)."""
    return await conn.fetchrow("select * from auth.mfa_challenges where id = $1 and factor_id = $2 for update",
                               challenge_id, factor_id)


async def count_challenge_failure(conn: DbConn, challenge_id: uuid.UUID) -> None:
    """One more wrong code on this challenge (kept in web_authn_session_data, which TOTP/phone leave unused)."""
    await conn.execute(
        """update auth.mfa_challenges set web_authn_session_data = coalesce(web_authn_session_data, '{}'::jsonb)
             || jsonb_build_object('madbase_failures',
                  coalesce((web_authn_session_data->>'madbase_failures')::int, 0) + 1)
           where id = $1""", challenge_id)


async def mark_challenge_verified(conn: DbConn, challenge_id: uuid.UUID) -> None:
    await conn.execute("update auth.mfa_challenges set verified_at = now() where id = $1", challenge_id)
