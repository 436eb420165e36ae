"""Run an SQL script for the control plane's SQL editor (`POST /projects/{ref}/database/query`), with limits.

- Its own connection, closed afterwards (never one of the request pools: a script may `SET` anything, `LISTEN`,
  create temporary tables — none of it may leak into the connections that serve the API).
- One transaction for the whole script, statements one by one (admin/sqlsplit.py) so that an error's position
  is known within the script; the result is the last statement's (columns, rows, command tag).
- Limits: the script's size (`max_query`), time (`timeout_s`: `statement_timeout` on the connection, and a
  client-side deadline that cancels the query — a script may reset `statement_timeout` — then terminates the
  backend if it still runs), rows kept (`max_rows`) and result bytes (`max_bytes`): past either the result is cut
  and `truncated` is true (rows are read through a cursor, never all into memory).
- Errors: `QueryError` with PostgreSQL's message, SQLSTATE, detail, hint and the 1-based position in the
  script, for the dashboard to underline — never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from madbase.admin.sqlsplit import SplitError, Statement, split
from madbase.core import jsonutil


@dataclass(frozen=True, slots=True)
class Limits:
    timeout_s: float = 30.0
    max_rows: int = 10_000
    max_bytes: int = 10 * 1024 * 1024
    max_query: int = 1024 * 1024


LIMITS = Limits()


class QueryError(Exception):
    """A script that failed: answered `status` with `body()` (`message`, `position`, `code`, …)."""

    def __init__(self, message: str, *, status: int = 400, position: int | None = None, code: str | None = None,
                 detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.position = position
        self.code = code
        self.detail = detail
        self.hint = hint

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "position": self.position}
        for key in ("code", "detail", "hint"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom a script runs: the connection's URL and login, the role the transaction switches to
    (None: the login itself) and the claims it sees as `request.jwt.claims`."""

    dsn: str
    user: str | None = None
    password: str | None = None
    role: str | None = None
    claims_json: str | None = None


def cell(value: Any) -> Any:
    """A column value as JSON: numbers and booleans as such, numeric as text (no precision lost), bytea as
    `\\x…` (PostgreSQL's text form), arrays as lists, composites as objects, the rest as its text form."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dict, list, tuple)) and not isinstance(value, asyncpg.Record):
        if isinstance(value, dict):
            return {str(k): cell(v) for k, v in value.items()}
        return [cell(v) for v in value]
    if isinstance(value, asyncpg.Record):
        return {k: cell(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID, datetime.timedelta, ipaddress.IPv4Address,
                          ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    return str(value)


def _error(exc: asyncpg.PostgresError, stmt: Statement) -> QueryError:
    fields: Mapping[str, Any] = exc.as_dict() if hasattr(exc, "as_dict") else {}
    raw = fields.get("position")
    position = stmt.offset + int(raw) if isinstance(raw, str) and raw.isdigit() else None
    if position is None:
        position = stmt.offset + 1  # the statement that failed, at least
    return QueryError(str(fields.get("message") or exc), position=position, code=getattr(exc, "sqlstate", None),
                      detail=fields.get("detail"), hint=fields.get("hint"))


async def _json_codecs(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, schema="pg_catalog", encoder=jsonutil.dumps_str, decoder=jsonutil.loads,
                                  format="text")


async def _last(conn: asyncpg.Connection, stmt: Statement, limits: Limits) -> dict[str, Any]:
    prepared = await conn.prepare(stmt.text)
    attributes = prepared.get_attributes()
    columns = [{"name": a.name, "type": a.type.name} for a in attributes]
    rows: list[list[Any]] = []
    truncated = False
    if attributes:
        size = 0
        async for record in prepared.cursor(prefetch=min(1000, limits.max_rows + 1)):
            row = [cell(v) for v in record.values()]
            size += len(jsonutil.dumps(row)) + 1
            if len(rows) >= limits.max_rows or size > limits.max_bytes:
                truncated = True
                break
            rows.append(row)
        # a cursor's portal reports no command tag: name the statement by its first word
        command = prepared.get_statusmsg() or _first_word(stmt.text)
    else:
        await prepared.fetch()
        command = prepared.get_statusmsg() or ""
    count = len(rows)
    if not attributes:
        tail = command.rsplit(" ", 1)[-1]
        count = int(tail) if tail.isdigit() else 0
    return {"columns": columns, "rows": rows, "row_count": count, "truncated": truncated,
            "command": command.split(" ", 1)[0] if command else None}


def _first_word(text: str) -> str:
    for line in text.splitlines():
        words = line.split("--", 1)[0].split()
        if words:
            return words[0].upper()
    return ""


async def _run(conn: asyncpg.Connection, statements: list[Statement], target: Target,
               limits: Limits) -> dict[str, Any]:
    await _json_codecs(conn)
    async with conn.transaction():
        if target.role is not None:
            await conn.execute("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                               target.role, target.claims_json or jsonutil.dumps_str({"role": target.role}))
        for stmt in statements[:-1]:
            try:
                await conn.execute(stmt.text)
            except asyncpg.PostgresError as exc:
                raise _error(exc, stmt) from None
        last = statements[-1]
        try:
            result = await _last(conn, last, limits)
        except asyncpg.PostgresError as exc:
            raise _error(exc, last) from None
    result["statements"] = len(statements)
    return result


async def _terminate(target: Target, pid: int) -> None:
    """The backend of a script past its deadline, which the cancel did not stop."""
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(target.dsn, user=target.user, password=target.password, timeout=5)
        try:
            await conn.execute("select pg_terminate_backend($1)", pid)
        finally:
            await conn.close(timeout=2)


async def connect(target: Target, timeout_s: float) -> asyncpg.Connection:
    ms = str(max(1, int(timeout_s * 1000)))
    try:
        return await asyncpg.connect(target.dsn, user=target.user, password=target.password, timeout=10,
                                     statement_cache_size=0,
                                     server_settings={"application_name": "madbase admin sql",
                                                      "statement_timeout": ms, "lock_timeout": ms,
                                                      "idle_in_transaction_session_timeout": ms})
    except asyncpg.PostgresError as exc:
        raise QueryError(f"cannot connect to the project database: {exc}", status=503) from None
    except (OSError, TimeoutError) as exc:
        raise QueryError(f"cannot reach the project database: {exc}", status=503) from None


def statements_of(sql: Any, limits: Limits = LIMITS) -> list[Statement]:
    """The script's statements, or QueryError (not a string, too large, empty, unterminated)."""
    if not isinstance(sql, str):
        raise QueryError("query must be a string")
    if len(sql.encode()) > limits.max_query:
        raise QueryError(f"query is larger than {limits.max_query} bytes", status=413)
    try:
        statements = split(sql)
    except SplitError as exc:
        raise QueryError(exc.message, position=exc.position, code="42601") from None
    if not statements:
        raise QueryError("query is empty")
    return statements


async def run(target: Target, statements: list[Statement], limits: Limits = LIMITS) -> dict[str, Any]:
    """Run `statements` as `target` within `limits`: the last statement's result, or QueryError."""
    conn = await connect(target, limits.timeout_s)
    pid = conn.get_server_pid()
    try:
        async with asyncio.timeout(limits.timeout_s):
            return await _run(conn, statements, target, limits)
    except TimeoutError:
        conn.terminate()
        await _terminate(target, pid)
        raise QueryError(f"canceling statement: the script ran longer than {limits.timeout_s:g} s",
                         code="57014") from None
    except asyncpg.PostgresError as exc:  # outside a statement: the transaction's begin/commit
        raise QueryError(str(exc), code=getattr(exc, "sqlstate", None)) from None
    except asyncpg.InterfaceError as exc:
        raise QueryError(str(exc)) from None
    except OSError as exc:  # the connection broke mid-script
        raise QueryError(f"lost the connection to the project database: {exc}", status=503) from None
    finally:
        if not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()
