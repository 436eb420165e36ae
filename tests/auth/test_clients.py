"""The official clients against the running server: supabase-js (auth-js) and supabase-py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
from supabase import ClientOptions, create_client

from tests.auth.conftest import AuthEnv, new_email

SCRIPT = Path(__file__).resolve().parents[1] / "js" / "auth" / "flows.mjs"


def run_js(auth: AuthEnv, scenario: str, **args: Any) -> dict[str, Any]:
    env = {**os.environ, "SUPABASE_URL": auth.server.url, "ANON_KEY": auth.server.anon_key,
           "SERVICE_KEY": auth.server.service_role_key}
    proc = subprocess.run(["node", str(SCRIPT), scenario, json.dumps(args)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def js(auth: AuthEnv, scenario: str, **args: Any) -> dict[str, Any]:
    return await asyncio.to_thread(run_js, auth, scenario, **args)


async def test_supabase_js_password_flow(auth: AuthEnv) -> None:
    out = await js(auth, "password", email=new_email(), password="secret-pass-1")
    assert out["signUp"]["error"] is None and out["signUp"]["hasSession"] is True
    assert out["signUp"]["meta"] == {"plan": "free"}
    assert out["duplicate"]["name"] == "AuthApiError" and out["duplicate"]["code"] == "user_already_exists"
    assert out["weak"]["name"] == "AuthWeakPasswordError" and out["weak"]["reasons"] == ["length"]
    assert out["badLogin"]["code"] == "invalid_credentials" and out["badLogin"]["status"] == 400
    assert out["signIn"]["error"] is None and out["getUser"]["error"] is None
    assert out["claims"]["error"] is None and out["claims"]["role"] == "authenticated"
    assert out["claims"]["aal"] == "aal1" and out["claims"]["sub"] == out["signIn"]["userId"]
    assert out["updateUser"]["meta"] == {"plan": "pro"}
    assert out["refresh"] == {"error": None, "rotated": True, "meta": {"plan": "pro"}}
    assert out["signOut"] is None
    assert out["afterSignOut"]["name"] == "AuthSessionMissingError", out["afterSignOut"]
    assert out["anonymous"] == {"error": None, "isAnonymous": True}


async def test_supabase_js_admin(auth: AuthEnv) -> None:
    emails = [new_email() for _ in range(3)]
    out = await js(auth, "admin", emails=emails)
    assert all(c["error"] is None and c["confirmed"] for c in out["created"])
    lst = out["list"]
    assert lst["error"] is None and lst["count"] == 2 and lst["nextPage"] == 2 and lst["total"] >= 3
    assert lst["aud"] == "authenticated"
    assert out["get"] == {"error": None, "email": emails[0]}
    assert out["update"]["meta"] == {"n": emails[0], "extra": 1} and out["update"]["banned"] is True
    assert out["bannedLogin"]["code"] == "user_banned"
    assert out["link"]["error"] is None and out["link"]["hasLink"] and out["link"]["otpLen"] == 6
    assert out["link"]["type"] == "magiclink" and out["link"]["user"] == emails[1]
    assert out["verifyLinkOtp"] == {"error": None, "hasSession": True}
    assert out["invite"]["error"] is None and out["invite"]["invited"] is True
    assert out["delete"] is None and out["afterDelete"]["code"] == "user_not_found"
    assert out["notAdmin"]["code"] == "not_admin" and out["notAdmin"]["status"] == 403


async def test_supabase_js_mfa_totp(auth: AuthEnv) -> None:
    out = await js(auth, "mfa", email=new_email(), password="secret-pass-1")
    assert out["enroll"]["error"] is None and out["enroll"]["type"] == "totp"
    assert out["enroll"]["qr"].startswith("data:image/svg+xml;utf-8,<svg")
    assert out["enroll"]["uri"].startswith("otpauth://totp/")
    assert out["challenge"] == {"error": None, "hasId": True}
    assert out["wrong"]["code"] == "mfa_verification_failed"
    assert out["verify"] == {"error": None}
    assert out["aal"]["current"] == "aal2" and out["aal"]["next"] == "aal2"
    assert out["aal"]["amr"][0] == "totp" and "password" in out["aal"]["amr"]
    assert out["factors"] == {"totp": 1, "all": 1}
    assert out["unenroll"] == {"error": None, "id": True}


def test_supabase_py_password_flow(auth: AuthEnv) -> None:
    with httpx.Client(timeout=30) as http:
        _py_flow(auth, http)


def _py_flow(auth: AuthEnv, http: httpx.Client) -> None:
    sb = create_client(auth.server.url, auth.server.anon_key, ClientOptions(httpx_client=http))
    email = new_email()
    res = sb.auth.sign_up({"email": email, "password": "secret-pass-1", "options": {"data": {"py": True}}})
    assert res.session is not None and res.user is not None and res.user.user_metadata == {"py": True}
    sb.auth.sign_out()
    res = sb.auth.sign_in_with_password({"email": email, "password": "secret-pass-1"})
    assert res.session is not None
    user = sb.auth.get_user()
    assert user is not None and user.user.email == email
    old = res.session.refresh_token
    refreshed = sb.auth.refresh_session()
    assert refreshed.session is not None and refreshed.session.refresh_token != old
    from supabase_auth.errors import AuthApiError
    try:
        sb.auth.sign_in_with_password({"email": email, "password": "nope-nope-1"})
    except AuthApiError as exc:
        assert exc.code == "invalid_credentials" and exc.status == 400
    else:
        raise AssertionError("expected invalid_credentials")
    admin = create_client(auth.server.url, auth.server.service_role_key, ClientOptions(httpx_client=http))
    users = admin.auth.admin.list_users(page=1, per_page=5)
    assert len(users) >= 1
    sb.auth.sign_out()


def test_supabase_py_otp_mfa_admin(auth: AuthEnv) -> None:
    import asyncio as _asyncio

    import pyotp

    with httpx.Client(timeout=30) as http:
        admin = create_client(auth.server.url, auth.server.service_role_key, ClientOptions(httpx_client=http))
        sb = create_client(auth.server.url, auth.server.anon_key, ClientOptions(httpx_client=http))
        email = new_email()
        created = admin.auth.admin.create_user({"email": email, "password": "secret-pass-1", "email_confirm": True,
                                                "user_metadata": {"from": "py"}})
        assert created.user.email == email and created.user.user_metadata == {"from": "py"}
        # Magic-link OTP through a real mail.
        sb.auth.sign_in_with_otp({"email": email})
        msg = _asyncio.run(auth.mail.wait_for(email, "Magic"))
        res = sb.auth.verify_otp({"email": email, "token": auth.mail.code(msg), "type": "email"})
        assert res.session is not None and res.user is not None and res.user.email == email
        updated = sb.auth.update_user({"data": {"nick": "p"}})
        assert updated is not None and updated.user.user_metadata == {"from": "py", "nick": "p"}
        # TOTP MFA.
        enrolled = sb.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "py"})
        challenge = sb.auth.mfa.challenge({"factor_id": enrolled.id})
        verified = sb.auth.mfa.verify({"factor_id": enrolled.id, "challenge_id": challenge.id,
                                       "code": pyotp.TOTP(enrolled.totp.secret).now()})
        assert verified.access_token
        level = sb.auth.mfa.get_authenticator_assurance_level()
        assert level.current_level == "aal2"
        # Admin update, list and delete.
        admin.auth.admin.update_user_by_id(created.user.id, {"app_metadata": {"tier": 2}})
        fetched = admin.auth.admin.get_user_by_id(created.user.id)
        assert fetched.user.app_metadata["tier"] == 2 and fetched.user.app_metadata["provider"] == "email"
        admin.auth.admin.delete_user(created.user.id)
        anon_session = create_client(auth.server.url, auth.server.anon_key, ClientOptions(httpx_client=http))
        res = anon_session.auth.sign_in_anonymously()
        assert res.user is not None and res.user.is_anonymous
