"""The control plane's routes for per-project settings: validated, sealed secrets, applied live on every process;
send test mail (docs/projects.md).

A change is written to the project's row in the control plane (secrets sealed by the store), which notifies
every server process; each re-reads the project at once and the services pick the new config up on their next
request (they read `project.config`, replaced, never mutated). This process re-reads before answering, so the
answer and the next request agree.
"""

from __future__ import annotations

from typing import Any

from madbase.admin import configschema, dbprobe, lifecycle, settings, smtptest, storagecheck
from madbase.admin.http import MAX_BODY, body, control
from madbase.core import tenants
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.migrations import MigrationError
from madbase.core.platform import AdminRequest

_BODY = 256 * 1024  # auth templates can be long


def _section(request: AdminRequest) -> str:
    section = request.params[1]
    if section not in settings.SECTIONS:
        raise MessageError(404, f"Unknown settings section {section!r} (one of {', '.join(settings.SECTIONS)})")
    return section


async def _database_view(request: AdminRequest) -> dict[str, Any]:
    record = request.project.record
    row = await lifecycle.get_row(control(request), record.ref)
    kind = row["database_kind"] if row is not None else "byo"
    return {"url": dbprobe.masked(record.db_url), "kind": kind, **lifecycle.database_facts(record.db_url)}


async def get_config(request: AdminRequest) -> Response:
    section = _section(request)
    if section == "database":
        return Response.json(await _database_view(request))
    return Response.json(settings.view(section, request.project.config))


async def _patch_database(request: AdminRequest, form: dict[str, Any]) -> Response:
    try:
        checked = configschema.check(configschema.DATABASE, form)
    except configschema.SchemaError as exc:
        raise MessageError(400, str(exc)) from None
    url = checked.get("url")
    problem = dbprobe.url_problem(url)
    if problem:
        raise MessageError(400, problem.replace("database_url", "url"))
    assert isinstance(url, str)
    checks = await dbprobe.probe(url)
    if not dbprobe.passed(checks):
        return Response.json({"message": dbprobe.failure_message(checks), "checks": [c.as_json() for c in checks]},
                             400)
    record = request.project.record
    try:
        await tenants.bootstrap(url, record.login_role, record.login_password)
    except (tenants.BootstrapError, MigrationError) as exc:
        raise MessageError(400, f"The new database could not be prepared: {exc}") from None
    runtime = request.ctx.runtime
    await runtime.store.set_db_url(record.ref, url)
    await runtime.projects.refresh()
    await request.audit("config.update", f"projects/{record.ref}/config/database",
                        {"section": "database", "database": lifecycle.database_facts(url)})
    request.resolved = runtime.projects.lookup(record.ref)[0]  # type: ignore[index]
    return Response.json({**await _database_view(request), "checks": [c.as_json() for c in checks]})


async def patch_config(request: AdminRequest) -> Response:
    section = _section(request)
    form = await request.json(_BODY, empty={})
    if not isinstance(form, dict):
        raise MessageError(400, "The body must be a JSON object")
    if section == "database":
        return await _patch_database(request, form)
    project = request.project
    runtime = request.ctx.runtime
    try:
        wanted = settings.patched(section, project.config, form)
    except configschema.SchemaError as exc:
        raise MessageError(400, str(exc)) from None
    extra: dict[str, Any] = {}
    if section == "storage":
        conf = wanted.get("storage") if isinstance(wanted.get("storage"), dict) else {}
        result = await storagecheck.check(dict(conf or {}), runtime.settings.data_dir, project.ref)
        if not result["ok"]:
            return Response.json({"message": f"The storage backend failed its test: {result['detail']}",
                                  "check": result}, 400)
        extra["check"] = result
    # Applied again under the row's lock, over the stored config (another change may have landed meanwhile).
    await runtime.store.edit_config(project.ref, lambda current: settings.patched(section, current, form))
    await runtime.projects.refresh()
    found = runtime.projects.lookup(project.ref)
    config = found[0].config if found else wanted
    await request.audit("config.update", f"projects/{project.ref}/config/{section}",
                        {"section": section, "keys": sorted(_leaves(form))})
    return Response.json({**settings.view(section, config), **extra})


def _leaves(patch: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of what a patch sets (for the audit record: names only, never values)."""
    out: list[str] = []
    for key, value in patch.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append(prefix + str(key))
    return out[:100]


async def smtp_test(request: AdminRequest) -> Response:
    form = await body(request)
    to = form.get("to")
    if not isinstance(to, str) or not smtptest.EMAIL.match(to):
        raise MessageError(400, "to must be an e-mail address")
    project = request.project
    auth = project.config.get("auth") if isinstance(project.config.get("auth"), dict) else {}
    smtp = auth.get("smtp") if isinstance(auth, dict) else None
    if not isinstance(smtp, dict) or not smtp.get("host"):
        raise MessageError(400, "SMTP is not configured for this project (set auth.smtp.host with PATCH "
                                f"/projects/{project.ref}/config/auth)")
    result = await smtptest.send_test(smtp, to, project.ref)
    await request.audit("config.auth.smtp_test", f"projects/{project.ref}/config/auth",
                        {"to": to, "ok": result["ok"], "step": result["step"]})
    return Response.json(result)


ROUTES: tuple[Route[Any], ...] = (
    route("POST", "/projects/{ref}/config/auth/smtp/test", smtp_test, name="admin.config.smtp_test",
          right="config.write", body_limit=MAX_BODY),
    route("GET", "/projects/{ref}/config/{section}", get_config, name="admin.config.get", right="config.read"),
    route("PATCH", "/projects/{ref}/config/{section}", patch_config, name="admin.config.update",
          right="config.write", body_limit=_BODY),
)
