"""The transaction runner: a request's role, claims and settings as data, run in one transaction, with the
database's refusals mapped once per service.

`TxSettings` is what the transaction must see, as one frozen value: the role (checked against the API roles
and the services' own roles when it is built), the claims' JSON, and further settings as ordered (name, text)
pairs — PostgREST's `request.*` GUCs, storage's `storage.operation`, a search_path. `TxSettings.for_request`
builds the ones every Supabase service sets from the request's auth; `with_settings` adds more.

`TxRunner(errors)` runs them. It keeps core/db.py's guarantees, because it goes through it: settings as bind
parameters of one statement (never SQL text), the role's statement timeout, the pool's per-client share, and
the client-disconnect cancellation of `PooledConnection`. Two shapes:

- `runner.transaction(pool, settings)`: `async with` it for a connection inside BEGIN … COMMIT;
- `runner.statement(pool, settings, sql, args, columns)`: one statement in one round trip
  (`madbase.run_prepared`: settings and statement together, one implicit transaction).

Errors: a database error (a `PostgresError`) or a connection failure raised inside either is replaced by what
the service's `ErrorTable` makes of it — by SQLSTATE (exact code, then its two-character class), else the
table's fallback — and the connection-level ones (cannot connect, too many connections, lost connection) by
one gateway `DB_UNAVAILABLE` for every service. Anything else (the service's own errors, control-flow
exceptions) passes through untouched. A call that needs a different meaning for one code (storage: a
duplicate *bucket* vs a duplicate *object*) passes `errors=table.override({...})`, built once at import.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from madbase.core import jsonutil
from madbase.core.authn import AuthContext
from madbase.core.db import (
    ALLOWED_ROLES,
    INTERNAL_ROLES,
    RequestGucs,
    claim_settings,
    request_transaction,
    run_request_statement,
)
from madbase.core.errors import GatewayError, Kind
from madbase.core.types import DbConn

log = structlog.get_logger("madbase.kit")

ROLES = ALLOWED_ROLES | INTERNAL_ROLES

# Connection-level failures: the database cannot be reached or the connection broke. The one list for every
# service (asyncpg's InterfaceError covers a connection closed under a running query).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError, asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError, asyncpg.InvalidCatalogNameError, asyncpg.PostgresConnectionError,
)

# what the runner hands to the table (anything else passes through)
_MAPPED: tuple[type[BaseException], ...] = (asyncpg.PostgresError, *CONNECTION_ERRORS)


@dataclass(frozen=True, slots=True)
class TxSettings:
    """Role + claims + further settings of one transaction. Immutable: build once, share freely."""

    role: str
    claims_json: str = "{}"
    settings: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise GatewayError(Kind.ROLE_NOT_ALLOWED, f"role {self.role!r} is not allowed")

    @classmethod
    def for_request(cls, auth: AuthContext, *, method: str = "", path: str = "",
                    headers: Mapping[str, str] | None = None) -> TxSettings:
        """What PostgREST and Supabase's services set for an API request: role, request.jwt.claims (and
        request.jwt.claim.<name> for scalar claims), request.method/path/headers."""
        return cls.for_claims(auth.role, auth.claims, auth.claims_json, method=method, path=path, headers=headers)

    @classmethod
    def for_claims(cls, role: str, claims: Mapping[str, Any], claims_json: str, *, method: str = "",
                   path: str = "", headers: Mapping[str, str] | None = None) -> TxSettings:
        """`for_request` from a role and verified claims (`claims_json` is `claims` as JSON)."""
        if role not in ALLOWED_ROLES:  # a request never acts as a service's own role
            raise GatewayError(Kind.ROLE_NOT_ALLOWED, f"role {role!r} is not allowed")
        # built directly (no intermediate name/value lists): REST builds one per request
        return cls(role, claims_json, (("request.method", method), ("request.path", path),
                                       ("request.headers", jsonutil.dumps_str(dict(headers or {}))),
                                       *claim_settings(claims, claims_json)))

    @classmethod
    def internal(cls, role: str, claims: Mapping[str, Any] | None = None) -> TxSettings:
        """A service acting as its own role (e.g. `supabase_storage_admin`), never taken from a request."""
        if role not in INTERNAL_ROLES:
            raise ValueError(f"{role!r} is not an internal role")
        return cls(role, jsonutil.dumps_str(dict(claims or {"role": role})))

    def with_settings(self, *pairs: tuple[str, str | None]) -> TxSettings:
        """These settings added after the present ones (later names win); pairs with a None/empty value are
        left out."""
        extra = tuple((k, v) for k, v in pairs if v)
        # the constructor, not dataclasses.replace (several times slower; REST builds one per request)
        return TxSettings(self.role, self.claims_json, self.settings + extra) if extra else self

    def gucs(self) -> RequestGucs:
        """The names/values core/db.py takes (role first: its statement timeout is looked up by it)."""
        settings = self.settings
        return RequestGucs(["role", "request.jwt.claims", *[k for k, _ in settings]],
                           [self.role, self.claims_json, *[v for _, v in settings]])


ErrorFactory = Callable[[asyncpg.PostgresError], BaseException]


def unavailable(exc: BaseException) -> BaseException:
    return GatewayError(Kind.DB_UNAVAILABLE, "Database is not available", cause=exc)


class ErrorTable:
    """One service's meaning of database errors: SQLSTATE (5 characters) or class (2) → the error to raise."""

    __slots__ = ("_by_state", "_fallback", "service")

    def __init__(self, service: str, by_state: Mapping[str, ErrorFactory], fallback: ErrorFactory) -> None:
        for state in by_state:
            if len(state) not in (2, 5):
                raise ValueError(f"{state!r} is neither a SQLSTATE nor a SQLSTATE class")
        self.service = service
        self._by_state = dict(by_state)
        self._fallback = fallback

    def override(self, by_state: Mapping[str, ErrorFactory]) -> ErrorTable:
        """This table with some codes meaning something else (build at import time, not per request)."""
        return ErrorTable(self.service, {**self._by_state, **by_state}, self._fallback)

    def map(self, exc: BaseException) -> BaseException:
        """What to raise instead of `exc`; `exc` itself when it is no database error."""
        if isinstance(exc, CONNECTION_ERRORS):
            return unavailable(exc)
        if not isinstance(exc, asyncpg.PostgresError):
            return exc
        state = exc.sqlstate or ""
        if state.startswith(("08", "57P")):  # connection exceptions; the server shutting down or restarting
            return unavailable(exc)
        factory = self._by_state.get(state) or self._by_state.get(state[:2])
        if factory is not None:
            return factory(exc)
        return self._fallback(exc)


class TxRunner:
    """Runs request transactions for one service, mapping errors through its table."""

    __slots__ = ("acquire_timeout", "errors")

    def __init__(self, errors: ErrorTable, *, acquire_timeout: float = 5.0) -> None:
        self.errors = errors
        self.acquire_timeout = acquire_timeout

    @contextlib.asynccontextmanager
    async def transaction(self, pool: asyncpg.Pool, settings: TxSettings, *, readonly: bool = False,
                          errors: ErrorTable | None = None) -> AsyncIterator[DbConn]:
        """BEGIN; the settings; the caller's statements; COMMIT (rolled back on any exception)."""
        try:
            async with request_transaction(pool, settings.gucs(), acquire_timeout=self.acquire_timeout,
                                           readonly=readonly) as conn:
                yield conn
        except _MAPPED as exc:
            raise (errors or self.errors).map(exc) from exc

    async def statement(self, pool: asyncpg.Pool, settings: TxSettings, sql: str, args: list[str | None],
                        columns: str, *, readonly: bool = False, errors: ErrorTable | None = None
                        ) -> asyncpg.Record | None:
        """One statement in one round trip (see core/db.run_request_statement for `sql`/`args`/`columns`)."""
        try:
            return await run_request_statement(pool, settings.gucs(), sql, args, columns,
                                               acquire_timeout=self.acquire_timeout, readonly=readonly)
        except _MAPPED as exc:
            raise (errors or self.errors).map(exc) from exc


async def switch_role(conn: DbConn, role: str) -> None:
    """Switch the open transaction to `role` until it ends or the next switch (transaction-local). For a
    service that must read its own tables in the middle of a caller's transaction; the login role is a member
    of every role in `ROLES`."""
    if role not in ROLES:
        raise ValueError(f"{role!r} is not a request or service role")
    await conn.execute("select set_config('role', $1, true)", role)


@contextlib.asynccontextmanager
async def acting_as(conn: DbConn, role: str, settings: TxSettings) -> AsyncIterator[None]:
    """`async with acting_as(conn, SERVICE_ROLE, settings):` — run a block as `role`, then go on as the
    settings' role. A no-op when the transaction already runs as `role`. When the block raises, the role is
    not switched back: the transaction is ending (an error inside it rolls it back)."""
    if role == settings.role:
        yield
        return
    await switch_role(conn, role)
    yield
    await switch_role(conn, settings.role)
