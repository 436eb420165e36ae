"""The OpenAPI 3.1 document of /admin/v1, built from the route table itself (`GET /admin/v1/openapi.json`), so
it cannot drift from what the server serves: every route of every service's `admin_routes`, its operation
name (`operationId`), the right it requires (`x-madbase-right`), its path parameters and the one error shape.
Pure: routes in, a JSON-able dict out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from madbase.core.kit.routing import Route, param_names
from madbase.core.platform import OPEN, SELF

_REST = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\*{1,2}\}")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

ERROR = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}


def openapi_path(pattern: str) -> str:
    """`/buckets/{id}/objects/{path*}` → `/buckets/{id}/objects/{path}` (OpenAPI has no rest parameter; the
    parameter's description says it may hold slashes)."""
    return _REST.sub(r"{\1}", pattern)


def _parameters(pattern: str) -> list[dict[str, Any]]:
    out = []
    for name in param_names(pattern):
        rest = f"{{{name}*}}" in pattern or f"{{{name}**}}" in pattern
        out.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"},
                    "description": "project ref" if name == "ref" else
                    ("the rest of the path (may contain '/')" if rest else name)})
    return out


def _operation(route: Route[Any], method: str, operation_id: str) -> dict[str, Any]:
    right = route.right or ""
    area = route.name.split(".")[1] if route.name.count(".") >= 1 else "admin"
    doc = (route.handler.__doc__ or "").strip().split("\n\n")[0] if callable(route.handler) else ""
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": route.name,
        "tags": [area],
        "x-madbase-right": right,
        "parameters": _parameters(route.pattern),
        "responses": {
            "200": {"description": "success", "content": {"application/json": {"schema": {}}}},
            "default": {"description": "error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if doc:
        op["description"] = " ".join(doc.split())
    if right == OPEN:
        op["security"] = []
    elif right != SELF:
        op["description"] = (op.get("description", "") + f" Requires the right {right}"
                             + (" on the project." if "{ref}" in route.pattern else " platform-wide.")).strip()
    if method in ("post", "put", "patch") and route.body_limit:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": {}}},
                             "description": f"at most {route.body_limit} bytes"}
    return op


def document(routes: Iterable[Route[Any]], *, version: str = "v1") -> dict[str, Any]:
    """The document for `routes` (patterns relative to /admin/v1)."""
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for r in routes:
        for method in sorted(m.lower() for m in r.methods):
            if method not in _METHODS:
                continue
            # operationIds must be unique: a name shared by several methods or paths gets a suffix
            operation_id = r.name if r.name not in used else f"{r.name}_{method}"
            number = 2
            while operation_id in used:
                operation_id = f"{r.name}_{method}_{number}"
                number += 1
            used.add(operation_id)
            paths.setdefault(openapi_path(r.pattern), {})[method] = _operation(r, method, operation_id)
    return {
        "openapi": "3.1.0",
        "info": {"title": "MadBase control plane", "version": version,
                 "description": "Projects, keys, settings and per-project operations of a MadBase server "
                                "(docs/admin.md, docs/admin-operations.md). Errors are {\"message\"}; lists "
                                "are {\"<plural>\": [...], \"next_cursor\"}."},
        "servers": [{"url": "/admin/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a personal access token (mbp_…) or the local token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "mb_admin_session",
                            "description": "browser session; mutations also send x-csrf-token"},
            },
            "schemas": {"Error": ERROR},
        },
        "paths": paths,
    }
