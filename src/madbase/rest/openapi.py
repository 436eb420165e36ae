"""`GET /rest/v1/`: an OpenAPI 2.0 (Swagger) description of the exposed schema, built from the schema cache.

The shape follows PostgREST's document: one definition per table/view (column types and formats, `required`
for NOT NULL columns, defaults, descriptions from comments with primary-key / foreign-key notes), shared
`parameters` (select, order, Range, offset, limit, Prefer variants, a body and a row filter per column of every
relation), and paths for every relation (GET, plus POST/PATCH/DELETE when it can be written) and every
function (`/rpc/fn`: POST, and GET when it is not VOLATILE, since MadBase refuses a volatile call by GET).

Like PostgREST's default `openapi-mode = follow-privileges`, the document lists only what the request's role
may use: `VISIBILITY_SQL` runs in the request's transaction (its role) and says which relations (any table or
column privilege, or ownership) and functions (EXECUTE) that is, which relations take inserts, updates and
deletes (views by `pg_relation_is_updatable`), and the labels of enum types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from madbase import __version__
from madbase.core import jsonutil
from madbase.rest.schema import Column, Function, Param, Relationship, SchemaCache, Table

_TYPES = {"character varying": "string", "character": "string", "text": "string", "boolean": "boolean",
          "smallint": "integer", "integer": "integer", "bigint": "integer", "numeric": "number", "real": "number",
          "double precision": "number"}
_SIZED = re.compile(r"^(character varying|character|bit varying|bit)\((\d+)\)$")
_MEDIA = ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
          "application/vnd.pgrst.object+json", "text/csv"]
_RPC_MEDIA = _MEDIA[:3]
# PostgREST's Prefer parameters, with the values MadBase accepts
_RETURN = ["return=representation", "return=minimal", "return=headers-only"]
_PREFER = {"preferParams": ["params=single-object", "params=multiple-objects"],
           "preferReturn": _RETURN,
           "preferCount": ["count=exact", "count=planned", "count=estimated"],
           "preferPost": [*_RETURN, "resolution=ignore-duplicates", "resolution=merge-duplicates"]}


# $1: the schema. Runs under the request's role, so the privilege functions answer for that role.
VISIBILITY_SQL = """
select
  coalesce((select json_agg(json_build_array(c.relname::text,
                      c.relkind in ('r', 'p') or (c.relkind in ('v', 'f')
                        and (pg_relation_is_updatable(c.oid::regclass, true) & 8) = 8),
                      c.relkind in ('r', 'p') or (c.relkind in ('v', 'f')
                        and (pg_relation_is_updatable(c.oid::regclass, true) & 4) = 4),
                      c.relkind in ('r', 'p') or (c.relkind in ('v', 'f')
                        and (pg_relation_is_updatable(c.oid::regclass, true) & 16) = 16)))
            from pg_class c
            where c.relnamespace = to_regnamespace($1) and c.relkind in ('r', 'p', 'v', 'm', 'f')
              and (pg_has_role(c.relowner, 'USAGE')
                   or has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                   or has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))), '[]')::text,
  coalesce((select json_agg(distinct p.proname::text)
            from pg_proc p
            where p.pronamespace = to_regnamespace($1) and has_function_privilege(p.oid, 'EXECUTE')), '[]')::text,
  coalesce((select json_object_agg(format_type(t.oid, null), (select json_agg(e.enumlabel order by e.enumsortorder)
                                                              from pg_enum e where e.enumtypid = t.oid))
            from pg_type t where t.typtype = 'e'), '{}')::text
"""


@dataclass(frozen=True, slots=True)
class Visibility:
    """What the request's role may see: relation name -> (insertable, updatable, deletable), functions, and
    the labels of enum types by type name."""

    relations: dict[str, tuple[bool, bool, bool]] = field(default_factory=dict)
    functions: frozenset[str] = frozenset()
    enums: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_row(cls, relations: str, functions: str, enums: str) -> Visibility:
        rels = {str(r[0]): (bool(r[1]), bool(r[2]), bool(r[3])) for r in jsonutil.loads(relations)}
        return cls(rels, frozenset(map(str, jsonutil.loads(functions))), dict(jsonutil.loads(enums)))

    def key(self) -> str:
        """A memo key: two requests with the same visibility get the same document."""
        return jsonutil.dumps_str([sorted(self.relations.items()), sorted(self.functions), sorted(self.enums.items())])


def _swagger_type(typ: str) -> str | None:
    """PostgREST's mapping: json/jsonb have no type, arrays are arrays, unknown types are strings."""
    if typ in ("json", "jsonb"):
        return None
    if typ.endswith("[]"):
        return "array"
    return _TYPES.get(typ, "string")


def _format(typ: str) -> tuple[str, int | None]:
    """(format, maxLength): `character(5)` is format `character` with maxLength 5."""
    m = _SIZED.match(typ)
    return (m.group(1), int(m.group(2))) if m else (typ, None)


def _default(typ: str, default: str) -> Any:
    """The column DEFAULT as a JSON value where it is a literal: strings lose their `'…'::type` wrapping,
    other types keep only defaults that parse as JSON (so `nextval(…)` has none), as PostgREST does."""
    if _swagger_type(typ) == "string":
        m = re.match(r"^'(.*)'::[\w\s\".\[\]()]+$", default, re.S)
        return m.group(1).replace("''", "'") if m else default
    try:
        return jsonutil.loads(default)
    except ValueError:
        return None


def _fk_note(rels: list[Relationship], col: str, cache: SchemaCache) -> str | None:
    # the single-column foreign key this column holds; relationships to tables before those to views
    found = [r for r in rels if r.kind in ("m2o", "o2o") and not r.reverse and r.function is None
             and [a for a, _ in r.pairs] == [col]]
    found.sort(key=lambda r: cache.tables[r.target].is_view if r.target in cache.tables else True)
    if not found:
        return None
    table, fcol = found[0].target[1], found[0].pairs[0][1]
    return f"This is a Foreign Key to `{table}.{fcol}`.<fk table='{table}' column='{fcol}'/>"


def _property(col: Column, table: Table, rels: list[Relationship], cache: SchemaCache,
              enums: dict[str, list[str]]) -> dict[str, Any]:
    fmt, max_len = _format(col.type)
    prop: dict[str, Any] = {}
    if col.default is not None:
        value = _default(col.type, col.default)
        if value is not None:
            prop["default"] = value
    notes = ["This is a Primary Key.<pk/>"] if col.name in table.pk else []
    fk = _fk_note(rels, col.name, cache)
    if fk:
        notes.append(fk)
    if notes:
        prop["description"] = (col.description + "\n\n" if col.description else "") + "Note:\n" + "\n".join(notes)
    elif col.description:
        prop["description"] = col.description
    labels = enums.get(col.type)
    if labels is not None:
        prop["enum"] = labels
    prop["format"] = fmt
    if max_len is not None:
        prop["maxLength"] = max_len
    return _typed(prop, col.type)


def _typed(prop: dict[str, Any], typ_name: str) -> dict[str, Any]:
    """Add the Swagger `type` of a PostgreSQL type (and `items` for an array) to a property."""
    typ = _swagger_type(typ_name)
    if typ is not None:
        prop["type"] = typ
    if typ == "array":
        item_type = _swagger_type(typ_name[:-2])
        prop["items"] = {"type": item_type} if item_type is not None else {}
    return prop


def _definition(table: Table, cache: SchemaCache, enums: dict[str, list[str]]) -> dict[str, Any]:
    rels = cache.relationships.get(table.qname, [])
    out: dict[str, Any] = {}
    if table.description:
        out["description"] = table.description
    out["type"] = "object"
    out["properties"] = {c.name: _property(c, table, rels, cache, enums) for c in table.columns.values()}
    required = [c.name for c in table.columns.values() if not c.nullable]
    if required:
        out["required"] = required
    return out


def _summary(op: dict[str, Any], description: str | None) -> None:
    """First line of a comment as the summary, the rest (leading newlines dropped) as the description."""
    if not description:
        return
    first, _, rest = description.partition("\n")
    op["summary"] = first
    rest = rest.lstrip("\n")
    if rest:
        op["description"] = rest


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/parameters/{name}"}


def _table_path(table: Table, writable: tuple[bool, bool, bool]) -> dict[str, Any]:
    name = table.name
    filters = [_ref(f"rowFilter.{name}.{c}") for c in table.columns]
    base: dict[str, Any] = {"tags": [name]}
    _summary(base, table.description)
    ops: dict[str, Any] = {"get": {
        **base,
        "parameters": [*filters, *map(_ref, ("select", "order", "range", "rangeUnit", "offset", "limit",
                                             "preferCount"))],
        "responses": {"200": {"description": "OK",
                              "schema": {"type": "array", "items": {"$ref": f"#/definitions/{name}"}}},
                      "206": {"description": "Partial Content"}}}}
    insertable, updatable, deletable = writable
    if insertable:
        ops["post"] = {**base, "parameters": [_ref(f"body.{name}"), _ref("select"), _ref("preferPost")],
                       "responses": {"201": {"description": "Created"}}}
    if updatable:
        ops["patch"] = {**base, "parameters": [*filters, _ref(f"body.{name}"), _ref("preferReturn")],
                        "responses": {"204": {"description": "No Content"}}}
    if deletable:
        ops["delete"] = {**base, "parameters": [*filters, _ref("preferReturn")],
                         "responses": {"204": {"description": "No Content"}}}
    return ops


def _param_property(p: Param) -> dict[str, Any]:
    return _typed({"format": p.type}, p.type)


def _query_param(p: Param) -> dict[str, Any]:
    param: dict[str, Any] = {"name": p.name, "in": "query", "required": not p.has_default}
    if p.variadic:  # `?xs=1&xs=2`
        param.update(type="array", collectionFormat="multi",
                     items={"type": _swagger_type(p.type[:-2]) or "string", "format": p.type[:-2]})
    else:
        typ = _swagger_type(p.type)
        param.update(format=p.type, type="string" if typ in (None, "array") else typ)
    return param


def _rpc_path(fn: Function) -> dict[str, Any]:
    named = [p for p in fn.params if p.name]
    base: dict[str, Any] = {"tags": [f"(rpc) {fn.name}"], "produces": _RPC_MEDIA,
                            "responses": {"200": {"description": "OK"}}}
    _summary(base, fn.description)
    schema: dict[str, Any] = {"type": "object", "properties": {p.name: _param_property(p) for p in named}}
    if fn.description:
        schema["description"] = fn.description
    required = [p.name for p in named if not p.has_default]
    if required:
        schema["required"] = required
    ops: dict[str, Any] = {"post": {**base, "parameters": [
        {"name": "args", "in": "body", "required": True, "schema": schema}, _ref("preferParams")]}}
    if fn.volatility in ("i", "s"):
        ops["get"] = {**base, "parameters": [_query_param(p) for p in named]}
    return ops


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "description": description, "required": False, "in": "query", "type": "string"}


def _parameters(tables: list[Table]) -> dict[str, Any]:
    params: dict[str, Any] = {
        key: {"name": "Prefer", "description": "Preference", "required": False, "in": "header", "type": "string",
              "enum": values} for key, values in _PREFER.items()}
    params.update({
        "select": _query("select", "Filtering Columns"),
        "on_conflict": _query("on_conflict", "On Conflict"),
        "order": _query("order", "Ordering"),
        "range": {"name": "Range", "description": "Limiting and Pagination", "required": False, "in": "header",
                  "type": "string"},
        "rangeUnit": {"name": "Range-Unit", "description": "Limiting and Pagination", "required": False,
                      "in": "header", "type": "string", "default": "items"},
        "offset": _query("offset", "Limiting and Pagination"),
        "limit": _query("limit", "Limiting and Pagination"),
    })
    for t in tables:
        params[f"body.{t.name}"] = {"name": t.name, "description": t.name, "required": False, "in": "body",
                                    "schema": {"$ref": f"#/definitions/{t.name}"}}
        for c in t.columns.values():
            flt = _query(c.name, c.description or "")
            if not c.description:
                del flt["description"]
            flt["format"] = _format(c.type)[0]
            params[f"rowFilter.{t.name}.{c.name}"] = flt
    return params


def openapi_document(cache: SchemaCache, schema: str, host: str, base_path: str, visible: Visibility) -> bytes:
    tables = [cache.tables[(schema, n)] for n in sorted(cache.table_names(schema)) if n in visible.relations]
    paths: dict[str, Any] = {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                                           "produces": ["application/openapi+json", "application/json"],
                                           "responses": {"200": {"description": "OK"}}}}}
    for t in tables:
        paths[f"/{t.name}"] = _table_path(t, visible.relations[t.name])
    for (s, name), overloads in sorted(cache.functions.items()):
        if s == schema and name in visible.functions:
            paths[f"/rpc/{name}"] = _rpc_path(overloads[0])
    doc = {
        "swagger": "2.0",
        "info": {"title": "MadBase REST API", "description": "A PostgREST-compatible API generated from the schema",
                 "version": __version__},
        "externalDocs": {"description": "PostgREST Documentation",
                         "url": "https://postgrest.org/en/v12/references/api.html"},
        "host": host,
        "basePath": base_path,
        "schemes": ["http", "https"],
        "consumes": _MEDIA,
        "produces": _MEDIA,
        "paths": paths,
        "definitions": {t.name: _definition(t, cache, visible.enums) for t in tables},
        "parameters": _parameters(tables),
    }
    return jsonutil.dumps(doc)
