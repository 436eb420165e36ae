"""The database routes with a real server: tables with their RLS state, policies (list, create, drop), RLS
switched on and off, the SQL editor (results, errors with their position, roles, limits, timeouts), the
connection test — and one audit record per change."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.admin.ops.conftest import Admin, audit_count, control_sql
from tests.support.servers import MadbaseProcess

T = "/projects/{ref}/database/tables"


@pytest.fixture(scope="module", autouse=True)
def notes(platform: Admin) -> None:
    r = platform.sql("drop table if exists public.notes cascade; "
                     "create table public.notes (id serial primary key, owner uuid, body text); "
                     "insert into public.notes (owner, body) values "
                     "('00000000-0000-0000-0000-000000000001', 'mine'), "
                     "('00000000-0000-0000-0000-000000000002', 'theirs')", role="postgres")
    assert r.status_code == 200, r.text


def test_tables_with_their_rls_state(platform: Admin) -> None:
    r = platform.get(T, params={"schema": "public"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None
    notes = [t for t in body["tables"] if t["name"] == "notes"]
    assert notes and notes[0]["schema"] == "public" and notes[0]["rls_enabled"] is False
    everything = platform.get(T).json()["tables"]
    schemas = {t["schema"] for t in everything}
    assert {"auth", "storage", "public"} <= schemas
    assert not schemas & {"pg_catalog", "information_schema", "madbase", "madbase_migrations"}


def test_policies_create_list_drop_and_rls_switch(platform: Admin, ops_server: MadbaseProcess) -> None:
    path = T + "/public/notes"
    before = audit_count(ops_server)
    r = platform.patch(path, json={"rls_enabled": True})
    assert r.status_code == 200 and r.json()["rls_enabled"] is True, r.text
    r = platform.post(path + "/policies", json={"name": "own notes", "command": "SELECT",
                                                "roles": ["authenticated"], "using": "auth.uid() = owner"})
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "own notes", "command": "SELECT", "permissive": True, "roles": ["authenticated"],
                        "using": "(auth.uid() = owner)", "with_check": None}
    assert audit_count(ops_server) == before + 2
    listed = platform.get(path + "/policies").json()
    assert listed["rls_enabled"] is True and [p["name"] for p in listed["policies"]] == ["own notes"]
    # RLS now applies to a user's SQL (impersonated through claims)
    r = platform.sql("select body from notes order by id", role="authenticated",
                     claims={"sub": "00000000-0000-0000-0000-000000000001"})
    assert r.status_code == 200 and r.json()["rows"] == [["mine"]], r.text
    assert platform.sql("select count(*) from notes", role="anon").json()["rows"] == [[0]]
    assert platform.sql("select count(*) from notes").json()["rows"] == [[2]]  # service_role bypasses RLS
    # the same name again, bad expressions, unknown tables
    assert platform.post(path + "/policies", json={"name": "own notes", "using": "true"}).status_code == 409
    r = platform.post(path + "/policies", json={"name": "x", "using": "no_such_column = 1"})
    assert r.status_code == 400 and "no_such_column" in r.json()["message"]
    r = platform.post(path + "/policies", json={"name": "x", "using": "true) with check (true"})
    assert r.status_code == 400
    assert platform.post(T + "/public/nope/policies", json={"name": "x", "using": "true"}).status_code == 404
    assert platform.get(T + "/pg_catalog/pg_class/policies").status_code == 404
    assert platform.get(T + "/public/" + "n" * 5000 + "/policies").status_code in (404, 414)
    before = audit_count(ops_server)
    assert platform.delete(path + "/policies/own%20notes").status_code == 204
    assert platform.delete(path + "/policies/own%20notes").status_code == 404
    assert platform.patch(path, json={"rls_enabled": False}).json()["rls_enabled"] is False
    assert audit_count(ops_server) == before + 2
    assert platform.patch(path, json={"rls_enabled": "yes"}).status_code == 400
    assert platform.patch(path, json={}).status_code == 400


def test_query_results(platform: Admin) -> None:
    r = platform.sql("select 1 as a, 'x' as b, null::int as c, 1.50::numeric as d, '{\"k\": [1]}'::jsonb as j, "
                     "array[1,2] as arr, '\\x01'::bytea as raw, true as t")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["name"] for c in body["columns"]] == ["a", "b", "c", "d", "j", "arr", "raw", "t"]
    assert body["columns"][0]["type"] == "int4"
    assert body["rows"] == [[1, "x", None, "1.50", {"k": [1]}, [1, 2], "\\x01", True]]
    assert body["row_count"] == 1 and body["truncated"] is False and body["command"] == "SELECT"
    # several statements: one transaction, the last one's result
    r = platform.sql("create temp table t (x int); insert into t values (1), (2); select sum(x) from t")
    assert r.json()["rows"] == [[3]] and r.json()["statements"] == 3
    r = platform.sql("update notes set body = body where id > 0")
    assert r.json()["command"] == "UPDATE" and r.json()["row_count"] == 2 and r.json()["columns"] == []


@pytest.mark.parametrize(("query", "position", "code"), [
    ("select * from no_such_table", 15, "42P01"),
    ("select 1;\nselect nope from notes", 18, "42703"),
    ("select 1; selec 2", 11, "42601"),
    ("select 'open", 8, "42601"),
])
def test_errors_have_a_message_and_a_position(platform: Admin, query: str, position: int, code: str) -> None:
    r = platform.sql(query)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["position"] == position and body["code"] == code and body["message"]


def test_a_failed_script_changes_nothing(platform: Admin, ops_server: MadbaseProcess) -> None:
    before = audit_count(ops_server)
    r = platform.sql("insert into notes (body) values ('lost'); select 1/0")
    assert r.status_code == 400 and r.json()["code"] == "22012"
    assert audit_count(ops_server) == before  # failed mutations leave no record
    assert platform.sql("select count(*) from notes where body = 'lost'").json()["rows"] == [[0]]


def test_queries_are_audited_without_their_text(platform: Admin, ops_server: MadbaseProcess) -> None:
    before = audit_count(ops_server)
    request_id = str(uuid.uuid4())
    r = platform.sql("select 'a secret value' as s", headers={"x-request-id": request_id})
    assert r.status_code == 200
    assert audit_count(ops_server) == before + 1
    [row] = control_sql(ops_server, "select action, details::text as d from madbase_control.audit_log "
                        "where request_id = $1", request_id, fetch=True)
    assert row["action"] == "database.query" and "a secret value" not in row["d"] and "sha256" in row["d"]


def test_row_and_size_limits_truncate(platform: Admin) -> None:
    r = platform.sql("select g from generate_series(1, 20000) g")
    body = r.json()
    assert r.status_code == 200 and body["truncated"] is True and body["row_count"] == 10_000
    assert body["rows"][-1] == [10_000]
    r = platform.sql("select repeat('x', 1000000) from generate_series(1, 30)")
    body = r.json()
    assert body["truncated"] is True and 5 <= body["row_count"] < 11


def test_a_query_that_never_ends_times_out(platform: Admin) -> None:
    started = time.monotonic()
    r = platform.sql("select pg_sleep(60)", timeout_ms=500)
    assert r.status_code == 400 and r.json()["code"] == "57014", r.text
    # resetting statement_timeout does not escape the deadline
    r = platform.sql("set statement_timeout = 0; select pg_sleep(60)", timeout_ms=800)
    assert r.status_code == 400 and r.json()["code"] == "57014", r.text
    assert time.monotonic() - started < 15
    # nothing keeps running
    deadline = time.monotonic() + 10
    while platform.sql("select count(*) from pg_stat_activity where query like '%pg_sleep(60)%' "
                       "and pid <> pg_backend_pid()", role="postgres").json()["rows"] != [[0]]:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_hostile_query_bodies(platform: Admin) -> None:
    assert platform.sql("select 1 -- " + "x" * (1024 * 1024)).status_code == 413
    r = platform.post("/projects/{ref}/database/query", content=b"x" * (3 * 1024 * 1024))
    assert r.status_code == 413 and set(r.json()) == {"message"}
    assert platform.post("/projects/{ref}/database/query", content=b"{nope").status_code == 400
    for body in ({}, {"query": 1}, {"query": ""}, {"query": "select 1", "role": "supabase_admin"},
                 {"query": "select 1", "timeout_ms": -1}, {"query": "select 1", "claims": "x"}, []):
        r = platform.post("/projects/{ref}/database/query", json=body)
        assert r.status_code == 400 and "message" in r.json(), body


def test_roles_the_sql_runs_as(platform: Admin, owner: Admin, developer: Admin) -> None:
    assert platform.sql("select current_user").json()["rows"] == [["service_role"]]
    assert platform.sql("select current_user", role="anon").json()["rows"] == [["anon"]]
    # the database URL's user is a superuser here: only a platform-wide database.write may run as it
    assert platform.sql("select rolsuper from pg_roles where rolname = current_user",
                        role="postgres").json()["rows"] == [[True]]
    for admin in (owner, developer):
        r = admin.sql("select 1", role="postgres")
        assert r.status_code == 403 and "platform-wide" in r.json()["message"]
        assert admin.sql("select 1").status_code == 200
    # a script's session changes never reach the API's pool (own connection)
    platform.sql("set role anon")
    assert platform.sql("select current_user").json()["rows"] == [["service_role"]]


def test_connection_test(platform: Admin) -> None:
    r = platform.post("/projects/{ref}/database/test")
    assert r.status_code == 200, r.text
    body = r.json()
    names = [c["name"] for c in body["checks"]]
    assert names == ["connection", "version", "wal_level", "replication_privilege", "replication_slots",
                     "login_role"]
    assert body["ok"] is True and all(c["ok"] for c in body["checks"])
