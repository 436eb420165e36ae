"""Pure pieces of the operations routes: the SQL splitter, policy statements, the request log ring, value
conversion of SQL results and the OpenAPI document (no server)."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from madbase.admin import dbcatalog, openapi, sqlrun
from madbase.admin.sqlsplit import SplitError, balanced, split
from madbase.core import requestlog
from madbase.core.kit import Response, route
from madbase.core.platform import SELF


def texts(sql: str) -> list[str]:
    return [s.text for s in split(sql)]


@pytest.mark.parametrize(("sql", "expected"), [
    ("select 1", ["select 1"]),
    ("select 1; select 2;", ["select 1", "select 2"]),
    ("  ;; select 1 ;  ; ", ["select 1"]),
    ("select 'a;b'; select 2", ["select 'a;b'", "select 2"]),
    ("select 'it''s;'; select 2", ["select 'it''s;'", "select 2"]),
    ("select e'\\';'; select 2", ["select e'\\';'", "select 2"]),
    ('select 1 as "x;y"; select 2', ['select 1 as "x;y"', "select 2"]),
    ("select $$a;b$$; select 2", ["select $$a;b$$", "select 2"]),
    ("create function f() returns int language sql as $body$ select 1; $body$; select f()",
     ["create function f() returns int language sql as $body$ select 1; $body$", "select f()"]),
    ("select 1 -- a; comment\n; select 2", ["select 1 -- a; comment", "select 2"]),
    ("/* a; /* nested; */ still; */ select 1; select 2", ["/* a; /* nested; */ still; */ select 1", "select 2"]),
    ("-- only a comment;\n /* and another */", []),
    ("select $1::int; select x$y", ["select $1::int", "select x$y"]),
    ("create rule r as on insert to t do also (insert into a values (1); insert into b values (2))",
     ["create rule r as on insert to t do also (insert into a values (1); insert into b values (2))"]),
])
def test_split(sql: str, expected: list[str]) -> None:
    assert texts(sql) == expected


def test_split_offsets_point_into_the_script() -> None:
    sql = "select 1;\n\n  select boom"
    stmts = split(sql)
    assert sql[stmts[1].offset:].startswith("select boom")


@pytest.mark.parametrize(("sql", "position"), [("select 'abc", 8), ('select "abc', 8), ("select $$abc", 8),
                                                ("select 1 /* open", 10)])
def test_unterminated_literals_are_errors_with_a_position(sql: str, position: int) -> None:
    with pytest.raises(SplitError) as info:
        split(sql)
    assert info.value.position == position


@pytest.mark.parametrize(("expr", "ok"), [
    ("auth.uid() = user_id", True), ("(a) and (b)", True), ("name = ')'", True), ("x = $$)$$", True),
    ("true) with check (true", False), ("(a", False), ("a)", False), ("true; drop table t", False),
    ("'unterminated", False), ("a = 1 -- )", True),
])
def test_balanced_expressions(expr: str, ok: bool) -> None:
    assert balanced(expr) is ok


def test_policy_statements() -> None:
    template, args, name = dbcatalog.policy_statement(
        {"name": "own rows", "command": "select", "roles": ["authenticated"], "using": "auth.uid() = owner"})
    assert template == ("create policy %I on %I.%I as permissive for SELECT to %I using (auth.uid() = owner)")
    assert args == ["own rows", "authenticated"] and name == "own rows"
    template, args, _ = dbcatalog.policy_statement({"name": "p", "command": "INSERT", "with_check": "x like '5%'",
                                                    "permissive": False})
    assert template.endswith("to public with check (x like '5%%')") and "restrictive" in template
    assert args == ["p"]
    for bad in ({}, {"name": "p"}, {"name": "p", "using": "true) or (true"}, {"name": "p", "command": "MERGE",
                                                                               "using": "true"},
                {"name": "p", "command": "INSERT", "using": "true"}, {"name": "p", "roles": [], "using": "true"},
                {"name": "p", "roles": [1], "using": "true"}, {"name": "x" * 64, "using": "true"}, [],
                {"name": "p", "using": "true", "permissive": "yes"}):
        with pytest.raises(dbcatalog.CatalogError):
            dbcatalog.policy_statement(bad)


def test_sql_result_cells_are_json() -> None:
    assert sqlrun.cell(decimal.Decimal("1.10")) == "1.10"
    assert sqlrun.cell(b"\x01\xff") == "\\x01ff"
    assert sqlrun.cell([1, [2, None]]) == [1, [2, None]]
    assert sqlrun.cell(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert sqlrun.cell(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert sqlrun.cell(datetime.timedelta(hours=1)) == "1:00:00"
    assert sqlrun.cell({"a": decimal.Decimal(1)}) == {"a": "1"}


def test_script_limits() -> None:
    with pytest.raises(sqlrun.QueryError) as info:
        sqlrun.statements_of("select 1 " + "x" * sqlrun.LIMITS.max_query)
    assert info.value.status == 413
    for bad in (None, 5, "", " -- nothing\n", ["select 1"]):
        with pytest.raises(sqlrun.QueryError):
            sqlrun.statements_of(bad)
    with pytest.raises(sqlrun.QueryError) as info:
        sqlrun.statements_of("select 1; select 'x")
    assert info.value.body() == {"message": "unterminated quoted string", "position": 18, "code": "42601"}


def test_request_log_ring_filters_and_pages() -> None:
    log = requestlog.RequestLog(size=5)
    for i in range(8):
        log.add("p1", f"r{i}", "GET", "rest" if i % 2 else "auth", f"/rest/v1/t{i}", 200 if i < 6 else 503,
                0.001, "1.2.3.4")
    log.add("p2", "other", "GET", "rest", "/x", 200, 0.0, "-")
    entries = list(log.entries("p1"))
    assert [e.request_id for e in entries] == ["r7", "r6", "r5", "r4", "r3"]  # bounded, newest first
    got, cursor = log.query("p1", requestlog.Query(service="rest"))
    assert [e.request_id for e in got] == ["r7", "r5", "r3"] and cursor is None
    got, _ = log.query("p1", requestlog.Query(status="5xx"))
    assert [e.request_id for e in got] == ["r7", "r6"]
    got, _ = log.query("p1", requestlog.Query(status="error"))
    assert len(got) == 2
    got, _ = log.query("p1", requestlog.Query(status="200", path="t4"))
    assert [e.request_id for e in got] == ["r4"]
    page, cursor = log.query("p1", requestlog.Query(limit=2))
    assert [e.request_id for e in page] == ["r7", "r6"] and cursor is not None
    page, cursor = log.query("p1", requestlog.Query(limit=2, before=cursor))
    assert [e.request_id for e in page] == ["r5", "r4"]
    got, _ = log.query("p1", requestlog.Query(since=entries[0].ts + 10))
    assert got == []
    assert log.query("nope", requestlog.Query()) == ([], None)
    log.add("p1", "long", "GET", "rest", "/" + "a" * 40_000, 200, 0.0, "-")
    assert len(next(iter(log.entries("p1"))).path) == requestlog.PATH_MAX


async def _handler(request: object) -> Response:
    """Do the thing.

    More words."""
    return Response(204)


def test_openapi_document_lists_every_route() -> None:
    routes = (route("GET", "/projects/{ref}/buckets/{id}/objects/{path*}", _handler, name="admin.objects.download",
                    right="storage.read"),
              route(("GET", "HEAD"), "/me", _handler, name="admin.me.get", right=SELF),
              route("POST", "/projects/{ref}/buckets", _handler, name="admin.buckets.create", right="storage.write",
                    body_limit=10))
    doc = openapi.document(routes)
    paths = doc["paths"]
    assert set(paths) == {"/projects/{ref}/buckets/{id}/objects/{path}", "/me", "/projects/{ref}/buckets"}
    op = paths["/projects/{ref}/buckets/{id}/objects/{path}"]["get"]
    assert op["operationId"] == "admin.objects.download" and op["x-madbase-right"] == "storage.read"
    assert [p["name"] for p in op["parameters"]] == ["ref", "id", "path"]
    assert op["description"].startswith("Do the thing.")
    assert set(paths["/me"]) == {"get", "head"}
    assert paths["/me"]["head"]["operationId"] == "admin.me.get_head"
    assert "requestBody" in paths["/projects/{ref}/buckets"]["post"]


def test_service_app_registry_is_weak() -> None:
    import gc

    from madbase.core import serviceapps

    class Runtime:
        pass

    class App:
        pass

    runtime, app = Runtime(), App()
    serviceapps.register(runtime, "storage", app)
    serviceapps.register(runtime, "odd", 5)  # an app that cannot be weakly referenced is skipped, not an error
    assert serviceapps.app_of(runtime, "odd") is None
    assert serviceapps.app_of(runtime, "storage") is app
    assert serviceapps.app_of(runtime, "auth") is None and serviceapps.app_of(Runtime(), "storage") is None
    del app
    gc.collect()
    assert serviceapps.app_of(runtime, "storage") is None  # the registry keeps nothing alive


def test_openapi_operation_ids_stay_unique_when_names_repeat() -> None:
    routes = (route("GET", "/a", _handler, name="admin.x.get", right=SELF),
              route("GET", "/b", _handler, name="admin.x.get", right=SELF),
              route("GET", "/c", _handler, name="admin.x.get", right=SELF))
    ids = [op["operationId"] for ops in openapi.document(routes)["paths"].values() for op in ops.values()]
    assert ids == ["admin.x.get", "admin.x.get_get", "admin.x.get_get_2"]
