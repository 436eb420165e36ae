"""Per-project database pools and the one request-transaction helper every service uses.

Pools are created lazily on a project's first request (after its tenant bootstrap), bounded, and keyed by
project and database URL so a changed URL gets a fresh pool. Requests connect as the project's login role
and switch, inside their transaction, to one whitelisted role with the request's claims as GUCs — always as
bind parameters of one statement, so a request costs BEGIN, one set_config round trip, its queries, COMMIT.
A request that is one statement can instead run whole in one round trip (`run_request_statement`): GUCs and
statement go to `madbase.run_prepared` together, one implicit transaction, with the statement's plan kept per
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import re
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from madbase.core import jsonutil, timeouts, tracing
from madbase.core.bytecache import ByteBoundedCache
from madbase.core.errors import GatewayError, Kind
from madbase.core.leanpool import UNSURE, LeanPool
from madbase.core.projects import Project
from madbase.core.requestscope import DisconnectWatch
from madbase.core.requestscope import current as request_scope
from madbase.core.types import DbConn

log = structlog.get_logger("madbase.db")

ALLOWED_ROLES = frozenset({"anon", "authenticated", "service_role"})
# Roles the services themselves act as (never taken from a request), as Supabase's services connect as them.
INTERNAL_ROLES = frozenset({"supabase_auth_admin", "supabase_storage_admin", "supabase_realtime_admin"})

_GUC_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# The request's settings travel as one JSON object (names → text values), here and to madbase.run_prepared:
# asyncpg encodes array parameters element by element, which cost more than the JSON (docs/decisions.md).
SET_GUCS_SQL = "select set_config(key, value, true) from json_each_text($1::json)"


def settings_json(names: Sequence[str], values: Sequence[str], *, read_only: bool = False,
                  timeout_ms: int | None = None) -> str:
    """The settings as the JSON text SET_GUCS_SQL and madbase.run_prepared take (later names win, as with
    set_config in order). `timeout_ms`: the role's statement timeout, unless the names set one themselves."""
    settings = dict(zip(names, values, strict=True))
    if read_only:
        settings["transaction_read_only"] = "on"
    if timeout_ms is not None and "statement_timeout" not in settings:
        settings["statement_timeout"] = str(timeout_ms)
    app_name = tracing.application_name()  # slow-query logs and pg_stat_activity name the request's trace
    if app_name is not None:
        settings["application_name"] = app_name
    return jsonutil.dumps_str(settings)


STATEMENT_TIMEOUT_MESSAGE = "canceling statement due to statement timeout"


def statement_timeout_error() -> asyncpg.PostgresError:
    """What PostgreSQL raises when statement_timeout fires (57014), for a timeout enforced on the client side."""
    exc = asyncpg.QueryCanceledError(STATEMENT_TIMEOUT_MESSAGE)
    exc.message = STATEMENT_TIMEOUT_MESSAGE
    return exc


def _role_timeout(pool: asyncpg.Pool, names: Sequence[str], values: Sequence[str]) -> int | None:
    """The statement timeout (ms) of the role the settings switch to, if the pool knows one."""
    table = pool.timeouts if isinstance(pool, ProjectPool) else None
    if not table or not names or names[0] != "role":
        return None
    return table.get(values[0])


@functools.cache
def _run_prepared_sql(columns: str) -> str:
    # `columns` is the caller's fixed column definition list (code, never request input): a handful of values
    return ("select * from madbase.run_prepared($1::text, $2::text, $3::text, $4::text[], $5::text, $6::bool) "
            f"as r({columns})")


# Request statements prepared per connection (SQL-level PREPARE in madbase.run_prepared), least recently used
# first out: each one holds a plan in its PostgreSQL backend, so the number is bounded.
PREPARED_PER_CONNECTION = 128
# Names are a digest of the statement text, salted per process so that they cannot be known in advance.
_NAME_SALT = secrets.token_bytes(16)


@functools.lru_cache(maxsize=4096)
def _statement_name(statement: str) -> str:
    return "mb_" + hashlib.blake2b(statement.encode(), digest_size=12, key=_NAME_SALT).hexdigest()


class RequestConnection(asyncpg.Connection):
    """asyncpg's connection plus the names of the request statements prepared on its session."""

    __slots__ = ("prepared",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: OrderedDict[str, None] = OrderedDict()


Bootstrap = Callable[[Project], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RequestGucs:
    """What a request's transaction must see: role, claims and request metadata as GUC names/values."""

    names: list[str]
    values: list[str]


def request_gucs(
    role: str,
    claims: Mapping[str, Any],
    claims_json: str,
    *,
    method: str = "",
    path: str = "",
    headers: Mapping[str, str] | None = None,
) -> RequestGucs:
    """Build the GUCs PostgREST/Supabase set: role, request.jwt.claims(.*), request.method/path/headers.
    `claims_json` is `claims` as JSON (as verified tokens carry both). (Services build these as the kit's
    `TxSettings.for_request`; this list form is what the functions below take.)"""
    if role not in ALLOWED_ROLES:
        raise GatewayError(Kind.ROLE_NOT_ALLOWED, f"role {role!r} is not allowed")
    pairs = claim_settings(claims, claims_json)
    return RequestGucs(["role", "request.jwt.claims", "request.method", "request.path", "request.headers",
                        *(k for k, _ in pairs)],
                       [role, claims_json, method, path, jsonutil.dumps_str(dict(headers or {})),
                        *(v for _, v in pairs)])


# Keyed by the claims' JSON, which clients control (user metadata travels in it): bounded by bytes.
_claim_gucs_cache: ByteBoundedCache[tuple[tuple[str, str], ...]] = ByteBoundedCache(8 * 1024 * 1024)


def claim_settings(claims: Mapping[str, Any], claims_json: str) -> tuple[tuple[str, str], ...]:
    """request.jwt.claim.<name> for scalar claims only, as PostgREST < 9 set them; PostgreSQL accepts only
    simple identifiers in custom GUC names, so a claim named e.g. "https://x/y" gets none. Cached by the
    claims' JSON text: a token is seen many times and its claims were already verified."""
    hit = _claim_gucs_cache.get(claims_json)
    if hit is not None:
        return hit
    out: list[tuple[str, str]] = []
    for key, value in claims.items():
        if not _GUC_PART.match(key):
            continue
        if isinstance(value, str):
            out.append(("request.jwt.claim." + key, value))
        elif isinstance(value, bool | int | float):
            out.append(("request.jwt.claim." + key, jsonutil.dumps_str(value)))
    pairs = tuple(out)
    _claim_gucs_cache.put(claims_json, pairs, sum(len(n) + len(v) + 100 for n, v in pairs))
    return pairs


_UNAVAILABLE = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError,
                asyncpg.InvalidCatalogNameError, asyncpg.ConnectionDoesNotExistError)


async def reset_only_if_dirty(conn: asyncpg.Connection) -> None:
    """Pool reset hook: requests keep all their state transaction-local (SET LOCAL / set_config(..., true)),
    so asyncpg's default reset (a RESET ALL round trip per request) is skipped, as PostgREST does; a
    connection returned inside a transaction (a request cancelled mid-query) still gets the full reset."""
    if conn.is_in_transaction():
        await conn.reset()


class ProjectPool(asyncpg.Pool):
    """A project's connections: `lean` for request transactions (FIFO hand-over, see core/leanpool.py) and
    asyncpg's own pool for the rest (schema cache loads, realtime's checks); and the API roles' statement
    timeouts (ms) as the database's role settings and the project config give them."""

    __slots__ = ("config_seen", "lean", "role_timeouts", "timeouts", "timeouts_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean: LeanPool | None = None  # set by PoolRegistry
        self.role_timeouts: dict[str, int] = {}  # from pg_db_role_setting
        self.timeouts: dict[str, int] = {}  # effective, per role (config over role settings)
        self.config_seen: object = None
        self.timeouts_at = 0.0


class PooledConnection:
    """`async with PooledConnection(pool, wait)`: a connection for a request, within `wait` seconds — from the
    project's lean pool (in arrival order), or from a plain asyncpg pool.

    A class rather than a generator-based context manager: this runs for every request and showed up in
    profiles."""

    __slots__ = ("_conn", "_key", "_lean", "_pool", "_wait", "_watch")

    def __init__(self, pool: asyncpg.Pool, wait: float) -> None:
        self._pool = pool
        self._wait = wait
        self._lean = pool.lean if isinstance(pool, ProjectPool) else None
        self._conn: Any = None
        scope = request_scope()
        self._watch: DisconnectWatch | None = scope.watch if scope is not None else None
        self._key: str | None = scope.client_key if scope is not None else None

    async def __aenter__(self) -> DbConn:
        watch = self._watch
        if watch is not None:
            watch.arm()  # from here until __aexit__, the client going away cancels this task
        try:
            if self._lean is not None:
                self._conn = await self._lean.acquire(self._wait, self._key)
            else:
                self._conn = await self._pool.acquire(timeout=self._wait)
        except _UNAVAILABLE as exc:
            if watch is not None:
                watch.disarm()
            raise GatewayError(Kind.DB_UNAVAILABLE, "Database is not available", cause=exc) from exc
        except BaseException:
            if watch is not None:
                watch.disarm()
            raise
        conn: DbConn = self._conn
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if self._watch is not None:
            self._watch.disarm()
        if self._lean is not None:
            self._lean.release(self._conn, unsure=exc_type is not None and issubclass(exc_type, UNSURE),
                               key=self._key)
        else:
            await self._pool.release(self._conn)


# How often the API roles' statement timeouts are read back from the database (ALTER ROLE takes effect then).
ROLE_TIMEOUTS_REFRESH = 60.0


class PoolRegistry:
    def __init__(self, *, pool_size: int, acquire_timeout: float, bootstrap: Bootstrap,
                 client_share_percent: int = 100) -> None:
        self._pool_size = pool_size
        self._client_share_percent = client_share_percent
        self.acquire_timeout = acquire_timeout
        self._bootstrap = bootstrap
        self._pools: dict[tuple[str, str], asyncpg.Pool] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._bootstrapped: set[tuple[str, str]] = set()
        self._retiring: set[asyncio.Task[None]] = set()

    async def get(self, project: Project) -> asyncpg.Pool:
        key = (project.ref, project.record.db_url)
        pool = self._pools.get(key)
        if pool is not None:
            if isinstance(pool, ProjectPool):
                self._check_timeouts(pool, project)
            return pool
        lock = self._locks.setdefault(project.ref, asyncio.Lock())
        async with lock:
            pool = self._pools.get(key)
            if pool is not None:
                return pool
            if key not in self._bootstrapped:
                try:
                    await self._bootstrap(project)
                except GatewayError:
                    raise
                except Exception as exc:
                    log.error("tenant_bootstrap_failed", project_ref=project.ref, error=str(exc))
                    raise GatewayError(Kind.DB_UNAVAILABLE, "Database is not available", cause=exc) from exc
                self._bootstrapped.add(key)
            size = int(project.config.get("pool_size", self._pool_size))
            try:
                pool = await ProjectPool(
                    project.record.db_url,
                    user=project.record.login_role,
                    password=project.record.login_password,
                    min_size=0,
                    # request transactions use the lean pool (`size` connections); this one serves the rest:
                    # schema cache loads and realtime's checks
                    max_size=max(2, size // 2),
                    max_queries=10_000_000,
                    max_inactive_connection_lifetime=300,
                    timeout=10,
                    reset=reset_only_if_dirty,
                    connection_class=RequestConnection,
                    record_class=asyncpg.Record,
                    loop=None,
                )
            except _UNAVAILABLE as exc:
                raise GatewayError(Kind.DB_UNAVAILABLE, "Database is not available", cause=exc) from exc
            record = project.record
            share = max(1, size * self._client_share_percent // 100)
            pool.lean = LeanPool(functools.partial(asyncpg.connect, record.db_url, user=record.login_role,
                                                   password=record.login_password, timeout=10,
                                                   connection_class=RequestConnection, record_class=asyncpg.Record),
                                 size, client_share=share)
            await self._load_timeouts(pool, project)
            # A pool for the same project with an older URL is retired now.
            for old_key in [k for k in self._pools if k[0] == project.ref]:
                old = self._pools.pop(old_key)
                self._retiring.add(asyncio.create_task(_close_pool(old)))
            self._pools[key] = pool
            return pool

    def _check_timeouts(self, pool: ProjectPool, project: Project) -> None:
        """Follow config changes at once (an identity check per request) and role settings every minute."""
        if pool.config_seen is not project.config:
            pool.config_seen = project.config
            pool.timeouts = timeouts.effective(pool.role_timeouts, project.config)
        loop = asyncio.get_running_loop()
        if loop.time() - pool.timeouts_at > ROLE_TIMEOUTS_REFRESH:
            pool.timeouts_at = loop.time()  # one refresh at a time
            task = loop.create_task(self._load_timeouts(pool, project))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _load_timeouts(self, pool: ProjectPool, project: Project) -> None:
        try:
            pool.role_timeouts = await asyncio.wait_for(timeouts.load_role_timeouts(pool), 10)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            # keep what is known (at first: Supabase's defaults) rather than run requests without a bound
            log.warning("role_timeouts_load_failed", project_ref=project.ref, error=str(exc))
            if not pool.role_timeouts:
                pool.role_timeouts = {"anon": 3000, "authenticated": 8000}
        pool.timeouts_at = asyncio.get_running_loop().time()
        pool.config_seen = project.config
        pool.timeouts = timeouts.effective(pool.role_timeouts, project.config)

    def stats(self) -> list[tuple[str, int, int, int]]:
        """(project ref, max size, open connections, idle connections) per project, both pools together."""
        out = []
        for (ref, _), p in self._pools.items():
            lean = p.lean if isinstance(p, ProjectPool) else None
            if lean is None:
                out.append((ref, p.get_max_size(), p.get_size(), p.get_idle_size()))
            else:
                out.append((ref, p.get_max_size() + lean.size, p.get_size() + lean.open_connections,
                            p.get_idle_size() + lean.idle_connections))
        return out

    def owns(self, project: Project, pool: asyncpg.Pool) -> bool:
        return self._pools.get((project.ref, project.record.db_url)) is pool

    async def close(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_close_pool(pool), 10)


async def _close_pool(pool: asyncpg.Pool) -> None:
    if isinstance(pool, ProjectPool) and pool.lean is not None:
        await pool.lean.close()
    await pool.close()


@contextlib.asynccontextmanager
async def _transaction(
    pool: asyncpg.Pool, names: list[str], values: list[str], *, acquire_timeout: float, readonly: bool = False
) -> AsyncIterator[DbConn]:
    settings = settings_json(names, values, timeout_ms=_role_timeout(pool, names, values))
    async with PooledConnection(pool, acquire_timeout) as conn, conn.transaction(readonly=readonly):
        # statement_timeout set here applies from the caller's first statement on (PostgreSQL arms the timer as
        # each statement starts)
        await conn.execute(SET_GUCS_SQL, settings)
        yield conn


def request_transaction(
    pool: asyncpg.Pool, gucs: RequestGucs, *, acquire_timeout: float = 5.0, readonly: bool = False
) -> contextlib.AbstractAsyncContextManager[DbConn]:
    """One transaction with SET LOCAL semantics for role and claims; rolled back on any exception.

    Values are always bind parameters of one prepared statement (never interpolated into SQL text): BEGIN,
    that statement, the caller's queries, COMMIT."""
    return _transaction(pool, gucs.names, gucs.values, acquire_timeout=acquire_timeout, readonly=readonly)


async def run_request_statement(
    pool: asyncpg.Pool,
    gucs: RequestGucs,
    statement: str,
    args: list[str | None],
    columns: str,
    *,
    acquire_timeout: float = 5.0,
    readonly: bool = False,
) -> asyncpg.Record | None:
    """A one-statement request in one round trip, with the same guarantees as `request_transaction`.

    `statement` refers to its values as `$1[n]` of the text array `args` (bind parameters, cast in SQL);
    `columns` is its column definition list ("total int8, body bytea, ..."). PostgreSQL sets the GUCs
    (transaction-local: role, claims, request.*, read-only for reads) and runs the statement in the same
    implicit transaction, so a failure anywhere leaves nothing behind. Saves BEGIN, the set_config round
    trip and COMMIT: the lever that matters most on a small machine (see docs/decisions.md). The statement is
    prepared on the connection at its first use there and its text is not sent again."""
    timeout_ms = _role_timeout(pool, gucs.names, gucs.values)
    settings = settings_json(gucs.names, gucs.values, read_only=readonly, timeout_ms=timeout_ms)
    # The statement_timeout in `settings` is set inside this very statement, after PostgreSQL armed its timer, so
    # here the client bounds the wait; asyncpg then cancels the server-side query.
    query_timeout = timeout_ms / 1000 if timeout_ms else None
    try:
        return await _run_prepared(pool, settings, statement, args, columns, acquire_timeout, query_timeout)
    except TimeoutError:  # only the query's own timeout gets here (waiting for a connection is DB_UNAVAILABLE)
        raise statement_timeout_error() from None


async def _run_prepared(pool: asyncpg.Pool, settings: str, statement: str, args: list[str | None], columns: str,
                        acquire_timeout: float, query_timeout: float | None) -> asyncpg.Record | None:
    name = _statement_name(statement)
    sql = _run_prepared_sql(columns)
    async with PooledConnection(pool, acquire_timeout) as conn:
        prepared: OrderedDict[str, None] | None = getattr(conn, "prepared", None)
        if prepared is None:  # a plain asyncpg connection (not from a PoolRegistry pool): prepare every time
            prepared = OrderedDict()
        evict = None
        recheck = False
        if name in prepared:
            prepared.move_to_end(name)
            try:
                row: asyncpg.Record | None = await conn.fetchrow(sql, settings, name, None, args, None, False,
                                                                 timeout=query_timeout)
                return row
            except asyncpg.PostgresSyntaxError as exc:
                # Maybe the session lost the statement (see migration 0003): ask again, sending it along.
                del prepared[name]
                first_error, recheck = exc, True
        if len(prepared) >= PREPARED_PER_CONNECTION:
            evict = prepared.popitem(last=False)[0]
        try:
            row = await conn.fetchrow(sql, settings, name, statement, args, evict, recheck, timeout=query_timeout)
        except asyncpg.PostgresError as exc:
            # Most failures happen after the PREPARE (it is kept: not transactional); if this one did not, the
            # next call's lost-statement path prepares it.
            prepared[name] = None
            if recheck and exc.sqlstate == "MB001":
                raise first_error from None
            raise
        prepared[name] = None
        return row


def internal_transaction(
    pool: asyncpg.Pool, role: str, *, acquire_timeout: float = 5.0, claims_json: str | None = None
) -> contextlib.AbstractAsyncContextManager[DbConn]:
    """A transaction acting as one of a service's own roles (e.g. auth writing `auth.users`)."""
    if role not in INTERNAL_ROLES:
        raise ValueError(f"{role!r} is not an internal role")
    names, values = ["role"], [role]
    if claims_json is not None:
        names.append("request.jwt.claims")
        values.append(claims_json)
    return _transaction(pool, names, values, acquire_timeout=acquire_timeout)
