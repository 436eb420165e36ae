"""Adversarial: realtime must not tell a subscriber anything about rows or columns its role cannot read.

- postgres_changes filters are evaluated on the WAL row, so a filter on a column the role cannot SELECT, or
  on a table it has no privilege on, or on a deleted row of another user (REPLICA IDENTITY FULL + RLS) would
  be a yes/no oracle: refused at join (Supabase's "invalid column for filter"), and gated per change.
- A role without SELECT on the table gets nothing at all (no "Error 401" event whose arrival tells of activity).
- A new `access_token` re-authorizes the channel: private topics (RLS on realtime.messages), the filter
  columns of postgres_changes for the new role, and the identity a disconnected subscription is kept for.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect

from tests.realtime.wsclient import RawClient
from tests.security.conftest import Project

USER_A = "00000000-0000-0000-0000-00000000a11c"
USER_B = "00000000-0000-0000-0000-00000000b0b0"


def _is_change(m: Any) -> bool:
    return isinstance(m, dict) and m.get("event") == "postgres_changes"


def _is_system(ext: str) -> Any:
    return lambda m: isinstance(m, dict) and m.get("event") == "system" and m["payload"].get("extension") == ext


async def _no_change(c: RawClient, wait: float = 1.5) -> None:
    try:
        msg = await c.until(_is_change, wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected change {msg}")


@pytest.fixture
async def db(project_a: Project) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(project_a.db_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _table(db: asyncpg.Connection, *, rls: bool = False, full: bool = False, grant: str = "select") -> str:
    """A published table (id pk, owner, title, secret); `grant`: what anon/authenticated get ('' for nothing)."""
    name = "rta_" + uuid.uuid4().hex[:10]
    await db.execute(f"create table public.{name} (id bigint primary key, owner uuid, title text, secret text)")
    if full:
        await db.execute(f"alter table public.{name} replica identity full")
    if rls:
        await db.execute(f"alter table public.{name} enable row level security")
        await db.execute(f"create policy own on public.{name} for select to authenticated using (owner = auth.uid())")
    # The project's default privileges grant everything to the API roles (as Supabase): start from nothing.
    await db.execute(f"revoke all on public.{name} from anon, authenticated")
    if grant:
        await db.execute(f"grant {grant} on public.{name} to anon, authenticated")
    await db.execute(f"alter publication supabase_realtime add table public.{name}")
    return name


async def _open(project: Project) -> RawClient:
    """A raw Phoenix client of `project` (named by x-project-ref: the security server has two projects)."""
    url = project.url.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={project.anon_key}&vsn=2.0.0"
    ws = await connect(url, compression=None, max_size=None, additional_headers={"x-project-ref": project.ref})
    return RawClient(ws, "2.0.0")


async def test_no_privilege_on_table_means_no_event_at_all(project_a: Project, db: asyncpg.Connection) -> None:
    table = await _table(db, grant="")
    c = await _open(project_a)
    try:
        reply = await c.join("realtime:nopriv", {"postgres_changes": [
            {"event": "*", "schema": "public", "table": table}]})
        assert reply["payload"]["status"] == "ok"
        await db.execute(f"insert into {table} (id, title, secret) values (1, 'a', 's')")
        await db.execute(f"delete from {table} where id = 1")
        await _no_change(c)
    finally:
        await c.close()


async def test_filter_on_table_without_privilege_is_refused(project_a: Project, db: asyncpg.Connection) -> None:
    table = await _table(db, grant="")
    c = await _open(project_a)
    try:
        reply = await c.join("realtime:nopriv-f", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table, "filter": "secret=eq.guess"}]})
        assert reply["payload"]["status"] == "ok"  # as Supabase: the join succeeds, the subscription does not
        system = await c.until(_is_system("postgres_changes"))
        assert system["payload"]["status"] == "error"
        message = system["payload"]["message"]
        assert message.startswith("Unable to subscribe to changes with given parameters.")
        assert message.endswith("invalid column for filter secret")
        assert '[event: INSERT, schema: public, table: ' + table + ', filters: [{"secret", "eq", "guess", false}]' \
            in message
        await db.execute(f"insert into {table} (id, secret) values (1, 'guess')")
        await _no_change(c)
    finally:
        await c.close()


async def test_filter_on_unselectable_column_is_refused(project_a: Project, db: asyncpg.Connection) -> None:
    table = await _table(db, grant="select (id, owner, title)")
    c = await _open(project_a)
    try:
        await c.join("realtime:col", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table, "filter": "title=eq.a"},
            {"event": "INSERT", "schema": "public", "table": table, "filter": "secret=like.g%"}]})
        system = await c.until(_is_system("postgres_changes"))
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"].endswith("invalid column for filter secret")
        await db.execute(f"insert into {table} (id, title, secret) values (1, 'a', 'guess')")
        await _no_change(c)  # all or nothing, as Supabase's single transaction
        # `select` of a column the role cannot read is refused the same way.
        await c.join("realtime:col-sel", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table, "select": ["title", "secret"]}]})
        system = await c.until(_is_system("postgres_changes"))
        assert system["payload"]["message"].endswith("invalid column for select secret")
        # A filter on readable columns still works, and never shows the hidden one.
        await c.join("realtime:col-ok", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table, "filter": "title=eq.b"}]})
        system = await c.until(_is_system("postgres_changes"))
        assert system["payload"]["status"] == "ok"
        await db.execute(f"insert into {table} (id, title, secret) values (2, 'b', 'hidden')")
        change = await c.until(_is_change)
        assert change["payload"]["data"]["record"] == {"id": 2, "owner": None, "title": "b"}
    finally:
        await c.close()


async def test_revoked_column_stops_matching(project_a: Project, db: asyncpg.Connection) -> None:
    table = await _table(db)
    c = await _open(project_a)
    try:
        await c.join("realtime:revoke", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table, "filter": "secret=eq.x"}]})
        assert (await c.until(_is_system("postgres_changes")))["payload"]["status"] == "ok"
        await db.execute(f"revoke select on public.{table} from anon")
        await db.execute(f"grant select (id, owner, title) on public.{table} to anon")
        await asyncio.sleep(5.5)  # the longest a process may keep privileges it read before
        await db.execute(f"insert into {table} (id, secret) values (1, 'x')")
        await _no_change(c)
    finally:
        await c.close()


async def test_delete_filter_is_no_oracle_on_other_users_rows(project_a: Project, db: asyncpg.Connection) -> None:
    table = await _table(db, rls=True, full=True)
    await db.execute(f"insert into {table} (id, owner, title, secret) values (1, $1, 'guess', 's1'), "
                     f"(2, $1, 'other', 's2')", USER_B)
    c = await _open(project_a)
    try:
        await c.join("realtime:del", {"postgres_changes": [
            {"event": "DELETE", "schema": "public", "table": table, "filter": "title=eq.guess"},
            {"event": "DELETE", "schema": "public", "table": table, "filter": "id=eq.2"},
        ]}, project_a.user_token(USER_A))
        assert (await c.until(_is_system("postgres_changes")))["payload"]["status"] == "ok"
        await db.execute(f"delete from {table} where id = 1")
        await db.execute(f"delete from {table} where id = 2")
        # Only the key-filtered DELETE arrives, and with the key only (as Supabase, RLS cannot be checked).
        change = await c.until(_is_change)
        assert change["payload"]["data"]["old_record"] == {"id": 2}
        await _no_change(c)
    finally:
        await c.close()


async def test_private_channel_closed_when_token_switches_to_a_stranger(project_a: Project,
                                                                        db: asyncpg.Connection) -> None:
    room = "priv-" + uuid.uuid4().hex[:8]
    await db.execute(f"create policy r_{room.replace('-', '_')} on realtime.messages for select to authenticated "
                     f"using (realtime.topic() = '{room}' and (auth.jwt() ->> 'member') = 'yes')")
    member = project_a.user_token(USER_A, member="yes")
    stranger = project_a.user_token(USER_B)
    listener, sender = await _open(project_a), await _open(project_a)
    try:
        assert (await listener.join(f"realtime:{room}", {"private": True}, member))["payload"]["status"] == "ok"
        await listener.push(f"realtime:{room}", "access_token", {"access_token": stranger}, listener.join_ref)
        system = await listener.until(_is_system("system"))
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"] == f"You no longer have permission to read from this Channel topic: {room}"
        assert (await listener.next())["event"] == "phx_close"
        await db.execute("select realtime.send('{\"n\": 1}'::jsonb, 'ev', $1, true)", room)
        with pytest.raises(TimeoutError):
            await listener.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast", 1.5)
        # A refreshed token of an allowed identity keeps the channel.
        assert (await sender.join(f"realtime:{room}", {"private": True}, member))["payload"]["status"] == "ok"
        again = project_a.user_token(USER_A, member="yes", ttl=7200)
        await sender.push(f"realtime:{room}", "access_token", {"access_token": again}, sender.join_ref)
        await asyncio.sleep(0.3)
        await db.execute("select realtime.send('{\"n\": 2}'::jsonb, 'ev', $1, true)", room)
        got = await sender.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast")
        assert got["payload"]["payload"] == {"n": 2}
    finally:
        await listener.close()
        await sender.close()


async def test_token_switch_rechecks_filter_columns(project_a: Project, db: asyncpg.Connection) -> None:
    table = await _table(db, grant="select (id, owner, title)")
    await db.execute(f"grant select on public.{table} to service_role")
    c = await _open(project_a)
    try:
        await c.join("realtime:switch", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": table, "filter": "secret=eq.x"}]},
            project_a.service_role_key)
        assert (await c.until(_is_system("postgres_changes")))["payload"]["status"] == "ok"
        await c.push("realtime:switch", "access_token", {"access_token": project_a.user_token(USER_A)}, c.join_ref)
        system = await c.until(_is_system("postgres_changes"))
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"].endswith("invalid column for filter secret")
        await db.execute(f"insert into {table} (id, secret) values (1, 'x')")
        await _no_change(c)
    finally:
        await c.close()


async def test_kept_subscription_follows_the_identity_it_was_switched_to(project_a: Project,
                                                                         db: asyncpg.Connection) -> None:
    """A disconnected subscription is kept for its identity; after a token switch that is the new one, so the
    first identity re-joining must not adopt changes checked with the second one's claims."""
    table = await _table(db, rls=True)
    cfg = {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": table}]}
    c = await _open(project_a)
    await c.join("realtime:ghost", cfg, project_a.user_token(USER_A))
    await c.until(_is_system("postgres_changes"))
    await c.push("realtime:ghost", "access_token", {"access_token": project_a.user_token(USER_B)}, c.join_ref)
    await asyncio.sleep(0.3)
    await c.close()
    await asyncio.sleep(0.3)
    await db.execute(f"insert into {table} (id, owner, title) values (1, $1, 'b-only')", USER_B)
    await asyncio.sleep(1.0)
    again = await _open(project_a)
    try:
        await again.join("realtime:ghost", cfg, project_a.user_token(USER_A))
        await _no_change(again)
    finally:
        await again.close()


async def test_private_and_public_channels_of_one_name_are_separate(project_a: Project,
                                                                    db: asyncpg.Connection) -> None:
    """A public channel named like a private one must not receive its private messages (database or HTTP), nor
    can it inject broadcasts or presence into it (Supabase keeps them apart as `<tenant>-private:<topic>`)."""
    room = "split-" + uuid.uuid4().hex[:8]
    await db.execute(f"create policy s_{room.replace('-', '_')} on realtime.messages for select to authenticated "
                     f"using (realtime.topic() = '{room}' and (auth.jwt() ->> 'member') = 'yes')")
    member = project_a.user_token(USER_A, member="yes")
    private, public = await _open(project_a), await _open(project_a)
    is_broadcast = lambda m: isinstance(m, dict) and m.get("event") == "broadcast"  # noqa: E731
    try:
        assert (await private.join(f"realtime:{room}", {"private": True, "presence": {"key": "m", "enabled": True}},
                                   member))["payload"]["status"] == "ok"
        assert (await public.join(f"realtime:{room}", {"presence": {"key": "p", "enabled": True}})
                )["payload"]["status"] == "ok"
        await private.until(lambda m: isinstance(m, dict) and m.get("event") == "presence_state")
        await public.until(lambda m: isinstance(m, dict) and m.get("event") == "presence_state")
        # a private database broadcast and a private HTTP broadcast (service_role may write)
        await db.execute("select realtime.send('{\"n\": 1}'::jsonb, 'ev', $1, true)", room)
        async with httpx.AsyncClient(base_url=project_a.url) as http:
            r = await http.post("/realtime/v1/api/broadcast", headers=project_a.headers("service_role"), json={
                "messages": [{"topic": room, "event": "ev", "payload": {"n": 2}, "private": True}]})
            assert r.status_code == 202
        got = [(await private.until(is_broadcast))["payload"]["payload"] for _ in range(2)]
        assert sorted(x["n"] for x in got) == [1, 2]
        with pytest.raises(TimeoutError):
            await public.until(is_broadcast, 1.0)
        # the public side's broadcast and presence do not reach the private channel
        await public.push(f"realtime:{room}", "broadcast", {"type": "broadcast", "event": "ev", "payload": {"x": 1}},
                          public.join_ref)
        await public.push(f"realtime:{room}", "presence", {"type": "presence", "event": "track",
                                                            "payload": {"who": "intruder"}}, public.join_ref)
        with pytest.raises(TimeoutError):
            await private.until(lambda m: isinstance(m, dict) and m.get("event") in ("broadcast", "presence_diff"),
                                1.5)
    finally:
        await private.close()
        await public.close()


async def test_expired_token_closes_a_private_channel(project_a: Project, db: asyncpg.Connection) -> None:
    """As Supabase: when the channel's token expires, a `system` error and `phx_close`; nothing after."""
    room = "exp-" + uuid.uuid4().hex[:8]
    await db.execute(f"create policy e_{room.replace('-', '_')} on realtime.messages for select to authenticated "
                     f"using (realtime.topic() = '{room}')")
    c = await _open(project_a)
    try:
        token = project_a.user_token(USER_A, ttl=2)
        assert (await c.join(f"realtime:{room}", {"private": True}, token))["payload"]["status"] == "ok"
        system = await c.until(_is_system("system"), 10)
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"].startswith("Token has expired")
        assert (await c.next())["event"] == "phx_close"
        await db.execute("select realtime.send('{\"n\": 1}'::jsonb, 'ev', $1, true)", room)
        with pytest.raises(TimeoutError):
            await c.until(lambda m: isinstance(m, dict) and m.get("event") == "broadcast", 1.5)
    finally:
        await c.close()


async def test_private_presence_follows_its_own_policies(project_a: Project, db: asyncpg.Connection) -> None:
    """As Supabase: on a private topic, presence is read and tracked under the `presence` extension's policies,
    not the broadcast ones."""
    room = "pres-" + uuid.uuid4().hex[:8]
    tag = room.replace("-", "_")
    await db.execute(f"create policy b_{tag} on realtime.messages for select to authenticated "
                     f"using (realtime.topic() = '{room}' and extension = 'broadcast')")
    await db.execute(f"create policy p_{tag} on realtime.messages for select to authenticated "
                     f"using (realtime.topic() = '{room}' and extension = 'presence' and auth.jwt() ->> 'm' = 'y')")
    await db.execute(f"create policy w_{tag} on realtime.messages for insert to authenticated "
                     f"with check (realtime.topic() = '{room}' and extension = 'presence' "
                     f"and auth.jwt() ->> 'm' = 'y')")
    member, outsider = await _open(project_a), await _open(project_a)
    cfg = {"private": True, "presence": {"key": "", "enabled": True}}
    is_presence = lambda m: isinstance(m, dict) and m.get("event") in ("presence_state", "presence_diff")  # noqa: E731
    try:
        assert (await outsider.join(f"realtime:{room}", cfg, project_a.user_token(USER_B))
                )["payload"]["status"] == "ok"  # broadcast read is enough to join
        assert (await member.join(f"realtime:{room}", cfg, project_a.user_token(USER_A, m="y"))
                )["payload"]["status"] == "ok"
        await member.until(lambda m: isinstance(m, dict) and m.get("event") == "presence_state")
        ref = await member.push(f"realtime:{room}", "presence", {"type": "presence", "event": "track",
                                                                  "payload": {"who": "a"}}, member.join_ref)
        seen: list[Any] = []
        while not ({"phx_reply", "presence_diff"} <= {m.get("event") for m in seen}):
            seen.append(await member.until(lambda m: isinstance(m, dict) and (
                m.get("ref") == ref or m.get("event") == "presence_diff")))
        assert next(m for m in seen if m["event"] == "phx_reply")["payload"]["status"] == "ok"
        with pytest.raises(TimeoutError):
            await outsider.until(is_presence, 1.0)
        ref = await outsider.push(f"realtime:{room}", "presence", {"type": "presence", "event": "track",
                                                                    "payload": {"who": "b"}}, outsider.join_ref)
        reply = await outsider.until(lambda m: isinstance(m, dict) and m.get("ref") == ref)
        assert reply["payload"]["status"] == "error"
    finally:
        await member.close()
        await outsider.close()
