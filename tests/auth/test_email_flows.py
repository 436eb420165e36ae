"""Email flows with a real SMTP server: confirmation links, OTP codes, recovery, magic links with PKCE,
resend, reauthentication, secure email change, and the durable outbox when SMTP is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from tests.auth.conftest import AuthEnv, new_email
from tests.auth.test_clients import js

PASSWORD = "secret-pass-1"


@pytest.fixture(scope="module")
async def mail_auth(auth: AuthEnv) -> AsyncIterator[AuthEnv]:
    await auth.set_config(mailer_autoconfirm=False)
    try:
        yield auth
    finally:
        await auth.set_config()


def fragment(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


async def follow(auth: AuthEnv, link: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(link, follow_redirects=False)


async def test_signup_confirmation_link(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email = new_email()
    r = await auth.post("/signup?redirect_to=http%3A%2F%2Fapp.example.com%2Fwelcome",
                        {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    user = r.json()
    assert "access_token" not in user and user["email"] == email and user["confirmation_sent_at"]
    assert "email_confirmed_at" not in user
    r = await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})
    assert r.status_code == 400 and r.json() == {"code": "email_not_confirmed", "message": "Email not confirmed"}
    msg = await auth.mail.wait_for(email, "Confirm")
    link = auth.mail.link(msg)
    assert link.startswith(auth.url + "/verify?token=") and "type=signup" in link
    r = await follow(auth, link)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("http://app.example.com/welcome#")
    frag = fragment(location)
    assert frag["token_type"] == "bearer" and frag["type"] == "signup" and frag["refresh_token"]
    r = await auth.get("/user", frag["access_token"])
    assert r.status_code == 200 and r.json()["email_confirmed_at"]
    # The link is single-use: a second visit redirects with an error in the fragment.
    r = await follow(auth, link)
    assert r.status_code == 303
    err = fragment(r.headers["location"])
    assert err["error"] == "access_denied" and err["error_code"] == "otp_expired"
    r = await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})
    assert r.status_code == 200


async def test_signup_existing_address_does_not_reveal(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email = new_email()
    r = await auth.post("/admin/users", {"email": email, "password": PASSWORD, "email_confirm": True}, service=True)
    assert r.status_code == 200
    r = await auth.post("/signup", {"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["email"] == email and r.json()["identities"] == []
    assert r.json()["id"] != (await auth.get(f"/admin/users/{r.json()['id']}", service=True)).json().get("id")


async def test_signup_otp_code_and_disallowed_redirect(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email = new_email()
    r = await auth.post("/signup?redirect_to=https%3A%2F%2Fevil.example.net%2F", {"email": email, "password": PASSWORD})
    assert r.status_code == 200
    msg = await auth.mail.wait_for(email)
    assert "redirect_to=http%3A%2F%2Flocalhost%3A3000" in auth.mail.link(msg)  # fell back to the site URL
    r = await auth.post("/verify", {"type": "signup", "email": email, "token": "000000"})
    if auth.mail.code(msg) != "000000":
        assert r.status_code == 403 and r.json()["code"] == "otp_expired"
    out = await js(auth, "verifyOtp", email=email, token=auth.mail.code(msg), type="signup")
    assert out == {"error": None, "email": email, "hasSession": True}


async def test_recover_with_supabase_js(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email = new_email()
    await auth.post("/admin/users", {"email": email, "password": PASSWORD, "email_confirm": True}, service=True)
    assert (await js(auth, "recoverStart", email=email)) == {"error": None}
    msg = await auth.mail.wait_for(email, "Reset")
    assert "redirect_to=http%3A%2F%2Fapp.example.com%2Freset" in auth.mail.link(msg)
    out = await js(auth, "recoverFinish", email=email, token=auth.mail.code(msg), newPassword="brand-new-pass-9")
    assert out == {"verify": None, "update": None, "signIn": None}
    # Unknown addresses get the same answer and no mail.
    r = await auth.post("/recover", {"email": new_email()})
    assert r.status_code == 200 and r.json() == {}


async def test_magic_link_pkce_with_supabase_js(mail_auth: AuthEnv, tmp_path: object) -> None:
    auth = mail_auth
    email = new_email()
    await auth.post("/admin/users", {"email": email, "password": PASSWORD, "email_confirm": True}, service=True)
    storage = str(tmp_path) + "/storage.json"  # type: ignore[operator]
    out = await js(auth, "otpStart", email=email, pkce=True, storage=storage, redirectTo="http://app.example.com/cb")
    assert out == {"error": None}
    msg = await auth.mail.wait_for(email, "Magic")
    link = auth.mail.link(msg)
    assert "token=pkce_" in link and "type=magiclink" in link
    r = await follow(auth, link)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("http://app.example.com/cb?code=")
    code = parse_qs(urlsplit(location).query)["code"][0]
    out = await js(auth, "exchange", code=code, storage=storage)
    assert out == {"error": None, "email": email, "hasSession": True}
    r = await auth.post("/token?grant_type=pkce", {"auth_code": code, "code_verifier": "x" * 43})
    assert r.status_code == 404 and r.json()["code"] == "flow_state_not_found"


async def test_otp_new_user_and_create_user_false(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    r = await auth.post("/otp", {"email": new_email(), "create_user": False})
    assert r.status_code == 422 and r.json()["code"] == "otp_disabled"
    email = new_email()
    assert (await js(auth, "otpStart", email=email)) == {"error": None}
    msg = await auth.mail.wait_for(email)
    out = await js(auth, "verifyOtp", email=email, token=auth.mail.code(msg), type="email")
    assert out == {"error": None, "email": email, "hasSession": True}


async def test_resend_and_per_address_limit(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email = new_email()
    await auth.post("/signup", {"email": email, "password": PASSWORD})
    first = await auth.mail.wait_for(email)
    await auth.set_config(mailer_autoconfirm=False,
                          rate_limits={"email_per_address_seconds": 60, "sign_in_sign_ups": 100000,
                                       "otp": 100000, "verify": 100000, "email_sent": 100000})
    try:
        r = await auth.post("/resend", {"type": "signup", "email": email})
        assert r.status_code == 429 and r.json()["code"] == "over_email_send_rate_limit"
    finally:
        await auth.set_config(mailer_autoconfirm=False)
    r = await auth.post("/resend", {"type": "signup", "email": email})
    assert r.status_code == 200 and r.json() == {}
    second = await auth.mail.wait_for(email)
    assert auth.mail.code(second) != auth.mail.code(first) or auth.mail.link(second) != auth.mail.link(first)
    # Only the newest code works.
    r = await auth.post("/verify", {"type": "signup", "email": email, "token": auth.mail.code(second)})
    assert r.status_code == 200 and r.json()["access_token"]


async def test_secure_email_change_needs_both_links(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email, new = new_email(), new_email()
    await auth.post("/admin/users", {"email": email, "password": PASSWORD, "email_confirm": True}, service=True)
    s = (await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})).json()
    r = await auth.client.put("/user", json={"email": new}, headers=auth.headers(s["access_token"]))
    assert r.status_code == 200 and r.json()["email"] == email and r.json()["new_email"] == new
    to_new = await auth.mail.wait_for(new, "Email Change")
    to_old = await auth.mail.wait_for(email, "Email Change")
    r = await auth.post("/verify", {"type": "email_change", "email": new, "token": auth.mail.code(to_new)})
    assert r.status_code == 200 and r.json()["code"] == 200 and "msg" in r.json()
    r = await auth.post("/verify", {"type": "email_change", "email": email, "token": auth.mail.code(to_old)})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["email"] == new


async def test_reauthentication_nonce_for_password_change(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    await auth.set_config(mailer_autoconfirm=False, security_update_password_require_reauthentication=True)
    try:
        email = new_email()
        await auth.post("/admin/users", {"email": email, "password": PASSWORD, "email_confirm": True}, service=True)
        s = (await auth.post("/token?grant_type=password", {"email": email, "password": PASSWORD})).json()
        conn = await asyncpg.connect(auth.server.db_url)
        try:
            await conn.execute("update auth.sessions set created_at = now() - interval '2 days' "
                               "where user_id = $1::uuid", s["user"]["id"])
        finally:
            await conn.close()
        h = auth.headers(s["access_token"])
        r = await auth.client.put("/user", json={"password": "next-pass-22"}, headers=h)
        assert r.status_code == 400 and r.json()["code"] == "reauthentication_needed"
        r = await auth.client.get("/reauthenticate", headers=h)
        assert r.status_code == 200 and r.json() == {}
        msg = await auth.mail.wait_for(email, "Reauthentication")
        r = await auth.client.put("/user", json={"password": "next-pass-22", "nonce": "999999"}, headers=h)
        if auth.mail.code(msg) != "999999":
            assert r.status_code == 400 and r.json()["code"] == "reauthentication_not_valid"
        r = await auth.client.put("/user", json={"password": "next-pass-22", "nonce": auth.mail.code(msg)}, headers=h)
        assert r.status_code == 200, r.text
    finally:
        await auth.set_config(mailer_autoconfirm=False)


async def test_outbox_keeps_mail_while_smtp_is_down(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    from tests.support.servers import free_port
    await auth.set_config(mailer_autoconfirm=False, smtp={"host": "127.0.0.1", "port": free_port()})
    email = new_email()
    try:
        r = await auth.post("/signup", {"email": email, "password": PASSWORD})
        assert r.status_code == 200
        conn = await asyncpg.connect(auth.server.db_url)
        try:
            for _ in range(50):
                row = await conn.fetchrow("select attempts, sent_at, last_error from auth.madbase_mail_outbox "
                                          "where recipient = $1", email)
                if row is not None and row["attempts"] > 0:
                    break
                await asyncio.sleep(0.1)
            assert row is not None and row["sent_at"] is None and row["attempts"] >= 1 and row["last_error"]
            await conn.execute("update auth.madbase_mail_outbox set next_attempt_at = now() where recipient = $1",
                               email)
        finally:
            await conn.close()
    finally:
        await auth.set_config(mailer_autoconfirm=False)
    msg = await auth.mail.wait_for(email, wait=20)
    assert auth.mail.code(msg)


async def test_invite_link_and_generated_links(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email = new_email()
    r = await auth.post("/invite?redirect_to=http%3A%2F%2Fapp.example.com%2Fjoin", {"email": email, "data": {"t": 1}},
                        service=True)
    assert r.status_code == 200 and r.json()["invited_at"] and r.json()["user_metadata"] == {"t": 1}
    msg = await auth.mail.wait_for(email, "invited")
    r = await follow(auth, auth.mail.link(msg))
    assert r.status_code == 303 and r.headers["location"].startswith("http://app.example.com/join#")
    frag = fragment(r.headers["location"])
    assert frag["type"] == "invite"
    me = (await auth.get("/user", frag["access_token"])).json()
    assert me["email"] == email and me["email_confirmed_at"]
    # generate_link: signup (creates the user) and recovery; the hashed token verifies via POST /verify.
    other = new_email()
    r = await auth.post("/admin/generate_link", {"type": "signup", "email": other, "password": PASSWORD},
                        service=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email"] == other and body["verification_type"] == "signup"
    assert body["action_link"].startswith(auth.url + "/verify?token=" + body["hashed_token"])
    r = await auth.post("/verify", {"type": "signup", "token_hash": body["hashed_token"]})
    assert r.status_code == 200 and r.json()["user"]["email"] == other
    r = await auth.post("/admin/generate_link", {"type": "recovery", "email": other}, service=True)
    r = await follow(auth, r.json()["action_link"])
    assert fragment(r.headers["location"])["type"] == "recovery"
    r = await auth.post("/admin/generate_link", {"type": "recovery", "email": new_email()}, service=True)
    assert r.status_code == 404 and r.json()["code"] == "user_not_found"


async def test_resend_and_reauthenticate_with_supabase_js(mail_auth: AuthEnv) -> None:
    auth = mail_auth
    email = new_email()
    await auth.post("/signup", {"email": email, "password": PASSWORD})
    await auth.mail.wait_for(email)
    assert (await js(auth, "resend", email=email, type="signup")) == {"error": None}
    msg = await auth.mail.wait_for(email)
    s = (await auth.post("/verify", {"type": "signup", "email": email, "token": auth.mail.code(msg)})).json()
    await auth.set_config(mailer_autoconfirm=False, security_update_password_require_reauthentication=True)
    try:
        conn = await asyncpg.connect(auth.server.db_url)
        try:
            await conn.execute("update auth.sessions set created_at = now() - interval '2 days' "
                               "where user_id = $1::uuid", s["user"]["id"])
        finally:
            await conn.close()
        tokens = {"accessToken": s["access_token"], "refreshToken": s["refresh_token"]}
        out = await js(auth, "passwordWithNonce", **tokens, password="js-new-pass-1", nonce="")
        assert out["error"]["code"] == "reauthentication_needed"
        assert (await js(auth, "reauthenticate", **tokens)) == {"error": None}
        nonce = auth.mail.code(await auth.mail.wait_for(email, "Reauthentication"))
        assert (await js(auth, "passwordWithNonce", **tokens, password="js-new-pass-1", nonce=nonce)) == {
            "error": None}
    finally:
        await auth.set_config(mailer_autoconfirm=False)
    r = await auth.post("/token?grant_type=password", {"email": email, "password": "js-new-pass-1"})
    assert r.status_code == 200
