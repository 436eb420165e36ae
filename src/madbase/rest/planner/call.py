"""Planning a function call (`/rpc/<name>`): the arguments read from the query (GET) or the body (POST), the
overload chosen by them (PostgREST's `findProc`), then one statement (pure).

Three steps with their own functions: `_query_arguments` / `_body_arguments` (what the request passes and to
which overload), then `_call_plan` (the statement and how to answer it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from madbase.core import jsonutil
from madbase.rest import errors, sql
from madbase.rest.ast import Field, QueryParams
from madbase.rest.parser import parse_query, split_query
from madbase.rest.planner.read import apply_range, cap_embeds, preferences
from madbase.rest.planner.types import CallPlan
from madbase.rest.readtree import Output, PlanOptions, TreeBuilder
from madbase.rest.request import ApiRequest
from madbase.rest.response import csv_rows
from madbase.rest.schema import Column, Function, SchemaCache
from madbase.rest.statement import Params

# The content type whose body a single unnamed parameter of that type takes whole (PostgREST's OnePosParam)
_RAW_BODY = {"application/json": ("json", "jsonb"), "text/plain": ("text",), "text/xml": ("xml",),
             "application/octet-stream": ("bytea",)}


@dataclass(slots=True)
class _Arguments:
    """The chosen overload and what it is called with."""

    fn: Function
    keys: list[str]  # parameters passed by name, in the function's order ([]: positional or none)
    payload: str | None  # the JSON object (array when `bulk`) of arguments, or a single unnamed one's text
    bulk: bool  # params=multiple-objects: one call per object of an array body
    q: QueryParams  # the query's select/filters/order/range on the result


def plan_call(req: ApiRequest, cache: SchemaCache, body: bytes, options: PlanOptions) -> CallPlan:
    overloads = cache.functions.get((req.schema, req.target), [])
    if req.method not in ("GET", "HEAD", "POST"):
        if not overloads:
            names = [n for (s, n) in cache.functions if s == req.schema]
            raise errors.no_function(req.schema, req.target, [], names, post=False)
        raise errors.rpc_method(req.method)
    readonly = req.method != "POST"
    args = _query_arguments(req, cache, overloads) if readonly else _body_arguments(req, cache, overloads, body)
    return _call_plan(req, cache, options, args, readonly)


def _query_arguments(req: ApiRequest, cache: SchemaCache, overloads: list[Function]) -> _Arguments:
    """GET: the arguments are the query parameters naming a parameter; the rest filter the result."""
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
    return _Arguments(fn, [] if fn.single_unnamed else list(args), jsonutil.dumps_str(args), False, q)


def _body_arguments(req: ApiRequest, cache: SchemaCache, overloads: list[Function], body: bytes) -> _Arguments:
    """POST: the arguments are the body's keys (a JSON object, a form, an array for bulk calls), or the whole
    body is one unnamed parameter's value."""
    q = parse_query(split_query(req.query))
    # PostgREST ≤ 10's bulk call: one call per object of an array body, results in one array
    bulk = req.prefer.get("params") == "multiple-objects"
    data, body = _decode_body(req, body, bulk)
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
        return _Arguments(fn, [], _raw_argument(fn, body), False, q)
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
    keys = [p.name for p in fn.params if p.name in keys_set]
    return _Arguments(fn, keys, jsonutil.dumps_str(data), bulk, q)


def _decode_body(req: ApiRequest, body: bytes, bulk: bool) -> tuple[Any, bytes]:
    """The body's arguments by content type (None: no arguments by name, only a single unnamed text/xml/bytea
    parameter takes the body), and the body as a single unnamed json parameter would take it."""
    if req.content_type == "application/x-www-form-urlencoded":
        data = dict(split_query(body.decode("utf-8", "replace")))
        return data, jsonutil.dumps(data)
    if req.content_type in ("text/plain", "application/octet-stream", "text/xml"):
        return None, body
    if req.content_type == "text/csv" and bulk:
        return csv_rows(body.decode("utf-8", "replace")), body
    if not body.strip():
        return {}, body
    try:
        return jsonutil.loads(body), body
    except jsonutil.JSONDecodeError:
        raise errors.invalid_body() from None


def _call_plan(req: ApiRequest, cache: SchemaCache, options: PlanOptions, args: _Arguments,
               readonly: bool) -> CallPlan:
    """The statement calling `args.fn`: a scalar (or void) call is one value; a composite or set-returning one
    is read like a table, with the query's select, filters, order and range applied to its rows."""
    fn, keys, payload, bulk, q = args.fn, args.keys, args.payload, args.bulk, args.q
    applied: list[str] = []
    params_pref = req.prefer.get("params")
    if params_pref in ("single-object", "multiple-objects"):
        applied.append(f"params={params_pref}")
    prefs = preferences(req, applied)
    media = req.media
    object_media = media.media == "object"
    if fn.shape == "void" or (fn.shape == "scalar" and not fn.returns_set and not bulk):
        return CallPlan(sql.scalar_call_statement(fn, keys, payload, many=bulk), media.media, prefs, readonly,
                        "void" if fn.shape == "void" else "scalar", single=object_media)
    offset = apply_range(req, q, options.max_rows)
    builder = TreeBuilder(cache, options)
    params = Params()
    root_col: str | None = None
    if fn.shape == "scalar":  # a set of scalars reads as rows of one column named after the function
        root_col = fn.name
        columns = {fn.name: Column(fn.name, fn.return_type)}
        from_sql = sql.call_from(fn, keys, params, payload, column_alias=fn.name, many=bulk)
        root = builder.build((fn.schema, fn.name), fn.name, columns, q)
        root.star = False
        root.outputs = [Output(Field(root_col), root_col, None, columns[root_col])]
    else:
        root = builder.build(fn.relation or (fn.schema, fn.name), fn.name, fn.columns, q)
        from_sql = sql.call_from(fn, keys, params, payload, many=bulk)
    cap_embeds(root, options.max_rows)
    stmt = sql.read_statement(root, count=prefs.count, strip_nulls=media.strip_nulls, from_sql=from_sql,
                              params=params, scalar_column=root_col, head=req.method == "HEAD", fmt=media.media)
    composite = not fn.returns_set and not bulk
    return CallPlan(stmt, media.media, prefs, readonly, "rows", offset=offset, single=composite or object_media,
                    object_result=composite and not object_media)


# -- choosing the overload ---------------------------------------------------------------------------------------

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
