"""Auth test fixtures: the session server configured for auth tests, a real SMTP server (aiosmtpd), and an
HTTP client that speaks like auth-js (apikey, X-Supabase-Api-Version)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.support.servers import MadbaseProcess, free_port


@dataclass
class Mailbox:
    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append(msg)
        return "250 OK"

    def html(self, msg: email.message.EmailMessage) -> str:
        part = msg.get_body(("html",))
        assert part is not None
        return str(part.get_content())

    async def wait_for(self, to: str, subject: str | None = None, wait: float = 15) -> email.message.EmailMessage:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for msg in reversed(self.messages):
                if msg["To"] == to and (subject is None or subject in str(msg["Subject"])):
                    self.messages.remove(msg)
                    return msg
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail to {to} ({subject}) arrived; have {[m['To'] for m in self.messages]}")

    def link(self, msg: email.message.EmailMessage) -> str:
        match = re.search(r'href="([^"]+)"', self.html(msg))
        assert match, self.html(msg)
        return match.group(1).replace("&amp;", "&")

    def code(self, msg: email.message.EmailMessage) -> str:
        match = re.search(r"code: (\d{6})", self.html(msg))
        assert match, self.html(msg)
        return match.group(1)


@pytest.fixture(scope="session")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


BASE_CONFIG: dict[str, Any] = {
    "mailer_autoconfirm": True,
    "site_url": "http://localhost:3000",
    "uri_allow_list": ["http://app.example.com/**"],
    "rate_limits": {"sign_in_sign_ups": 100000, "token_refresh": 100000, "verify": 100000, "otp": 100000,
                    "email_sent": 100000, "email_per_address_seconds": 0, "anonymous_users": 100000,
                    "sms_sent": 100000},
    "argon2": {"time_cost": 1, "memory_cost": 8192, "parallelism": 1},
}


class AuthEnv:
    def __init__(self, server: MadbaseProcess, smtp_port: int, box: Mailbox) -> None:
        self.server = server
        self.url = server.url + "/auth/v1"
        self.smtp_port = smtp_port
        self.mail = box
        self.client = httpx.AsyncClient(base_url=self.url, timeout=30, follow_redirects=False)

    def headers(self, token: str | None = None, *, service: bool = False, legacy: bool = False) -> dict[str, str]:
        key = self.server.service_role_key if service else self.server.anon_key
        out = {"apikey": key, "Authorization": f"Bearer {token or key}"}
        if not legacy:
            out["X-Supabase-Api-Version"] = "2024-01-01"
        return out

    async def set_config(self, **patch: Any) -> None:
        cfg = {**BASE_CONFIG, "smtp": {"host": "127.0.0.1", "port": self.smtp_port}, **patch}
        conn = await asyncpg.connect(self.server.db_url)
        try:
            await conn.execute(
                "update madbase_control.projects set config = jsonb_set(config, '{auth}', $1::jsonb)",
                __import__("json").dumps(cfg))
        finally:
            await conn.close()
        await asyncio.sleep(0.6)

    async def post(self, path: str, body: dict[str, Any] | None = None, token: str | None = None,
                   **kw: Any) -> httpx.Response:
        return await self.client.post(path, json=body if body is not None else {},
                                      headers=self.headers(token, service=kw.pop("service", False)), **kw)

    async def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers(token, service=kw.pop("service", False)), **kw)

    async def signup(self, email: str | None = None, password: str = "secret-pass-1", **extra: Any) -> dict[str, Any]:
        r = await self.post("/signup", {"email": email or new_email(), "password": password, **extra})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def new_email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture(scope="session")
async def auth(server: MadbaseProcess, mailbox: tuple[Mailbox, int]) -> AsyncIterator[AuthEnv]:
    box, port = mailbox
    env = AuthEnv(server, port, box)
    await env.set_config()
    try:
        yield env
    finally:
        await env.client.aclose()
