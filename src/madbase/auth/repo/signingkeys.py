"""The project's asymmetric signing keys (`auth.madbase_signing_keys`; private keys sealed by the caller).
Every function takes a connection of a transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.types import DbConn


async def lock(conn: DbConn) -> None:
    """Serialise key creation and rotation of the project (a transaction-scoped advisory lock)."""
    await conn.execute("select pg_advisory_xact_lock(hashtext('madbase_auth_signing_keys'))")


async def add_active(conn: DbConn, kid: str, alg: str, sealed_private_key: bytes, public_jwk: dict[str, Any]) -> None:
    """A new active key; the active one becomes `previous` (still published)."""
    await conn.execute("update auth.madbase_signing_keys set status = 'previous' where status = 'active'")
    await conn.execute("insert into auth.madbase_signing_keys (kid, alg, private_key, public_jwk) "
                       "values ($1, $2, $3, $4::jsonb)", kid, alg, sealed_private_key, jsonutil.dumps_str(public_jwk))


async def published(conn: DbConn) -> list[Any]:
    """The public JWKs of the active and previous keys, newest first (as stored: JSON text or a dict)."""
    rows = await conn.fetch("select public_jwk from auth.madbase_signing_keys where status in ('active', 'previous') "
                            "order by created_at desc")
    return [r["public_jwk"] for r in rows]


async def active(conn: DbConn, alg: str) -> asyncpg.Record | None:
    """(kid, alg, private_key) of the active key of `alg`."""
    return await conn.fetchrow("select kid, alg, private_key from auth.madbase_signing_keys "
                               "where status = 'active' and alg = $1", alg)


async def revoke_previous(conn: DbConn, kid: str) -> bool:
    """Revoke a previous key (never the active one); False when there is no previous key `kid`."""
    row = await conn.fetchrow("update auth.madbase_signing_keys set status = 'revoked' where kid = $1 "
                              "and status = 'previous' returning kid", kid)
    return row is not None
