"""The control-plane side of a project's keys (migration control/0004_keys.sql, docs/keys.md): loading them
for the project cache, creating and revoking new-style keys, rotating the legacy anon/service_role keys and
the HS256 JWT secret with a grace window.

Every write notifies `madbase_projects` (table triggers): each server process reloads the project, and the
process that made the change reloads it before answering, so a key handed out is accepted from then on.
Rotations lock the project's row: two concurrent rotations retire each other's keys in order, never lose one.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import jwt as pyjwt

from madbase.core import apikeys
from madbase.core.apikeys import ProjectKeys, StoredKey
from madbase.core.control import ControlStore, new_jwt_secret
from madbase.core.jwt import make_api_key
from madbase.core.types import DbConn

MAX_GRACE_SECONDS = 30 * 86400
DEFAULT_GRACE_SECONDS = 3600
MAX_KEYS = 100  # new-style keys per project (revoked ones not counted)


class KeyProblem(Exception):
    """A refused key operation, with a message for the caller (status: 400 or 404 or 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def secret_id(ref: str, secret: str) -> str:
    """A stable, non-revealing id of a JWT secret (what rotation answers as `key_id`)."""
    return hashlib.sha256(f"{ref}:{secret}".encode()).hexdigest()[:16]


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


# -- loading ------------------------------------------------------------------------------------------------
async def load_all(store: ControlStore) -> dict[str, ProjectKeys]:
    """Every project's live keys, retired legacy digests and previous JWT secrets (the project cache's input)."""
    box = store.box
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "select id::text as id, project_ref, type, name, role, digest, hint, key_enc, expires_at, created_at "
            "from madbase_control.api_keys where revoked_at is null and (expires_at is null or expires_at > now()) "
            "order by created_at, id")
        retired = await conn.fetch("select project_ref, digest from madbase_control.api_keys where type = 'legacy'")
        secrets_ = await conn.fetch(
            "select id, project_ref, secret_enc, grace_until from madbase_control.jwt_secrets "
            "where grace_until > now() order by retired_at desc, id")
    keys: dict[str, list[StoredKey]] = {}
    for r in rows:
        ref = r["project_ref"]
        value = None if r["key_enc"] is None else box.open(r["key_enc"], context=f"{ref}:api_key:{r['id']}")
        keys.setdefault(ref, []).append(StoredKey(
            id=r["id"], type=r["type"], name=r["name"], role=r["role"], digest=bytes(r["digest"]), hint=r["hint"],
            value=value, expires_at=_epoch(r["expires_at"]), created_at=_epoch(r["created_at"])))
    digests: dict[str, set[bytes]] = {}
    for r in retired:
        digests.setdefault(r["project_ref"], set()).add(bytes(r["digest"]))
    previous: dict[str, list[tuple[str, float]]] = {}
    for r in secrets_:
        ref = r["project_ref"]
        secret = box.open(r["secret_enc"], context=f"{ref}:jwt_secret:{r['id']}")
        previous.setdefault(ref, []).append((secret, r["grace_until"].timestamp()))
    return {ref: ProjectKeys(keys=tuple(keys.get(ref, ())), previous_secrets=tuple(previous.get(ref, ())),
                             retired_digests=frozenset(digests.get(ref, ())))
            for ref in set(keys) | set(digests) | set(previous)}


# -- new-style keys -----------------------------------------------------------------------------------------
async def create_key(store: ControlStore, ref: str, kind: str, name: str) -> tuple[StoredKey, str]:
    """A new publishable or secret key named `name`; returns it and its clear value (shown once)."""
    if kind not in apikeys.TYPES:
        raise KeyProblem(400, 'type must be "publishable" or "secret"')
    _, role = apikeys.TYPES[kind]
    value = apikeys.new_key(kind)
    key_id = str(uuid.uuid4())
    sealed = store.box.seal(value, context=f"{ref}:api_key:{key_id}") if kind == "publishable" else None
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("select 1 from madbase_control.projects where ref = $1 for update", ref)
        count = await conn.fetchval("select count(*) from madbase_control.api_keys where project_ref = $1 "
                                    "and type <> 'legacy' and revoked_at is null", ref)
        if count >= MAX_KEYS:
            raise KeyProblem(400, f"A project has at most {MAX_KEYS} API keys; revoke one first")
        try:
            row = await conn.fetchrow(
                "insert into madbase_control.api_keys (id, project_ref, type, name, role, digest, hint, key_enc) "
                "values ($1::uuid, $2, $3, $4, $5, $6, $7, $8) returning created_at",
                key_id, ref, kind, name, role, apikeys.digest(value), apikeys.hint(value), sealed)
            assert row is not None
        except asyncpg.UniqueViolationError:
            raise KeyProblem(409, f"An API key named {name!r} already exists") from None
    key = StoredKey(id=key_id, type=kind, name=name, role=role, digest=apikeys.digest(value),
                    hint=apikeys.hint(value), value=value if kind == "publishable" else None,
                    created_at=row["created_at"].timestamp())
    return key, value


async def revoke_key(store: ControlStore, ref: str, key_id: str) -> dict[str, Any] | None:
    """Revoke a new-style key (at once) or end a retired legacy key's grace window now; None if unknown."""
    try:
        uuid.UUID(key_id)
    except ValueError:
        return None
    row = await store.pool.fetchrow(
        "update madbase_control.api_keys set revoked_at = now(), "
        "expires_at = case when type = 'legacy' then least(expires_at, now()) else expires_at end "
        "where project_ref = $1 and id = $2::uuid and revoked_at is null "
        "returning id::text as id, type, name, revoked_at", ref, key_id)
    return None if row is None else dict(row)


@dataclass(frozen=True, slots=True)
class ListedKey:
    id: str
    name: str
    type: str
    role: str
    value: str | None  # None: not revealable (secret keys)
    hint: str
    created_at: datetime | None
    expires_at: datetime | None = None


async def list_keys(store: ControlStore, ref: str) -> list[ListedKey]:
    """The project's keys: the current legacy pair, legacy keys in their grace window, new-style keys."""
    record = await store.get(ref)
    if record is None:
        return []
    out = [ListedKey("anon", "anon", "legacy", "anon", record.anon_key, apikeys.hint(record.anon_key),
                     record.created_at),
           ListedKey("service_role", "service_role", "legacy", "service_role", record.service_role_key,
                     apikeys.hint(record.service_role_key), record.created_at)]
    rows = await store.pool.fetch(
        "select id::text as id, type, name, role, hint, key_enc, created_at, expires_at "
        "from madbase_control.api_keys where project_ref = $1 and revoked_at is null "
        "and (expires_at is null or expires_at > now()) order by created_at, id", ref)
    for r in rows:
        value = None if r["key_enc"] is None else store.box.open(r["key_enc"], context=f"{ref}:api_key:{r['id']}")
        out.append(ListedKey(r["id"], r["name"], r["type"], r["role"], value, r["hint"], r["created_at"],
                             r["expires_at"]))
    return out


# -- rotation -----------------------------------------------------------------------------------------------
def _issued_after(*keys: str) -> int:
    """An `iat` for new legacy keys later than the old ones' (two rotations in one second still differ)."""
    now = int(time.time())
    for key in keys:
        try:
            iat = pyjwt.decode(key, options={"verify_signature": False}).get("iat")
        except pyjwt.PyJWTError:
            continue
        if isinstance(iat, int) and iat >= now:
            now = iat + 1
    return now


async def _retire_legacy(conn: DbConn, store: ControlStore, ref: str, keys: dict[str, str],
                         until: datetime) -> None:
    for role, key in keys.items():
        key_id = str(uuid.uuid4())
        await conn.execute(
            "insert into madbase_control.api_keys (id, project_ref, type, name, role, digest, hint, key_enc, "
            "expires_at) values ($1::uuid, $2, 'legacy', $3, $3, $4, $5, $6, $7) on conflict (digest) do nothing",
            key_id, ref, role, apikeys.digest(key), apikeys.hint(key),
            store.box.seal(key, context=f"{ref}:api_key:{key_id}"), until)


@dataclass(frozen=True, slots=True)
class Rotated:
    anon_key: str
    service_role_key: str = ""
    grace_until: datetime | None = None
    key_id: str = ""


async def rotate(store: ControlStore, ref: str, grace_seconds: int, *, new_secret: bool) -> Rotated:
    """New legacy anon/service_role keys (and with `new_secret` a new HS256 JWT secret first); the old keys and
    secret keep working for `grace_seconds`. Returns the new keys (service_role in clear: shown once)."""
    box = store.box
    async with store.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "select jwt_secret_enc, service_key_enc, anon_key, now() + make_interval(secs => $2) as until "
            "from madbase_control.projects where ref = $1 and status <> 'deleted' for update", ref, grace_seconds)
        if row is None:
            raise KeyProblem(404, "Project not found")
        until: datetime = row["until"]
        secret = box.open(row["jwt_secret_enc"], context=f"{ref}:jwt_secret")
        old = {"anon": row["anon_key"],
               "service_role": box.open(row["service_key_enc"], context=f"{ref}:service_role_key")}
        if new_secret:
            old_id = secret_id(ref, secret)
            await conn.execute(
                "insert into madbase_control.jwt_secrets (id, project_ref, secret_enc, grace_until) "
                "values ($1, $2, $3, $4) on conflict (id) do update set grace_until = excluded.grace_until",
                old_id, ref, box.seal(secret, context=f"{ref}:jwt_secret:{old_id}"), until)
            secret = new_jwt_secret()
        iat = _issued_after(*old.values())
        anon = make_api_key(secret, "anon", ref, issued_at=iat)
        service = make_api_key(secret, "service_role", ref, issued_at=iat)
        await _retire_legacy(conn, store, ref, old, until)
        await conn.execute(
            "update madbase_control.projects set anon_key = $2, service_key_enc = $3, jwt_secret_enc = $4, "
            "updated_at = now() where ref = $1",
            ref, anon, box.seal(service, context=f"{ref}:service_role_key"),
            box.seal(secret, context=f"{ref}:jwt_secret"))
        # retired material whose window closed long ago is of no use any more (digests of legacy keys stay:
        # they keep an old key refused as a bearer token while the secret that signed it still verifies)
        await conn.execute("delete from madbase_control.jwt_secrets where project_ref = $1 "
                           "and grace_until < now() - interval '1 day'", ref)
    return Rotated(anon, service, until, secret_id(ref, secret))
