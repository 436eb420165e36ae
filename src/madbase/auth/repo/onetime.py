"""GoTrue's `auth.one_time_tokens`: one outstanding token hash per (user, token type), mirrored from the user
row's token columns (supabase's own tooling reads this table). Every function takes a connection of a
transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from madbase.core.types import DbConn


async def put(conn: DbConn, user_id: uuid.UUID, token_type: str, token_hash: str, relates_to: str) -> None:
    """The user's token of `token_type` (replacing the previous one)."""
    await conn.execute(
        """insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to, created_at, updated_at)
           values ($1, $2, $3::auth.one_time_token_type, $4, $5, now(), now())
           on conflict (user_id, token_type) do update set token_hash = excluded.token_hash,
             relates_to = excluded.relates_to, updated_at = now()""",
        uuid.uuid4(), user_id, token_type, token_hash, relates_to)


async def delete_kind(conn: DbConn, user_id: uuid.UUID, token_type: str) -> None:
    await conn.execute("delete from auth.one_time_tokens where user_id = $1 and token_type = $2::text::"
                       "auth.one_time_token_type", user_id, token_type)


async def delete_kinds(conn: DbConn, user_id: uuid.UUID, token_types: Sequence[str]) -> None:
    await conn.execute("delete from auth.one_time_tokens where user_id = $1 and token_type::text = any($2::text[])",
                       user_id, list(token_types))


async def delete_of_users(conn: DbConn, user_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute("delete from auth.one_time_tokens where user_id = any($1::uuid[])", list(user_ids))
