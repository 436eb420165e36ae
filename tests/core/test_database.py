"""Core database pieces against a real PostgreSQL: migrations, tenant bootstrap, request transactions,
the control store and the shared rate-limit counters."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from madbase.core import migrations, tenants
from madbase.core.control import ControlStore
from madbase.core.db import internal_transaction, request_gucs, request_transaction, reset_only_if_dirty
from madbase.core.ratelimit import RateLimiter
from madbase.core.secretbox import SecretBox


async def test_migrations_apply_once_even_when_run_twice_at_once(fresh_db: str) -> None:
    a, b = await asyncpg.connect(fresh_db), await asyncpg.connect(fresh_db)
    try:
        first, second = await asyncio.gather(migrations.apply(a, "tenant"), migrations.apply(b, "tenant"))
        assert sorted(first + second) == [m.version for m in migrations.load("tenant")]
        assert await migrations.apply(a, "tenant") == []
        count = await a.fetchval("select count(*) from madbase_migrations.applied where track = 'tenant'")
        assert count == len(migrations.load("tenant"))
    finally:
        await a.close()
        await b.close()


async def test_failed_migration_leaves_nothing(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        bad = [migrations.Migration("scratch", "0001", "ok", "create table ok_t (id int);"),
               migrations.Migration("scratch", "0002", "bad", "create table half_t (id int); select 1/0;")]
        with pytest.raises(migrations.MigrationError):
            await migrations.apply(conn, "scratch", bad)
        assert await conn.fetchval("select to_regclass('half_t')") is None
        versions = await conn.fetch("select version from madbase_migrations.applied where track = 'scratch'")
        assert [r["version"] for r in versions] == ["0001"]
    finally:
        await conn.close()


async def test_bootstrap_roles_claims_and_rls(fresh_db: str) -> None:
    await tenants.bootstrap(fresh_db, "authenticator", "login-pw-1")
    await tenants.bootstrap(fresh_db, "authenticator", "login-pw-1")  # idempotent
    owner = await asyncpg.connect(fresh_db)
    try:
        roles = {r["rolname"]: r for r in await owner.fetch(
            "select rolname, rolbypassrls, rolcanlogin, rolinherit from pg_roles "
            "where rolname in ('anon','authenticated','service_role','authenticator')")}
        assert roles["service_role"]["rolbypassrls"] and not roles["anon"]["rolcanlogin"]
        assert roles["authenticator"]["rolcanlogin"] and not roles["authenticator"]["rolinherit"]
        # A Supabase-style table and policy, written by the owner as a Supabase user would.
        await owner.execute("""
            create table public.notes (id serial primary key, owner uuid not null, body text);
            alter table public.notes enable row level security;
            create policy own on public.notes for all using (owner = auth.uid()) with check (owner = auth.uid());
            insert into public.notes (owner, body) values
              ('11111111-1111-1111-1111-111111111111', 'a'), ('22222222-2222-2222-2222-222222222222', 'b');
        """)
    finally:
        await owner.close()
    pool = await asyncpg.create_pool(fresh_db, user="authenticator", password="login-pw-1", min_size=1, max_size=1,
                                     reset=reset_only_if_dirty)
    assert pool is not None
    try:
        claims = {"sub": "11111111-1111-1111-1111-111111111111", "role": "authenticated", "email": "a@x.io"}
        gucs = request_gucs("authenticated", claims, json.dumps(claims), method="GET", path="/rest/v1/notes",
                            headers={"x-test": "1"})
        async with request_transaction(pool, gucs) as conn:
            row = await conn.fetchrow("select current_user::text u, auth.uid()::text uid, auth.role() r, "
                                      "auth.email() e, auth.jwt() ->> 'sub' j, current_setting('request.method') m, "
                                      "current_setting('request.headers')::json ->> 'x-test' h")
            assert row is not None and dict(row) == {"u": "authenticated", "uid": claims["sub"], "r": "authenticated",
                                                     "e": "a@x.io", "j": claims["sub"], "m": "GET", "h": "1"}
            assert [r["body"] for r in await conn.fetch("select body from notes")] == ["a"]
        anon = request_gucs("anon", {"role": "anon"}, '{"role":"anon"}')
        async with request_transaction(pool, anon) as conn:
            assert await conn.fetchval("select count(*) from notes") == 0
        service = request_gucs("service_role", {"role": "service_role"}, '{"role":"service_role"}')
        async with request_transaction(pool, service) as conn:
            assert await conn.fetchval("select count(*) from notes") == 2
        # SET LOCAL semantics: nothing survives the transaction on the pooled connection.
        async with pool.acquire() as conn:
            assert await conn.fetchval("select current_user::text") == "authenticator"
            assert await conn.fetchval("select coalesce(current_setting('request.jwt.claims', true), '')") == ""
        # A request cancelled mid-transaction does not hand its transaction to the next one.
        conn = await pool.acquire()
        tx = conn.transaction()
        await tx.start()
        await conn.execute("select set_config('role', 'service_role', true)")
        await pool.release(conn)
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("select current_user::text") == "authenticator"
        # Rollback on error: a failed request leaves no half-written rows.
        with pytest.raises(asyncpg.PostgresError):
            async with request_transaction(pool, service) as conn:
                await conn.execute("insert into notes (owner, body) values (gen_random_uuid(), 'x')")
                await conn.execute("select 1/0")
        async with request_transaction(pool, service) as conn:
            assert await conn.fetchval("select count(*) from notes") == 2
        async with internal_transaction(pool, "supabase_auth_admin") as conn:
            assert await conn.fetchval("select current_user::text") == "supabase_auth_admin"
        with pytest.raises(ValueError):
            async with internal_transaction(pool, "postgres"):
                pass
    finally:
        await pool.close()


@pytest.fixture
async def control_pool(fresh_db: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database with the control-plane migrations applied."""
    conn = await asyncpg.connect(fresh_db)
    await migrations.apply(conn, "control")
    await conn.close()
    pool = await asyncpg.create_pool(fresh_db, min_size=1, max_size=2)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


async def test_control_store_encrypts_secrets(control_pool: asyncpg.Pool) -> None:
    store = ControlStore(control_pool, SecretBox("control-store-test-master-key"))
    record = await store.create(name="one", db_url="postgresql://u:topsecretpw@h/db")
    raw = await control_pool.fetchrow("select * from madbase_control.projects where ref = $1", record.ref)
    assert raw is not None
    flat = b"".join(v for v in raw.values() if isinstance(v, bytes))
    assert b"topsecretpw" not in flat and record.jwt_secret.encode() not in flat
    assert (await store.get(record.ref)) == record
    assert await store.set_status(record.ref, "disabled")
    assert [p.status for p in await store.list()] == ["disabled"]
    assert await store.set_status(record.ref, "deleted")
    assert await store.list() == [] and len(await store.list(include_deleted=True)) == 1


async def test_rate_limit_counters_are_shared(control_pool: asyncpg.Pool) -> None:
    one, two = RateLimiter(control_pool, window_seconds=3600), RateLimiter(control_pool, window_seconds=3600)
    assert all(one.hit("ip:1", 5) is None for _ in range(3))
    await one.sync()
    await two.sync()
    assert two.hit("ip:1", 5) is None  # learns of one's 3 hits on its next sync
    await two.sync()
    assert two.hit("ip:1", 5) is None
    retry = two.hit("ip:1", 5)
    assert retry is not None and 0 < retry <= 3600


async def test_request_statements_are_prepared_once_per_connection(fresh_db: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """run_request_statement: the plan is kept per connection, the count stays bounded, a statement the session
    lost is prepared again, a failing request leaves the connection usable, RLS and roles apply as before."""
    from madbase.core import db

    await tenants.bootstrap(fresh_db, "authenticator", "login-pw-2")
    owner = await asyncpg.connect(fresh_db)
    try:
        await owner.execute("""
            create table public.things (id int primary key, owner text not null, n int);
            alter table public.things enable row level security;
            create policy mine on public.things for all using (owner = auth.jwt() ->> 'sub');
            grant select, insert on public.things to authenticated, anon;
            insert into public.things values (1, 'u1', 10), (2, 'u2', 20), (3, 'u1', 30);
            create sequence public.calls;
            grant usage, select on sequence public.calls to authenticated, authenticator;
            create function public.bad_call(x text) returns int language plpgsql as $$
              begin perform nextval('public.calls'); execute 'selec 1'; return 1; end $$;
        """)
    finally:
        await owner.close()
    monkeypatch.setattr(db, "PREPARED_PER_CONNECTION", 2)
    pool = await asyncpg.create_pool(fresh_db, user="authenticator", password="login-pw-2", min_size=1, max_size=1,
                                     reset=reset_only_if_dirty, connection_class=db.RequestConnection)
    cols = "n int8"

    def gucs(sub: str) -> db.RequestGucs:
        claims = {"sub": sub, "role": "authenticated"}
        return request_gucs("authenticated", claims, json.dumps(claims))

    by_id = "select n::int8 from public.things where id = ($1::text[])[1]::int"
    total = "select coalesce(sum(n), 0)::int8 from public.things where n > ($1::text[])[1]::int"
    count = "select count(*) from public.things where id <> ($1::text[])[1]::int"

    async def run(sql: str, arg: str, sub: str = "u1", readonly: bool = True) -> int | None:
        row = await db.run_request_statement(pool, gucs(sub), sql, [arg], cols, readonly=readonly)
        return None if row is None else row["n"]

    async def session_statements() -> set[str]:
        async with pool.acquire() as conn:
            rows = await conn.fetch("select name from pg_prepared_statements where name like 'mb\\_%'")
            assert not conn.is_in_transaction()
            return {r["name"] for r in rows}

    try:
        assert await run(by_id, "1") == 10
        assert await run(by_id, "2") is None  # RLS: u2's row is not u1's
        assert await run(by_id, "2", sub="u2") == 20  # same plan, other claims
        assert await session_statements() == {db._statement_name(by_id)}
        assert await run(total, "0") == 40
        assert await run(count, "1") == 1
        names = await session_statements()
        assert names == {db._statement_name(total), db._statement_name(count)}  # bounded: by_id evicted
        # Another piece of code dropped the statements: prepared again, transparently.
        async with pool.acquire() as conn:
            await conn.execute(f'deallocate "{db._statement_name(count)}"')
        assert await run(count, "3") == 1
        # A request that fails after its statement was prepared rolls back and leaves the connection usable.
        with pytest.raises(asyncpg.InvalidTextRepresentationError):
            await run(by_id, "not a number")
        assert await run(by_id, "3") == 30
        # Read-only requests cannot write; the values never become SQL text.
        insert = "insert into public.things values (($1::text[])[1]::int, 'u1', 1) returning n::int8"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await run(insert, "7")
        assert await run(insert, "8", readonly=False) == 1
        assert len(await session_statements()) == 2
        # A request's own syntax error (dynamic SQL in a function) is not mistaken for a lost statement: reported
        # as it is, and the statement runs once (the sequence counts the runs; it is not transactional).
        bad = "select public.bad_call(($1::text[])[1])::int8"
        for attempt in (1, 2):
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await run(bad, "x", readonly=False)
            async with pool.acquire() as conn:
                assert await conn.fetchval("select last_value from public.calls") == attempt
    finally:
        await pool.close()


async def test_pooled_connection_times_out_on_a_plain_pool(fresh_db: str) -> None:
    """Outside a ProjectPool (no lean pool) requests use asyncpg's pool and give up after their wait with the
    gateway's 'database unavailable' error."""
    from madbase.core import db
    from madbase.core.errors import GatewayError, Kind

    pool = await asyncpg.create_pool(fresh_db, min_size=0, max_size=1, connection_class=db.RequestConnection)
    try:
        async with db.PooledConnection(pool, 1.0) as conn:
            assert await conn.fetchval("select 1") == 1
            with pytest.raises(GatewayError) as err:
                async with db.PooledConnection(pool, 0.2):
                    pass
            assert err.value.kind is Kind.DB_UNAVAILABLE
        async with db.PooledConnection(pool, 1.0) as conn:
            assert await conn.fetchval("select 2") == 2
    finally:
        await pool.close()


async def test_lean_pool_reuses_only_trusted_connections(fresh_db: str) -> None:
    """The request path's pool: arrival order and bounded waits as the gate gives them; a connection comes back
    to the idle list only when its request ended cleanly outside a transaction; idle ones expire."""
    from madbase.core import db
    from madbase.core.errors import GatewayError, Kind
    from madbase.core.leanpool import LeanPool

    pool = await db.ProjectPool(fresh_db, min_size=0, max_size=2, max_queries=1000,
                                max_inactive_connection_lifetime=60, record_class=asyncpg.Record, loop=None,
                                connection_class=db.RequestConnection)
    lean = LeanPool(functools.partial(asyncpg.connect, fresh_db, connection_class=db.RequestConnection), 1,
                    idle_seconds=0.4)
    pool.lean = lean
    try:
        async with db.PooledConnection(pool, 1.0) as conn:
            first_pid = conn.get_server_pid()
            with pytest.raises(GatewayError) as err:
                async with db.PooledConnection(pool, 0.2):
                    pass
            assert err.value.kind is Kind.DB_UNAVAILABLE
        async with db.PooledConnection(pool, 1.0) as conn:
            assert conn.get_server_pid() == first_pid  # reused
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.fetchval("select 1/0")
        async with db.PooledConnection(pool, 1.0) as conn:
            assert conn.get_server_pid() == first_pid  # an SQL error leaves the connection usable

        async def cancelled() -> None:
            async with db.PooledConnection(pool, 1.0) as conn:
                await conn.fetchval("select pg_sleep(5)")

        task = asyncio.create_task(cancelled())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.PooledConnection(pool, 1.0) as conn:  # the cancelled one was not trusted again
            assert conn.get_server_pid() != first_pid
            second_pid = conn.get_server_pid()
            await conn.execute("begin")  # returned inside a transaction: closed, not reused
        async with db.PooledConnection(pool, 1.0) as conn:
            assert conn.get_server_pid() != second_pid
            assert not conn.is_in_transaction()
        assert lean.open_connections == 1 and lean.idle_connections == 1
        await asyncio.sleep(0.8)  # idle longer than idle_seconds: closed by the sweep
        assert lean.open_connections == 0 and lean.idle_connections == 0
        order: list[int] = []

        async def take(i: int) -> None:
            async with db.PooledConnection(pool, 5.0):
                order.append(i)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(take(i) for i in range(5)))
        assert order == list(range(5)) and lean.gate.free == 1
    finally:
        await lean.close()
        await pool.close()
    assert lean.open_connections == 0
