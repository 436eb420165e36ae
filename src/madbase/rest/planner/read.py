"""Planning a read (GET/HEAD of a table or view), and the pieces every database plan shares: the applied
preferences, the page range and db-max-rows (pure)."""

from __future__ import annotations

import functools

from madbase.rest import sql
from madbase.rest.ast import QueryParams
from madbase.rest.planner.types import Prefs, ReadPlan
from madbase.rest.readtree import ReadNode, TreeBuilder
from madbase.rest.request import ApiRequest
from madbase.rest.schema import Table

# Preference-Applied lists the applied preferences in PostgREST's order
_APPLIED_ORDER = {k: i for i, k in enumerate(("resolution", "missing", "return", "params", "count", "tx", "handling",
                                              "timezone", "max-affected"))}


@functools.cache
def _timezones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def preferences(req: ApiRequest, applied: list[str]) -> Prefs:
    """The Prefer values every plan applies, after the action's own `applied` ones (return=, resolution=, ...)."""
    p = req.prefer
    count = p.get("count")
    if count is not None:
        applied.append(f"count={count}")
    tx = p.get("tx")
    if tx is not None:
        applied.append(f"tx={tx}")
    handling = p.get("handling")
    max_affected: int | None = None
    if handling is not None:
        applied.append(f"handling={handling}")
    if handling == "strict" and p.get("max-affected") is not None:
        max_affected = int(p.values["max-affected"])
        applied.append(f"max-affected={max_affected}")
    tz = p.get("timezone")
    timezone = tz if tz is not None and tz in _timezones() else None  # an unknown zone is ignored, as PostgREST
    if timezone is not None:
        applied.append(f"timezone={timezone}")
    applied.sort(key=lambda a: _APPLIED_ORDER.get(a.partition("=")[0], 99))
    return Prefs(tuple(applied), count is not None, tx == "rollback", max_affected, timezone)


def apply_range(req: ApiRequest, q: QueryParams, max_rows: int | None) -> int:
    """The Range header as the root's offset/limit (query parameters win), capped by db-max-rows; the offset."""
    if req.range is not None:
        lower, limit = req.range
        if () not in q.offset:
            q.offset[()] = lower
        if limit is not None and () not in q.limit:
            q.limit[()] = limit
    if max_rows is not None:
        q.limit[()] = min(q.limit.get((), max_rows), max_rows)
    return q.offset.get((), 0)


def cap_embeds(node: ReadNode, max_rows: int | None) -> None:
    """db-max-rows also caps every to-many embedding of a read or a call (PostgREST restricts the range of
    every node of the read tree; mutations' representations are not capped at all)."""
    if max_rows is None:
        return
    for child in node.embeds():
        if child.rel is not None and not child.rel.to_one:
            child.limit = max_rows if child.limit is None else min(child.limit, max_rows)
        cap_embeds(child, max_rows)


def plan_read(req: ApiRequest, builder: TreeBuilder, table: Table, q: QueryParams) -> ReadPlan:
    max_rows = builder.options.max_rows
    offset = apply_range(req, q, max_rows)
    root = builder.build(table.qname, table.name, table.columns, q)
    cap_embeds(root, max_rows)
    count = req.prefer.get("count")
    media = req.media
    # estimated: the exact count up to db-max-rows, the planner's estimate beyond it (PostgREST's rule); planned:
    # the estimate only, so the statement itself counts nothing
    planned = count == "planned" or (count == "estimated" and max_rows is not None)
    exact = count is not None and (not planned or count == "estimated")
    stmt = sql.read_statement(root, count=exact, strip_nulls=media.strip_nulls, head=req.method == "HEAD",
                              fmt=media.media)
    return ReadPlan(stmt, media.media, preferences(req, []), offset=offset, single=media.media == "object",
                    planned=sql.planned_count_statement(root) if planned else None,
                    estimate_above=max_rows if planned and count == "estimated" else None)
