"""Who a storage operation runs as: the caller's role and claims (RLS decides) or storage's own role.

An `Actor` carries its transaction settings (`TxSettings`, core/kit): for a caller, the role, claims and
request GUCs every Supabase service sets, plus what Supabase Storage adds — the raw token (`request.jwt`) and
the operation's stable name (`storage.operation`, from the route table); for storage itself,
`supabase_storage_admin` (owner of the storage tables, so RLS does not apply) for public/signed reads, bucket
lookups and the sweeper. `transaction(pool, actor)` runs them through storage's runner (dberrors.RUNNER: one
error table); `as_storage(conn, actor)` is the runner's role switch for a bucket lookup inside a caller's
transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.authn import AuthContext
from madbase.core.kit import ErrorTable, TxSettings, acting_as, switch_role
from madbase.core.types import DbConn
from madbase.storage.dberrors import RUNNER

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
    settings: TxSettings = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.role == STORAGE_ROLE:
            settings = TxSettings(STORAGE_ROLE, self.claims_json)
        else:
            settings = TxSettings.for_claims(self.role, self.claims, self.claims_json, method=self.method,
                                             path=self.path, headers=self.headers).with_settings(
                ("request.jwt", self.token), ("storage.operation", self.operation))
        object.__setattr__(self, "settings", settings)

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
        return cls(auth.role, auth.claims, auth.claims_json, method, path,
                   headers if isinstance(headers, dict) else dict(headers or {}), operation,
                   auth.token)

    @classmethod
    def storage(cls, claims: dict[str, Any] | None = None) -> Actor:
        claims = claims or {"role": STORAGE_ROLE}
        return cls(STORAGE_ROLE, claims, jsonutil.dumps_str(claims))


def transaction(pool: asyncpg.Pool, actor: Actor, *, readonly: bool = False, errors: ErrorTable | None = None
                ) -> contextlib.AbstractAsyncContextManager[DbConn]:
    """The one transaction of an operation, as `actor`; database errors mapped by storage's table (or
    `errors`, a table derived from it)."""
    return RUNNER.transaction(pool, actor.settings, readonly=readonly, errors=errors)


async def statement(pool: asyncpg.Pool, actor: Actor, sql: str, args: list[str | None], columns: str, *,
                    readonly: bool = False) -> asyncpg.Record | None:
    """One statement as `actor` in one round trip (settings and statement together, one implicit transaction);
    errors mapped by storage's table."""
    return await RUNNER.statement(pool, actor.settings, sql, args, columns, readonly=readonly)


def as_storage(conn: DbConn, actor: Actor) -> contextlib.AbstractAsyncContextManager[None]:
    """`async with as_storage(conn, actor):` a block as storage's own role, then back to the actor's."""
    return acting_as(conn, STORAGE_ROLE, actor.settings)


async def become_storage(conn: DbConn) -> None:
    """Storage's own role for the rest of the transaction (its last statements)."""
    await switch_role(conn, STORAGE_ROLE)
