"""Auth mail: templates, the durable outbox (auth.madbase_mail_outbox) and the SMTP sender task.

A request only inserts an outbox row in its own transaction (so a mail exists iff the token it carries
was saved) and wakes the sender. The sender claims due rows with FOR UPDATE SKIP LOCKED (several server
processes never send one mail twice), sends them with aiosmtplib and marks them sent, or schedules a
retry with backoff; an unreachable SMTP server delays mail but loses none and never blocks a request.

A project without SMTP gets the local stack's mail catcher instead: its mails are marked caught (kept in the
outbox, the newest `INBOX_KEEP` for `INBOX_DAYS` days), readable at `GET /admin/v1/projects/{ref}/inbox`, and
each one's link is logged at info level, as `supabase start` shows them in Inbucket/Mailpit.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import random
import re
from email.message import EmailMessage
from email.utils import formataddr
from typing import TYPE_CHECKING, Any

import aiosmtplib
import structlog

from madbase.auth import config as auth_config
from madbase.auth.repo import outbox
from madbase.core.db import internal_transaction
from madbase.core.errors import GatewayError
from madbase.core.types import DbConn

if TYPE_CHECKING:
    from madbase.core.projects import Project
    from madbase.core.runtime import Runtime

log = structlog.get_logger("madbase.auth")

INBOX_KEEP = 100  # caught mails kept per project (the oldest go first)
INBOX_DAYS = 7  # and none older than this
_HREF = re.compile(r'href="([^"]+)"')

DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "confirmation": ("Confirm Your Signup",
                     "<h2>Confirm your signup</h2><p>Follow this link to confirm your user:</p>"
                     '<p><a href="{{ .ConfirmationURL }}">Confirm your mail</a></p>'
                     "<p>Or enter this code: {{ .Token }}</p>"),
    "invite": ("You have been invited",
               "<h2>You have been invited</h2><p>You have been invited to create a user on {{ .SiteURL }}. "
               'Follow this link to accept the invite:</p><p><a href="{{ .ConfirmationURL }}">Accept the invite</a>'
               "</p><p>Or enter this code: {{ .Token }}</p>"),
    "magic_link": ("Your Magic Link",
                   '<h2>Magic Link</h2><p>Follow this link to login:</p><p><a href="{{ .ConfirmationURL }}">Log In</a>'
                   "</p><p>Or enter this code: {{ .Token }}</p>"),
    "recovery": ("Reset Your Password",
                 '<h2>Reset Password</h2><p>Follow this link to reset the password for your user:</p><p><a href="'
                 '{{ .ConfirmationURL }}">Reset Password</a></p><p>Or enter this code: {{ .Token }}</p>'),
    "email_change": ("Confirm Email Change",
                     "<h2>Confirm Change of Email</h2><p>Follow this link to confirm the update of your email from "
                     '{{ .Email }} to {{ .NewEmail }}:</p><p><a href="{{ .ConfirmationURL }}">Change Email</a></p>'
                     "<p>Or enter this code: {{ .Token }}</p>"),
    "reauthentication": ("Confirm Reauthentication",
                         "<h2>Confirm reauthentication</h2><p>Enter the code: {{ .Token }}</p>"),
}


def render(kind: str, cfg: auth_config.AuthConfig, values: dict[str, str]) -> tuple[str, str]:
    """(subject, html) with GoTrue's `{{ .Name }}` placeholders replaced (values HTML-escaped)."""
    subject, body = DEFAULT_TEMPLATES[kind]
    custom = cfg.templates.get(kind) or {}
    subject = str(custom.get("subject") or subject)
    body = str(custom.get("content") or body)
    for name, value in values.items():
        for form in ("{{ ." + name + " }}", "{{." + name + "}}"):
            subject = subject.replace(form, value)
            body = body.replace(form, html.escape(value, quote=True))
    return subject, body


async def enqueue(conn: DbConn, recipient: str, kind: str, subject: str, body: str) -> None:
    await outbox.enqueue(conn, recipient, kind, subject, body)


class Sender:
    """One background task per server process draining the outboxes of the projects auth has served."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._refs: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._warned: set[str] = set()

    def watch(self, project: Project) -> None:
        if project.ref not in self._refs:
            self._refs.add(project.ref)
            self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="auth-mail-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            for ref in self._runtime.projects.active_refs[:1]:
                self._refs.add(ref)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 2.0)
            self._wake.clear()
            # Projects this process already has a pool for (any service) are drained too, so mail queued
            # before a restart goes out without waiting for the project's next auth request.
            with contextlib.suppress(Exception):
                self._refs.update(ref for ref, *_ in self._runtime.pools.stats())
            for ref in list(self._refs):
                try:
                    project = self._runtime.projects.resolve(ref)
                except GatewayError:  # deleted or disabled: nothing to send for it
                    self._refs.discard(ref)
                    continue
                try:
                    await self.drain(project)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("auth_mail_drain_failed", project_ref=ref, error=str(exc))

    async def drain(self, project: Project) -> None:
        cfg = auth_config.for_project(project)
        if not cfg.smtp.host:
            await self.catch(project)
            return
        pool = await self._runtime.pools.get(project)
        if random.random() < 0.01:  # housekeeping: delivered mail is kept for a week
            async with internal_transaction(pool, "supabase_auth_admin") as conn:
                await outbox.delete_sent_before_week(conn)
        while True:
            async with internal_transaction(pool, "supabase_auth_admin") as conn:
                rows = await outbox.claim_due(conn)
                if not rows:
                    return
                for row in rows:
                    try:
                        await asyncio.wait_for(_send(cfg.smtp, row["recipient"], row["subject"], row["body_html"]),
                                               15)
                    except Exception as exc:
                        delay = min(3600, 2 ** min(row["attempts"], 11))
                        await outbox.mark_failed(conn, row["id"], str(exc)[:500], float(delay))
                        log.warning("auth_mail_send_failed", project_ref=project.ref, error=str(exc))
                        return
                    await outbox.mark_sent(conn, row["id"])


    async def catch(self, project: Project) -> None:
        """Deliver the project's due mails to its inbox (no SMTP configured), then apply the inbox's bounds."""
        pool = await self._runtime.pools.get(project)
        async with internal_transaction(pool, "supabase_auth_admin") as conn:
            rows = await outbox.catch_due(conn)
            if not rows:
                return
            await outbox.trim_inbox(conn, INBOX_DAYS, INBOX_KEEP)
        inbox = f"{self._runtime.settings.public_url}/admin/v1/projects/{project.ref}/inbox"
        if project.ref not in self._warned:
            self._warned.add(project.ref)
            log.info("auth_mail_inbox", project_ref=project.ref, inbox=inbox,
                     hint="no SMTP is configured (auth.smtp / SMTP_HOST): auth mails are kept in this inbox "
                          "(GET with the service_role key) instead of being sent")
        for row in sorted(rows, key=lambda r: r["id"]):
            link = _HREF.search(row["body_html"])
            log.info("auth_mail_caught", project_ref=project.ref, to=row["recipient"], subject=row["subject"],
                     link=html.unescape(link.group(1)) if link else None, message=f"{inbox}/{row['id']}")


async def _send(smtp: auth_config.Smtp, recipient: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = formataddr((smtp.sender_name, smtp.sender)) if smtp.sender_name else smtp.sender
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content("This message needs an HTML-capable mail reader.")
    message.add_alternative(body, subtype="html")
    kwargs: dict[str, Any] = {"hostname": smtp.host, "port": smtp.port, "use_tls": smtp.use_tls,
                              "start_tls": smtp.start_tls, "timeout": 10}
    if smtp.user:
        kwargs["username"] = smtp.user
        kwargs["password"] = smtp.password
    await aiosmtplib.send(message, **kwargs)
