"""The pure planner: an `ApiRequest`'s query params resolved against a `SchemaCache` snapshot.

Produces a tree of `ReadNode`s (one per relation read, embedded ones hanging off their parent with the
relationship used) in which every column and relation name has been checked against the cache, so the SQL
stage only quotes names that exist. Unknown names fail here, before any SQL runs: 42703 for a column,
PGRST200/201 for relationships, PGRST108 for filters on resources not embedded.
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

    def embeds(self) -> list[ReadNode]:
        return [o for o in self.outputs if isinstance(o, ReadNode)]

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
            else:
                names.append(o.key)
        return names


@dataclass(frozen=True, slots=True)
class PlanOptions:
    aggregates: bool = False
    max_rows: int | None = None  # db-max-rows: a cap on the rows of a read / set-returning call


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
    rels = [r for r in cache.relationships.get(source, ()) if r.target[0] == source[0]]
    found = [r for r in rels if r.function is not None and r.function[1] == name]
    if found:
        return found[0]  # a computed relationship is chosen by its function's name, as in PostgREST
    rels = [r for r in rels if r.function is None]
    found = [r for r in rels if r.target[1] == name]
    if not found:
        # Embedding through a foreign-key column or constraint name (`client_id(*)`, `fk_name(*)`).
        found = [r for r in rels if r.constraint == name and r.junction is None]
        if not found:
            found = [r for r in rels if r.to_one and len(r.pairs) == 1 and r.pairs[0][0] == name]
    if hint is not None:
        found = [r for r in found if _matches_hint(r, hint)]
    if not found:
        raise errors.no_relationship(source[1], name, source[0], [r.target[1] for r in rels], hint)
    if len(found) > 1:
        options = [_rel_label(r) for r in found]
        hints = [f"{r.target[1]}!{o.pop('hint')}" for r, o in zip(found, options, strict=True)]
        raise errors.ambiguous_relationship(source[1], name, options, hints)
    return found[0]


def _matches_hint(r: Relationship, hint: str) -> bool:
    if hint in (r.constraint, r.target_constraint):
        return True
    if r.junction is not None:
        return hint == r.junction[1]
    return hint in [a for a, _ in r.pairs] or hint in [b for _, b in r.pairs]


class Planner:
    def __init__(self, cache: SchemaCache, schema: str, options: PlanOptions = PlanOptions()) -> None:
        self.cache = cache
        self.schema = schema
        self.options = options

    def read(self, relation: QName, name: str, columns: dict[str, Column], q: QueryParams) -> ReadNode:
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
        for item in items:
            if isinstance(item, SelectEmbed):
                node.outputs.append(self._embed(node, item))
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
                raise errors.undefined_column(node.name, name)
            node.computed[name] = col
        return col

    def _embed(self, parent: ReadNode, item: SelectEmbed) -> ReadNode:
        rel = find_relationship(self.cache, parent.relation, item.name, item.hint)
        target = self.cache.tables[rel.target]
        child = ReadNode(rel.target, target.name, target.columns, key=item.key, rel=rel,
                         join=item.join or "left", spread=item.spread)
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
