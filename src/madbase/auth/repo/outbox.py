"""The mail outbox (`auth.madbase_mail_outbox`): mails are queued in the transaction of the action that sends
them and delivered afterwards (SMTP, or the inbox of the mail catcher). Every function takes a connection of
a transaction acting as supabase_auth_admin.
"""

from __future__ import annotations

import asyncpg

from madbase.core.types import DbConn


async def enqueue(conn: DbConn, recipient: str, kind: str, subject: str, body: str) -> None:
    await conn.execute("insert into auth.madbase_mail_outbox (recipient, subject, body_html, kind) "
                       "values ($1, $2, $3, $4)", recipient, subject, body, kind)


async def delete_sent_before_week(conn: DbConn) -> None:
    await conn.execute("delete from auth.madbase_mail_outbox where sent_at < now() - interval '7 days'")


async def claim_due(conn: DbConn) -> list[asyncpg.Record]:
    """Up to 20 due mails, locked for this transaction (others skip them)."""
    return list(await conn.fetch(
        "select id, recipient, subject, body_html, attempts from auth.madbase_mail_outbox "
        "where sent_at is null and next_attempt_at <= now() order by id limit 20 for update skip locked"))


async def mark_failed(conn: DbConn, mail_id: int, error: str, retry_after_seconds: float) -> None:
    await conn.execute("update auth.madbase_mail_outbox set attempts = attempts + 1, last_error = $2, "
                       "next_attempt_at = now() + make_interval(secs => $3) where id = $1",
                       mail_id, error, retry_after_seconds)


async def mark_sent(conn: DbConn, mail_id: int) -> None:
    await conn.execute("update auth.madbase_mail_outbox set sent_at = now(), attempts = attempts + 1 where id = $1",
                       mail_id)


async def catch_due(conn: DbConn) -> list[asyncpg.Record]:
    """Up to 100 due mails delivered to the inbox (marked caught and sent); (id, recipient, subject, body_html)."""
    return list(await conn.fetch(
        "update auth.madbase_mail_outbox set caught_at = now(), sent_at = now(), attempts = attempts + 1 "
        "where id in (select id from auth.madbase_mail_outbox where sent_at is null "
        "and next_attempt_at <= now() order by id limit 100 for update skip locked) "
        "returning id, recipient, subject, body_html"))


async def trim_inbox(conn: DbConn, days: int, keep: int) -> None:
    """The inbox keeps the newest `keep` caught mails of at most `days` days."""
    await conn.execute(
        "delete from auth.madbase_mail_outbox where caught_at is not null and (caught_at < now() - "
        "make_interval(days => $1) or id < (select id from auth.madbase_mail_outbox where caught_at "
        "is not null order by id desc offset $2 limit 1))", days, keep - 1)
