"""What `gen types typescript` needs from a database's catalog, read in a few queries: the relations
(tables, views, materialized views, foreign tables), their columns, foreign keys, functions, enums,
composite types, and every type any of them mentions (resolved by OID, so names never need quoting).

Schemas are bound as a parameter (text[]); nothing here is built from client text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_RELATIONS = """
select c.oid::int8 as oid, n.nspname as schema, c.relname as name, c.relkind::text as kind,
       c.reltype::int8 as rowtype,
       case when c.relkind in ('v', 'f') then (pg_relation_is_updatable(c.oid, false) & 20) = 20 else false end
         as updatable
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'm', 'f') and not c.relispartition
order by 2, 3
"""

_COLUMNS = """
select a.attrelid::int8 as rel, a.attname as name, a.atttypid::int8 as type, not a.attnotnull as nullable,
       a.atthasdef as has_default, a.attidentity::text as identity, a.attgenerated::text as generated,
       case when c.relkind in ('v', 'f') then pg_column_is_updatable(c.oid, a.attnum, false) else true end
         as updatable
from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c') and a.attnum > 0
  and not a.attisdropped
order by a.attrelid, a.attname
"""

# foreign keys between relations of the same schema (as Supabase's generator lists them), with their columns
# in key order, and whether the key's columns are unique on their table (a one-to-one relationship)
_FOREIGN_KEYS = """
select c.conname as name, c.conrelid::int8 as rel, c.confrelid::int8 as ref_rel,
       array(select a.attname from unnest(c.conkey) with ordinality k(num, pos)
             join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.num order by k.pos) as columns,
       array(select a.attname from unnest(c.confkey) with ordinality k(num, pos)
             join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.num order by k.pos) as ref_columns,
       exists(select 1 from pg_index i where i.indrelid = c.conrelid and i.indisunique and i.indpred is null
              and i.indnkeyatts = cardinality(c.conkey)
              and (i.indkey::int2[])[0:i.indnkeyatts - 1] @> c.conkey
              and c.conkey @> (i.indkey::int2[])[0:i.indnkeyatts - 1]) as one_to_one
from pg_constraint c join pg_class t on t.oid = c.conrelid join pg_namespace n on n.oid = t.relnamespace
join pg_class r on r.oid = c.confrelid
where c.contype = 'f' and n.nspname = any($1::text[]) and r.relnamespace = t.relnamespace
"""

# the relations each view (or materialized view) reads, for the relationships it inherits from them
_VIEW_BASES = """
select distinct v.oid::int8 as view, d.refobjid::int8 as base
from pg_class v join pg_namespace n on n.oid = v.relnamespace
join pg_rewrite r on r.ev_class = v.oid
join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid and d.refclassid = 'pg_class'::regclass
where n.nspname = any($1::text[]) and v.relkind in ('v', 'm') and d.refobjid <> v.oid
"""

_FUNCTIONS = """
select p.oid::int8 as oid, n.nspname as schema, p.proname as name, p.prorettype::int8 as returns,
       p.proretset as setof, coalesce(p.proallargtypes::int8[], p.proargtypes::int8[]) as arg_types,
       coalesce(p.proargmodes::text[], array_fill('i'::text, array[p.pronargs::int])) as arg_modes,
       coalesce(p.proargnames, array_fill(''::text, array[cardinality(coalesce(p.proallargtypes::int8[],
                                                                               p.proargtypes::int8[]))]))
         as arg_names,
       p.pronargdefaults as defaults
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = any($1::text[]) and p.prokind = 'f'
  and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
  and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
order by 2, 3, 1
"""

_TYPES = """
select t.oid::int8 as oid, n.nspname as schema, t.typname as name, t.typtype::text as kind,
       t.typelem::int8 as elem, t.typbasetype::int8 as base, t.typrelid::int8 as rel,
       coalesce(c.relkind::text, '') as rel_kind, t.typcategory::text as category,
       case when t.typtype = 'e' then array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid
                                            order by e.enumsortorder) else '{}'::text[] end as labels
from pg_type t join pg_namespace n on n.oid = t.typnamespace left join pg_class c on c.oid = t.typrelid
where t.oid = any($1::int8[]::oid[]) or (n.nspname = any($2::text[]) and (t.typtype = 'e' or c.relkind = 'c'))
"""


@dataclass
class Catalog:
    schemas: list[str]
    relations: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # relation oid → its columns
    foreign_keys: list[dict[str, Any]] = field(default_factory=list)
    view_bases: dict[int, set[int]] = field(default_factory=dict)  # view oid → the relations it reads
    functions: list[dict[str, Any]] = field(default_factory=list)
    types: dict[int, dict[str, Any]] = field(default_factory=dict)


async def existing_schemas(conn: Any, names: list[str]) -> list[str]:
    rows = await conn.fetch("select nspname from pg_namespace where nspname = any($1::text[]) order by 1", names)
    return [r["nspname"] for r in rows]


async def read(conn: Any, schemas: list[str]) -> Catalog:
    """The catalog of `schemas` (one repeatable-read snapshot)."""
    cat = Catalog(schemas)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cat.relations = [dict(r) for r in await conn.fetch(_RELATIONS, schemas)]
        for r in await conn.fetch(_COLUMNS, schemas):
            cat.columns.setdefault(r["rel"], []).append(dict(r))
        cat.foreign_keys = [dict(r) for r in await conn.fetch(_FOREIGN_KEYS, schemas)]
        for r in await conn.fetch(_VIEW_BASES, schemas):
            cat.view_bases.setdefault(r["view"], set()).add(r["base"])
        cat.functions = [dict(r) for r in await conn.fetch(_FUNCTIONS, schemas)]
        wanted = {c["type"] for cols in cat.columns.values() for c in cols}
        wanted |= {f["returns"] for f in cat.functions} | {t for f in cat.functions for t in f["arg_types"]}
        # element and base types too, a few rounds deep (arrays of domains over enums …)
        for _ in range(4):
            rows = await conn.fetch(_TYPES, sorted(wanted), schemas)
            for r in rows:
                cat.types[r["oid"]] = dict(r)
            more = {t for r in rows for t in (r["elem"], r["base"]) if t} - set(cat.types)
            if not more:
                break
            wanted |= more
    return cat
