"""The audit log: one record per successful mutation of /admin/v1 (written by the dispatcher from what the
handler declared with `request.audit(...)`, or the operation's name when it declared nothing), and its
listing with filters and cursor pagination.

The table is append-only (triggers refuse UPDATE/DELETE/TRUNCATE, migration 0003); details are scrubbed of
secret-looking keys before they get here (core/platform.scrub).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from madbase.core import jsonutil
from madbase.core.platform import AdminRequest, AuditRecord, Principal

MAX_LIMIT = 200

_INSERT = """
insert into madbase_control.audit_log
  (actor_id, actor_email, actor_method, action, target, project_ref, request_id, source_ip, details)
values ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
"""


async def write(pool: asyncpg.Pool, request: AdminRequest, record: AuditRecord,
                actor: Principal | None = None) -> None:
    who = actor or request.principal
    ctx = request.ctx
    await pool.execute(_INSERT, who.admin_id if who else None, who.email if who else None,
                       who.method if who else None, record.action, record.target, record.project_ref,
                       ctx.request_id, ctx.client_ip, jsonutil.dumps_str(dict(record.details)))


_LIST = """
select id, at, actor_id::text, actor_email, actor_method, action, target, project_ref, request_id, source_ip,
       details
from madbase_control.audit_log
where ($1::bigint is null or id < $1)
  and ($2::text is null or actor_id::text = $2 or lower(actor_email) = lower($2))
  and ($3::text is null or action = $3 or action like $3 || '.%')
  and ($4::text is null or project_ref = $4)
  and ($5::timestamptz is null or at >= $5)
  and ($6::timestamptz is null or at < $6)
order by id desc
limit $7
"""


def _row(r: asyncpg.Record) -> dict[str, Any]:
    details = r["details"]
    return {"id": r["id"], "at": r["at"].isoformat(), "actor": {"id": r["actor_id"], "email": r["actor_email"],
                                                                  "method": r["actor_method"]},
            "action": r["action"], "target": r["target"], "project_ref": r["project_ref"],
            "request_id": r["request_id"], "source_ip": r["source_ip"],
            "details": jsonutil.loads(details) if isinstance(details, str) else details}


async def list_records(pool: asyncpg.Pool, *, before: int | None, actor: str | None, action: str | None,
                       project: str | None, since: datetime | None, until: datetime | None,
                       limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(_LIST, before, actor, action, project, since, until, min(max(limit, 1), MAX_LIMIT))
    return [_row(r) for r in rows]
