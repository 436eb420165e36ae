"""Rows of GoTrue's audit trail in `auth.audit_log_entries` (the payload is built by `auth/audit.py`)."""

from __future__ import annotations

import uuid

from madbase.core.types import DbConn

# Appended to other statements (as `with … insert …`) by hot paths, with the values at $3..$5.
INSERT_SQL = ("insert into auth.audit_log_entries (instance_id, id, payload, created_at, ip_address) "
              "values ('00000000-0000-0000-0000-000000000000', $3, $4::json, now(), $5)")


async def insert(conn: DbConn, entry_id: uuid.UUID, payload: str, ip: str) -> None:
    await conn.execute(
        "insert into auth.audit_log_entries (instance_id, id, payload, created_at, ip_address) "
        "values ('00000000-0000-0000-0000-000000000000', $1, $2::json, now(), $3)", entry_id, payload, ip)
