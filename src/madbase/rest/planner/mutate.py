"""Planning a mutation (POST, PUT, PATCH, DELETE of a table or view): the body read and checked against the
schema cache, the representation's read tree, one statement (pure)."""

from __future__ import annotations

from typing import Any

from madbase.core import jsonutil
from madbase.rest import errors, sql
from madbase.rest.ast import Filter, QueryParams
from madbase.rest.parser import split_query
from madbase.rest.planner.read import preferences
from madbase.rest.planner.types import MutatePlan
from madbase.rest.readtree import TreeBuilder
from madbase.rest.request import ApiRequest
from madbase.rest.response import csv_rows
from madbase.rest.schema import Column, Table


def payload_rows(req: ApiRequest, body: bytes) -> list[dict[str, Any]]:
    """The body as rows: a JSON object or array of objects, CSV, or a form."""
    if req.content_type == "text/csv":
        return csv_rows(body.decode("utf-8", "replace"))
    if req.content_type == "application/x-www-form-urlencoded":
        return [dict(split_query(body.decode("utf-8", "replace")))]
    try:
        data = jsonutil.loads(body) if body.strip() else None
    except jsonutil.JSONDecodeError:
        raise errors.invalid_body() from None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return data
    raise errors.invalid_body()


def _columns(table: Table, q: QueryParams, rows: list[dict[str, Any]]) -> list[Column]:
    """The columns written: `?columns=` or every key of the rows, each one the table has."""
    if q.columns is not None:
        names: list[str] = list(dict.fromkeys(q.columns))
    else:
        names = list(dict.fromkeys(k for r in rows for k in r))
    cols: list[Column] = []
    for n in names:
        col = table.columns.get(n)
        if col is None:
            raise errors.no_column(n, table.name)
        cols.append(col)
    return cols


def _returned(req: ApiRequest, applied: list[str]) -> bool:
    """Whether the representation is wanted (return=representation); records the return= preference."""
    ret = req.prefer.get("return")
    if ret is not None:
        applied.append(f"return={ret}")
    return ret == "representation"


def plan_insert(req: ApiRequest, builder: TreeBuilder, table: Table, q: QueryParams, body: bytes,
                *, put: bool = False) -> MutatePlan:
    """POST, or with `put` the single-row upsert PUT becomes once `plan_put` has checked it."""
    rows = payload_rows(req, body)
    cols = _columns(table, q, rows)
    root = builder.build(table.qname, table.name, table.columns, q)
    prefer = req.prefer
    resolution = prefer.get("resolution")
    on_conflict: tuple[str, ...] | None = None
    if resolution is not None or put:
        on_conflict = q.on_conflict or table.pk
        for c in on_conflict:
            if c not in table.columns:
                raise errors.no_column(c, table.name)
    missing_default = prefer.get("missing") == "default"
    applied: list[str] = []
    body_wanted = _returned(req, applied)
    if resolution is not None:
        applied.append(f"resolution={resolution}")
    if missing_default:
        applied.append("missing=default")
    prefs = preferences(req, applied)
    media = req.media
    single = media.media == "object"
    headers_only = prefer.get("return") == "headers-only"
    location = table.pk if headers_only and table.pk else ()
    merge = put or resolution == "merge-duplicates"
    # the statement returns rows only when something reads them: the body, a count, a check or a Location
    returning = body_wanted or single or prefs.count or headers_only or prefs.max_affected is not None
    stmt = sql.insert_statement(
        root, cols, jsonutil.dumps_str(rows), missing_default=missing_default, on_conflict=on_conflict,
        merge=merge, returning=returning, body=body_wanted, strip_nulls=media.strip_nulls, location=location,
        fmt=media.media)
    status = (200 if body_wanted else 204) if put else 201
    return MutatePlan(stmt, media.media, prefs, "upsert" if put else "insert", status, body_wanted, single,
                      upsert=on_conflict is not None and merge and bool(cols),
                      location_table=table.name if location else "", location_pk=location)


def plan_put(req: ApiRequest, builder: TreeBuilder, table: Table, q: QueryParams, body: bytes) -> MutatePlan:
    """PUT: an upsert of the one row the primary-key filters name, whose body must agree with them."""
    if () in q.limit or () in q.offset:
        raise errors.ApiError(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT")
    conds = q.conditions.get((), [])
    eqs = {c.field.name: str(c.expr.value) for c in conds
           if isinstance(c, Filter) and c.expr.op == "eq" and not c.expr.negated and not c.field.path}
    if not table.pk or len(conds) != len(table.pk) or set(eqs) != set(table.pk):
        raise errors.put_requires_pk()
    rows = payload_rows(req, body)
    if len(rows) != 1:
        raise errors.invalid_body("PUT payload must contain a single row")
    row = rows[0]
    for k, v in eqs.items():
        if k not in row or str(row[k] if not isinstance(row[k], bool) else str(row[k]).lower()) != v:
            raise errors.put_mismatch()
    q.conditions.pop((), None)  # the row is found by the conflict on its key, not by a WHERE
    q.on_conflict = table.pk
    return plan_insert(req, builder, table, q, body, put=True)


def plan_update(req: ApiRequest, builder: TreeBuilder, table: Table, q: QueryParams, body: bytes) -> MutatePlan:
    rows = payload_rows(req, body)
    if len(rows) != 1:
        raise errors.invalid_body()
    cols = _columns(table, q, rows)
    root = builder.build(table.qname, table.name, table.columns, q)
    applied: list[str] = []
    body_wanted = _returned(req, applied)
    media = req.media
    stmt = sql.update_statement(root, cols, jsonutil.dumps_str(rows[0]), body=body_wanted,
                                strip_nulls=media.strip_nulls, fmt=media.media)
    return MutatePlan(stmt, media.media, preferences(req, applied), "update", 204, body_wanted,
                      single=media.media == "object")


def plan_delete(req: ApiRequest, builder: TreeBuilder, table: Table, q: QueryParams) -> MutatePlan:
    root = builder.build(table.qname, table.name, table.columns, q)
    applied: list[str] = []
    body_wanted = _returned(req, applied)
    media = req.media
    stmt = sql.delete_statement(root, body=body_wanted, strip_nulls=media.strip_nulls, fmt=media.media)
    return MutatePlan(stmt, media.media, preferences(req, applied), "delete", 204, body_wanted,
                      single=media.media == "object")
