"""GoTrue-compatible audit trail in auth.audit_log_entries (same payload keys: actor_id, actor_username,
actor_via_sso, action, log_type, traits), written in the transaction of the action it records."""

from __future__ import annotations

import uuid
from typing import Any

from madbase.auth.http import Req
from madbase.auth.repo import audit as audit_repo
from madbase.core import jsonutil
from madbase.core.types import DbConn

_LOG_TYPES = {"login": "account", "logout": "account", "invite_accepted": "account", "user_signedup": "team",
              "user_invited": "team", "user_deleted": "team", "user_modified": "user",
              "user_recovery_requested": "user", "user_confirmation_requested": "user",
              "user_reauthenticate_requested": "user", "user_updated_password": "user",
              "token_refreshed": "token", "token_revoked": "token", "factor_in_progress": "factor",
              "factor_unenrolled": "factor", "verification_attempted": "user", "identity_unlinked": "account",
              "generate_recovery_codes": "user"}


def values(req: Req, action: str, actor_id: Any, actor_username: str = "",
           traits: dict[str, Any] | None = None) -> tuple[uuid.UUID, str, str]:
    payload: dict[str, Any] = {"actor_id": str(actor_id) if actor_id else "", "actor_username": actor_username or "",
                               "actor_via_sso": False, "action": action,
                               "log_type": _LOG_TYPES.get(action, "user")}
    if traits:
        payload["traits"] = traits
    ip = req.ctx.client_ip if req.ctx.client_ip != "unknown" else ""
    return uuid.uuid4(), jsonutil.dumps_str(payload), ip[:64]


async def log(conn: DbConn, req: Req, action: str, actor_id: Any, actor_username: str = "",
              traits: dict[str, Any] | None = None) -> None:
    await audit_repo.insert(conn, *values(req, action, actor_id, actor_username, traits))
