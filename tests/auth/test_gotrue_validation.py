"""GoTrue's input rules where MadBase was looser: e-mail format (checkmail's ValidateFormat, as GoTrue uses it)
and the admin user list's paging parameters (unsigned integers, else 400 "Bad Pagination Parameters")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from madbase.auth.errors import AuthError
from madbase.auth.signup import validate_email
from tests.auth.conftest import AuthEnv

BAD_EMAILS = ["xx:;x@x.x", "a b@x.co", "a@-x.co", "a@x-.co", "a@x..co", "a@.x.co", "a@x.co.", "@x.co", "a@",
              "a@b_c.co", "a@" + "x" * 64 + ".co", "é@x.co", "a@x.co\n", "a(b)@x.co", "a@[1.2.3.4]", 'a"b@x.co']
GOOD_EMAILS = ["a@x.co", "A.B+tag@Sub.Example.COM", "o'hara@x.io", "x!#$%&'*+/=?^_`{|}~-@x.co", "a@localhost",
               "a@" + "x" * 63 + ".co", "1@2.3"]


def test_email_format_follows_gotrue() -> None:
    for email in GOOD_EMAILS:
        assert validate_email(email) == email.lower()
    for email in BAD_EMAILS:
        with pytest.raises(AuthError) as info:
            validate_email(email)
        assert info.value.message == "Unable to validate email address: invalid format", email
    with pytest.raises(AuthError) as info:
        validate_email("a" * 250 + "@x.com")
    assert info.value.message == "An email address is too long"


def _email() -> str:
    return f"v-{uuid.uuid4().hex[:8]}@example.com"


async def test_bad_email_refused_by_every_endpoint(auth: AuthEnv) -> None:
    bad = "xx:;x@x.x"
    calls: list[tuple[str, dict[str, Any], bool]] = [
        ("/admin/users", {"email": bad, "password": "secret-pass-1"}, True),
        ("/invite", {"email": bad}, True),
        ("/admin/generate_link", {"type": "magiclink", "email": bad}, True),
        ("/admin/generate_link", {"type": "signup", "email": bad, "password": "secret-pass-1"}, True),
        ("/signup", {"email": bad, "password": "secret-pass-1"}, False),
        ("/otp", {"email": bad}, False),
    ]
    for path, body, service in calls:
        r = await auth.post(path, body, service=service)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.json()["message"] == "Unable to validate email address: invalid format", (path, r.text)
    r = await auth.post("/admin/users", {"email": _email(), "password": "secret-pass-1"}, service=True)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("query", "value", "why"), [
    ("page=-1", "-1", "invalid syntax"), ("per_page=-5", "-5", "invalid syntax"), ("page=abc", "abc", "invalid syntax"),
    ("page=1.5", "1.5", "invalid syntax"), ("per_page=%2B1", "+1", "invalid syntax"),
    ("page=99999999999999999999", "99999999999999999999", "value out of range"),
])
async def test_bad_pagination_is_400(auth: AuthEnv, query: str, value: str, why: str) -> None:
    r = await auth.get(f"/admin/users?{query}", service=True)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == f'Bad Pagination Parameters: strconv.ParseUint: parsing "{value}": {why}'
    assert r.json()["code"] == "validation_failed"


async def test_huge_page_is_empty_not_an_error(auth: AuthEnv) -> None:
    r = await auth.get("/admin/users?page=18446744073709551615&per_page=1000", service=True)
    assert r.status_code == 200 and r.json()["users"] == []


async def test_webauthn_refusal_does_not_offer_webauthn(auth: AuthEnv) -> None:
    token = (await auth.signup())["access_token"]
    r = await auth.post("/factors", {"factor_type": "webauthn"}, token=token)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "mfa_webauthn_enroll_not_enabled"
    assert r.json()["message"] == "MFA enroll is disabled for WebAuthn"
    r = await auth.post("/factors", {"factor_type": "sms"}, token=token)
    assert r.status_code == 400 and r.json()["message"] == "factor_type needs to be totp or phone"
