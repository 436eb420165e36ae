"""REST's plan stage: an `ApiRequest` and a schema-cache snapshot to one typed plan (pure, no I/O).

`info_plan` picks the requests answered without the request's transaction (OPTIONS, the OpenAPI root);
`plan_request` every other one: unknown relations, columns and functions are refused here from the cache, the
body of a write is read and checked, and the result is a frozen `ReadPlan`, `MutatePlan` or `CallPlan` holding
its one rendered statement and what the respond stage needs. The modules: `read` (and the preferences and
ranges every plan shares), `mutate`, `call`, `types`; the read tree they all build is `rest.readtree`.
"""

from __future__ import annotations

from madbase.rest import errors
from madbase.rest.parser import parse_query, split_query
from madbase.rest.planner.call import plan_call
from madbase.rest.planner.mutate import plan_delete, plan_insert, plan_put, plan_update
from madbase.rest.planner.read import plan_read
from madbase.rest.planner.types import CallPlan, DbPlan, InfoPlan, MutatePlan, Prefs, ReadPlan
from madbase.rest.readtree import PlanOptions, TreeBuilder
from madbase.rest.request import ApiRequest
from madbase.rest.schema import SchemaCache

__all__ = ["CallPlan", "DbPlan", "InfoPlan", "MutatePlan", "PlanOptions", "Prefs", "ReadPlan", "info_plan",
           "plan_request"]

_OPTIONS = InfoPlan("options")
_OPENAPI = InfoPlan("openapi")


def info_plan(req: ApiRequest) -> InfoPlan | None:
    """OPTIONS of anything, or the root (OpenAPI, GET/HEAD only); None for a database plan."""
    if req.method == "OPTIONS":
        return _OPTIONS
    if not req.target:
        return _OPENAPI
    return None


def plan_request(req: ApiRequest, cache: SchemaCache, body: bytes, options: PlanOptions) -> DbPlan:
    """The plan of a request to a table, view or function."""
    if req.is_rpc:
        return plan_call(req, cache, body, options)
    table = cache.table(req.schema, req.target)
    if table is None:
        raise errors.no_table(req.schema, req.target, cache.table_names(req.schema))
    q = parse_query(split_query(req.query))
    builder = TreeBuilder(cache, options)
    method = req.method
    if method in ("GET", "HEAD"):
        return plan_read(req, builder, table, q)
    if method == "POST":
        return plan_insert(req, builder, table, q, body)
    if method == "PUT":
        return plan_put(req, builder, table, q, body)
    if method == "PATCH":
        return plan_update(req, builder, table, q, body)
    if method == "DELETE":
        return plan_delete(req, builder, table, q)
    raise errors.bad_method(method)
