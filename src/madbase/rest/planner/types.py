"""The typed plans the planner hands to the execute and respond stages (after PostgREST's ReadPlan / MutatePlan /
CallPlan / InfoPlan).

Each plan is frozen and holds only what its action needs: the one rendered statement the execute stage runs,
whether it runs read-only, and what the respond stage needs to turn the statement's row into a response.
Nothing in a plan depends on the request's values beyond its statement's parameters, which is what lets the plan
memo (`plancache`) keep a read plan and swap in another request's statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from madbase.rest.request import Media
from madbase.rest.statement import Statement


@dataclass(frozen=True, slots=True)
class Prefs:
    """The `Prefer` header as the plan applies it (common to the three database plans)."""

    applied: tuple[str, ...] = ()  # Preference-Applied values, already in PostgREST's order
    count: bool = False  # the statement computes `total` (any count=...)
    rollback: bool = False  # tx=rollback: answer, then undo
    max_affected: int | None = None  # handling=strict + max-affected=n: more rows affected is an error
    timezone: str | None = None  # a known time zone: set for the transaction


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """GET/HEAD of a table or view."""

    readonly: ClassVar[bool] = True
    statement: Statement
    media: Media
    prefs: Prefs
    offset: int = 0  # the page's first row (Content-Range, 416)
    single: bool = False  # vnd.pgrst.object: exactly one row or 406
    planned: Statement | None = None  # EXPLAIN giving the total for count=planned/estimated
    estimate_above: int | None = None  # count=estimated: the estimate is used when the exact count exceeds this

    def with_statement(self, statement: Statement) -> ReadPlan:
        """This plan for another statement (the plan memo's fill). Spelled out: `dataclasses.replace` costs
        as much as a tenth of planning a simple read."""
        return ReadPlan(statement, self.media, self.prefs, self.offset, self.single, self.planned,
                        self.estimate_above)


MutateKind = Literal["insert", "upsert", "update", "delete"]


@dataclass(frozen=True, slots=True)
class MutatePlan:
    """POST (insert or upsert), PUT (upsert of one row by primary key), PATCH, DELETE of a table or view."""

    readonly: ClassVar[bool] = False
    statement: Statement
    media: Media
    prefs: Prefs
    kind: MutateKind
    status: int  # the status when nothing below overrides it
    body_wanted: bool  # return=representation
    single: bool = False  # vnd.pgrst.object: exactly one row affected or 406 (and a rollback)
    upsert: bool = False  # merge-duplicates / PUT: 201 only when a row was inserted, else 200 (PostgREST)
    location_table: str = ""  # return=headers-only on a table with a primary key: the Location header's
    location_pk: tuple[str, ...] = ()


CallResult = Literal["rows", "scalar", "void"]


@dataclass(frozen=True, slots=True)
class CallPlan:
    """GET/POST of /rpc/<function>. `rows` results answer like a read; `scalar` ones as one JSON value."""

    statement: Statement
    media: Media
    prefs: Prefs
    readonly: bool  # GET/HEAD run read-only (and refuse volatile functions)
    result: CallResult
    offset: int = 0
    single: bool = False  # a non-set composite function, or vnd.pgrst.object
    object_result: bool = False  # a non-set composite: `null` rather than 406 on zero rows


@dataclass(frozen=True, slots=True)
class InfoPlan:
    """A request answered without the request's transaction: OPTIONS, or the root's OpenAPI document."""

    kind: Literal["options", "openapi"]


DbPlan = ReadPlan | MutatePlan | CallPlan
