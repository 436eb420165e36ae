"""From an `ApiRequest` and a schema-cache snapshot to a planned `Action` (statement + how to answer).

Pure: no I/O. `plan_action` refuses unknown relations/columns/functions from the cache, reads and checks
the body for writes, and returns the SQL statement together with what the response stage needs
(media, counts, offsets, single-object checks, Location columns, Preference-Applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from madbase.core import jsonutil
from madbase.rest import errors, sql
from madbase.rest.ast import Field as AstField
from madbase.rest.ast import Filter, QueryParams
from madbase.rest.parser import parse_query, split_query
from madbase.rest.plan import Output, Planner, PlanOptions, ReadNode
from madbase.rest.request import ApiRequest
from madbase.rest.response import csv_rows
from madbase.rest.schema import Column, Function, SchemaCache, Table


@dataclass(slots=True)
class Action:
    statement: sql.Statement
    readonly: bool
    kind: str  # read, insert, update, delete, upsert, call
    offset: int = 0
    single: bool = False  # vnd.pgrst.object (or a non-set composite function)
    object_result: bool = False  # answer `null` rather than 406 on zero rows (composite functions)
    body_wanted: bool = True
    scalar: bool = False
    void: bool = False
    location_table: str = ""
    location_pk: tuple[str, ...] = ()
    applied: list[str] = field(default_factory=list)
    status: int = 200
    max_affected: int | None = None
    rollback: bool = False
    count: bool = False
    planned: sql.Statement | None = None  # EXPLAIN giving the total for count=planned
    estimate_above: int | None = None  # count=estimated: use the plan's estimate when exact > this
    upsert: bool = False  # merge-duplicates / PUT: 201 only when a row was inserted, else 200 (PostgREST)

    def with_statement(self, statement: sql.Statement) -> Action:
        """This action for another statement, with its own `applied` list (callers extend it). Spelled out
        because `dataclasses.replace` costs as much as a tenth of planning a simple read."""
        return Action(statement, self.readonly, self.kind, self.offset, self.single, self.object_result,
                      self.body_wanted, self.scalar, self.void, self.location_table, self.location_pk,
                      list(self.applied), self.status, self.max_affected, self.rollback, self.count, self.planned,
                      self.estimate_above, self.upsert)


def plan_action(req: ApiRequest, cache: SchemaCache, body: bytes, options: PlanOptions) -> Action:
    if req.is_rpc:
        return _plan_call(req, cache, body, options)
    table = cache.table(req.schema, req.target)
    if table is None:
        raise errors.no_table(req.schema, req.target, cache.table_names(req.schema))
    q = parse_query(split_query(req.query))
    planner = Planner(cache, req.schema, options)
    if req.method in ("GET", "HEAD"):
        return _plan_read(req, planner, table, q)
    if req.method == "POST":
        return _plan_insert(req, planner, table, q, body)
    if req.method == "PUT":
        return _plan_put(req, planner, table, q, body)
    if req.method == "PATCH":
        return _plan_update(req, planner, table, q, body)
    if req.method == "DELETE":
        return _plan_delete(req, planner, table, q)
    raise errors.bad_method(req.method)


def _common(req: ApiRequest, action: Action) -> Action:
    p = req.prefer
    count = p.get("count")
    if count is not None:
        action.count = True
        action.applied.append(f"count={count}")
    if p.get("tx") is not None:
        action.rollback = p.get("tx") == "rollback"
        action.applied.append(f"tx={p.get('tx')}")
    if p.get("handling") is not None:
        action.applied.append(f"handling={p.get('handling')}")
    if p.get("handling") == "strict":
        if p.get("max-affected") is not None:
            action.max_affected = int(p.values["max-affected"])
            action.applied.append(f"max-affected={action.max_affected}")
    if req.media.media == "object":
        action.single = True
    return action


def _apply_range(req: ApiRequest, q: QueryParams, max_rows: int | None = None) -> int:
    if req.range is not None:
        lower, limit = req.range
        if () not in q.offset:
            q.offset[()] = lower
        if limit is not None and () not in q.limit:
            q.limit[()] = limit
    if max_rows is not None:
        q.limit[()] = min(q.limit.get((), max_rows), max_rows)
    return q.offset.get((), 0)


def _cap_embeds(node: ReadNode, max_rows: int | None) -> None:
    """db-max-rows also caps every to-many embedding of a read or a call (PostgREST restricts the range of
    every node of the read tree; mutations' representations are not capped at all)."""
    if max_rows is None:
        return
    for child in node.embeds():
        if child.rel is not None and not child.rel.to_one:
            child.limit = max_rows if child.limit is None else min(child.limit, max_rows)
        _cap_embeds(child, max_rows)


def _plan_read(req: ApiRequest, planner: Planner, table: Table, q: QueryParams) -> Action:
    offset = _apply_range(req, q, planner.options.max_rows)
    root = planner.read(table.qname, table.name, table.columns, q)
    _cap_embeds(root, planner.options.max_rows)
    count = req.prefer.get("count")
    # estimated: the exact count up to db-max-rows, the planner's estimate beyond it (PostgREST's rule)
    planned = count == "planned" or (count == "estimated" and planner.options.max_rows is not None)
    stmt = sql.read_statement(root, count=count is not None and not planned, strip_nulls=req.media.strip_nulls,
                              head=req.method == "HEAD", fmt=req.media.media)
    action = _common(req, Action(stmt, True, "read", offset=offset))
    if planned:
        action.planned = sql.planned_count_statement(root)
        if count == "estimated":  # keep the exact count too; the response picks
            action.statement = sql.read_statement(root, count=True, strip_nulls=req.media.strip_nulls,
                                                  head=req.method == "HEAD", fmt=req.media.media)
            action.estimate_above = planner.options.max_rows
    return action


# -- writes ----------------------------------------------------------------------------------------------------

def _payload(req: ApiRequest, body: bytes) -> list[dict[str, Any]]:
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


def _return(req: ApiRequest, action: Action) -> None:
    ret = req.prefer.get("return")
    action.body_wanted = ret == "representation"
    if ret is not None:
        action.applied.insert(0, f"return={ret}")


def _plan_insert(req: ApiRequest, planner: Planner, table: Table, q: QueryParams, body: bytes,
                 *, force_upsert: bool = False) -> Action:
    rows = _payload(req, body)
    cols = _columns(table, q, rows)
    root = planner.read(table.qname, table.name, table.columns, q)
    prefer = req.prefer
    resolution = prefer.get("resolution")
    on_conflict: tuple[str, ...] | None = None
    if resolution is not None or force_upsert:
        on_conflict = q.on_conflict or table.pk
        for c in on_conflict:
            if c not in table.columns:
                raise errors.no_column(c, table.name)
    missing_default = prefer.get("missing") == "default"
    action = Action(sql.Statement("", []), False, "insert", status=201)
    _return(req, action)
    if resolution is not None:
        action.applied.append(f"resolution={resolution}")
    if missing_default:
        action.applied.append("missing=default")
    _common(req, action)
    headers_only = prefer.get("return") == "headers-only"
    location = table.pk if headers_only and table.pk else ()
    returning = (action.body_wanted or action.single or action.count or headers_only
                 or action.max_affected is not None)
    payload = jsonutil.dumps_str(rows)
    action.statement = sql.insert_statement(
        root, cols, payload, missing_default=missing_default, on_conflict=on_conflict,
        merge=force_upsert or resolution == "merge-duplicates", returning=returning, body=action.body_wanted,
        strip_nulls=req.media.strip_nulls, location=location, fmt=req.media.media)
    action.upsert = on_conflict is not None and (force_upsert or resolution == "merge-duplicates") and bool(cols)
    if location:
        action.location_table = table.name
        action.location_pk = table.pk
    return action


def _plan_put(req: ApiRequest, planner: Planner, table: Table, q: QueryParams, body: bytes) -> Action:
    if () in q.limit or () in q.offset:
        raise errors.ApiError(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT")
    conds = q.conditions.get((), [])
    eqs = {c.field.name: str(c.expr.value) for c in conds
           if isinstance(c, Filter) and c.expr.op == "eq" and not c.expr.negated and not c.field.path}
    if not table.pk or len(conds) != len(table.pk) or set(eqs) != set(table.pk):
        raise errors.put_requires_pk()
    rows = _payload(req, body)
    if len(rows) != 1:
        raise errors.invalid_body("PUT payload must contain a single row")
    row = rows[0]
    for k, v in eqs.items():
        if k not in row or str(row[k] if not isinstance(row[k], bool) else str(row[k]).lower()) != v:
            raise errors.put_mismatch()
    q.conditions.pop((), None)
    q.on_conflict = table.pk
    action = _plan_insert(req, planner, table, q, body, force_upsert=True)
    action.kind = "upsert"
    action.status = 200 if action.body_wanted else 204
    return action


def _plan_update(req: ApiRequest, planner: Planner, table: Table, q: QueryParams, body: bytes) -> Action:
    rows = _payload(req, body)
    if len(rows) != 1:
        raise errors.invalid_body()
    cols = _columns(table, q, rows)
    root = planner.read(table.qname, table.name, table.columns, q)
    action = Action(sql.Statement("", []), False, "update", status=204)
    _return(req, action)
    _common(req, action)
    action.statement = sql.update_statement(root, cols, jsonutil.dumps_str(rows[0]), body=action.body_wanted,
                                            strip_nulls=req.media.strip_nulls, fmt=req.media.media)
    return action


def _plan_delete(req: ApiRequest, planner: Planner, table: Table, q: QueryParams) -> Action:
    root = planner.read(table.qname, table.name, table.columns, q)
    action = Action(sql.Statement("", []), False, "delete", status=204)
    _return(req, action)
    _common(req, action)
    action.statement = sql.delete_statement(root, body=action.body_wanted, strip_nulls=req.media.strip_nulls,
                                            fmt=req.media.media)
    return action


# -- functions -------------------------------------------------------------------------------------------------

# The content type whose body a single unnamed parameter of that type takes whole (PostgREST's OnePosParam)
_RAW_BODY = {"application/json": ("json", "jsonb"), "text/plain": ("text",), "text/xml": ("xml",),
             "application/octet-stream": ("bytea",)}


def _matches_params(f: Function, keys: set[str], post: bool, content_type: str) -> bool:
    """PostgREST's `matchesParams`: the keys name every required parameter and nothing but parameters."""
    if not f.params:
        return not keys and not (post and content_type in ("application/octet-stream", "text/plain", "text/xml"))
    if "" in keys and len(f.params) > 1:
        return False  # an unnamed parameter among others cannot be passed by name (`"" :=` is no SQL)
    required = {p.name for p in f.params if not p.has_default}
    optional = {p.name for p in f.params if p.has_default}
    return keys - optional == required


def _choose_function(req: ApiRequest, cache: SchemaCache, overloads: list[Function], keys: set[str],
                     post: bool) -> Function:
    """PostgREST's `findProc`: the one overload whose parameters the keys match; failing that (a POST), the one
    whose single unnamed parameter takes the whole body of this content type; PGRST203 when several do."""
    raw_types = _RAW_BODY.get(req.content_type, ()) if post else ()
    matched: list[Function] = []
    fallback: list[Function] = []
    for f in overloads:
        if _matches_params(f, keys, post, req.content_type):
            matched.append(f)
        elif f.single_unnamed and f.params[0].type in raw_types:
            fallback.append(f)
    found = matched or fallback
    if not found:
        names = [n for (s, n) in cache.functions if s == req.schema] if not overloads else []
        raise errors.no_function(req.schema, req.target, keys, names, post=post, content_type=req.content_type,
                                 overloads=[[p.name for p in f.params] for f in overloads])
    if len(found) > 1:
        raise errors.ambiguous_function(req.schema, req.target,
                                        [", ".join(f"{p.name} => {p.type}" for p in f.params) for f in found])
    return found[0]


def _raw_argument(fn: Function, body: bytes) -> str:
    """The request body as the text of a single unnamed parameter (bytea in its hex input form)."""
    if fn.params[0].type == "bytea":
        return "\\x" + body.hex()
    try:
        return body.decode("utf-8") or "{}"
    except UnicodeDecodeError:
        raise errors.invalid_body("The request body is not valid UTF-8") from None


def _plan_call(req: ApiRequest, cache: SchemaCache, body: bytes, options: PlanOptions) -> Action:
    overloads = cache.functions.get((req.schema, req.target), [])
    if not overloads and req.method not in ("GET", "HEAD", "POST"):
        names = [n for (s, n) in cache.functions if s == req.schema]
        raise errors.no_function(req.schema, req.target, [], names, post=False)
    readonly = req.method in ("GET", "HEAD")
    if req.method not in ("GET", "HEAD", "POST"):
        raise errors.rpc_method(req.method)
    payload: str | None
    bulk = False
    if readonly:
        arg_names = {p.name for f in overloads for p in f.params if p.name}
        q = parse_query(split_query(req.query), arg_names)
        variadic = {p.name for f in overloads for p in f.params if p.variadic}
        args: dict[str, Any] = {}
        for k, v in q.args:
            if k in variadic:  # `?xs=1&xs=2` is the variadic array
                args.setdefault(k, []).append(v)
            else:
                args[k] = v
        fn = _choose_function(req, cache, overloads, set(args), False)
        if fn.volatility == "v":
            raise errors.ApiError(405, "25006", "cannot execute a volatile function in a read-only transaction",
                                  hint="Call it with POST, or declare it STABLE or IMMUTABLE")
        payload = jsonutil.dumps_str(args)
        keys = [] if fn.single_unnamed else list(args)
    else:
        q = parse_query(split_query(req.query))
        # PostgREST ≤ 10's bulk call: one call per object of an array body, results in one array
        bulk = req.prefer.get("params") == "multiple-objects"
        objects = False
        data: Any = {}
        raw_body = req.content_type in ("text/plain", "application/octet-stream", "text/xml")
        if req.content_type == "application/x-www-form-urlencoded":
            data = dict(split_query(body.decode("utf-8", "replace")))
            body = jsonutil.dumps(data)
        elif raw_body:
            data = None  # no arguments by name: only a single unnamed text/xml/bytea parameter takes it
        elif req.content_type == "text/csv" and bulk:
            data = csv_rows(body.decode("utf-8", "replace"))
        elif body.strip():
            try:
                data = jsonutil.loads(body)
            except jsonutil.JSONDecodeError:
                raise errors.invalid_body() from None
        objects = isinstance(data, list) and all(isinstance(r, dict) for r in data)
        if objects:  # arguments by name from the first object (all of them in a bulk call)
            keys_set = set(data[0]) if data else set()
        else:
            if bulk and isinstance(data, list) and not any(f.single_unnamed for f in overloads):
                raise errors.invalid_body()
            keys_set = set(data) if isinstance(data, dict) else set()
        single = [f for f in overloads if len(f.params) == 1 and f.params[0].type in ("json", "jsonb")]
        if req.prefer.get("params") == "single-object" and single and data is not None:
            # legacy `Prefer: params=single-object`: the whole body is the one json argument, whatever its name
            fn = single[0]
            objects = bulk = False
            keys_set = {fn.params[0].name} if fn.params[0].name else set()
            data = {fn.params[0].name: data} if fn.params[0].name else data
            body = jsonutil.dumps(data) if fn.params[0].name else body
        else:
            fn = _choose_function(req, cache, overloads, keys_set, True)
        if fn.single_unnamed:  # the whole body is the argument, positionally
            payload, keys = _raw_argument(fn, body), []
            bulk = False
        else:
            if data is None:
                data = {}
            if objects and not bulk:  # without params=multiple-objects PostgREST calls once, with the first
                data = data[0] if data else {}
            elif objects and any(set(r) != keys_set for r in data):
                raise errors.invalid_body("All object keys must match")
            if isinstance(data, dict):
                bulk = False
            elif not (objects and bulk):
                raise errors.invalid_body()
            payload = jsonutil.dumps_str(data)
            keys = [p.name for p in fn.params if p.name in keys_set]
    action = Action(sql.Statement("", []), readonly, "call")
    if req.prefer.get("params") in ("single-object", "multiple-objects"):
        action.applied.append(f"params={req.prefer.get('params')}")
    _common(req, action)
    if fn.shape == "void" or (fn.shape == "scalar" and not fn.returns_set and not bulk):
        action.statement = sql.scalar_call_statement(fn, keys, payload, many=bulk)
        action.scalar = True
        action.void = fn.shape == "void"
        return action
    offset = _apply_range(req, q, options.max_rows)
    action.offset = offset
    params = sql.Params()
    planner = Planner(cache, req.schema, options)
    if fn.shape == "scalar":
        columns = {fn.name: Column(fn.name, fn.return_type)}
        from_sql = sql.call_from(fn, keys, params, payload, column_alias=fn.name, many=bulk)
        root = planner.read((fn.schema, fn.name), fn.name, columns, q)
        root.star, root.outputs = False, []
        root_col: str | None = fn.name
    else:
        relation = fn.relation or (fn.schema, fn.name)
        root = planner.read(relation, fn.name, fn.columns, q)
        from_sql = sql.call_from(fn, keys, params, payload, many=bulk)
        root_col = None
    if fn.shape == "scalar" and root_col is not None:
        root.outputs = [Output(AstField(root_col), root_col, None, columns[root_col])]
    _cap_embeds(root, options.max_rows)
    action.statement = sql.read_statement(root, count=action.count, strip_nulls=req.media.strip_nulls,
                                          from_sql=from_sql, params=params, scalar_column=root_col,
                                          head=req.method == "HEAD", fmt=req.media.media)
    if not fn.returns_set and not bulk:
        action.single = True
        action.object_result = not (req.media.media == "object")
    return action


def location_header(table: str, pk: tuple[str, ...], location_json: str | None) -> bytes | None:
    if not location_json:
        return None
    values = jsonutil.loads(location_json)
    parts = [f"{quote(k)}=eq.{quote(str(values.get(k)))}" for k in pk]
    return f"/{quote(table)}?{'&'.join(parts)}".encode()
