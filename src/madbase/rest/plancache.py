"""Planned reads kept by the request's shape, so `?id=eq.1` and `?id=eq.2` are planned once.

A read's plan depends on its query string, a few headers and the schema-cache snapshot. Most traffic repeats a
handful of query shapes with other filter values, and planning (parse, check against the schema cache, render
SQL) is a sixth of a simple GET's Python time. The shape of a query is its raw text with the value of each plain
comparison filter (`[not.]eq|neq|gt|gte|lt|lte.<value>`, outside logic trees) taken out; those values reach
the statement only as bind parameters, unchanged (`_filter_sql` casts them in SQL). Only `ReadPlan`s are kept:
everything in one but its statement is the same for every request of the shape (checked below).

That claim is checked, not assumed: the first request of a shape is planned as usual and once more with every
such value replaced by a marker; the shape is kept only if both plans are the same statement and plan apart
from the markers, each marker standing exactly where the request's own value stands. Later requests of the
shape copy the kept plan and put their values in those places. Anything else (writes, RPC, counts by plan,
a shape that failed the check) is planned every time. The memo lives on the snapshot, so a schema reload
drops it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote_plus

from madbase.rest.planner import DbPlan, PlanOptions, ReadPlan, plan_request
from madbase.rest.request import ApiRequest
from madbase.rest.schema import SchemaCache
from madbase.rest.statement import Statement

MAX_SHAPES = 512  # per snapshot; the memo starts over when full
_SLOT_OPS = frozenset(("eq", "neq", "gt", "gte", "lt", "lte"))
# Keys that are not column filters, also on embedded resources (`items.order`); their values stay in the shape.
_NOT_FILTERS = frozenset(("select", "order", "limit", "offset", "or", "and", "columns", "on_conflict"))
_MARKER = "mbslot" + secrets.token_hex(6) + "_"


@dataclass(slots=True, frozen=True)
class Template:
    """A verified read plan: the plan to copy and where each filter value goes among its parameters."""

    plan: ReadPlan
    places: tuple[tuple[int, int], ...]  # (parameter index, value index)


def query_shape(query: str) -> tuple[str, list[str]] | None:
    """The query text with plain comparison values cut out (as a key) and those values, URL-decoded; None when
    the query has none (nothing to gain over planning it)."""
    parts: list[str] = []
    values: list[str] = []
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        cut = _value_start(key, value) if eq else -1
        if cut < 0:
            parts.append(part)
        else:
            parts.append(part[:len(key) + 1 + cut])
            values.append(unquote_plus(value[cut:]))
    if not values:
        return None
    return "&".join(parts), values


def _value_start(key: str, value: str) -> int:
    """Where a plain comparison's value starts in a raw `key=value` pair's value, or -1."""
    if key.rpartition(".")[2] in _NOT_FILTERS:
        return -1
    start = 4 if value.startswith("not.") else 0
    dot = value.find(".", start)
    if dot < 0 or value[start:dot] not in _SLOT_OPS:
        return -1
    return dot + 1


def plan(req: ApiRequest, cache: SchemaCache, body: bytes, options: PlanOptions) -> DbPlan:
    """`plan_request`, through the snapshot's memo of shapes for a GET/HEAD of a table or view."""
    shaped = query_shape(req.query) if req.method in ("GET", "HEAD") and req.target and not req.is_rpc else None
    if shaped is None:
        return plan_request(req, cache, body, options)
    shape, values = shaped
    h = req.headers
    key = (req.method, req.schema, req.target, h.get("accept"), h.get("prefer"), h.get("range"),
           options.aggregates, options.max_rows, shape)
    memo: dict[tuple[Any, ...], Template | None] = cache.plans
    if key in memo:
        template = memo[key]
        if template is not None:
            return _fill(template, values)
        return plan_request(req, cache, b"", options)
    fresh = plan_request(req, cache, b"", options)
    if len(memo) >= MAX_SHAPES:
        memo.clear()
    memo[key] = _verify(req, cache, options, fresh, shape, values) if isinstance(fresh, ReadPlan) else None
    return fresh


def _fill(template: Template, values: list[str]) -> ReadPlan:
    proto = template.plan
    params = list(proto.statement.params)
    for index, value in template.places:
        params[index] = values[value]
    stmt = Statement(proto.statement.sql, params, proto.statement.columns)
    return proto.with_statement(stmt)


def _verify(req: ApiRequest, cache: SchemaCache, options: PlanOptions, fresh: ReadPlan, shape: str,
            values: list[str]) -> Template | None:
    """Plan the shape with markers for its values; a template if that plan matches `fresh` marker for value."""
    if fresh.planned is not None:  # the EXPLAIN for the count has the values too
        return None
    markers = [f"{_MARKER}{i}" for i in range(len(values))]
    pieces = shape.split("&")
    n = 0
    for i, part in enumerate(pieces):
        key, eq, value = part.partition("=")
        if eq and _value_start(key, value) == len(value):
            pieces[i] = part + markers[n]
            n += 1
    if n != len(values):
        return None
    try:
        probe = plan_request(replace(req, query="&".join(pieces)), cache, b"", options)
    except Exception:
        return None
    if not isinstance(probe, ReadPlan):
        return None
    if probe.statement.sql != fresh.statement.sql or probe.statement.columns != fresh.statement.columns:
        return None
    if probe.with_statement(fresh.statement) != fresh:  # every other field of the plan
        return None
    real, marked = fresh.statement.params, probe.statement.params
    if len(real) != len(marked):
        return None
    index = {m: i for i, m in enumerate(markers)}
    places: list[tuple[int, int]] = []
    for i, (r, m) in enumerate(zip(real, marked, strict=True)):
        slot = index.get(m) if isinstance(m, str) else None
        if slot is not None:
            if r != values[slot]:
                return None
            places.append((i, slot))
        elif r != m:
            return None
    if {slot for _, slot in places} != set(range(len(values))):
        return None
    return Template(fresh, tuple(places))
