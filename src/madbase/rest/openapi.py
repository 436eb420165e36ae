"""`GET /rest/v1/`: an OpenAPI 2.0 (Swagger) description of the exposed schema, built from the schema cache."""

from __future__ import annotations

from typing import Any

from madbase.core import jsonutil
from madbase.rest.schema import Column, SchemaCache

_TYPES = {"integer": "integer", "smallint": "integer", "bigint": "integer", "numeric": "number",
          "real": "number", "double precision": "number", "boolean": "boolean"}


def _property(col: Column, pk: bool) -> dict[str, Any]:
    typ = "array" if col.type.endswith("[]") else _TYPES.get(col.type, "string")
    prop: dict[str, Any] = {"format": col.type} if col.type in ("json", "jsonb") else {"type": typ, "format": col.type}
    if typ == "array":
        prop["items"] = {"type": "string"}
    if col.default is not None:
        prop["default"] = col.default
    desc = col.description or ""
    if pk:
        desc = (desc + "\n\nNote:\nThis is a Primary Key.<pk/>").strip()
    if desc:
        prop["description"] = desc
    return prop


def openapi_document(cache: SchemaCache, schema: str, host: str, base_path: str) -> bytes:
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                                           "produces": ["application/openapi+json", "application/json"],
                                           "responses": {"200": {"description": "OK"}}}}}
    for name in sorted(cache.table_names(schema)):
        table = cache.tables[(schema, name)]
        definitions[name] = {
            "type": "object",
            "required": [c.name for c in table.columns.values() if not c.nullable and c.default is None],
            "properties": {c.name: _property(c, c.name in table.pk) for c in table.columns.values()},
        }
        if table.description:
            definitions[name]["description"] = table.description
        ref = {"$ref": f"#/definitions/{name}"}
        ok = {"200": {"description": "OK", "schema": {"type": "array", "items": ref}},
              "206": {"description": "Partial Content"}}
        ops: dict[str, Any] = {"get": {"tags": [name], "responses": ok}}
        if not table.is_view or table.kind == "v":
            ops["post"] = {"tags": [name], "responses": {"201": {"description": "Created"}}}
            ops["patch"] = {"tags": [name], "responses": {"204": {"description": "No Content"}}}
            ops["delete"] = {"tags": [name], "responses": {"204": {"description": "No Content"}}}
        paths[f"/{name}"] = ops
    for (s, name), overloads in sorted(cache.functions.items()):
        if s != schema:
            continue
        fn = overloads[0]
        props = {p.name: {"type": "string", "format": p.type} for p in fn.params if p.name}
        body = {"name": "args", "in": "body", "required": True,
                "schema": {"type": "object", "properties": props,
                           "required": [p.name for p in fn.params if p.name and not p.has_default]}}
        op = {"tags": ["(rpc) " + name], "parameters": [body], "responses": {"200": {"description": "OK"}}}
        if fn.description:
            op["summary"] = fn.description
        paths[f"/rpc/{name}"] = {"post": op}
        if fn.volatility in ("i", "s"):
            paths[f"/rpc/{name}"]["get"] = {"tags": ["(rpc) " + name], "responses": {"200": {"description": "OK"}}}
    doc = {
        "swagger": "2.0",
        "info": {"title": "MadBase REST API", "description": "PostgREST-compatible data API", "version": "1"},
        "host": host,
        "basePath": base_path,
        "schemes": ["http", "https"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": definitions,
    }
    return jsonutil.dumps(doc)
