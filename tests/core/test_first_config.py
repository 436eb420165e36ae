"""The first hour with MadBase, end to end on real server processes:

- the first-run default project is a local development project (autoconfirm on, as `supabase start`), and
  every auth mail of a project without SMTP lands in its inbox (`/admin/v1/projects/{ref}/inbox`), with its
  link in the log; projects created later keep GoTrue's defaults;
- the default project is configured without SQL, from `supabase/config.toml` and environment variables
  (environment first), at every start;
- secrets (SMTP password, OAuth client secret) never sit in clear in the control database, and still work:
  mail goes out through a real SMTP server that requires AUTH, a real OpenID provider checks the secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from madbase.core.control import ControlStore
from madbase.core.pgcluster import PgCluster
from madbase.core.secretbox import SecretBox
from tests.auth.conftest import Mailbox, new_email
from tests.auth.oidc_provider import OidcProvider
from tests.support.servers import MASTER_KEY, MadbaseProcess, create_database, external_db_env, free_port

SMTP_USER = "mailer"
SMTP_PASS = "smtp-pass-Qx81z"
OIDC_SECRET = "oidc-secret-Zr55k"


class AuthMailbox(Mailbox):
    """The auth tests' aiosmtpd mailbox, behind a server offering AUTH with one login."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[bytes, bytes]] = []

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == SMTP_USER.encode() and \
            data.password == SMTP_PASS.encode()
        if ok:
            self.logins.append((data.login, data.password))
        return AuthResult(success=ok)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[AuthMailbox, int]]:
    box = AuthMailbox()
    port = free_port()
    # AUTH offered without TLS (auth_required would warn): the test checks that the sender logged in
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    provider = OidcProvider(secret=OIDC_SECRET).start()
    try:
        yield provider
    finally:
        provider.stop()


def headers(server: MadbaseProcess, key: str | None = None, **extra: str) -> dict[str, str]:
    key = key or server.anon_key
    return {"apikey": key, "Authorization": f"Bearer {key}", **extra}


async def control_config(server: MadbaseProcess, ref: str) -> tuple[str, dict[str, Any]]:
    """(the raw config column as stored, the config as the store opens it)."""
    conn = await asyncpg.connect(server.db_url)
    try:
        raw = await conn.fetchval("select config::text from madbase_control.projects where ref = $1", ref)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(server.db_url, min_size=1, max_size=1)
    try:
        record = await ControlStore(pool, SecretBox(MASTER_KEY)).get(ref)
    finally:
        await pool.close()
    assert record is not None
    return raw, record.config


async def wait_inbox(client: httpx.AsyncClient, server: MadbaseProcess, email: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = await client.get(f"{server.url}/admin/v1/projects/{server.project_ref}/inbox", params={"email": email},
                             headers=server.admin_headers())
        assert r.status_code == 200, r.text
        if r.json()["messages"]:
            return list(r.json()["messages"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no mail to {email} in the inbox")


async def test_first_run_project_autoconfirms_and_catches_mail(pg_cluster: PgCluster, tmp_path: Path) -> None:
    env = external_db_env(await create_database(pg_cluster, "fc"), LOG_LEVEL="INFO")
    server = MadbaseProcess(tmp_path / "srv", env).start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            auth = server.url + "/auth/v1"
            settings = (await client.get(auth + "/settings")).json()
            assert settings["mailer_autoconfirm"] is True
            r = await client.post(auth + "/signup", json={"email": new_email(), "password": "secret-pass-1"},
                                  headers=headers(server))
            assert r.status_code == 200 and r.json()["access_token"], r.text  # confirmed at once: a session

            email = new_email()
            r = await client.post(auth + "/otp", json={"email": email}, headers=headers(server))
            assert r.status_code == 200, r.text
            [summary] = await wait_inbox(client, server, email)
            assert summary["to"] == email and summary["kind"] in ("magic_link", "confirmation")
            inbox = f"{server.url}/admin/v1/projects/{server.project_ref}/inbox"
            full = (await client.get(f"{inbox}/{summary['id']}", headers=server.admin_headers())).json()
            link = Mailbox().link(_as_message(full["html"]))
            assert "/auth/v1/verify?" in link
            r = await client.get(link, follow_redirects=False)
            assert r.status_code == 303 and "access_token=" in r.headers["location"], r.text

            # the mail's link and the inbox address are in the log, at info level
            log = server.output()
            caught = [json.loads(line) for line in log.splitlines() if '"auth_mail_caught"' in line]
            assert any(c["to"] == email and c["link"] == link and c["level"] == "info" for c in caught), log[-3000:]

            # an admin's credential (here the local token the server wrote), never a project key
            r = await client.get(inbox, headers=headers(server))
            assert r.status_code == 401 and r.json()["message"].startswith("Unauthorized")
            r = await client.get(inbox, headers=headers(server, server.service_role_key))
            assert r.status_code == 401
            r = await client.get(inbox.replace(server.project_ref, "abcdefghijklmnopqrst"),
                                 headers=server.admin_headers())
            assert r.status_code == 404 and r.json() == {"message": "Project not found"}
            r = await client.delete(inbox, headers=server.admin_headers())
            assert r.status_code == 204
            r = await client.get(inbox, headers=server.admin_headers())
            assert r.json()["messages"] == []

            # a project created later keeps GoTrue's hosted default: confirmations on
            pool = await asyncpg.create_pool(server.db_url, min_size=1, max_size=1)
            try:
                second = await ControlStore(pool, SecretBox(MASTER_KEY)).create(
                    name="later", db_url=await create_database(pg_cluster, "fc2"),
                    login_role=env["MADBASE_DB_LOGIN_ROLE"] + "_2")
            finally:
                await pool.close()
            await asyncio.sleep(0.5)
            r = await client.get(auth + "/settings", headers={"x-project-ref": second.ref})
            assert r.status_code == 200 and r.json()["mailer_autoconfirm"] is False, r.text
    finally:
        server.stop()


def _as_message(html: str) -> Any:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg.set_content("text")
    msg.add_alternative(html, subtype="html")
    return msg


CONFIG_TOML = """
project_id = "first-config"
[api]
schemas = ["public", "graphql_public"]
[auth]
site_url = "http://from-file.test"
additional_redirect_urls = ["http://app.test/**"]
jwt_expiry = 1800
[auth.email]
enable_confirmations = {confirmations}
[auth.email.smtp]
host = "127.0.0.1"
port = {smtp_port}
user = "{smtp_user}"
pass = "env(TEST_SMTP_PASS)"
admin_email = "noreply@first-config.test"
sender_name = "First Config"
[auth.external.myoidc]
enabled = true
client_id = "{client_id}"
secret = "env(TEST_OIDC_SECRET)"
url = "{issuer}"
"""


async def test_config_toml_and_environment_with_sealed_secrets(
        pg_cluster: PgCluster, tmp_path: Path, smtp: tuple[AuthMailbox, int], idp: OidcProvider) -> None:
    box, smtp_port = smtp
    toml = tmp_path / "project" / "supabase" / "config.toml"
    toml.parent.mkdir(parents=True)

    def write(confirmations: bool) -> None:
        toml.write_text(CONFIG_TOML.format(confirmations=str(confirmations).lower(), smtp_port=smtp_port,
                                           smtp_user=SMTP_USER, client_id=idp.client_id, issuer=idp.base))

    write(True)
    env = external_db_env(await create_database(pg_cluster, "fc"), MADBASE_CONFIG_TOML=str(toml),
                          TEST_SMTP_PASS=SMTP_PASS, TEST_OIDC_SECRET=OIDC_SECRET,
                          GOTRUE_SITE_URL="http://from-env.test", JWT_EXPIRY="1200")
    server = MadbaseProcess(tmp_path / "srv", env).start()
    try:
        raw, config = await control_config(server, server.project_ref)
        assert SMTP_PASS not in raw and OIDC_SECRET not in raw and "$sealed" in raw
        auth_cfg = config["auth"]
        assert auth_cfg["smtp"]["password"] == SMTP_PASS and auth_cfg["external"]["myoidc"]["secret"] == OIDC_SECRET
        assert auth_cfg["site_url"] == "http://from-env.test"  # the environment wins over the file
        assert auth_cfg["jwt_exp"] == 1200 and auth_cfg["uri_allow_list"] == ["http://app.test/**"]
        assert auth_cfg["mailer_autoconfirm"] is False  # enable_confirmations = true

        async with httpx.AsyncClient(timeout=30) as client:
            auth = server.url + "/auth/v1"
            assert (await client.get(auth + "/settings")).json()["mailer_autoconfirm"] is False
            # mail really goes out through the SMTP server, which requires AUTH with the sealed password
            email = new_email()
            r = await client.post(auth + "/signup", json={"email": email, "password": "secret-pass-1"},
                                  headers=headers(server))
            assert r.status_code == 200 and "access_token" not in r.json(), r.text
            msg = await box.wait_for(email, "Confirm")
            assert "First Config" in str(msg["From"]) and (SMTP_USER.encode(), SMTP_PASS.encode()) in box.logins
            # the OAuth client secret opens: the provider checks it in the code exchange
            idp.next_user = {"sub": "fc-1", "email": new_email(), "email_verified": True}
            url = f"{auth}/authorize?provider=myoidc&redirect_to=http://app.test/done"
            for _ in range(5):
                r = await client.get(url, headers=headers(server) if url.startswith(auth) else {})
                assert r.status_code in (302, 303), (url, r.status_code, r.text)
                url = r.headers["location"]
                if url.startswith("http://app.test/"):
                    break
            tokens = {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}
            assert tokens.get("access_token"), url
    finally:
        server.stop()

    # the file is applied at every start: confirmations off now
    write(False)
    server.start()
    try:
        _, config = await control_config(server, server.project_ref)
        assert config["auth"]["mailer_autoconfirm"] is True
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(server.url + "/auth/v1/settings")).json()["mailer_autoconfirm"] is True
    finally:
        server.stop()


async def test_plain_secrets_written_with_sql_are_sealed(
        pg_cluster: PgCluster, tmp_path: Path, smtp: tuple[AuthMailbox, int]) -> None:
    box, smtp_port = smtp
    server = MadbaseProcess(tmp_path / "srv", external_db_env(await create_database(pg_cluster, "fc"))).start()
    plain = {"smtp": {"host": "127.0.0.1", "port": smtp_port, "user": SMTP_USER, "password": SMTP_PASS},
             "external": {"github": {"client_id": "gh", "secret": "gh-secret-Pp19"}}}

    async def write_plain() -> None:
        conn = await asyncpg.connect(server.db_url)
        try:
            await conn.execute("update madbase_control.projects set config = jsonb_set(config, '{auth}', "
                               "config->'auth' || $1::jsonb) where ref = $2", json.dumps(plain), server.project_ref)
        finally:
            await conn.close()

    try:
        await write_plain()  # while running: the server seals it within moments
        deadline = time.monotonic() + 15
        while True:
            raw, config = await control_config(server, server.project_ref)
            if SMTP_PASS not in raw or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert SMTP_PASS not in raw and "gh-secret-Pp19" not in raw
        assert config["auth"]["smtp"]["password"] == SMTP_PASS
    finally:
        server.stop()

    await write_plain()  # an older server's row (or SQL while stopped): sealed at start
    server.start()
    try:
        raw, _ = await control_config(server, server.project_ref)
        assert SMTP_PASS not in raw and "gh-secret-Pp19" not in raw
        async with httpx.AsyncClient(timeout=30) as client:
            email = new_email()
            r = await client.post(server.url + "/auth/v1/otp", json={"email": email}, headers=headers(server))
            assert r.status_code == 200, r.text
            logins = len(box.logins)
            await box.wait_for(email)  # sent after logging in with the sealed password
            assert len(box.logins) > logins
            r = await client.get(server.url + "/auth/v1/authorize?provider=github")
            assert r.status_code == 302 and "client_id=gh" in r.headers["location"], r.text
    finally:
        server.stop()


async def test_a_bad_setting_stops_the_start_with_one_line(pg_cluster: PgCluster, tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text("[auth]\njwt_expiry = 'an hour'\n")
    env = external_db_env(await create_database(pg_cluster, "fc"), MADBASE_CONFIG_TOML=str(toml))
    with pytest.raises(RuntimeError, match=r"madbase: invalid setting auth.jwt_expiry: 'an hour' is not a number"):
        MadbaseProcess(tmp_path / "srv", env).start()
    env = external_db_env(await create_database(pg_cluster, "fc"), ENABLE_EMAIL_AUTOCONFIRM="sometimes")
    with pytest.raises(RuntimeError, match=r"invalid setting ENABLE_EMAIL_AUTOCONFIRM: 'sometimes' is not a boolean"):
        MadbaseProcess(tmp_path / "srv2", env).start()
