"""The mail catcher's inbox: the auth mails a project without SMTP has "sent" (the rows of its
`auth.madbase_mail_outbox` with `caught_at` set, kept bounded by the auth sender: the newest 100, 7 days).

This reads the auth service's table through SQL only (never auth's Python internals), as the coming admin API
will; the routes are in `service.py`.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from madbase.core.db import internal_transaction
from madbase.core.types import DbConn

MAX_LIST = 100

_LIST_SQL = """
select id, recipient, subject, kind, created_at, caught_at from auth.madbase_mail_outbox
where caught_at is not null and ($1::text is null or lower(recipient) = lower($1))
order by id desc limit $2
"""
_ONE_SQL = """
select id, recipient, subject, kind, created_at, caught_at, body_html from auth.madbase_mail_outbox
where caught_at is not null and id = $1
"""


def _summary(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "to": row["recipient"], "subject": row["subject"], "kind": row["kind"],
            "created_at": row["created_at"].isoformat(), "caught_at": row["caught_at"].isoformat()}


async def _run(pool: asyncpg.Pool, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn: DbConn
    async with internal_transaction(pool, "supabase_auth_admin") as conn:
        return list(await conn.fetch(sql, *args))


async def list_messages(pool: asyncpg.Pool, email: str | None, limit: int) -> list[dict[str, Any]]:
    return [_summary(r) for r in await _run(pool, _LIST_SQL, email, min(max(limit, 1), MAX_LIST))]


async def get_message(pool: asyncpg.Pool, message_id: int) -> dict[str, Any] | None:
    rows = await _run(pool, _ONE_SQL, message_id)
    if not rows:
        return None
    return {**_summary(rows[0]), "html": rows[0]["body_html"]}


async def clear(pool: asyncpg.Pool) -> int:
    async with internal_transaction(pool, "supabase_auth_admin") as conn:
        result = await conn.execute("delete from auth.madbase_mail_outbox where caught_at is not null")
    return int(result.split()[-1])
