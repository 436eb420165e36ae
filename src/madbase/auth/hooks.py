"""GoTrue's Custom Access Token Hook: a Postgres function (`pg-functions://postgres/<schema>/<function>`) or an
HTTP endpoint (Standard Webhooks signed) that receives `{"user_id", "claims", "authentication_method"}` and
returns `{"claims": {...}}` (or `{"error": {"http_code", "message"}}`) before the access token is signed."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx

from madbase.auth import providers, sms
from madbase.auth.errors import AuthError
from madbase.auth.http import Req
from madbase.auth.repo import hooks as hook_repo
from madbase.core import jsonutil
from madbase.core.types import DbConn

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_REQUIRED = ("aud", "exp", "iat", "sub", "role", "aal", "session_id", "is_anonymous")


def _function(uri: str) -> str:
    parts = uri.removeprefix("pg-functions://").split("/")
    if len(parts) != 3 or not all(_IDENT.match(p) for p in parts[1:]):
        raise AuthError("unexpected_failure", "Invalid custom access token hook URI", status=500)
    return f'"{parts[1]}"."{parts[2]}"'


async def custom_access_token(conn: DbConn, req: Req, claims: dict[str, Any], method: str) -> dict[str, Any]:
    hook = req.config.hook_custom_access_token
    uri = str(hook.get("uri") or "")
    if not uri or hook.get("enabled", True) is False:
        return claims
    event = {"user_id": claims["sub"], "claims": claims, "authentication_method": method}
    if uri.startswith("pg-functions://"):
        try:
            # in a savepoint: a failing hook is reported, not a broken transaction
            raw = await hook_repo.call_function(conn, _function(uri), jsonutil.dumps_str(event))
        except asyncpg.PostgresError as exc:
            raise AuthError("unexpected_failure", f"Error running hook URI: {exc}", status=500) from None
        answer = jsonutil.loads(raw) if isinstance(raw, str) else raw
    else:
        body = jsonutil.dumps(event)
        try:
            resp = await providers.client().post(uri, content=body, headers=sms.signature_headers(
                str(hook.get("secrets") or ""), body))
            answer = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthError("unexpected_failure", f"Error running hook URI: {exc}", status=500) from None
    if not isinstance(answer, dict):
        raise AuthError("unexpected_failure", "Hook returned an invalid response", status=500)
    error = answer.get("error")
    if isinstance(error, dict):
        status = error.get("http_code")
        raise AuthError("unexpected_failure", str(error.get("message") or "Hook error"),
                        status=int(status) if isinstance(status, int) and 400 <= status < 600 else 500)
    out = answer.get("claims")
    if not isinstance(out, dict) or any(k not in out for k in _REQUIRED):
        raise AuthError("unexpected_failure", "output claims do not conform to the expected schema", status=500)
    return out
