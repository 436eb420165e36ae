"""postgres_changes end to end (raw client): payload shape, filters, RLS per user, DELETE semantics, columns."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.realtime.conftest import user_token
from tests.realtime.wsclient import RawClient
from tests.support.servers import MadbaseProcess


def _is_change(m: Any) -> bool:
    return isinstance(m, dict) and m.get("event") == "postgres_changes"


async def _changes(c: RawClient, n: int, seconds: float = 10.0) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        out.append((await c.until(_is_change, seconds))["payload"])
    return out


async def _no_change(c: RawClient, wait: float = 1.0) -> None:
    try:
        msg = await c.until(_is_change, wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected change {msg}")


async def _setup(db: asyncpg.Connection, table: str, *, rls: bool = False, full: bool = False) -> None:
    await db.execute(f"create table public.{table} (id bigint primary key, owner uuid, title text, n numeric, "
                     f"done boolean default false, meta jsonb, secret text)")
    if full:
        await db.execute(f"alter table public.{table} replica identity full")
    if rls:
        await db.execute(f"alter table public.{table} enable row level security")
        await db.execute(f"create policy own on public.{table} for select to authenticated "
                         f"using (owner = auth.uid())")
    await db.execute(f"grant select on public.{table} to anon, authenticated")
    await db.execute(f"alter publication supabase_realtime add table public.{table}")


async def test_insert_update_delete_payloads(server: MadbaseProcess, server_db: asyncpg.Connection,
                                             table_name: str) -> None:
    await _setup(server_db, table_name, full=True)
    c = await RawClient.open(server.url, server.anon_key)
    try:
        reply = await c.join("realtime:t1", {"postgres_changes": [
            {"event": "*", "schema": "public", "table": table_name}]})
        bid = reply["payload"]["response"]["postgres_changes"][0]["id"]
        await server_db.execute(f"insert into {table_name} (id, title, n, meta) values "
                                "(1, 'a', 1.50, '{\"k\": [1, 2]}')")
        await server_db.execute(f"update {table_name} set title = 'b', done = true where id = 1")
        await server_db.execute(f"delete from {table_name} where id = 1")
        ins, upd, dele = await _changes(c, 3)
        assert ins["ids"] == [bid]
        data = ins["data"]
        assert data["schema"] == "public" and data["table"] == table_name and data["type"] == "INSERT"
        assert data["errors"] is None and data["commit_timestamp"].endswith("Z")
        assert data["record"] == {"id": 1, "owner": None, "title": "a", "n": 1.5, "done": False,
                                  "meta": {"k": [1, 2]}, "secret": None}
        assert "old_record" not in data
        assert data["columns"] == [{"name": "id", "type": "int8"}, {"name": "owner", "type": "uuid"},
                                   {"name": "title", "type": "text"}, {"name": "n", "type": "numeric"},
                                   {"name": "done", "type": "bool"}, {"name": "meta", "type": "jsonb"},
                                   {"name": "secret", "type": "text"}]
        assert upd["data"]["type"] == "UPDATE" and upd["data"]["record"]["title"] == "b"
        assert upd["data"]["old_record"]["title"] == "a" and upd["data"]["record"]["done"] is True
        assert dele["data"]["type"] == "DELETE" and dele["data"]["old_record"]["title"] == "b"
        assert "record" not in dele["data"]
    finally:
        await c.close()


async def test_filters_and_events(server: MadbaseProcess, server_db: asyncpg.Connection, table_name: str) -> None:
    await _setup(server_db, table_name)
    c = await RawClient.open(server.url, server.anon_key, "1.0.0")
    try:
        specs = [("eq", "id=eq.2"), ("neq", "title=neq.x"), ("lt", "id=lt.2"), ("lte", "id=lte.2"),
                 ("gt", "id=gt.2"), ("gte", "id=gte.3"), ("in", "title=in.(a,\"c,d\")")]
        reply = await c.join("realtime:f", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table_name, "filter": f} for _, f in specs]
            + [{"event": "DELETE", "schema": "public", "table": table_name}]})
        ids = {name: e["id"] for (name, _), e in zip(specs, reply["payload"]["response"]["postgres_changes"],
                                                      strict=False)}
        delete_id = reply["payload"]["response"]["postgres_changes"][-1]["id"]
        await server_db.execute(f"insert into {table_name} (id, title) values (1, 'a'), (2, 'x'), (3, 'c,d')")
        got = await _changes(c, 3)
        expected = {1: {"neq", "lt", "lte", "in"}, 2: {"eq", "lte"}, 3: {"neq", "gt", "gte", "in"}}
        for change in got:
            row_id = change["data"]["record"]["id"]
            assert set(change["ids"]) == {ids[k] for k in expected[row_id]}, row_id
        await server_db.execute(f"update {table_name} set title = 'z' where id = 1")
        await server_db.execute(f"delete from {table_name} where id = 3")
        dele = (await _changes(c, 1))[0]
        assert dele["ids"] == [delete_id] and dele["data"]["old_record"] == {"id": 3}
    finally:
        await c.close()


async def test_rls_user_isolation_and_columns(server: MadbaseProcess, server_db: asyncpg.Connection,
                                              table_name: str) -> None:
    await _setup(server_db, table_name, rls=True, full=True)
    await server_db.execute(f"revoke select on public.{table_name} from authenticated")
    await server_db.execute(f"grant select (id, owner, title) on public.{table_name} to authenticated")
    user_a, user_b = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
    a = await RawClient.open(server.url, server.anon_key)
    b = await RawClient.open(server.url, server.anon_key, "1.0.0")
    anon = await RawClient.open(server.url, server.anon_key)
    try:
        cfg = {"postgres_changes": [{"event": "*", "schema": "public", "table": table_name}]}
        assert (await a.join("realtime:rls", cfg, user_token(server, user_a)))["payload"]["status"] == "ok"
        assert (await b.join("realtime:rls", cfg, user_token(server, user_b)))["payload"]["status"] == "ok"
        assert (await anon.join("realtime:rls", cfg))["payload"]["status"] == "ok"
        for i, owner in enumerate([user_a, user_b, user_a, user_b], start=1):
            await server_db.execute(f"insert into {table_name} (id, owner, title, secret) values ($1, $2, $3, 's')",
                                    i, owner, f"t{i}")
        got_a = await _changes(a, 2)
        got_b = await _changes(b, 2)
        assert [g["data"]["record"]["id"] for g in got_a] == [1, 3]
        assert [g["data"]["record"]["id"] for g in got_b] == [2, 4]
        assert got_a[0]["data"]["record"] == {"id": 1, "owner": user_a, "title": "t1"}
        assert [col["name"] for col in got_a[0]["data"]["columns"]] == ["id", "owner", "title"]
        await _no_change(a, 0.5)
        await _no_change(anon, 0.2)
        # DELETE cannot be checked by RLS: everyone subscribed gets it, with only the primary key.
        await server_db.execute(f"delete from {table_name} where id = 2")
        for client in (a, b):
            dele = (await _changes(client, 1))[0]
            assert dele["data"]["type"] == "DELETE" and dele["data"]["old_record"] == {"id": 2}
    finally:
        for client in (a, b, anon):
            await client.close()


async def test_access_token_refresh_and_expiry(server: MadbaseProcess, server_db: asyncpg.Connection,
                                               table_name: str) -> None:
    await _setup(server_db, table_name, rls=True)
    user_a, user_b = "00000000-0000-0000-0000-0000000000aa", "00000000-0000-0000-0000-0000000000bb"
    c = await RawClient.open(server.url, server.anon_key)
    try:
        cfg = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": table_name}]}
        await c.join("realtime:tok", cfg, user_token(server, user_a))
        await server_db.execute(f"insert into {table_name} (id, owner) values (1, $1), (2, $2)", user_a, user_b)
        assert [x["data"]["record"]["id"] for x in await _changes(c, 1)] == [1]
        # Re-authorise as user B: now B's rows arrive.
        await c.push("realtime:tok", "access_token", {"access_token": user_token(server, user_b, ttl=3)}, c.join_ref)
        await asyncio.sleep(0.3)
        await server_db.execute(f"insert into {table_name} (id, owner) values (3, $1), (4, $2)", user_a, user_b)
        assert [x["data"]["record"]["id"] for x in await _changes(c, 1)] == [4]
        # That token expires within seconds: system error, then phx_close.
        system = await c.until(lambda m: isinstance(m, dict) and m.get("event") == "system", 40)
        assert system["payload"]["status"] == "error" and "expired" in system["payload"]["message"]
        assert (await c.next())["event"] == "phx_close"
        # An invalid token closes the channel at once.
        await c.join("realtime:tok2", cfg, user_token(server, user_a))
        await c.push("realtime:tok2", "access_token", {"access_token": "bad.token.here"}, c.join_ref)
        system = await c.until(lambda m: isinstance(m, dict) and m.get("event") == "system"
                               and m["payload"]["status"] == "error")
        assert system["payload"]["extension"] == "system"
        assert (await c.next())["event"] == "phx_close"
    finally:
        await c.close()


async def test_select_column_subset(server: MadbaseProcess, server_db: asyncpg.Connection, table_name: str) -> None:
    await _setup(server_db, table_name)
    c = await RawClient.open(server.url, server.anon_key)
    try:
        reply = await c.join("realtime:sel", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table_name, "select": ["title"]}]})
        assert reply["payload"]["response"]["postgres_changes"][0]["select"] == ["title"]
        await server_db.execute(f"insert into {table_name} (id, title, secret) values (7, 'shown', 'hidden')")
        data = (await _changes(c, 1))[0]["data"]
        assert data["record"] == {"id": 7, "title": "shown"}
        assert [col["name"] for col in data["columns"]] == ["id", "title"]
    finally:
        await c.close()


async def test_database_broadcasts(server: MadbaseProcess, server_db: asyncpg.Connection, table_name: str) -> None:
    await _setup(server_db, table_name)
    await server_db.execute(f"""
        create function public.{table_name}_bc() returns trigger language plpgsql as $$
        begin
          perform realtime.broadcast_changes('room:' || new.id::text, tg_op, tg_op, tg_table_name,
                                             tg_table_schema, new, old);
          return new;
        end $$;
        create trigger bc after insert on public.{table_name} for each row execute function public.{table_name}_bc();
    """)
    c = await RawClient.open(server.url, server.anon_key)
    try:
        await c.join("realtime:dbcast", {})
        # broadcast_changes() sends private messages: they reach private channels only (service_role may read).
        assert (await c.join("realtime:room:5", {"private": True}, server.service_role_key)
                )["payload"]["status"] == "ok"
        await server_db.execute("""select realtime.send('{"a": 1}'::jsonb, 'ev', 'dbcast', false)""")
        msg = await c.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert msg["topic"] == "realtime:dbcast"
        assert msg["payload"] == {"type": "broadcast", "event": "ev", "payload": {"a": 1}}
        await server_db.execute(f"insert into {table_name} (id, title) values (5, 'five')")
        msg = await c.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert msg["topic"] == "realtime:room:5" and msg["payload"]["event"] == "INSERT"
        body = msg["payload"]["payload"]
        assert body["operation"] == "INSERT" and body["record"]["title"] == "five" and body["old_record"] is None
        assert body["schema"] == "public" and body["table"] == table_name
    finally:
        await c.close()


async def test_role_without_select_gets_nothing(server: MadbaseProcess, server_db: asyncpg.Connection,
                                                table_name: str) -> None:
    """Supabase sends an `Error 401` event per change to a role that cannot select the key; its arrival tells
    of activity on a table the role may not read, so MadBase sends nothing (docs/compatibility.md)."""
    await _setup(server_db, table_name, rls=True)
    await server_db.execute(f"revoke select on public.{table_name} from authenticated")
    c = await RawClient.open(server.url, server.anon_key)
    try:
        await c.join("realtime:401", {"postgres_changes": [
            {"event": "*", "schema": "public", "table": table_name}]}, user_token(server))
        await server_db.execute(f"insert into {table_name} (id, title) values (1, 'x')")
        await server_db.execute(f"delete from {table_name} where id = 1")
        await _no_change(c, 1.5)
    finally:
        await c.close()


async def test_visibility_check_waits_for_commits_in_flight(server: MadbaseProcess,
                                                            server_db: asyncpg.Connection) -> None:
    """A change may reach the consumer before its commit is visible to other sessions; the batched check
    first waits for the batch's transactions (migration 3007) — here for one kept open on purpose."""
    import httpx

    async with httpx.AsyncClient() as http:  # make sure the tenant migrations ran
        await http.get(f"{server.url}/rest/v1/", headers=server.headers(server.service_role_key))
    other = await asyncpg.connect(server.db_url)
    try:
        tx = other.transaction()
        await tx.start()
        xid = int(await other.fetchval("select pg_current_xact_id()::text")) & 0xFFFFFFFF
        waiter = asyncio.create_task(server_db.execute("select realtime.madbase_await_commits($1::bigint[])", [xid]))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        await tx.commit()
        await asyncio.wait_for(waiter, 1.0)
        # finished and unknown ids return at once
        await asyncio.wait_for(server_db.execute("select realtime.madbase_await_commits($1::bigint[])",
                                                 [xid, 3, 4_000_000_000]), 1.0)
    finally:
        await other.close()
