"""Every route this suite's modules add, for each built-in role (table-driven): read_only reads and is refused
every change, developer and owner may do all of it (SQL as the superuser aside: tests/admin/ops/
test_database.py), an admin of another project gets nothing — and a refused request leaves no audit record.

The table must name every route of opsroutes.py and of auth's, storage's and realtime's `admin_routes`:
a route added without a line here fails the first test."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from madbase.admin import opsroutes
from madbase.auth.adminroutes import ADMIN_ROUTES as AUTH_ROUTES
from madbase.realtime.adminroutes import ADMIN_ROUTES as REALTIME_ROUTES
from madbase.storage.adminroutes import ADMIN_ROUTES as STORAGE_ROUTES
from tests.admin.ops.conftest import Admin, audit_count
from tests.support.admins import admin_token
from tests.support.servers import MadbaseProcess

NOBODY = str(uuid.uuid4())
T = "/projects/{ref}/database/tables/public/rbac_none"

# (method, pattern, concrete path, request kwargs, right). Writes aim at things that do not exist or bodies
# that fail validation, so an allowed call changes nothing and still proves it got past the right check.
CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("GET", "/projects/{ref}/users", "/projects/{ref}/users", {}, "auth.read"),
    ("POST", "/projects/{ref}/users", "/projects/{ref}/users", {"json": {}}, "auth.write"),
    ("POST", "/projects/{ref}/users/invite", "/projects/{ref}/users/invite", {"json": {"email": "x"}}, "auth.write"),
    ("GET", "/projects/{ref}/users/{id}", f"/projects/{{ref}}/users/{NOBODY}", {}, "auth.read"),
    ("PATCH", "/projects/{ref}/users/{id}", f"/projects/{{ref}}/users/{NOBODY}", {"json": {}}, "auth.write"),
    ("DELETE", "/projects/{ref}/users/{id}", f"/projects/{{ref}}/users/{NOBODY}", {}, "auth.write"),
    ("POST", "/projects/{ref}/users/{id}/ban", f"/projects/{{ref}}/users/{NOBODY}/ban", {"json": {}},
     "auth.write"),
    ("DELETE", "/projects/{ref}/users/{id}/sessions", f"/projects/{{ref}}/users/{NOBODY}/sessions", {},
     "auth.write"),
    ("GET", "/projects/{ref}/users/{id}/factors", f"/projects/{{ref}}/users/{NOBODY}/factors", {}, "auth.read"),
    ("DELETE", "/projects/{ref}/users/{id}/factors", f"/projects/{{ref}}/users/{NOBODY}/factors", {},
     "auth.write"),
    ("DELETE", "/projects/{ref}/users/{id}/factors/{factor_id}",
     f"/projects/{{ref}}/users/{NOBODY}/factors/{NOBODY}", {}, "auth.write"),
    ("GET", "/projects/{ref}/buckets", "/projects/{ref}/buckets", {}, "storage.read"),
    ("POST", "/projects/{ref}/buckets", "/projects/{ref}/buckets", {"json": {}}, "storage.write"),
    ("GET", "/projects/{ref}/buckets/{id}", "/projects/{ref}/buckets/rbac-none", {}, "storage.read"),
    ("PATCH", "/projects/{ref}/buckets/{id}", "/projects/{ref}/buckets/rbac-none", {"json": {}}, "storage.write"),
    ("DELETE", "/projects/{ref}/buckets/{id}", "/projects/{ref}/buckets/rbac-none", {}, "storage.write"),
    ("POST", "/projects/{ref}/buckets/{id}/empty", "/projects/{ref}/buckets/rbac-none/empty", {},
     "storage.write"),
    ("GET", "/projects/{ref}/buckets/{id}/objects", "/projects/{ref}/buckets/rbac-none/objects", {},
     "storage.read"),
    ("DELETE", "/projects/{ref}/buckets/{id}/objects", "/projects/{ref}/buckets/rbac-none/objects",
     {"json": {"prefixes": ["x"]}}, "storage.write"),
    ("GET", "/projects/{ref}/buckets/{id}/objects/{path*}", "/projects/{ref}/buckets/rbac-none/objects/a/b", {},
     "storage.read"),
    ("POST", "/projects/{ref}/buckets/{id}/objects/{path*}", "/projects/{ref}/buckets/rbac-none/objects/a/b",
     {"content": b"x"}, "storage.write"),
    ("DELETE", "/projects/{ref}/buckets/{id}/objects/{path*}", "/projects/{ref}/buckets/rbac-none/objects/a/b",
     {}, "storage.write"),
    ("GET", "/projects/{ref}/realtime/connections", "/projects/{ref}/realtime/connections", {}, "realtime.read"),
    ("GET", "/projects/{ref}/realtime/replication", "/projects/{ref}/realtime/replication", {}, "realtime.read"),
    ("GET", "/projects/{ref}/database/tables", "/projects/{ref}/database/tables", {}, "database.read"),
    ("PATCH", "/projects/{ref}/database/tables/{schema}/{table}", T, {"json": {"rls_enabled": True}},
     "database.write"),
    ("GET", "/projects/{ref}/database/tables/{schema}/{table}/policies", T + "/policies", {}, "database.read"),
    ("POST", "/projects/{ref}/database/tables/{schema}/{table}/policies", T + "/policies",
     {"json": {"name": "p", "using": "true"}}, "database.write"),
    ("DELETE", "/projects/{ref}/database/tables/{schema}/{table}/policies/{name}", T + "/policies/p", {},
     "database.write"),
    ("POST", "/projects/{ref}/database/query", "/projects/{ref}/database/query", {"json": {"query": "select 1"}},
     "database.write"),
    ("POST", "/projects/{ref}/database/test", "/projects/{ref}/database/test", {}, "database.read"),
    ("GET", "/projects/{ref}/logs", "/projects/{ref}/logs", {}, "logs.read"),
    ("GET", "/openapi.json", "/openapi.json", {}, "self"),
]


def test_the_table_names_every_route() -> None:
    routes = (*opsroutes.ROUTES, *AUTH_ROUTES, *STORAGE_ROUTES, *REALTIME_ROUTES)
    declared = sorted((m, r.pattern, str(r.right)) for r in routes for m in r.methods)
    assert sorted((m, p, right) for m, p, _, _, right in CASES) == declared


def _ids() -> list[str]:
    return [f"{m} {p}" for m, p, _, _, _ in CASES]


@pytest.mark.parametrize(("method", "pattern", "path", "kwargs", "right"), CASES, ids=_ids())
def test_each_role_on_each_route(method: str, pattern: str, path: str, kwargs: dict[str, Any], right: str,
                                 reader: Admin, developer: Admin, owner: Admin, ops_server: MadbaseProcess) -> None:
    reads = right == "self" or right.endswith(".read")
    before = audit_count(ops_server)
    r = reader.call(method, path, **kwargs)
    if reads:
        assert r.status_code != 403, r.text
    else:
        assert r.status_code == 403 and r.json() == {
            "message": f"Forbidden: this requires the right {right} on project {ops_server.project_ref}"}
        assert audit_count(ops_server) == before  # a refusal is not a change
    for admin in (developer, owner):
        r = admin.call(method, path, **kwargs)
        assert r.status_code != 403 and r.status_code < 500, (admin, r.text)


@pytest.fixture(scope="module")
def stranger(ops_server: MadbaseProcess, reader: Admin) -> Admin:
    """An owner whose token is scoped to another project only."""
    return Admin(ops_server, admin_token(ops_server.db_url, "owner", projects=["otherprojectrefabcd"]),
                 reader.client)


@pytest.mark.parametrize(("method", "pattern", "path", "kwargs", "right"), CASES, ids=_ids())
def test_an_admin_of_another_project_gets_nothing(method: str, pattern: str, path: str, kwargs: dict[str, Any],
                                                  right: str, stranger: Admin) -> None:
    r = stranger.call(method, path, **kwargs)
    assert r.status_code == (200 if right == "self" else 403), r.text


GARBAGE: list[dict[str, Any]] = [
    {"content": b"\xff\xfe\x00 not json"},
    {"content": b"[1, 2, 3]"},
    {"content": b"  "},
    {"json": {"name": 1, "email": [], "query": {}, "prefixes": "x", "duration": 5, "rls_enabled": None,
              "using": ["x"], "roles": "public", "public": "yes", "file_size_limit": "huge", "role": 7}},
]


@pytest.mark.parametrize(("method", "pattern", "path", "kwargs", "right"), CASES, ids=_ids())
def test_no_route_answers_garbage_with_a_500(method: str, pattern: str, path: str, kwargs: dict[str, Any],
                                             right: str, platform: Admin) -> None:
    for body in GARBAGE:
        for query in ({}, {"limit": "-5", "cursor": "\x00", "per_page": "1e9", "since": "nan", "status": "5"}):
            r = platform.call(method, path, params=query, **body)
            assert r.status_code < 500, (body, query, r.text)
            if r.status_code >= 400:
                assert "message" in r.json(), r.text
