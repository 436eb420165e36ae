"""The control plane's routes for projects: create (BYO database URL tested first, or a new database on the default
cluster), list, get, update, pause, soft-delete, restore, hard delete, health and usage (docs/projects.md).

Restore and delete must reach soft-deleted projects, which the dispatcher's `{ref}` resolution answers 404 for
(by design: a deleted project is gone for every other route). Their pattern names the parameter `{project}`
instead, declares `SELF`, and the handler checks the right on that project itself — before looking it up, as
the dispatcher does, so an admin without it learns nothing of which refs exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from madbase.admin import dbprobe, lifecycle, usage
from madbase.admin.dispatch import forbidden
from madbase.admin.http import MAX_BODY, body, control, limit
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.platform import SELF, AdminRequest
from madbase.core.runtime import Runtime

_NAME_MAX = 256


def _runtime(request: AdminRequest) -> Runtime:
    return request.ctx.runtime


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _NAME_MAX:
        raise MessageError(400, f"name must be a non-empty string of at most {_NAME_MAX} characters")
    return value.strip()


def _flag(request: AdminRequest, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", ""):
        raise MessageError(400, f"{name} must be true or false")
    return raw in ("true", "1")


def _cursor(raw: str | None) -> tuple[datetime, str] | None:
    if not raw:
        return None
    stamp, _, ref = raw.partition("~")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not lifecycle.REF.match(ref):
        raise MessageError(400, "cursor must be the next_cursor of a previous page")
    return when, ref


def _fail(exc: lifecycle.LifecycleError) -> MessageError:
    return MessageError(exc.status, exc.message)


async def _row(request: AdminRequest, ref: str) -> Any:
    row = await lifecycle.get_row(control(request), ref)
    if row is None:
        raise MessageError(404, "Project not found")
    return row


def _check(request: AdminRequest, right: str, ref: str) -> None:
    """The right check of the `{project}` routes (see the module docstring)."""
    if not request.admin.allows(right, ref):
        raise forbidden(right, ref)


# -- list, create, test a connection ---------------------------------------------------------------------------
async def list_projects(request: AdminRequest) -> Response:
    refs = request.admin.project_refs("projects.read")
    size = limit(request, 100, lifecycle.MAX_LIST)
    rows = await lifecycle.list_rows(control(request), refs=refs, include_deleted=_flag(request, "include_deleted"),
                                     after=_cursor(request.query.get("cursor")), limit=size)
    runtime = _runtime(request)
    last = rows[-1] if len(rows) == size else None
    return Response.json({"projects": [lifecycle.project_json(runtime, r) for r in rows],
                          "next_cursor": f"{last['created_at'].isoformat()}~{last['ref']}" if last else None})


async def test_connection(request: AdminRequest) -> Response:
    form = await body(request)
    url = form.get("database_url")
    problem = dbprobe.url_problem(url)
    if problem:
        raise MessageError(400, problem)
    assert isinstance(url, str)
    checks = await dbprobe.probe(url)
    await request.audit("project.test_connection", None, {"database": lifecycle.database_facts(url),
                                                          "ok": dbprobe.passed(checks)})
    return Response.json({"ok": dbprobe.passed(checks), "checks": [c.as_json() for c in checks]})


async def create_project(request: AdminRequest) -> Response:
    form = await body(request)
    unknown = sorted(set(form) - {"name", "ref", "database_url"})
    if unknown:
        raise MessageError(400, f"unknown field(s): {', '.join(unknown)} (expected name, ref, database_url)")
    name = _name(form.get("name"))
    ref = form.get("ref")
    if ref is not None and (not isinstance(ref, str) or not lifecycle.REF.match(ref)):
        raise MessageError(400, "ref must be 3-40 lower-case letters, digits or '-' (not first or last)")
    url = form.get("database_url")
    checks: list[dbprobe.Check] = []
    if url is not None:
        problem = dbprobe.url_problem(url)
        if problem:
            raise MessageError(400, problem)
        assert isinstance(url, str)
        checks = await dbprobe.probe(url)
        if not dbprobe.passed(checks):
            return Response.json({"message": dbprobe.failure_message(checks),
                                  "checks": [c.as_json() for c in checks]}, 400)
    runtime = _runtime(request)
    try:
        record = await lifecycle.create(runtime, name=name, ref=ref, db_url=url)
    except lifecycle.LifecycleError as exc:
        raise _fail(exc) from None
    row = await _row(request, record.ref)
    project = lifecycle.project_json(runtime, row)
    await request.audit("project.create", f"projects/{record.ref}",
                        {"name": name, "database": project["database"]}, project_ref=record.ref)
    # The project's API keys, shown here once for scripts (`madbase projects create`); later through the keys
    # routes (GET /projects/{ref}/api-keys).
    extra = {"api_keys": {"anon": record.anon_key, "service_role": record.service_role_key},
             "checks": [c.as_json() for c in checks]}
    return Response.json({**project, **extra}, 201, headers={"cache-control": "no-store"})


# -- one project -------------------------------------------------------------------------------------------
async def get_project(request: AdminRequest) -> Response:
    return Response.json(lifecycle.project_json(_runtime(request), await _row(request, request.project.ref)))


async def update_project(request: AdminRequest) -> Response:
    form = await body(request)
    unknown = sorted(set(form) - {"name"})
    if unknown:
        raise MessageError(400, f"unknown field(s): {', '.join(unknown)} (only name can be changed here; "
                                "settings are under /projects/{ref}/config/{section})")
    ref = request.project.ref
    if "name" in form:
        name = _name(form["name"])
        if not await lifecycle.rename(_runtime(request), ref, name):
            raise MessageError(404, "Project not found")
        await request.audit("project.update", f"projects/{ref}", {"name": name})
    return Response.json(lifecycle.project_json(_runtime(request), await _row(request, ref)))


async def pause_project(request: AdminRequest) -> Response:
    ref = request.project.ref
    changed = await lifecycle.set_status(_runtime(request), ref, "disabled", from_statuses=("active",))
    await request.audit("project.pause", f"projects/{ref}", {"changed": changed})
    return Response.json(lifecycle.project_json(_runtime(request), await _row(request, ref)))


async def restore_project(request: AdminRequest) -> Response:
    ref = request.params[0]
    _check(request, "projects.write", ref)
    before = await _row(request, ref)
    changed = await lifecycle.set_status(_runtime(request), ref, "active", from_statuses=("disabled", "deleted"))
    await request.audit("project.restore", f"projects/{ref}",
                        {"from": lifecycle.STATUS_NAMES.get(before["status"]), "changed": changed}, project_ref=ref)
    return Response.json(lifecycle.project_json(_runtime(request), await _row(request, ref)))


async def delete_project(request: AdminRequest) -> Response:
    ref = request.params[0]
    _check(request, "projects.delete", ref)
    hard = _flag(request, "hard")
    drop = _flag(request, "drop_database")
    if drop and not hard:
        raise MessageError(400, "drop_database=true needs hard=true")
    before = await _row(request, ref)
    runtime = _runtime(request)
    if not hard:
        if before["status"] == "deleted":
            raise MessageError(404, "Project not found")
        await lifecycle.set_status(runtime, ref, "deleted", from_statuses=("active", "disabled"))
        await request.audit("project.delete", f"projects/{ref}", {"hard": False}, project_ref=ref)
        return Response.json(lifecycle.project_json(runtime, await _row(request, ref)))
    try:
        result = await lifecycle.hard_delete(runtime, ref, drop_database=drop)
    except lifecycle.LifecycleError as exc:
        raise _fail(exc) from None
    await request.audit("project.delete", f"projects/{ref}", {"hard": True, **result}, project_ref=ref)
    return Response.json({"ref": ref, "status": "removed", **result})


_B = MAX_BODY
ROUTES: tuple[Route[Any], ...] = (
    route("GET", "/projects", list_projects, name="admin.projects.list", right=SELF),
    route("POST", "/projects", create_project, name="admin.projects.create", right="projects.write", body_limit=_B),
    route("POST", "/projects/test-connection", test_connection, name="admin.projects.test_connection",
          right="projects.write", body_limit=_B),
    route("GET", "/projects/{ref}", get_project, name="admin.projects.get", right="projects.read"),
    route("PATCH", "/projects/{ref}", update_project, name="admin.projects.update", right="projects.write",
          body_limit=_B),
    route("DELETE", "/projects/{project}", delete_project, name="admin.projects.delete", right=SELF),
    route("POST", "/projects/{ref}/pause", pause_project, name="admin.projects.pause", right="projects.write"),
    route("POST", "/projects/{project}/restore", restore_project, name="admin.projects.restore", right=SELF),
    route("GET", "/projects/{ref}/health", usage.health, name="admin.projects.health", right="projects.read"),
    route("GET", "/projects/{ref}/usage", usage.usage, name="admin.projects.usage", right="projects.read"),
)
