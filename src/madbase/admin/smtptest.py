"""Send a test mail through a project's SMTP settings and report the SMTP server's own answer.

The conversation is driven step by step (connect, STARTTLS when offered or asked, AUTH, MAIL, RCPT, DATA) so
the answer names the step that failed and quotes the server's reply verbatim (`535 5.7.8 Authentication
credentials invalid`), or, on success, the reply to DATA (`250 OK: queued as …`). The same settings the auth
service's mailer uses (auth.smtp: host, port, user, password, sender, sender_name, use_tls, start_tls).
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

import aiosmtplib

TIMEOUT = 15.0
EMAIL = re.compile(r"^[^@\s<>]{1,64}@[^@\s<>]{1,255}$")


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


async def _login(client: aiosmtplib.SMTP, user: str, password: str) -> aiosmtplib.SMTPResponse:
    """One AUTH exchange with the first mechanism both sides know (PLAIN, LOGIN, CRAM-MD5): its reply is the
    server's verdict on these credentials. (aiosmtplib's `login` would try the next mechanism after a refusal,
    and some servers stop answering after one.)"""
    offered = client.server_auth_methods
    for name, method in (("plain", client.auth_plain), ("login", client.auth_login),
                         ("cram-md5", client.auth_crammd5)):
        if name in offered:
            return await method(user, password)
    raise aiosmtplib.SMTPException("the server offers no AUTH mechanism MadBase speaks (PLAIN, LOGIN, CRAM-MD5)"
                                   if offered else "the server does not offer AUTH, but a user is set")


async def send_test(smtp: dict[str, Any], to: str, project_ref: str) -> dict[str, Any]:
    """`{"ok", "reply", "step"}`: the server's reply to the step that ended the conversation."""
    host = str(smtp.get("host") or "")
    port = int(smtp.get("port") or 25)
    sender = str(smtp.get("sender") or "noreply@madbase.local")
    message = EmailMessage()
    message["From"] = formataddr((str(smtp["sender_name"]), sender)) if smtp.get("sender_name") else sender
    message["To"] = to
    message["Subject"] = f"MadBase test mail (project {project_ref})"
    message["Message-ID"] = make_msgid(domain="madbase.local")
    message.set_content(f"This is a test mail sent from the MadBase control plane for project {project_ref}.\n"
                        "Its SMTP settings work.\n")
    client = aiosmtplib.SMTP(hostname=host, port=port, use_tls=bool(smtp.get("use_tls", False)),
                             start_tls=smtp.get("start_tls"), timeout=TIMEOUT)
    step = "connect"
    try:
        greeting = await client.connect()
        last = _reply(greeting.code, greeting.message)
        if smtp.get("user"):
            step = "login"
            answer = await _login(client, str(smtp["user"]), str(smtp.get("password") or ""))
            last = _reply(answer.code, answer.message)
        step = "mail"
        answer = await client.mail(sender)
        step = "rcpt"
        answer = await client.rcpt(to)
        step = "data"
        answer = await client.data(message.as_bytes())
        last = _reply(answer.code, answer.message)
        ok = 200 <= answer.code < 300
    except aiosmtplib.SMTPResponseException as exc:
        return {"ok": False, "step": step, "reply": _reply(exc.code, exc.message)}
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return {"ok": False, "step": step, "reply": text[:500]}
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
    return {"ok": ok, "step": step, "reply": last}
