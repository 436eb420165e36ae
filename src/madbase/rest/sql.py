"""SQL text for planned requests — the only module that writes SQL (PostgREST's `Query/SqlFragment.hs`).

Identifiers come from the schema cache (through the plan) and always pass `quote_ident`; types come from
`format_type` in the catalogs; every value is an element of one text-array bind parameter, `$1[n]`, cast with
an explicit I/O cast to the column's type (`($1::text[])[3]::text::integer`), so PostgreSQL, not Python, interprets it
— and a statement has one parameter whatever its shape, which lets it run inside `madbase.run_prepared` (the
one-round-trip request). Every statement returns one row `(total, page, body, ...)` (its `columns`) where
PostgreSQL has already built the JSON body as one UTF-8 bytea value (handed to the socket as is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from madbase.rest.ast import Condition, Field, Filter, Logic, OrderTerm
from madbase.rest.readtree import Output, ReadNode, RelOrder
from madbase.rest.schema import Column, Function
from madbase.rest.statement import (
    MUTATION_COLUMNS,
    RESPONSE_GUCS,
    Params,
    Statement,
    array_type,
    literal,
    qualified,
    quote_ident,
)

_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE", "ilike": "ILIKE",
        "match": "~", "imatch": "~*", "isdistinct": "IS DISTINCT FROM", "cs": "@>", "cd": "<@", "ov": "&&",
        "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}
_TEXT_OPS = frozenset({"like", "ilike", "match", "imatch"})
_FTS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery", "wfts": "websearch_to_tsquery"}
_AGGREGATES = {"sum": "sum", "avg": "avg", "max": "max", "min": "min", "count": "count"}
_IS = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}


def pre_request_call(name: str) -> str:
    """The call of the configured `db-pre-request` function ("fn" or "schema.fn", from project config)."""
    schema, _, fn = name.rpartition(".")
    return (f"{quote_ident(schema)}." if schema else "") + f"{quote_ident(fn)}()"


# PostgREST's count of the rows an upsert inserted (rather than updated): +1 for each row offered to the INSERT,
# -1 for each that took the DO UPDATE branch; transaction-local, so it starts afresh in every request.
_INSERTED = "coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0)"
_COUNT_OFFERED = f"set_config('pgrst.inserted', ({_INSERTED} + 1)::text, true) <> '0'"
_COUNT_UPDATED = f"set_config('pgrst.inserted', ({_INSERTED} - 1)::text, true) <> '-1'"


class _Aliases:
    def __init__(self) -> None:
        self.n = 0

    def next(self, prefix: str = "t") -> str:
        self.n += 1
        return quote_ident(f"pgrst_{prefix}{self.n}")


# -- expressions ----------------------------------------------------------------------------------------------

def field_expr(alias: str, fld: Field, params: Params, columns: dict[str, Column] | None = None) -> str:
    col = columns.get(fld.name) if columns else None
    if col is not None and col.computed is not None:
        fn, rel = col.computed
        expr = f"{qualified(fn)}({alias}::{qualified(rel)})"
    else:
        expr = f"{alias}.{quote_ident(fld.name)}"
    for op in fld.path:
        key = params.add(op.key) + ("::text::int4" if op.index else "::text")
        expr = f"{expr}{op.arrow}{key}"
    return expr


def field_type(fld: Field, col: Column) -> str:
    if not fld.path:
        return col.type
    if fld.path[-1].arrow == "->>":
        return "text"
    return "jsonb" if col.type == "jsonb" else "json"


def condition_sql(alias: str, cond: Condition, columns: dict[str, Column], params: Params) -> str:
    if isinstance(cond, Logic):
        joiner = " AND " if cond.op == "and" else " OR "
        inner = joiner.join(condition_sql(alias, c, columns, params) for c in cond.children) or "TRUE"
        return f"NOT ({inner})" if cond.negated else f"({inner})"
    return _filter_sql(alias, cond, columns, params)


def _filter_sql(alias: str, f: Filter, columns: dict[str, Column], params: Params) -> str:
    e = f.expr
    expr = field_expr(alias, f.field, params, columns)
    typ = field_type(f.field, columns[f.field.name])
    op = e.op
    if op == "is":
        sql = f"{expr} IS {_IS[str(e.value)]}"
    elif op == "in":
        values = list(e.value) if isinstance(e.value, tuple) else [e.value]
        sql = f"{expr} = ANY({params.add(values)}::text[]::{array_type(typ)})"
    elif op in _FTS:
        cfg = f"{params.add(e.config)}::text::regconfig, " if e.config else ""
        sql = f"{expr} @@ {_FTS[op]}({cfg}{params.add(str(e.value))}::text)"
    else:
        value = str(e.value)
        target = "text" if op in _TEXT_OPS else typ
        if op in ("like", "ilike"):
            value = value.replace("*", "%")
        if e.modifier is not None:
            sql = f"{expr} {_OPS[op]} {e.modifier.upper()}({params.add(value)}::text::{array_type(target)})"
        else:
            sql = f"{expr} {_OPS[op]} {params.add(value)}::text::{target}"
    return f"NOT ({sql})" if e.negated else sql


def _order_sql(alias: str, node: ReadNode, term: OrderTerm | RelOrder, params: Params) -> str:
    if isinstance(term, RelOrder):
        t = term.term
        ro = quote_ident("pgrst_ro")
        join = " AND ".join(f"{ro}.{quote_ident(tc)} = {alias}.{quote_ident(sc)}" for sc, tc in term.rel.pairs)
        expr = f"(SELECT {field_expr(ro, t.field, params)} FROM {qualified(term.rel.target)} AS {ro} WHERE {join})"
    else:
        t = term
        expr = field_expr(alias, t.field, params, _all_columns(node))
    if t.direction:
        expr += " " + t.direction.upper()
    if t.nulls:
        expr += " NULLS " + t.nulls.upper()
    return expr


def _all_columns(node: ReadNode) -> dict[str, Column]:
    return {**node.columns, **node.computed} if node.computed else node.columns


# -- reads ------------------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Ctx:
    params: Params
    aliases: _Aliases


def _hoisted(node: ReadNode) -> bool:
    """A to-one spread whose aggregates PostgREST hoists into the parent (grouped by the parent's columns)."""
    return (node.spread and node.rel is not None and node.rel.to_one
            and any(isinstance(o, Output) and o.aggregate for o in node.outputs))


def _hoisted_selects(child: ReadNode, la: str, group_by: list[str]) -> list[str]:
    """The parent's select items for a hoisted spread: its aggregates over the lateral's raw columns
    (`pgrst_agg_<i>`, see `node_sql(hoist=True)`), its other columns grouped."""
    selects: list[str] = []
    for n in (child.columns if child.star else ()):
        group_by.append(f"{la}.{quote_ident(n)}")
        selects.append(f"{la}.{quote_ident(n)} AS {quote_ident(n)}")
    for i, o in enumerate(child.outputs):
        if isinstance(o, Output) and o.aggregate is not None:
            expr = "count(*)" if o.field.name == "*" else \
                f"{_AGGREGATES[o.aggregate]}({la}.{quote_ident(f'pgrst_agg_{i}')})"
            if o.cast:
                expr = f"({expr})::{o.cast}"
            selects.append(f"{expr} AS {quote_ident(o.name)}")
        else:
            names = [o.name] if isinstance(o, Output) else o.output_names() if o.spread else [o.key]
            for n in names:
                group_by.append(f"{la}.{quote_ident(n)}")
                selects.append(f"{la}.{quote_ident(n)} AS {quote_ident(n)}")
    return selects


def node_sql(node: ReadNode, alias: str, from_sql: str, ctx: _Ctx, *, where: Sequence[str] = (),
             count_only: bool = False, extra_from: str = "", hoist: bool = False) -> str:
    params = ctx.params
    selects: list[str] = []
    joins: list[str] = []
    conds = list(where)
    for c in node.conditions:
        conds.append(condition_sql(alias, c, _all_columns(node), params))
    if node.star and not count_only:
        selects.append(f"{alias}.*")
    embed_alias: dict[str, str] = {}
    group_by: list[str] = []
    # hoist: this node's aggregates are computed by its parent; select their arguments raw
    aggregated = not hoist and any((isinstance(o, Output) and o.aggregate) or (isinstance(o, ReadNode) and _hoisted(o))
                                   for o in node.outputs)
    for i, out in enumerate(node.outputs):
        if isinstance(out, Output):
            name = out.name
            if out.aggregate is not None and hoist:
                if out.field.name == "*":
                    continue  # count() counts the parent's rows
                expr, name = field_expr(alias, out.field, params, _all_columns(node)), f"pgrst_agg_{i}"
            elif out.aggregate is not None:
                expr = "count(*)" if out.field.name == "*" else \
                    f"{_AGGREGATES[out.aggregate]}({field_expr(alias, out.field, params, _all_columns(node))})"
            else:
                expr = field_expr(alias, out.field, params, _all_columns(node))
                if aggregated:
                    group_by.append(expr)
            if count_only:
                continue
            if out.cast and not (hoist and out.aggregate is not None):
                expr = f"({expr})::{out.cast}"
            selects.append(f"{expr} AS {quote_ident(name)}")
            continue
        la = ctx.aliases.next("e")
        embed_alias[out.key] = la
        joins.append(_lateral(out, alias, la, ctx))
        if count_only or out.empty:  # an empty embed filters (`!inner`, `is.null`) but adds no key
            continue
        if _hoisted(out):
            selects.extend(_hoisted_selects(out, la, group_by))
        elif out.spread:
            names = out.output_names()
            selects.extend(f"{la}.{quote_ident(n)} AS {quote_ident(n)}" for n in names)
            if aggregated:  # `amount.sum(),...customers(name)`: grouped by the spread's columns
                group_by.extend(f"{la}.{quote_ident(n)}" for n in names)
        elif aggregated:  # `amount.sum(),customers(name)`: grouped by the embedding, as jsonb (json has no `=`)
            expr = f"{la}.\"body\"::jsonb"
            if out.rel is not None and not out.rel.to_one:
                expr = f"coalesce({expr}, '[]'::jsonb)"
            group_by.append(expr)
            selects.append(f"{expr} AS {quote_ident(out.key)}")
        elif out.rel is not None and not out.rel.to_one:
            selects.append(f"coalesce({la}.\"body\", '[]'::json) AS {quote_ident(out.key)}")
        else:
            selects.append(f"{la}.\"body\" AS {quote_ident(out.key)}")
    for ef in node.embed_filters:
        conds.append(f"{embed_alias[ef.key]}.\"body\" IS {'NOT ' if ef.negated else ''}NULL")
    if node.count_key is not None:
        selects = [f"count(*) AS {quote_ident(node.count_key)}"]
    sql = f"SELECT {', '.join(selects) if selects else ('1' if count_only else '')} FROM {from_sql}{extra_from}"
    if joins:
        sql += " " + " ".join(joins)
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    if group_by:
        sql += " GROUP BY " + ", ".join(group_by)
    if not count_only and node.count_key is None:
        if node.order:
            sql += " ORDER BY " + ", ".join(_order_sql(alias, node, t, params) for t in node.order)
        if node.limit is not None:
            sql += f" LIMIT {params.add(node.limit)}::int8"
        if node.offset:
            sql += f" OFFSET {params.add(node.offset)}::int8"
    return sql


def _lateral(child: ReadNode, parent_alias: str, la: str, ctx: _Ctx) -> str:
    rel = child.rel
    assert rel is not None
    ca = ctx.aliases.next()
    from_sql = f"{qualified(child.relation)} AS {ca}"
    extra = ""
    where: list[str]
    if rel.function is not None:
        from_sql = f"{qualified(rel.function)}({parent_alias}::{qualified(rel.source)}) AS {ca}"
        where = []
    elif rel.junction is not None:
        ja = ctx.aliases.next("j")
        on = " AND ".join(f"{ja}.{quote_ident(jc)} = {ca}.{quote_ident(tc)}" for jc, tc in rel.target_pairs)
        extra = f" JOIN {qualified(rel.junction)} AS {ja} ON {on}"
        where = [f"{ja}.{quote_ident(jc)} = {parent_alias}.{quote_ident(sc)}" for sc, jc in rel.pairs]
    else:
        where = [f"{ca}.{quote_ident(tc)} = {parent_alias}.{quote_ident(sc)}" for sc, tc in rel.pairs]
    inner = node_sql(child, ca, from_sql, ctx, where=where, extra_from=extra, hoist=_hoisted(child))
    s = quote_ident("pgrst_s")
    kind = "JOIN LATERAL" if child.join == "inner" else "LEFT JOIN LATERAL"
    if child.spread:
        if rel.to_one:
            return f"{kind} ({inner}) AS {la} ON TRUE"
        aggs = ", ".join(f"json_agg({s}.{quote_ident(n)}) AS {quote_ident(n)}" for n in child.output_names())
        return f"{kind} (SELECT {aggs} FROM ({inner}) AS {s}) AS {la} ON TRUE"
    if rel.to_one:
        return f"{kind} (SELECT row_to_json({s}) AS \"body\" FROM ({inner}) AS {s}) AS {la} ON TRUE"
    on = f"{la}.\"body\" IS NOT NULL" if child.join == "inner" else "TRUE"
    return f"{kind} (SELECT json_agg({s}) AS \"body\" FROM ({inner}) AS {s}) AS {la} ON {on}"


def _body_expr(strip_nulls: bool, scalar_column: str | None = None, geojson: bool = False) -> str:
    x = quote_ident("pgrst_x")
    if geojson:  # PostGIS's ST_AsGeoJSON(record): a Feature per row, its first geometry column as the geometry
        return (f"convert_to(json_build_object('type', 'FeatureCollection', 'features', "
                f"coalesce(json_agg(ST_AsGeoJSON({x})::json), '[]'))::text, 'UTF8')")
    if scalar_column is not None:
        return f"convert_to(coalesce(json_agg({x}.{quote_ident(scalar_column)}), '[]')::text, 'UTF8')"
    if strip_nulls:
        return f"convert_to(coalesce(json_agg(json_strip_nulls(row_to_json({x}))), '[]')::text, 'UTF8')"
    return f"convert_to(coalesce(json_agg({x}), '[]')::text, 'UTF8')"


def _csv_expr() -> str:
    """PostgREST's CSV, built by PostgreSQL: the first row's keys joined by commas as the header line, then
    one line per row: the row's record text (`(1,"a b",,t)`) without its parentheses, so quoting, NULL as
    empty, `t`/`f` booleans and JSON as text are PostgreSQL's record output rules. Reads the rows from the
    `pgrst_rows` CTE (once for the header, once for the lines)."""
    x = quote_ident("pgrst_x")
    header = ("(SELECT coalesce(string_agg(\"pgrst_k\", ','), '') FROM (SELECT json_object_keys(row_to_json("
              "\"pgrst_h\")) AS \"pgrst_k\" FROM (SELECT * FROM \"pgrst_rows\" LIMIT 1) AS \"pgrst_h\") "
              "AS \"pgrst_a\")")
    lines = f"coalesce(string_agg(substring({x}::text, 2, length({x}::text) - 2), E'\\n'), '')"
    return f"convert_to({header} || E'\\n' || {lines}, 'UTF8')"


def read_statement(root: ReadNode, *, count: bool, strip_nulls: bool = False, from_sql: str | None = None,
                   params: Params | None = None, scalar_column: str | None = None, head: bool = False,
                   fmt: str = "json") -> Statement:
    ctx = _Ctx(params or Params(), _Aliases())
    alias = quote_ident("pgrst_t0")
    src = from_sql if from_sql is not None else f"{qualified(root.relation)} AS {alias}"
    body_sql = node_sql(root, alias, src, ctx)
    total = "NULL::int8"
    if count:
        counted = node_sql(root, alias, src, ctx, count_only=True)
        total = f"(SELECT count(*) FROM ({counted}) AS \"pgrst_c\")"
    if fmt == "csv" and not head:
        sql = (f"WITH \"pgrst_rows\" AS ({body_sql}) SELECT {total} AS total, count(*) AS page, {_csv_expr()} AS body, "
               f"{RESPONSE_GUCS} FROM \"pgrst_rows\" AS \"pgrst_x\"")
        return Statement(sql, ctx.params.values)
    body = "NULL::bytea" if head else _body_expr(strip_nulls, scalar_column, geojson=fmt == "geojson")
    sql = (f"SELECT {total} AS total, count(*) AS page, {body} AS body, {RESPONSE_GUCS} "
           f"FROM ({body_sql}) AS \"pgrst_x\"")
    return Statement(sql, ctx.params.values)


def explain_statement(stmt: Statement, as_json: bool, options: Sequence[str]) -> Statement:
    """EXPLAIN of a planned statement (`Accept: application/vnd.pgrst.plan`); options from a fixed list."""
    allowed = ("analyze", "verbose", "settings", "buffers", "wal")
    opts = ", ".join(["FORMAT JSON" if as_json else "FORMAT TEXT", *(o.upper() for o in options if o in allowed)])
    return Statement(f"EXPLAIN ({opts}) {stmt.sql}", stmt.params)


def planned_count_statement(root: ReadNode) -> Statement:
    """`EXPLAIN (FORMAT JSON)` of the rows a read would count (for `Prefer: count=planned`)."""
    ctx = _Ctx(Params(), _Aliases())
    alias = quote_ident("pgrst_t0")
    counted = node_sql(root, alias, f"{qualified(root.relation)} AS {alias}", ctx, count_only=True)
    return Statement(f"EXPLAIN (FORMAT JSON) {counted}", ctx.params.values)


# -- mutations --------------------------------------------------------------------------------------------------

def returning_columns(root: ReadNode, body: bool, location: Sequence[str]) -> list[str] | None:
    """The columns a mutation must return: what the representation reads (None: the whole row), else only
    the Location key. Returning no more than that keeps column privileges and RLS SELECT checks to what the
    request asked for, as PostgREST does."""
    needed: dict[str, None] = dict.fromkeys(location)
    if not body:
        return list(needed)
    if root.star or root.computed:
        return None
    for out in root.outputs:
        if isinstance(out, Output):
            if out.field.name != "*":
                needed[out.field.name] = None
        elif out.rel is None or out.rel.function is not None:
            return None
        else:
            needed.update(dict.fromkeys(a for a, _ in out.rel.pairs))
    for term in root.order:
        if isinstance(term, RelOrder):
            needed.update(dict.fromkeys(a for a, _ in term.rel.pairs))
        else:
            needed[term.field.name] = None
    return list(needed)


def _returning(columns: list[str] | None) -> str:
    if columns is None:
        return ' RETURNING "pgrst_t0".*'
    return " RETURNING " + (", ".join(f'"pgrst_t0".{quote_ident(c)}' for c in columns) or "1")


def _wrap_mutation(mutation: str, root: ReadNode, params: Params, *, returning: bool, body: bool,
                   strip_nulls: bool, location: Sequence[str] = (), fmt: str = "json",
                   count_inserted: bool = False) -> Statement:
    """The mutation as a CTE and the one result row. `count_inserted` (an upsert, which must then return rows):
    the `inserted` column says how many rows it inserted, read after the outer aggregate consumed them all."""
    inserted = f"{_INSERTED}::int8" if count_inserted else "NULL::int8"
    if not returning:
        return Statement(f"WITH \"pgrst_source\" AS ({mutation}) SELECT NULL::int8 AS total, NULL::int8 AS page, "
                         f"NULL::bytea AS body, {RESPONSE_GUCS}, NULL::text AS location, NULL::int8 AS inserted",
                         params.values, MUTATION_COLUMNS)
    ctx = _Ctx(params, _Aliases())
    alias = quote_ident("pgrst_t0")
    if body:
        read_root = replace(root, conditions=[], limit=None, offset=0)
        inner = node_sql(read_root, alias, f"\"pgrst_source\" AS {alias}", ctx)
    else:
        inner = "SELECT 1 FROM \"pgrst_source\""
    csv = fmt == "csv" and body
    body_sql = _csv_expr() if csv else _body_expr(strip_nulls, geojson=fmt == "geojson") if body else "NULL::bytea"
    loc = "NULL::text"
    if location:
        cols = ", ".join(quote_ident(c) for c in location)
        loc = (f"(SELECT row_to_json(\"pgrst_l\")::text FROM (SELECT {cols} FROM \"pgrst_source\" LIMIT 1) "
               "AS \"pgrst_l\")")
    rows = f", \"pgrst_rows\" AS ({inner})" if csv else ""
    src = "\"pgrst_rows\"" if csv else f"({inner})"
    sql = (f"WITH \"pgrst_source\" AS ({mutation}){rows} SELECT NULL::int8 AS total, count(*) AS page, "
           f"{body_sql} AS body, {RESPONSE_GUCS}, {loc} AS location, {inserted} AS inserted "
           f"FROM {src} AS \"pgrst_x\"")
    return Statement(sql, params.values, MUTATION_COLUMNS)


def insert_statement(root: ReadNode, columns: Sequence[Column], payload: str, *, missing_default: bool,
                     on_conflict: Sequence[str] | None, merge: bool, returning: bool, body: bool,
                     strip_nulls: bool = False, location: Sequence[str] = (), fmt: str = "json") -> Statement:
    params = Params()
    table = qualified(root.relation)
    p = params.add(payload)
    r = quote_ident("pgrst_r")
    count_inserted = on_conflict is not None and merge and bool(columns)
    offered = f" WHERE {_COUNT_OFFERED}" if count_inserted else ""
    if not columns:
        mutation = f"INSERT INTO {table} AS \"pgrst_t0\" SELECT FROM json_array_elements({p}::json)"
    elif missing_default:
        e = quote_ident("pgrst_e")
        exprs = [f"CASE WHEN {e}.\"j\"::jsonb ? {literal(c.name)} THEN {r}.{quote_ident(c.name)} "
                 f"ELSE {c.default or 'NULL'} END" for c in columns]
        mutation = (f"INSERT INTO {table} AS \"pgrst_t0\" ({', '.join(quote_ident(c.name) for c in columns)}) "
                    f"SELECT {', '.join(exprs)} FROM json_array_elements({p}::json) AS {e}(\"j\") "
                    f"CROSS JOIN LATERAL json_populate_record(NULL::{table}, {e}.\"j\") AS {r}{offered}")
    else:
        names = ", ".join(quote_ident(c.name) for c in columns)
        mutation = (f"INSERT INTO {table} AS \"pgrst_t0\" ({names}) SELECT "
                    f"{', '.join(f'{r}.{quote_ident(c.name)}' for c in columns)} "
                    f"FROM json_populate_recordset(NULL::{table}, {p}::json) AS {r}{offered}")
    if on_conflict is not None:
        target = ", ".join(quote_ident(c) for c in on_conflict)
        if merge and columns:
            sets = ", ".join(f"{quote_ident(c.name)} = EXCLUDED.{quote_ident(c.name)}" for c in columns)
            mutation += f" ON CONFLICT ({target}) DO UPDATE SET {sets} WHERE {_COUNT_UPDATED}"
        else:
            mutation += f" ON CONFLICT ({target}) DO NOTHING"
    returning = returning or count_inserted
    if returning:
        mutation += _returning(returning_columns(root, body, location))
    return _wrap_mutation(mutation, root, params, returning=returning, body=body, strip_nulls=strip_nulls,
                          location=location, fmt=fmt, count_inserted=count_inserted)


def _mutation_where(root: ReadNode, alias: str, params: Params) -> str:
    """WHERE of an UPDATE/DELETE: the filters, and with `limit` the ctids of the first rows by `order`."""
    conds = [condition_sql(alias, c, _all_columns(root), params) for c in root.conditions]
    if root.limit is not None:
        la = quote_ident("pgrst_l")
        inner = [condition_sql(la, c, _all_columns(root), params) for c in root.conditions]
        sub = f"SELECT {la}.ctid FROM {qualified(root.relation)} AS {la}"
        if inner:
            sub += " WHERE " + " AND ".join(inner)
        if root.order:
            sub += " ORDER BY " + ", ".join(_order_sql(la, root, t, params) for t in root.order)
        sub += f" LIMIT {params.add(root.limit)}::int8"
        if root.offset:
            sub += f" OFFSET {params.add(root.offset)}::int8"
        conds.append(f"{alias}.ctid = ANY(ARRAY({sub}))")
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def update_statement(root: ReadNode, columns: Sequence[Column], payload: str, *, body: bool,
                     strip_nulls: bool = False, fmt: str = "json") -> Statement:
    params = Params()
    table = qualified(root.relation)
    alias = quote_ident("pgrst_t0")
    where = _mutation_where(root, alias, params)
    wanted = returning_columns(root, body, ())
    if not columns:
        cols = "*" if wanted is None else (", ".join(quote_ident(c) for c in wanted) or "1")
        mutation = f"SELECT {cols} FROM {table} AS {alias} WHERE FALSE"
    else:
        p = params.add(payload)
        r = quote_ident("pgrst_r")
        sets = ", ".join(f"{quote_ident(c.name)} = {r}.{quote_ident(c.name)}" for c in columns)
        mutation = (f"UPDATE {table} AS {alias} SET {sets} FROM (SELECT * FROM json_populate_record("
                    f"NULL::{table}, {p}::json)) AS {r}{where}{_returning(wanted)}")
    return _wrap_mutation(mutation, root, params, returning=True, body=body, strip_nulls=strip_nulls, fmt=fmt)


def delete_statement(root: ReadNode, *, body: bool, strip_nulls: bool = False, fmt: str = "json") -> Statement:
    params = Params()
    alias = quote_ident("pgrst_t0")
    where = _mutation_where(root, alias, params)
    returning = _returning(returning_columns(root, body, ()))
    mutation = f"DELETE FROM {qualified(root.relation)} AS {alias}{where}{returning}"
    return _wrap_mutation(mutation, root, params, returning=True, body=body, strip_nulls=strip_nulls, fmt=fmt)


# -- functions --------------------------------------------------------------------------------------------------

def call_parts(fn: Function, arg_names: Sequence[str], params: Params, payload: str | None,
               many: bool = False) -> tuple[str, str]:
    """(a FROM item decoding the JSON args or "", the call expression) for `fn` with named args.
    `many`: the payload is an array of argument objects, one row (so one call) per object."""
    target = qualified((fn.schema, fn.name))
    a = quote_ident("pgrst_args")
    if fn.single_unnamed and not many:  # the whole payload is the one positional argument
        return "", f"{target}({params.add(payload or '{}')}::text::{fn.params[0].type})"
    if not arg_names:
        if many:
            return f"json_array_elements({params.add(payload or '[]')}::json) AS {a}", f"{target}()"
        return "", f"{target}()"
    p = params.add(payload or ("[]" if many else "{}"))
    types = {prm.name: prm.type for prm in fn.params}
    variadic = {prm.name for prm in fn.params if prm.variadic}
    defs = ", ".join(f"{quote_ident(n)} {types[n]}" for n in arg_names)
    args = [("VARIADIC " if n in variadic else "") + f"{quote_ident(n)} := {a}.{quote_ident(n)}" for n in arg_names]
    call = f"{target}({', '.join(args)})"
    decode = "json_to_recordset" if many else "json_to_record"
    return f"{decode}({p}::json) AS {a}({defs})", call


def call_from(fn: Function, arg_names: Sequence[str], params: Params, payload: str | None,
              column_alias: str | None = None, many: bool = False) -> str:
    """FROM items calling a composite/set-returning `fn`, aliased as pgrst_t0 (like a table)."""
    args_from, call = call_parts(fn, arg_names, params, payload, many)
    col = f"({quote_ident(column_alias)})" if column_alias else ""
    item = f"{call} AS {quote_ident('pgrst_t0')}{col}"
    return f"{args_from} CROSS JOIN LATERAL {item}" if args_from else item


def scalar_call_statement(fn: Function, arg_names: Sequence[str], payload: str | None,
                          many: bool = False) -> Statement:
    params = Params()
    args_from, call = call_parts(fn, arg_names, params, payload, many)
    if many:  # a bulk call of a void function: one call per argument row, in one result row
        return Statement(f"SELECT NULL::int8 AS total, count(*) AS page, NULL::bytea AS body, {RESPONSE_GUCS} "
                         f"FROM (SELECT {call} AS \"v\" FROM {args_from}) AS \"pgrst_v\"", params.values)
    body = "NULL::bytea" if fn.shape == "void" else f"convert_to(to_json({call})::text, 'UTF8')"
    if fn.shape == "void":
        args_from = f"{args_from} CROSS JOIN LATERAL (SELECT {call}) AS \"pgrst_v\"" if args_from else \
            f"(SELECT {call}) AS \"pgrst_v\""
    src = f" FROM {args_from}" if args_from else ""
    return Statement(f"SELECT NULL::int8 AS total, 1::int8 AS page, {body} AS body, {RESPONSE_GUCS}{src}",
                     params.values)
