"""Who a storage operation runs as: the caller's role and claims (RLS decides) or storage's own role.

`transaction(pool, actor)` opens the one transaction an operation uses: `request_transaction` with the
caller's role and claims, or `internal_transaction` as `supabase_storage_admin` (owner of the storage
tables, so RLS does not apply) for public/signed reads, bucket lookups and the sweeper.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.authn import AuthContext
from madbase.core.db import RequestGucs, internal_transaction, request_gucs, request_transaction
from madbase.core.types import DbConn

STORAGE_ROLE = "supabase_storage_admin"


@dataclass(frozen=True, slots=True)
class Actor:
    role: str
    claims: dict[str, Any]
    claims_json: str
    method: str = ""
    path: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    operation: str = ""
    token: str | None = None

    @property
    def internal(self) -> bool:
        return self.role == STORAGE_ROLE

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None

    @property
    def owner_uuid(self) -> str | None:
        sub = self.sub
        if sub is None:
            return None
        try:
            return str(uuid.UUID(sub))
        except ValueError:
            return None

    @classmethod
    def from_auth(cls, auth: AuthContext, method: str = "", path: str = "",
                  headers: Mapping[str, str] | None = None, operation: str = "") -> Actor:
        return cls(auth.role, auth.claims, auth.claims_json, method, path, dict(headers or {}), operation,
                   auth.token)

    @classmethod
    def storage(cls, claims: dict[str, Any] | None = None) -> Actor:
        claims = claims or {"role": STORAGE_ROLE}
        return cls(STORAGE_ROLE, claims, jsonutil.dumps_str(claims))


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool, actor: Actor, *, readonly: bool = False) -> AsyncIterator[DbConn]:
    if actor.internal:
        async with internal_transaction(pool, STORAGE_ROLE, claims_json=actor.claims_json) as conn:
            yield conn
        return
    gucs = request_gucs(actor.role, actor.claims, actor.claims_json, method=actor.method, path=actor.path,
                        headers=actor.headers)
    # Also as Supabase Storage sets them: the raw token and the operation (`storage.object.upload`, …).
    extra = [(k, v) for k, v in (("request.jwt", actor.token), ("storage.operation", actor.operation)) if v]
    if extra:
        gucs = RequestGucs([*gucs.names, *(k for k, _ in extra)], [*gucs.values, *(v for _, v in extra if v)])
    async with request_transaction(pool, gucs, readonly=readonly) as conn:
        yield conn


async def act_as_storage(conn: DbConn) -> None:
    """Switch the open transaction to storage's own role (allowed: the login role is a member)."""
    await conn.execute("select set_config('role', $1, true)", STORAGE_ROLE)


async def act_as(conn: DbConn, actor: Actor) -> None:
    await conn.execute("select set_config('role', $1, true)", actor.role)
