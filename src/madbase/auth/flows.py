"""Email-token flows shared by signup, otp, recover, resend, invite, email change and admin links.

A flow stores GoTrue's token hash (sha224 of address + 6-digit OTP, `pkce_`-prefixed for PKCE flows) in
the user's token column and in auth.one_time_tokens, then queues the mail in the outbox in the same
transaction. PKCE flow states (auth.flow_state) are created here too.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlencode

import asyncpg

from madbase.auth import mailer, ratelimit, redirects, sms, tokens, users
from madbase.auth.errors import AuthError
from madbase.auth.http import Req
from madbase.auth.repo import flowstate, onetime, userupdates
from madbase.auth.repo import users as user_repo
from madbase.core.types import DbConn


@dataclass(frozen=True, slots=True)
class Kind:
    template: str
    column: str
    sent_at: str
    ott: str
    verify_type: str


KINDS = {
    "confirmation": Kind("confirmation", "confirmation_token", "confirmation_sent_at", "confirmation_token", "signup"),
    "invite": Kind("invite", "confirmation_token", "confirmation_sent_at", "confirmation_token", "invite"),
    "magic_link": Kind("magic_link", "recovery_token", "recovery_sent_at", "recovery_token", "magiclink"),
    "recovery": Kind("recovery", "recovery_token", "recovery_sent_at", "recovery_token", "recovery"),
    "email_change_new": Kind("email_change", "email_change_token_new", "email_change_sent_at",
                             "email_change_token_new", "email_change"),
    "email_change_current": Kind("email_change", "email_change_token_current", "email_change_sent_at",
                                 "email_change_token_current", "email_change"),
    "sms": Kind("sms", "confirmation_token", "confirmation_sent_at", "confirmation_token", "sms"),
    "phone_change": Kind("sms", "phone_change_token", "phone_change_sent_at", "phone_change_token", "phone_change"),
    "reauthentication": Kind("reauthentication", "reauthentication_token", "reauthentication_sent_at",
                             "reauthentication_token", "reauthentication"),
}


def check_interval(user: asyncpg.Record, kind: Kind, req: Req) -> None:
    """GoTrue's per-address minimum interval between two mails of one kind."""
    sent = user[kind.sent_at]
    interval = req.config.rate_limits.email_per_address_seconds
    if sent is not None and interval > 0:
        wait = (sent + timedelta(seconds=interval) - users.now()).total_seconds()
        if wait > 0:
            raise AuthError("over_email_send_rate_limit",
                            f"For security purposes, you can only request this after {int(wait) + 1} seconds.")


async def prepare_token(conn: DbConn, req: Req, user_id: uuid.UUID, kind: Kind, address: str, *,
                        pkce: bool = False) -> tuple[str, str]:
    """Store a fresh token for `kind`; returns (otp, token_hash as it appears in links)."""
    otp = tokens.new_otp()
    token_hash = tokens.otp_hash(address, otp, otp_secret(req))
    if pkce:
        token_hash = "pkce_" + token_hash
    await userupdates.store_token(conn, user_id, kind.column, kind.sent_at, token_hash)
    await onetime.put(conn, user_id, kind.ott, token_hash, address.lower())
    return otp, token_hash


def otp_secret(req: Req) -> str:
    """The key of this project's token hashes (tokens.otp_hash)."""
    return req.ctx.project.record.jwt_secret


def otp_secrets(req: Req) -> list[str]:
    """The keys a code sent before now may be hashed with: the current secret, then the previous ones whose
    rotation grace window is still open (docs/keys.md): a code mailed just before a rotation still works."""
    now = time.time()
    project = req.ctx.project
    return [project.record.jwt_secret,
            *(old for old, until in project.stored_keys.previous_secrets if until >= now)]


def action_link(req: Req, token_hash: str, verify_type: str, redirect_to: str) -> str:
    query = urlencode({"token": token_hash, "type": verify_type, "redirect_to": redirect_to}, quote_via=quote)
    return f"{req.external_url}/verify?{query}"


async def send(conn: DbConn, req: Req, user: asyncpg.Record, kind_name: str, address: str, *,
               redirect_to: str | None = None, pkce: bool = False, new_email: str = "",
               check_frequency: bool = True) -> None:
    kind = KINDS[kind_name]
    if check_frequency:
        check_interval(user, kind, req)
    ratelimit.enforce_email(req)
    target = redirects.choose(redirect_to or req.query.get("redirect_to"), req.config)
    otp, token_hash = await prepare_token(conn, req, user["id"], kind, address, pkce=pkce)
    values = {"ConfirmationURL": action_link(req, token_hash, kind.verify_type, target), "Token": otp,
              "TokenHash": token_hash, "SiteURL": req.config.site_url, "Email": user["email"] or address,
              "NewEmail": new_email, "RedirectTo": target}
    hook = req.config.hook_send_email
    if hook.get("uri") and hook.get("enabled", True) is not False:
        # GoTrue's Send Email Hook: the project's own mailer gets the token data instead of our SMTP outbox.
        fresh = await user_repo.load(conn, user["id"])
        assert fresh is not None
        email_data = {"token": otp, "token_hash": token_hash, "redirect_to": target,
                      "email_action_type": _HOOK_ACTION[kind_name], "site_url": req.config.site_url,
                      "token_new": "", "token_hash_new": ""}
        await sms.call_hook(req, hook, {"user": users.user_json(fresh), "email_data": email_data}, "sending email")
        return
    subject, body = mailer.render(kind.template, req.config, values)
    await mailer.enqueue(conn, address, kind.template, subject, body)


_HOOK_ACTION = {"confirmation": "signup", "invite": "invite", "magic_link": "magiclink", "recovery": "recovery",
                "email_change_new": "email_change", "email_change_current": "email_change",
                "reauthentication": "reauthentication"}


async def create_flow_state(conn: DbConn, req: Req, method: str, provider: str = "email",
                            user_id: uuid.UUID | None = None) -> uuid.UUID | None:
    """A PKCE flow state when the body carries a code_challenge; None for the implicit flow."""
    body = req.json()
    return await create_flow_state_from(conn, body.get("code_challenge"), body.get("code_challenge_method"), method,
                                        provider, user_id)


async def create_flow_state_from(conn: DbConn, challenge: object, raw_method: object, method: str, provider: str,
                                 user_id: uuid.UUID | None = None) -> uuid.UUID | None:
    if not challenge:
        return None
    cc_method = str(raw_method or "").lower()
    if cc_method not in ("s256", "plain") or not isinstance(challenge, str):
        raise AuthError("validation_failed", "PKCE flow requires code_challenge_method and code_challenge")
    flow_id = uuid.uuid4()
    if random.random() < 0.02:  # housekeeping: abandoned PKCE flows
        await flowstate.delete_abandoned(conn)
    await flowstate.insert(conn, flow_id, user_id, cc_method, challenge, provider, method)
    return flow_id
