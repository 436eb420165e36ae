"""Calling a project's Postgres hook function (GoTrue's `pg-functions://` hooks)."""

from __future__ import annotations

from typing import Any

from madbase.core.types import DbConn


async def call_function(conn: DbConn, function: str, event_json: str) -> Any:
    """`function` (a quoted schema-qualified name validated by the caller) applied to the event; in a savepoint,
    so a failing hook leaves the caller's transaction usable."""
    async with conn.transaction():
        return await conn.fetchval(f"select {function}($1::jsonb)", event_json)
