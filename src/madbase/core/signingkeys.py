"""A project's asymmetric JWT signing keys (RS256 / ES256) in its database (`auth.madbase_signing_keys`,
tenant migration 1002): generation, storage (private half sealed with the server's master key) and the
public JWKs. Shared by the auth service (signing, its own rotation route) and the control plane's key
rotation (admin/keyroutes.py), which is why it lives in the core.

Every SQL function takes a connection of a transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from madbase.core import jsonutil
from madbase.core.secretbox import SecretBox
from madbase.core.types import DbConn

ALGS = ("RS256", "ES256")


def generate(alg: str) -> tuple[Any, dict[str, Any]]:
    """A new private key of `alg` and its public JWK (without kid)."""
    if alg == "RS256":
        rkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return rkey, json.loads(RSAAlgorithm.to_jwk(rkey.public_key()))
    ekey = ec.generate_private_key(ec.SECP256R1())
    return ekey, json.loads(ECAlgorithm.to_jwk(ekey.public_key()))


def seal_context(ref: str, kid: str) -> str:
    return f"{ref}:auth_signing_key:{kid}"


async def create(conn: DbConn, box: SecretBox, ref: str, alg: str) -> tuple[str, Any]:
    """A new active key of `alg` (the active one becomes `previous`); returns (kid, private key)."""
    private, jwk = generate(alg)
    kid = secrets.token_hex(8)
    jwk.update({"kid": kid, "alg": alg, "use": "sig", "key_ops": ["verify"]})
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    await add_active(conn, kid, alg, box.seal(pem, context=seal_context(ref, kid)), jwk)
    return kid, private


async def published_jwks(conn: DbConn) -> list[dict[str, Any]]:
    """The public JWKs of the active and previous keys, newest first, as dicts."""
    return [json.loads(j) if isinstance(j, str) else dict(j) for j in await published(conn)]


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


async def active(conn: DbConn, alg: str | None = None) -> asyncpg.Record | None:
    """(kid, alg, private_key) of the active key (of `alg` when given)."""
    return await conn.fetchrow("select kid, alg, private_key from auth.madbase_signing_keys "
                               "where status = 'active' and ($1::text is null or alg = $1)", alg)


async def revoke_previous(conn: DbConn, kid: str) -> bool:
    """Revoke a previous key (never the active one); False when there is no previous key `kid`."""
    row = await conn.fetchrow("update auth.madbase_signing_keys set status = 'revoked' where kid = $1 "
                              "and status = 'previous' returning kid", kid)
    return row is not None
