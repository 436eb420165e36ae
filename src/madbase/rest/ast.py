"""The typed request vocabulary: what the query-string parser produces and the planner consumes.

Pure data only (frozen dataclasses); no I/O and no SQL here. Names mirror PostgREST's `ApiRequest` types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EmbedPath = tuple[str, ...]  # aliases/names of embedded resources from the root ((): the root itself)


@dataclass(frozen=True, slots=True)
class JsonOp:
    """One `->` / `->>` step of a JSON path; `key` is text or (when `index`) an integer literal."""

    arrow: Literal["->", "->>"]
    key: str
    index: bool = False


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    path: tuple[JsonOp, ...] = ()

    @property
    def output_name(self) -> str:
        """The JSON key a selected field gets: the last JSON path key, else the column name."""
        return self.path[-1].key if self.path else self.name


@dataclass(frozen=True, slots=True)
class SelectField:
    field: Field
    alias: str | None = None
    cast: str | None = None
    aggregate: str | None = None  # sum/avg/max/min/count (refused unless aggregates are enabled)
    star: bool = False


@dataclass(frozen=True, slots=True)
class SelectEmbed:
    name: str
    alias: str | None = None
    hint: str | None = None
    join: Literal["inner", "left"] | None = None
    spread: bool = False
    items: tuple[SelectItem, ...] = ()

    @property
    def key(self) -> str:
        return self.alias or self.name


SelectItem = SelectField | SelectEmbed

STAR = (SelectField(Field("*"), star=True),)


@dataclass(frozen=True, slots=True)
class OpExpr:
    """`[not.]op[(any|all)][(config)].value` as PostgREST parses it."""

    op: str
    value: str | tuple[str, ...]
    negated: bool = False
    modifier: Literal["any", "all"] | None = None
    config: str | None = None  # full-text-search configuration


@dataclass(frozen=True, slots=True)
class Filter:
    field: Field
    expr: OpExpr


@dataclass(frozen=True, slots=True)
class Logic:
    op: Literal["and", "or"]
    children: tuple[Filter | Logic, ...]
    negated: bool = False


Condition = Filter | Logic


@dataclass(frozen=True, slots=True)
class OrderTerm:
    field: Field
    relation: str | None = None  # `order=author(name).asc`: order by a column of a to-one embed
    direction: Literal["asc", "desc"] | None = None
    nulls: Literal["first", "last"] | None = None


@dataclass(slots=True)
class QueryParams:
    """Everything the query string says, grouped by the embed path it applies to."""

    select: tuple[SelectItem, ...] = STAR
    conditions: dict[EmbedPath, list[Condition]] = field(default_factory=dict)
    order: dict[EmbedPath, tuple[OrderTerm, ...]] = field(default_factory=dict)
    limit: dict[EmbedPath, int] = field(default_factory=dict)
    offset: dict[EmbedPath, int] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    # Params that were not filters (RPC GET arguments), in order.
    args: list[tuple[str, str]] = field(default_factory=list)
    select_given: bool = False
