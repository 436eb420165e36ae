"""Phone OTPs through GoTrue's Send SMS Hook (HTTP): MadBase has no built-in SMS carrier, so the project
points `auth.hook_send_sms.uri` at a service that delivers the text (or at Supabase-style hook code).

The hook gets `POST {"user": <User>, "sms": {"otp": "123456"}}` signed per Standard Webhooks
(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` with the `v1,whsec_…`
secret), as GoTrue sends it. It is called inside the request's transaction, so a failed delivery leaves no
token behind (GoTrue behaves the same).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

import asyncpg
import httpx

from madbase.auth import flows, providers, ratelimit, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req
from madbase.auth.repo import users as user_repo
from madbase.core import jsonutil
from madbase.core.types import DbConn


def enabled(req: Req) -> bool:
    hook = req.config.hook_send_sms
    return bool(hook.get("uri")) and hook.get("enabled", True) is not False


def require(req: Req) -> None:
    if not enabled(req):
        raise AuthError("sms_send_failed", "Error sending SMS: no SMS provider is configured "
                        "(set auth.hook_send_sms)", status=422)


def signature_headers(secrets: str, body: bytes) -> dict[str, str]:
    msg_id = "msg_" + uuid.uuid4().hex
    stamp = str(int(time.time()))
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp, "content-type": "application/json"}
    signatures = []
    for secret in secrets.split("|"):
        raw = secret.strip().removeprefix("v1,").removeprefix("whsec_")
        if not raw:
            continue
        key = base64.b64decode(raw)
        mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(mac).decode())
    if signatures:
        headers["webhook-signature"] = " ".join(signatures)
    return headers


async def call_hook(req: Req, hook: dict[str, Any], payload: dict[str, Any], what: str,
                    code: str = "unexpected_failure") -> dict[str, Any]:
    """POST a signed hook payload; a failure is a 500 `code` (as GoTrue's hook errors)."""
    body = jsonutil.dumps(payload)
    headers = signature_headers(str(hook.get("secrets") or ""), body)
    try:
        resp = await providers.client().post(str(hook["uri"]), content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise AuthError(code, f"Error {what}: {exc}", status=500) from None
    if resp.status_code >= 300:
        raise AuthError(code, f"Error {what}: hook answered {resp.status_code}", status=500)
    try:
        answer = resp.json()
    except ValueError:
        answer = {}
    return answer if isinstance(answer, dict) else {}


async def deliver(req: Req, user: dict[str, Any], otp: str) -> str:
    """Call the SMS hook; returns a message id (the hook may answer `{"message_id": …}`)."""
    answer = await call_hook(req, req.config.hook_send_sms, {"user": user, "sms": {"otp": otp}}, "sending SMS OTP",
                             "sms_send_failed")
    return str(answer.get("message_id") or "")


async def send(conn: DbConn, req: Req, user: asyncpg.Record, kind_name: str, phone: str, *,
               check_frequency: bool = True) -> str:
    """Store a fresh phone OTP (GoTrue's hash of phone + otp) and deliver it; returns the message id."""
    require(req)
    kind = flows.KINDS[kind_name]
    if check_frequency:
        flows.check_interval(user, kind, req)
    ratelimit.enforce_sms(req)
    otp, _ = await flows.prepare_token(conn, req, user["id"], kind, phone)
    fresh = await user_repo.load(conn, user["id"])
    assert fresh is not None
    return await deliver(req, users.user_json(fresh), otp)
