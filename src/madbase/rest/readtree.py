"""The resolved read tree: an `ApiRequest`'s query params checked against a `SchemaCache` snapshot (pure).

Every database plan (read, mutation, call) builds one: `TreeBuilder.build` produces a tree of `ReadNode`s (one
per relation read, embedded ones hanging off their parent with the relationship used) in which every column and
relation name has been checked against the cache, so the SQL stage only quotes names that exist. Unknown names
fail here, before any SQL runs: 42703 for a column, PGRST200/201 for relationships, PGRST108 for filters on
resources not embedded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from madbase.rest import errors
from madbase.rest.ast import (
    Condition,
    EmbedPath,
    Field,
    Filter,
    Logic,
    OrderTerm,
    QueryParams,
    SelectEmbed,
    SelectItem,
)
from madbase.rest.schema import Column, QName, Relationship, SchemaCache


@dataclass(slots=True)
class Output:
    """One selected column: `expr` rendered from `field` on this node, exposed as `name`."""

    field: Field
    name: str
    cast: str | None
    column: Column
    aggregate: str | None = None  # sum/avg/max/min/count; `count()` has field "*"


@dataclass(slots=True)
class EmbedFilter:
    key: str
    negated: bool  # False: `is.null`, True: `not.is.null`


@dataclass(slots=True)
class RelOrder:
    rel: Relationship
    target_columns: dict[str, Column]
    term: OrderTerm


@dataclass(slots=True)
class ReadNode:
    relation: QName
    name: str  # the relation's name, as errors show it
    columns: dict[str, Column]
    key: str = ""  # output key (alias or name) in the parent
    outputs: list[Output | ReadNode] = field(default_factory=list)
    star: bool = False
    conditions: list[Condition] = field(default_factory=list)
    embed_filters: list[EmbedFilter] = field(default_factory=list)
    order: list[OrderTerm | RelOrder] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    rel: Relationship | None = None
    join: Literal["inner", "left"] = "left"
    spread: bool = False
    count_key: str | None = None  # `child(count)`: the embed yields [{"count": n}]
    computed: dict[str, Column] = field(default_factory=dict)  # computed fields this request uses
    depth: int = 0  # 0 for the root, 1 for its embeds, ...

    def embeds(self) -> list[ReadNode]:
        return [o for o in self.outputs if isinstance(o, ReadNode)]

    @property
    def sql_name(self) -> str:
        """The relation as PostgREST's SQL aliases it, which its errors name: embedded ones `<table>_<depth>`."""
        return f"{self.name}_{self.depth}" if self.depth else self.name

    @property
    def empty(self) -> bool:
        """`users()`: an embed that selects nothing (nor do its own embeds) is joined, for its filters and
        `!inner`, but leaves no key in the rows (PostgREST's empty embed)."""
        return (not self.star and self.count_key is None
                and all(isinstance(o, ReadNode) and o.empty for o in self.outputs))

    def output_names(self) -> list[str]:
        """Keys this node's rows have (what a spread of it inlines into its parent)."""
        if self.count_key is not None:
            return [self.count_key]
        names: list[str] = list(self.columns) if self.star else []
        for o in self.outputs:
            if isinstance(o, Output):
                names.append(o.name)
            elif o.spread:
                names.extend(o.output_names())
            elif not o.empty:
                names.append(o.key)
        return names


def _rel_label(r: Relationship) -> dict[str, str]:
    card = {"m2o": "many-to-one", "o2m": "one-to-many", "o2o": "one-to-one", "m2m": "many-to-many"}[r.kind]
    if r.junction is not None:
        rel = (f"{r.junction[1]} using {r.constraint}({', '.join(j for _, j in r.pairs)}) and "
               f"{r.target_constraint}({', '.join(j for j, _ in r.target_pairs)})")
        hint = r.junction[1]
    else:
        rel = (f"{r.constraint} using {r.source[1]}({', '.join(a for a, _ in r.pairs)}) and "
               f"{r.target[1]}({', '.join(b for _, b in r.pairs)})")
        hint = r.constraint
    return {"cardinality": card, "embedding": f"{r.source[1]} with {r.target[1]}", "relationship": rel,
            "hint": hint}


def find_relationship(cache: SchemaCache, source: QName, name: str, hint: str | None) -> Relationship:
    """PostgREST's `findRel`: the one relationship of `source` that `name` (and `hint`) designate.

    A computed relationship is chosen by its function's name. A self-referencing foreign key gives two
    relationships: the table's name designates the children (one-to-many), the column's name the parent
    (many-to-one); a hint on the table's name is the children's column. Otherwise the name is the target's,
    or a constraint or single foreign-key column name, but those two never designate a view (views carry
    their base tables' keys, so they would always be ambiguous); a hint is a constraint, a column of either
    side or a junction table."""
    rels = [r for r in cache.relationships.get(source, ()) if r.target[0] == source[0]]
    found = [r for r in rels if r.function is not None and r.function[1] == name]
    if found:
        return found[0]
    found = [r for r in rels if r.function is None and _designates(cache, r, name, hint)]
    if not found:
        parents = None if rels else [q[1] for q, rs in cache.relationships.items()
                                     if q[0] == source[0] and any(r.target[0] == source[0] for r in rs)]
        raise errors.no_relationship(source[1], name, source[0], [r.target[1] for r in rels], hint, parents)
    if len(found) > 1:
        options = [_rel_label(r) for r in found]
        hints = [f"{r.target[1]}!{o.pop('hint')}" for r, o in zip(found, options, strict=True)]
        raise errors.ambiguous_relationship(source[1], name, options, hints)
    return found[0]


def _single_col(r: Relationship, side: int) -> str | None:
    if r.junction is not None or len(r.pairs) != 1:
        return None
    return r.pairs[0][side]


def _designates(cache: SchemaCache, r: Relationship, name: str, hint: str | None) -> bool:
    if r.source == r.target:  # a self relationship
        if hint is None:
            return ((r.target[1] == name and r.kind == "o2m")
                    or (r.kind == "m2o" and _single_col(r, 0) == name))
        return r.target[1] == name and r.kind == "o2m" and _single_col(r, 1) == hint
    if hint is None:
        if r.target[1] == name:
            return True
        target = cache.tables.get(r.target)
        if target is None or target.is_view:
            return False
        return (r.junction is None and r.constraint == name) or _single_col(r, 0) == name
    if r.target[1] != name:
        return False
    if r.junction is not None:
        return hint == r.junction[1]
    return hint == r.constraint or hint in (_single_col(r, 0), _single_col(r, 1))


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """The project settings planning depends on (part of the plan memo's key)."""

    aggregates: bool = False
    max_rows: int | None = None  # db-max-rows: a cap on the rows of a read / set-returning call


class TreeBuilder:
    """Resolves one request's select, filters, order and ranges into `ReadNode`s of the snapshot."""

    def __init__(self, cache: SchemaCache, options: PlanOptions = PlanOptions()) -> None:
        self.cache = cache
        self.options = options

    def build(self, relation: QName, name: str, columns: dict[str, Column], q: QueryParams) -> ReadNode:
        root = ReadNode(relation, name, columns)
        self._select(root, q.select)
        paths: dict[EmbedPath, ReadNode] = {(): root}
        self._index(root, (), paths)
        for path, conds in q.conditions.items():
            node = self._node(paths, path)
            for cond in conds:
                self._condition(node, cond, top=True)
        for path, terms in q.order.items():
            node = self._node(paths, path)
            node.order = [self._order(node, t) for t in terms]
        for path, n in q.limit.items():
            self._node(paths, path).limit = n
        for path, n in q.offset.items():
            self._node(paths, path).offset = n
        return root

    def _index(self, node: ReadNode, path: EmbedPath, paths: dict[EmbedPath, ReadNode]) -> None:
        for child in node.embeds():
            p = (*path, child.key)
            paths[p] = child
            self._index(child, p, paths)

    def _node(self, paths: dict[EmbedPath, ReadNode], path: EmbedPath) -> ReadNode:
        node = paths.get(path)
        if node is None:
            raise errors.not_embedded(".".join(path))
        return node

    # -- select --------------------------------------------------------------------------------------------
    def _select(self, node: ReadNode, items: tuple[SelectItem, ...]) -> None:
        embed_keys: set[str] = set()
        for item in items:
            if isinstance(item, SelectEmbed):
                child = self._embed(node, item)
                if child.key in embed_keys:
                    # PostgREST names the join `<parent>_<embed>_<depth>`; the same embed twice is a duplicate alias
                    raise errors.ApiError(400, "42712", f'table name "{node.relation[1]}_{child.key}_{child.depth}" '
                                          "specified more than once")
                embed_keys.add(child.key)
                node.outputs.append(child)
                continue
            if item.star:
                node.star = True
                continue
            if (node.rel is not None and item.field.name == "count" and not item.field.path
                    and "count" not in node.columns and len(items) == 1):
                node.count_key = item.alias or "count"  # the long-standing `comments(count)` form
                continue
            if item.aggregate is not None and not self.options.aggregates:
                raise errors.aggregates_disabled()
            if item.aggregate == "count" and item.field.name == "count" and "count" not in node.columns:
                node.outputs.append(Output(Field("*"), item.alias or "count", item.cast, Column("count", "bigint"),
                                           "count"))
                continue
            col = self._column(node, item.field.name)
            name = item.alias or (item.aggregate if item.aggregate else item.field.output_name)
            node.outputs.append(Output(item.field, name, item.cast, col, item.aggregate))

    def _column(self, node: ReadNode, name: str) -> Column:
        col = node.columns.get(name)
        if col is None:
            col = self.cache.computed.get(node.relation, {}).get(name)
            if col is None:
                raise errors.undefined_column(node.sql_name, name)
            node.computed[name] = col
        return col

    def _embed(self, parent: ReadNode, item: SelectEmbed) -> ReadNode:
        rel = find_relationship(self.cache, parent.relation, item.name, item.hint)
        target = self.cache.tables[rel.target]
        child = ReadNode(rel.target, target.name, target.columns, key=item.key, rel=rel,
                         join=item.join or "left", spread=item.spread, depth=parent.depth + 1)
        self._select(child, item.items)
        return child

    # -- filters -------------------------------------------------------------------------------------------
    def _condition(self, node: ReadNode, cond: Condition, top: bool) -> None:
        if isinstance(cond, Filter):
            fld = cond.field
            if not fld.path and fld.name not in node.columns and fld.name not in self.cache.computed.get(
                    node.relation, {}):
                embed = next((e for e in node.embeds() if e.key == fld.name), None)
                if embed is not None:
                    if not top or cond.expr.op != "is" or cond.expr.value not in ("null", "not_null"):
                        raise errors.ApiError(400, "PGRST120", f"Bad operator on the '{embed.key}' embedded "
                                              "resource", "Only is null or not is null filters are allowed on "
                                              "embedded resources")
                    negated = cond.expr.negated != (cond.expr.value == "not_null")
                    node.embed_filters.append(EmbedFilter(embed.key, negated))
                    return
            self._column(node, fld.name)
            if top:
                node.conditions.append(cond)
            return
        for child in cond.children:
            self._check_logic(node, child)
        if top:
            node.conditions.append(cond)

    def _check_logic(self, node: ReadNode, cond: Condition) -> None:
        if isinstance(cond, Logic):
            for child in cond.children:
                self._check_logic(node, child)
        else:
            self._column(node, cond.field.name)

    def _order(self, node: ReadNode, term: OrderTerm) -> OrderTerm | RelOrder:
        if term.relation is None:
            self._column(node, term.field.name)
            return term
        embed = next((e for e in node.embeds() if e.key == term.relation), None)
        rel = embed.rel if embed is not None and embed.rel is not None else \
            find_relationship(self.cache, node.relation, term.relation, None)
        if not rel.to_one:
            raise errors.ApiError(400, "PGRST118", f"A related order on '{term.relation}' is not possible",
                                  f"'{node.name}' and '{term.relation}' do not form a many-to-one or one-to-one "
                                  "relationship")
        target = self.cache.tables[rel.target]
        if term.field.name not in target.columns:
            raise errors.undefined_column(target.name, term.field.name)
        return RelOrder(rel, target.columns, term)
