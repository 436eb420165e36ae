"""Phone flows through GoTrue's Send SMS Hook: a real HTTP hook server the test starts receives the signed
payload; the OTP it carries completes signup, OTP sign-in and phone change (supabase-js verifies)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.auth.conftest import AuthEnv
from tests.auth.test_clients import js
from tests.support.servers import free_port

SECRET = base64.b64encode(b"hook-secret-0123456789").decode()


class SmsHook:
    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
                expected = base64.b64encode(hmac.new(base64.b64decode(SECRET), signed, hashlib.sha256).digest())
                ok = self.headers["webhook-signature"] == "v1," + expected.decode()
                hook.calls.append({"payload": json.loads(body), "signature_ok": ok})
                data = json.dumps({"message_id": f"msg-{len(hook.calls)}"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def otp_for(self, phone: str) -> str:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for call in reversed(self.calls):
                user = call["payload"]["user"]
                if phone in (user.get("phone"), user.get("new_phone")):
                    assert call["signature_ok"]
                    return str(call["payload"]["sms"]["otp"])
            time.sleep(0.05)
        raise AssertionError(f"no SMS for {phone}")


@pytest.fixture(scope="module")
def hook() -> Iterator[SmsHook]:
    h = SmsHook()
    try:
        yield h
    finally:
        h.server.shutdown()
        h.server.server_close()


@pytest.fixture(scope="module")
async def phone_auth(auth: AuthEnv, hook: SmsHook) -> AsyncIterator[AuthEnv]:
    await auth.set_config(external_phone_enabled=True, hook_send_sms={
        "uri": f"http://127.0.0.1:{hook.port}/sms", "secrets": "v1,whsec_" + SECRET})
    try:
        yield auth
    finally:
        await auth.set_config()


def new_phone() -> str:
    return "1555" + str(time.time_ns())[-7:]


async def test_phone_signup_otp_signin_and_change(phone_auth: AuthEnv, hook: SmsHook) -> None:
    auth = phone_auth
    phone = new_phone()
    r = await auth.post("/signup", {"phone": "+" + phone, "password": "secret-pass-1"})
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == phone and "access_token" not in r.json()
    r = await auth.post("/token?grant_type=password", {"phone": phone, "password": "secret-pass-1"})
    assert r.status_code == 400 and r.json()["code"] == "phone_not_confirmed"
    out = await js(auth, "verifyPhone", phone="+" + phone, token=hook.otp_for(phone), type="sms")
    assert out == {"error": None, "phone": phone, "hasSession": True}
    r = await auth.post("/token?grant_type=password", {"phone": phone, "password": "secret-pass-1"})
    assert r.status_code == 200
    # Passwordless OTP sign-in.
    r = await auth.post("/otp", {"phone": phone})
    assert r.status_code == 200 and r.json()["message_id"].startswith("msg-")
    r = await auth.post("/verify", {"type": "sms", "phone": phone, "token": "000001"})
    if hook.otp_for(phone) != "000001":
        assert r.status_code == 403 and r.json()["code"] == "otp_expired"
    r = await auth.post("/verify", {"type": "sms", "phone": phone, "token": hook.otp_for(phone)})
    assert r.status_code == 200
    token = r.json()["access_token"]
    # Phone change: the OTP goes to the new number.
    other = new_phone()
    r = await auth.client.put("/user", json={"phone": other}, headers=auth.headers(token))
    assert r.status_code == 200 and r.json()["phone"] == phone and r.json()["new_phone"] == other
    r = await auth.post("/verify", {"type": "phone_change", "phone": other, "token": hook.otp_for(other)})
    assert r.status_code == 200 and r.json()["user"]["phone"] == other


async def test_phone_without_hook(auth: AuthEnv) -> None:
    await auth.set_config(external_phone_enabled=True)
    try:
        r = await auth.post("/signup", {"phone": new_phone(), "password": "secret-pass-1"})
        assert r.status_code == 422 and r.json()["code"] == "sms_send_failed"
    finally:
        await auth.set_config()


async def test_mfa_phone_factor(auth: AuthEnv, hook: SmsHook) -> None:
    import jwt
    s = await auth.signup()
    h = auth.headers(s["access_token"])
    r = await auth.client.post("/factors", json={"factor_type": "phone", "phone": new_phone()}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "mfa_phone_enroll_not_enabled"
    await auth.set_config(mfa_phone_enroll_enabled=True, mfa_phone_verify_enabled=True, hook_send_sms={
        "uri": f"http://127.0.0.1:{hook.port}/sms", "secrets": "v1,whsec_" + SECRET})
    try:
        phone = new_phone()
        r = await auth.client.post("/factors", json={"factor_type": "phone", "phone": phone}, headers=h)
        assert r.status_code == 200 and r.json()["type"] == "phone" and r.json()["phone"] == phone
        fid = r.json()["id"]
        chal = (await auth.client.post(f"/factors/{fid}/challenge", json={}, headers=h)).json()
        assert chal["type"] == "phone"
        r = await auth.client.post(f"/factors/{fid}/verify", json={"challenge_id": chal["id"],
                                                                   "code": hook.otp_for(phone)}, headers=h)
        assert r.status_code == 200, r.text
        c = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert c["aal"] == "aal2" and c["amr"][0]["method"] == "mfa/phone"
    finally:
        await auth.set_config()


async def test_send_email_hook_replaces_smtp(auth: AuthEnv, hook: SmsHook) -> None:
    from tests.auth.conftest import new_email
    await auth.set_config(mailer_autoconfirm=False, hook_send_email={
        "uri": f"http://127.0.0.1:{hook.port}/email", "secrets": "v1,whsec_" + SECRET})
    try:
        email = new_email()
        r = await auth.post("/signup?redirect_to=http%3A%2F%2Fapp.example.com%2Fx", {"email": email,
                                                                                     "password": "secret-pass-1"})
        assert r.status_code == 200
        call = next(c for c in reversed(hook.calls) if c["payload"]["user"].get("email") == email)
        assert call["signature_ok"]
        data = call["payload"]["email_data"]
        assert data["email_action_type"] == "signup" and data["redirect_to"] == "http://app.example.com/x"
        r = await auth.post("/verify", {"type": "signup", "email": email, "token": data["token"]})
        assert r.status_code == 200 and r.json()["user"]["email"] == email
    finally:
        await auth.set_config()
