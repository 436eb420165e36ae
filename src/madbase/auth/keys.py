"""Asymmetric signing keys for access tokens (RS256 / ES256), their JWKS and rotation.

With `auth.jwt_signing_alg` = RS256 or ES256, tokens are signed with the project's active key of that
algorithm (created on first use) and carry its `kid`. Keys live in auth.madbase_signing_keys (private half
sealed with the server's master key); the public halves of active and previous keys are published in the
project config (`jwt_public_keys`), which the gateway's verifier and GET /.well-known/jwks.json read.
Rotation makes a new active key and keeps the old one as `previous` (still verifying) until revoked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp
from madbase.auth.repo import signingkeys
from madbase.core import signingkeys as core_keys
from madbase.core.db import internal_transaction
from madbase.core.types import DbConn

ALGS = core_keys.ALGS


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    private: Any


_cache: dict[tuple[str, str], SigningKey] = {}


def _context(req: Req, kid: str) -> str:
    return core_keys.seal_context(req.ctx.project.ref, kid)


async def _create(conn: DbConn, req: Req, alg: str) -> SigningKey:
    kid, private = await core_keys.create(conn, req.ctx.runtime.box, req.ctx.project.ref, alg)
    return SigningKey(kid, alg, private)


async def publish(conn: DbConn, req: Req) -> list[dict[str, Any]]:
    jwks = [json.loads(j) if isinstance(j, str) else dict(j) for j in await signingkeys.published(conn)]
    runtime = req.ctx.runtime
    await runtime.store.update_config(req.ctx.project.ref, {"jwt_public_keys": jwks})
    await runtime.projects.refresh()
    return jwks


async def current(req: Req) -> SigningKey | None:
    """The key to sign with, or None for HS256 with the project secret."""
    alg = req.config.jwt_signing_alg
    if alg not in ALGS:
        return None
    ref = req.ctx.project.ref
    hit = _cache.get((ref, alg))
    published = req.ctx.project.config.get("jwt_public_keys") or []
    # The newest published key is the active one; another process may have rotated since we cached ours.
    if hit is not None and published and published[0].get("kid") == hit.kid:
        return hit
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        await signingkeys.lock(conn)
        row = await signingkeys.active(conn, alg)
        if row is None:
            key = await _create(conn, req, alg)
            await publish(conn, req)
        else:
            pem = req.ctx.runtime.box.open(row["private_key"], context=_context(req, row["kid"]))
            key = SigningKey(row["kid"], alg, serialization.load_pem_private_key(pem.encode(), password=None))
    _cache[(ref, alg)] = key
    return key


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    return pyjwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"})


async def rotate(req: Req) -> Resp:
    """MadBase extension: POST /admin/signing_keys → a new active key (the old one keeps verifying)."""
    alg = req.str_field("alg") or req.config.jwt_signing_alg
    if alg not in ALGS:
        raise AuthError("validation_failed", "alg must be RS256 or ES256")
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        await signingkeys.lock(conn)
        key = await _create(conn, req, alg)
        jwks = await publish(conn, req)
    _cache[(req.ctx.project.ref, alg)] = key
    return json_resp({"kid": key.kid, "alg": alg, "keys": jwks})


async def revoke(req: Req) -> Resp:
    """MadBase extension: DELETE /admin/signing_keys/{kid} → tokens signed with it stop verifying."""
    kid = req.params["kid"]
    async with internal_transaction(req.pool, "supabase_auth_admin") as conn:
        if not await signingkeys.revoke_previous(conn, kid):
            raise AuthError("not_found", "No previous signing key with this kid (the active key cannot be revoked)",
                            status=404)
        jwks = await publish(conn, req)
    return json_resp({"keys": jwks})


async def jwks(req: Req) -> Resp:
    config = req.ctx.project.config
    keys = config.get("jwt_public_keys") or []
    # a key rotated out by the control plane is published until its grace window ends (docs/keys.md)
    retiring = config.get("jwt_keys_retiring") or {}
    if isinstance(retiring, dict) and retiring:
        now = time.time()
        keys = [k for k in keys if not isinstance(until := retiring.get(k.get("kid")), int | float) or until > now]
    return json_resp({"keys": list(keys)}, headers=[(b"cache-control", b"public, max-age=600")])
