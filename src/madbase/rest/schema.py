"""The schema cache model: relations, columns, keys, relationships and functions of the exposed schemas.

`SchemaCache` is an immutable snapshot; the planner reads it and never does I/O. `derive_relationships`
(pure) turns foreign keys into PostgREST's relationships: many-to-one, one-to-many, one-to-one, many-to-many
through a junction table whose foreign-key columns are all part of its primary key, and the same
relationships for views whose columns expose the key columns of their base tables (matched by name).
`introspect` reads one snapshot from the catalogs in a few queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

QName = tuple[str, str]  # (schema, name)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # format_type(oid, NULL): a trusted, properly quoted type name
    nullable: bool = True
    default: str | None = None
    generated: bool = False
    description: str | None = None
    computed: tuple[QName, QName] | None = None  # ((schema, function), its row's relation): a computed field


@dataclass(slots=True)
class Table:
    schema: str
    name: str
    kind: str  # r, p, f, v, m (c: composite type, not an endpoint)
    columns: dict[str, Column] = field(default_factory=dict)
    pk: tuple[str, ...] = ()
    uniques: list[tuple[str, ...]] = field(default_factory=list)
    description: str | None = None

    @property
    def qname(self) -> QName:
        return (self.schema, self.name)

    @property
    def is_view(self) -> bool:
        return self.kind in ("v", "m")


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    table: QName
    columns: tuple[str, ...]
    ref_table: QName
    ref_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Relationship:
    """A way to embed `target` into rows of `source`."""

    kind: Literal["m2o", "o2m", "o2o", "m2m"]
    source: QName
    target: QName
    constraint: str
    # Join pairs: (source column, target column); for m2m: (source column, junction column).
    pairs: tuple[tuple[str, str], ...]
    junction: QName | None = None
    # m2m only: (junction column, target column) and the target-side constraint name.
    target_pairs: tuple[tuple[str, str], ...] = ()
    target_constraint: str = ""
    function: QName | None = None  # a computed relationship: fn(source row) returns target rows
    # True when the foreign key is on the target's side (o2m, and the referenced side of an o2o)
    reverse: bool = field(default=False, compare=False)

    @property
    def to_one(self) -> bool:
        return self.kind in ("m2o", "o2o")


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str
    has_default: bool
    variadic: bool = False


@dataclass(slots=True)
class Function:
    schema: str
    name: str
    params: tuple[Param, ...]
    return_type: str
    returns_set: bool
    volatility: str  # i, s, v
    # What comes back: 'void', 'scalar', or 'composite' (with its columns, and its relation if a table/view).
    shape: Literal["void", "scalar", "composite"]
    columns: dict[str, Column] = field(default_factory=dict)
    relation: QName | None = None
    description: str | None = None

    single_row: bool = False  # RETURNS SETOF … ROWS 1: embeds as to-one, as PostgREST reads it

    @property
    def single_unnamed(self) -> bool:
        """One unnamed parameter: the call passes the whole body positionally (PostgREST's OnePosParam)."""
        return len(self.params) == 1 and not self.params[0].name

    @property
    def callable(self) -> bool:
        """PostgREST's rule: a function whose parameters are all unnamed is only callable when that is a single
        json/jsonb/text/xml/bytea parameter (it takes the whole body); the others are left out of the cache."""
        if not self.params or any(p.name for p in self.params):
            return True
        return len(self.params) == 1 and self.params[0].type in RAW_BODY_TYPES

    def sort_key(self) -> tuple[Any, ...]:
        """PostgREST's order of overloads (fewest parameters first), which its PGRST203 candidate list shows."""
        return (len(self.params), self.description is not None, self.description or "",
                [(p.name, p.type, not p.has_default, p.variadic) for p in self.params])


RAW_BODY_TYPES = ("json", "jsonb", "text", "xml", "bytea")
_KIND_ORDER = {"o2m": 0, "m2o": 1, "o2o": 2, "m2m": 3}


def relationship_sort_key(r: Relationship, tables: dict[QName, Table]) -> tuple[Any, ...]:
    """PostgREST's order of relationships (by target, self, cardinality, constraint, columns, views last), so
    ambiguity errors list their candidates the same way on every start."""
    def is_view(q: QName) -> bool:
        t = tables.get(q)
        return t is not None and t.is_view

    return (r.function is not None, r.target, r.source == r.target, _KIND_ORDER[r.kind],
            r.junction or ("", ""), r.constraint, r.target_constraint, r.pairs, r.target_pairs, r.function or ("", ""),
            is_view(r.source), is_view(r.target))


@dataclass(slots=True)
class SchemaCache:
    schemas: tuple[str, ...]
    tables: dict[QName, Table] = field(default_factory=dict)
    relationships: dict[QName, list[Relationship]] = field(default_factory=dict)
    functions: dict[QName, list[Function]] = field(default_factory=dict)
    version: int = 0
    computed: dict[QName, dict[str, Column]] = field(default_factory=dict)  # computed fields per relation
    memo: dict[tuple[str, ...], bytes] = field(default_factory=dict)  # derived documents (OpenAPI) of this snapshot
    plans: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # planned reads by shape (rest.plancache)

    def table(self, schema: str, name: str) -> Table | None:
        t = self.tables.get((schema, name))
        return t if t is not None and t.kind != "c" else None

    def table_names(self, schema: str) -> list[str]:
        return [n for (s, n), t in self.tables.items() if s == schema and t.kind != "c"]


def _covers(cols: Sequence[str], key: Sequence[str]) -> bool:
    return bool(key) and set(cols) == set(key)


ViewColumns = dict[QName, dict[str, tuple[QName, str]]]  # view → {view column: (base relation, base column)}


def resolve_view_columns(raw: ViewColumns) -> ViewColumns:
    """Follow views of views down to base relations (bounded depth)."""
    out: ViewColumns = {}
    for view, cols in raw.items():
        resolved: dict[str, tuple[QName, str]] = {}
        for vcol, (rel, col) in cols.items():
            for _ in range(8):
                inner = raw.get(rel)
                if inner is None or col not in inner:
                    break
                rel, col = inner[col]
            resolved[vcol] = (rel, col)
        out[view] = resolved
    return out


def derive_relationships(tables: dict[QName, Table], fks: Sequence[ForeignKey],
                         view_cols: ViewColumns) -> dict[QName, list[Relationship]]:
    """Relationships of every relation, PostgREST style (see module docstring)."""
    rels: dict[QName, list[Relationship]] = {}

    def add(r: Relationship) -> None:
        rels.setdefault(r.source, []).append(r)

    # Stand-ins: a relation stands for itself; a view exposing all the key columns of its base stands in too,
    # with its own column names.
    def standins(base: QName, cols: Sequence[str]) -> list[tuple[QName, dict[str, str]]]:
        out = [(base, {c: c for c in cols})]
        for view, mapping in view_cols.items():
            if view not in tables:
                continue
            names: dict[str, str] = {}
            for c in cols:
                vcol = next((v for v, (r, bc) in mapping.items() if r == base and bc == c), None)
                if vcol is None:
                    break
                names[c] = vcol
            else:
                out.append((view, names))
        return out

    for fk in fks:
        src = tables.get(fk.table)
        dst = tables.get(fk.ref_table)
        if src is None or dst is None:
            continue
        one_to_one = _covers(fk.columns, src.pk) or any(_covers(fk.columns, u) for u in src.uniques)
        for s, sm in standins(fk.table, fk.columns):
            for t, tm in standins(fk.ref_table, fk.ref_columns):
                pairs = tuple((sm[a], tm[b]) for a, b in zip(fk.columns, fk.ref_columns, strict=True))
                rev = tuple((b, a) for a, b in pairs)
                add(Relationship("o2o" if one_to_one else "m2o", s, t, fk.name, pairs))
                add(Relationship("o2o" if one_to_one else "o2m", t, s, fk.name, rev, reverse=True))
    # many-to-many through junctions
    by_table: dict[QName, list[ForeignKey]] = {}
    for fk in fks:
        by_table.setdefault(fk.table, []).append(fk)
    for jname, jfks in by_table.items():
        junction = tables.get(jname)
        if junction is None or len(jfks) < 2:
            continue
        pk = set(junction.pk)
        for a in jfks:
            for b in jfks:
                if a is b or not set(a.columns) <= pk or not set(b.columns) <= pk:
                    continue
                if a.ref_table not in tables or b.ref_table not in tables:
                    continue
                for s, sm in standins(a.ref_table, a.ref_columns):
                    for t, tm in standins(b.ref_table, b.ref_columns):
                        pairs = tuple((sm[rc], c) for c, rc in zip(a.columns, a.ref_columns, strict=True))
                        tpairs = tuple((c, tm[rc]) for c, rc in zip(b.columns, b.ref_columns, strict=True))
                        add(Relationship("m2m", s, t, a.name, pairs, jname, tpairs, b.name))
    return rels


# -- introspection ------------------------------------------------------------------------------------------

COLUMNS_SQL = """
select n.nspname::text as schema, c.relname::text as name, c.relkind::text as kind,
       obj_description(c.oid, 'pg_class') as tdesc,
       a.attname::text as col,
       -- without typmod (values are cast to it), except where that would mean length 1 (char, bit)
       case when a.atttypid in ('bpchar'::regtype, 'bit'::regtype, '_bpchar'::regtype, '_bit'::regtype)
            then format_type(a.atttypid, a.atttypmod) else format_type(a.atttypid, null) end as type,
       not a.attnotnull as nullable,
       -- as PostgREST: a BY DEFAULT identity defaults to its sequence, a domain to the domain's default
       case when a.attidentity = 'd' then format('nextval(%L)', seq.objid::regclass)
            when d.adbin is null and ty.typbasetype <> 0 then pg_get_expr(ty.typdefaultbin, 0)
            else pg_get_expr(d.adbin, d.adrelid) end as dflt,
       a.attgenerated::text <> '' as generated,
       col_description(c.oid, a.attnum) as cdesc
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
left join pg_type ty on ty.oid = a.atttypid
left join pg_depend seq on seq.refobjid = a.attrelid and seq.refobjsubid = a.attnum and seq.deptype = 'i'
  and seq.classid = 'pg_class'::regclass and a.attidentity = 'd'
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p', 'c')
order by n.nspname, c.relname, a.attnum
"""

KEYS_SQL = """
select n.nspname::text as schema, c.relname::text as name, con.contype::text as type,
       array(select a.attname::text from unnest(con.conkey) with ordinality k(num, ord)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.ord) as cols
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
where con.contype in ('p', 'u') and n.nspname = any($1::text[])
order by 1, 2, 3, con.conname
"""

FKS_SQL = """
select con.conname::text as name, n1.nspname::text as s1, c1.relname::text as t1,
       array(select a.attname::text from unnest(con.conkey) with ordinality k(num, ord)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num order by k.ord) as cols1,
       n2.nspname::text as s2, c2.relname::text as t2,
       array(select a.attname::text from unnest(con.confkey) with ordinality k(num, ord)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num order by k.ord) as cols2
from pg_constraint con
join pg_class c1 on c1.oid = con.conrelid join pg_namespace n1 on n1.oid = c1.relnamespace
join pg_class c2 on c2.oid = con.confrelid join pg_namespace n2 on n2.oid = c2.relnamespace
where con.contype = 'f' and (n1.nspname = any($1::text[]) or n2.nspname = any($1::text[]))
order by 2, 3, 1
"""

# View columns → base columns, from the stored rewrite rule's target entries (the last entry of a name wins:
# the view's own target list is printed after its range table and subqueries).
VIEW_DEPS_SQL = r"""
select vn.nspname::text as vs, v.relname::text as vname, m.e[1] as vcol,
       tn.nspname::text as ts, t.relname::text as tname, a.attname::text as col
from pg_rewrite r
join pg_class v on v.oid = r.ev_class
join pg_namespace vn on vn.oid = v.relnamespace
cross join lateral regexp_matches(r.ev_action::text,
  ':resname (\S+) :ressortgroupref \d+ :resorigtbl (\d+) :resorigcol (\d+)', 'g') with ordinality as m(e, ord)
join pg_class t on t.oid = m.e[2]::oid
join pg_namespace tn on tn.oid = t.relnamespace
join pg_attribute a on a.attrelid = t.oid and a.attnum = m.e[3]::int
where v.relkind in ('v', 'm') and r.rulename = '_RETURN' and vn.nspname = any($1::text[]) and m.e[2] <> '0'
order by 1, 2, m.ord
"""

FUNCTIONS_SQL = """
select n.nspname::text as schema, p.proname::text as name, p.proretset as retset, p.provolatile::text as vol,
       format_type(p.prorettype, null) as rettype, rt.typtype::text as typtype,
       rn.nspname::text as rel_schema, rc.relname::text as rel_name, rc.relkind::text as rel_kind,
       coalesce(p.proargnames, '{}')::text[] as argnames,
       array(select format_type(t, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
             with ordinality u(t, o) order by o) as argtypes,
       coalesce(p.proargmodes::text[], '{}') as argmodes, p.pronargdefaults as ndefaults,
       obj_description(p.oid, 'pg_proc') as descr,
       an.nspname::text as arg_rel_schema, ac.relname::text as arg_rel_name,
       p.proretset and p.prorows = 1 as single_row
from pg_proc p
left join pg_type at on at.oid = p.proargtypes[0] and p.pronargs = 1
left join pg_class ac on ac.oid = at.typrelid and ac.relkind in ('r', 'v', 'm', 'f', 'p')
left join pg_namespace an on an.oid = ac.relnamespace
join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
left join pg_class rc on rc.oid = rt.typrelid
left join pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = any($1::text[]) and p.prokind = 'f'
order by 1, 2, p.oid
"""


def build_cache(schemas: Sequence[str], column_rows: Sequence[Any], key_rows: Sequence[Any],
                fk_rows: Sequence[Any], dep_rows: Sequence[Any], fn_rows: Sequence[Any],
                version: int = 0) -> SchemaCache:
    tables: dict[QName, Table] = {}
    for r in column_rows:
        q = (r["schema"], r["name"])
        t = tables.get(q)
        if t is None:
            t = tables[q] = Table(r["schema"], r["name"], r["kind"], description=r["tdesc"])
        if r["col"] is not None:
            t.columns[r["col"]] = Column(r["col"], r["type"], bool(r["nullable"]), r["dflt"], bool(r["generated"]),
                                         r["cdesc"])
    for r in key_rows:
        t = tables.get((r["schema"], r["name"]))
        if t is None:
            continue
        if r["type"] == "p":
            t.pk = tuple(r["cols"])
        else:
            t.uniques.append(tuple(r["cols"]))
    fks = [ForeignKey(r["name"], (r["s1"], r["t1"]), tuple(r["cols1"]), (r["s2"], r["t2"]), tuple(r["cols2"]))
           for r in fk_rows]
    raw_views: ViewColumns = {}
    for r in dep_rows:
        raw_views.setdefault((r["vs"], r["vname"]), {})[r["vcol"]] = ((r["ts"], r["tname"]), r["col"])
    deps = resolve_view_columns(raw_views)
    functions: dict[QName, list[Function]] = {}
    computed: dict[QName, dict[str, Column]] = {}
    computed_rels: list[Relationship] = []
    for r in fn_rows:
        fn = _function(r, tables)
        if fn is None:
            continue
        if fn.callable:
            functions.setdefault((fn.schema, fn.name), []).append(fn)
        rel = (r.get("arg_rel_schema"), r.get("arg_rel_name"))
        owner = tables.get(rel) if rel[0] is not None else None
        if owner is None:
            continue
        if fn.shape == "scalar" and not fn.returns_set and fn.name not in owner.columns:
            computed.setdefault(owner.qname, {})[fn.name] = Column(fn.name, fn.return_type,
                                                                  computed=((fn.schema, fn.name), owner.qname))
        elif fn.shape == "composite" and fn.relation is not None and fn.relation in tables:
            to_many = fn.returns_set and not fn.single_row
            computed_rels.append(Relationship("o2m" if to_many else "m2o", owner.qname, fn.relation,
                                              fn.name, (), function=(fn.schema, fn.name)))
    for overloads in functions.values():
        overloads.sort(key=Function.sort_key)
    relationships = derive_relationships(tables, fks, deps)
    for crel in computed_rels:
        relationships.setdefault(crel.source, []).append(crel)
    for rels in relationships.values():
        rels.sort(key=lambda r: relationship_sort_key(r, tables))
    return SchemaCache(tuple(schemas), tables, relationships, functions, version, computed)


def _param_type(t: str) -> str:
    """Parameter types have no length; `character` alone would mean char(1) in a cast, so use bpchar."""
    return {"character": "bpchar", "character[]": "bpchar[]", "bit": "varbit", "bit[]": "varbit[]"}.get(t, t)


def _function(r: Any, tables: dict[QName, Table]) -> Function | None:
    names: list[str] = list(r["argnames"])
    types: list[str] = list(r["argtypes"])
    modes: list[str] = list(r["argmodes"]) or ["i"] * len(types)
    names += [""] * (len(types) - len(names))
    ins = [(n, t, m == "v") for n, t, m in zip(names, types, modes, strict=True) if m in ("i", "b", "v")]
    outs = [(n, t) for n, t, m in zip(names, types, modes, strict=True) if m in ("o", "b", "t")]
    ndef = int(r["ndefaults"] or 0)
    params = tuple(Param(n, _param_type(t), i >= len(ins) - ndef, v) for i, (n, t, v) in enumerate(ins))
    columns: dict[str, Column] = {}
    relation: QName | None = None
    shape: Literal["void", "scalar", "composite"]
    if r["rettype"] == "void":
        shape = "void"
    elif r["rel_name"] is not None:
        shape = "composite"
        relation = (r["rel_schema"], r["rel_name"])
        rel = tables.get(relation)
        if rel is not None:
            columns = dict(rel.columns)
        if r["rel_kind"] == "c":
            relation = None
    elif r["rettype"] == "record" and outs:
        shape = "composite"
        columns = {n: Column(n, t) for n, t in outs}
    elif r["rettype"] == "record":
        return None  # anonymous record without OUT columns cannot be described
    else:
        shape = "scalar"
    return Function(r["schema"], r["name"], params, r["rettype"], bool(r["retset"]), r["vol"], shape, columns,
                    relation, r["descr"], bool(r.get("single_row")))


async def introspect(conn: Any, schemas: Sequence[str], version: int = 0) -> SchemaCache:
    names = list(schemas)
    cols = await conn.fetch(COLUMNS_SQL, names)
    keys = await conn.fetch(KEYS_SQL, names)
    fks = await conn.fetch(FKS_SQL, names)
    deps = await conn.fetch(VIEW_DEPS_SQL, names)
    fns = await conn.fetch(FUNCTIONS_SQL, names)
    return build_cache(names, cols, keys, fks, deps, fns, version)
