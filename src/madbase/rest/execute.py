"""REST's execute stage: a database plan run as the request's one transaction, giving the statement's row.

`execute` runs a plan's statement in the request's role with its claims and request GUCs (the kit's `TxSettings`,
run by its `TxRunner` over `core.db`), in one round trip when nothing can still undo it (`runner.statement`:
`run_request_statement`), else in an explicit transaction (`runner.transaction`): with the project's
pre-request function, EXPLAIN for the plan media, the planner's estimate for count=planned, or a check that
fails after the statement (a single object that is not one, more rows than max-affected, a bad response.status)
and must roll the write back. Those checks are the respond stage's own
(`respond.verify`), run here before COMMIT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.authn import AuthContext
from madbase.core.kit import ErrorTable, TxRunner, TxSettings
from madbase.rest import errors
from madbase.rest.planner import DbPlan, ReadPlan
from madbase.rest.request import MediaChoice
from madbase.rest.respond import verify
from madbase.rest.response import Response
from madbase.rest.sql import explain_statement, pre_request_call
from madbase.rest.statement import quote_ident

# Database errors in PostgREST's shape (`errors.from_pg`; the status of a privilege error depends on whether the
# caller is authenticated: two tables). Connection failures are the kit's DB_UNAVAILABLE (503 PGRST001).
_RUNNER_ANON = TxRunner(ErrorTable("rest", {}, lambda exc: errors.from_pg(exc, False)))
_RUNNER_AUTH = TxRunner(ErrorTable("rest", {}, lambda exc: errors.from_pg(exc, True)))


@dataclass(slots=True)
class Result:
    """What the statement gave: its one row (total, page, body, response GUCs, ...), the planner's estimate
    when the plan asked for one, or the EXPLAIN answer of the plan media."""

    row: Any = None  # asyncpg.Record
    planned_total: int | None = None
    explain: Response | None = None


class _Rollback(Exception):
    """Leaves the transaction undone but answered (tx=rollback, EXPLAIN ANALYZE)."""

    def __init__(self, result: Result) -> None:
        super().__init__("rollback")
        self.result = result


def transaction_settings(auth: AuthContext, method: str, path: str, headers: dict[str, str], schema: str,
                         timezone: str | None) -> TxSettings:
    """The settings of the request's transaction: role, claims and request.* (`TxSettings.for_request`), the
    search_path of the request's schema, request.cookies, and the time zone of `Prefer: timezone`."""
    cookie = headers.get("cookie")
    return TxSettings.for_request(auth, method=method, path=path, headers=headers).with_settings(
        ("search_path", f"{quote_ident(schema)}, public, extensions"),
        ("request.cookies", jsonutil.dumps_str(_cookies(cookie)) if cookie else None),
        ("timezone", timezone))


def runner_for(authenticated: bool) -> TxRunner:
    """REST's transaction runner for an anonymous or an authenticated caller."""
    return _RUNNER_AUTH if authenticated else _RUNNER_ANON


def _cookies(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out[name] = value
    return out


def one_statement(plan: DbPlan, pre_request: str | None, explain: MediaChoice | None) -> bool:
    """Whether the request is its one statement and nothing after it can still undo it, so it may run in one
    round trip (`run_request_statement`, an implicit transaction). Reads always qualify; a write or a call
    only when no check after the statement (single object, max-affected) may need a rollback."""
    if pre_request or explain is not None or plan.prefs.rollback:
        return False
    if isinstance(plan, ReadPlan):
        return plan.planned is None
    if plan.readonly:
        return True
    return not plan.single and plan.prefs.max_affected is None


async def execute(pool: asyncpg.Pool, settings: TxSettings, plan: DbPlan, *, pre_request: str | None,
                  explain: MediaChoice | None, authenticated: bool) -> Result:
    """Run `plan`; database errors become PostgREST's errors (`errors.from_pg`), connection trouble the kit's
    503 (DB_UNAVAILABLE, PGRST001 in PostgREST's shape)."""
    runner = runner_for(authenticated)
    if one_statement(plan, pre_request, explain):
        stmt = plan.statement
        return Result(await runner.statement(pool, settings, stmt.sql, stmt.args(), stmt.columns,
                                             readonly=plan.readonly))
    try:
        async with runner.transaction(pool, settings, readonly=plan.readonly) as conn:
            if pre_request:
                await conn.execute(f"SELECT {pre_request_call(pre_request)}")
            if explain is not None:
                raise _Rollback(Result(explain=await _explain(conn, plan, explain)))  # never keeps ANALYZE's effects
            row = await conn.fetchrow(plan.statement.sql, *plan.statement.bind())
            result = Result(row)
            if isinstance(plan, ReadPlan) and plan.planned is not None:
                estimate = await conn.fetchval(plan.planned.sql, *plan.planned.bind())
                result.planned_total = int(jsonutil.loads(estimate)[0]["Plan"]["Plan Rows"])
            verify(plan, result)  # the respond stage's errors, raised before COMMIT so they undo the write
            if plan.prefs.rollback:
                raise _Rollback(result)
            return result
    except _Rollback as rb:
        return rb.result


async def _explain(conn: Any, plan: DbPlan, media: MediaChoice) -> Response:
    stmt = explain_statement(plan.statement, media.plan_json, media.plan_options)
    rows = await conn.fetch(stmt.sql, *stmt.bind())
    if media.plan_json:
        body = str(rows[0][0]).encode()
        ctype = b'application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8'
    else:
        body = "\n".join(str(r[0]) for r in rows).encode()
        ctype = b'application/vnd.pgrst.plan+text; for="application/json"; charset=utf-8'
    return Response(200, body, [(b"content-type", ctype)])
