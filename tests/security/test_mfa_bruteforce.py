"""Six-digit secrets must not be guessable without limit: MFA challenges, email/SMS codes, reauthentication
nonces (an adversarial run sent 300 wrong TOTP codes to one challenge in 0.8 s)."""

from __future__ import annotations

import hashlib
import html
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyotp
import pytest

from tests.security.conftest import Project, no_500, set_auth_config

BASE: dict[str, Any] = {"mailer_autoconfirm": True}
OPEN = {"sign_in_sign_ups": 100000, "verify": 100000, "otp": 100000, "email_sent": 100000,
        "email_per_address_seconds": 0, "mfa_challenge_and_verify": 100000, "mfa_verify_per_factor": 100000,
        "verify_per_address": 100000, "reauthentication_attempts": 100000}


@pytest.fixture(scope="module")
def project(project_b: Project) -> Iterator[Project]:
    yield project_b
    set_auth_config(project_b, {"site_url": "http://localhost:3000"})


def configure(project: Project, **limits: int) -> None:
    set_auth_config(project, {**BASE, "rate_limits": {**OPEN, **limits}})


def _api(project: Project, token: str | None = None) -> dict[str, str]:
    return project.headers(token=token, **{"x-supabase-api-version": "2024-01-01"})


def _signed_in(project: Project, client: httpx.Client) -> tuple[str, str]:
    email = f"mfa-{uuid.uuid4().hex[:10]}@example.com"
    r = no_500(client.post(project.url + "/auth/v1/signup", headers=_api(project),
                           json={"email": email, "password": "correct horse 1"}))
    assert r.status_code == 200, r.text
    return r.json()["access_token"], email


def _factor(project: Project, client: httpx.Client, token: str) -> tuple[str, str]:
    r = no_500(client.post(project.url + "/auth/v1/factors", headers=_api(project, token),
                           json={"factor_type": "totp", "friendly_name": uuid.uuid4().hex}))
    assert r.status_code == 200, r.text
    return r.json()["id"], r.json()["totp"]["secret"]


def _challenge(project: Project, client: httpx.Client, token: str, factor: str) -> str:
    r = no_500(client.post(f"{project.url}/auth/v1/factors/{factor}/challenge", headers=_api(project, token)))
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _verify(project: Project, client: httpx.Client, token: str, factor: str, challenge: str,
            code: str) -> httpx.Response:
    return no_500(client.post(f"{project.url}/auth/v1/factors/{factor}/verify", headers=_api(project, token),
                              json={"challenge_id": challenge, "code": code}))


def _wrong(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    now = time.time()
    right = {totp.at(now + step * 30) for step in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


def test_a_challenge_is_spent_after_a_few_wrong_codes(project: Project, client: httpx.Client) -> None:
    configure(project)
    token, _ = _signed_in(project, client)
    factor, secret = _factor(project, client, token)
    challenge = _challenge(project, client, token, factor)
    for _ in range(5):
        r = _verify(project, client, token, factor, challenge, _wrong(secret))
        assert r.status_code == 422 and r.json()["code"] == "mfa_verification_failed", r.text
    r = _verify(project, client, token, factor, challenge, pyotp.TOTP(secret).now())
    assert r.status_code == 422 and r.json()["code"] == "mfa_challenge_expired", r.text
    # a fresh challenge with the right code still works
    challenge = _challenge(project, client, token, factor)
    r = _verify(project, client, token, factor, challenge, pyotp.TOTP(secret).now())
    assert r.status_code == 200 and r.json()["user"]["factors"][0]["status"] == "verified", r.text


def test_parallel_guesses_on_one_challenge_are_counted(project: Project) -> None:
    configure(project)
    with httpx.Client(timeout=30) as client:
        token, _ = _signed_in(project, client)
        factor, secret = _factor(project, client, token)
        challenge = _challenge(project, client, token, factor)
        wrong = _wrong(secret)

        def guess(_: int) -> str:
            r = _verify(project, client, token, factor, challenge, wrong)
            return str(r.json().get("code"))

        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(guess, range(120)))
    assert codes.count("mfa_verification_failed") == 5, codes
    assert set(codes) == {"mfa_verification_failed", "mfa_challenge_expired"}, codes


def test_verify_is_limited_per_factor(project: Project, client: httpx.Client) -> None:
    configure(project, mfa_verify_per_factor=6)
    token, _ = _signed_in(project, client)
    factor, secret = _factor(project, client, token)
    seen = []
    for _ in range(3):
        challenge = _challenge(project, client, token, factor)
        for _ in range(3):
            seen.append(_verify(project, client, token, factor, challenge, _wrong(secret)))
    assert [r.status_code for r in seen] == [422] * 6 + [429] * 3, [r.text for r in seen]
    assert seen[-1].json()["code"] == "over_request_rate_limit" and "retry-after" in seen[-1].headers


def test_challenge_and_verify_are_limited_per_ip(project: Project, client: httpx.Client) -> None:
    configure(project, mfa_challenge_and_verify=8)
    token, _ = _signed_in(project, client)
    factor, secret = _factor(project, client, token)
    statuses = []
    for _ in range(12):
        r = no_500(client.post(f"{project.url}/auth/v1/factors/{factor}/challenge", headers=_api(project, token)))
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["code"] == "over_request_rate_limit", r.text
    assert 429 in statuses and set(statuses[statuses.index(429):]) == {429}, statuses
    r = _verify(project, client, token, factor, str(uuid.uuid4()), _wrong(secret))
    for _ in range(12):
        r = _verify(project, client, token, factor, str(uuid.uuid4()), _wrong(secret))
    assert r.status_code == 429, r.text


def _mail(project: Project, email: str) -> tuple[str, str]:
    """(6-digit code, token hash of the link) of the newest mail to `email`."""
    rows = project.sql("select body_html from auth.madbase_mail_outbox where recipient = $1 order by id desc limit 1",
                       email, fetch=True)
    assert rows, email
    body = html.unescape(rows[0]["body_html"])
    code = re.search(r"code: (\d{6})", body)
    link = re.search(r"[?&]token=([0-9a-z_]+)", body)
    assert code, body
    return code.group(1), link.group(1) if link else ""


def test_email_codes_are_bounded_per_address_and_burnt(project: Project, client: httpx.Client) -> None:
    configure(project, verify_per_address=10)
    _, email = _signed_in(project, client)
    r = no_500(client.post(project.url + "/auth/v1/otp", headers=_api(project), json={"email": email}))
    assert r.status_code == 200, r.text
    code, _ = _mail(project, email)
    wrong = next(c for c in ("000000", "111111", "222222") if c != code)
    statuses = [no_500(client.post(project.url + "/auth/v1/verify", headers=_api(project),
                                   json={"type": "email", "email": email, "token": wrong})).status_code
                for _ in range(10)]
    assert statuses == [403] * 10, statuses
    r = no_500(client.post(project.url + "/auth/v1/verify", headers=_api(project),
                           json={"type": "email", "email": email, "token": code}))
    assert r.status_code == 429 and r.json()["code"] == "over_request_rate_limit", r.text
    rows = project.sql("select recovery_token from auth.users where email = $1", email, fetch=True)
    assert rows[0]["recovery_token"] == "", "the guessed-at code must be invalidated"


def test_parallel_code_guesses_are_counted(project: Project) -> None:
    configure(project, verify_per_address=10)
    with httpx.Client(timeout=30) as client:
        _, email = _signed_in(project, client)
        assert no_500(client.post(project.url + "/auth/v1/otp", headers=_api(project),
                                  json={"email": email})).status_code == 200

        def guess(i: int) -> int:
            return no_500(client.post(project.url + "/auth/v1/verify", headers=_api(project),
                                      json={"type": "email", "email": email, "token": f"{i:06d}"})).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(guess, range(900000, 900100)))
    assert statuses.count(403) + statuses.count(200) == 10 and statuses.count(429) == 90, statuses


def test_link_token_hash_cannot_be_computed_from_address_and_code(project: Project, client: httpx.Client) -> None:
    configure(project)
    _, email = _signed_in(project, client)
    assert no_500(client.post(project.url + "/auth/v1/otp", headers=_api(project),
                              json={"email": email})).status_code == 200
    code, token_hash = _mail(project, email)
    # GoTrue's unkeyed sha224(email + code) would let anyone who knows the address walk the 10^6 codes as hashes
    # through GET /verify, where no address is given to count attempts against.
    forged = hashlib.sha224((email + code).encode()).hexdigest()
    assert token_hash != forged
    r = no_500(client.post(project.url + "/auth/v1/verify", headers=_api(project),
                           json={"type": "magiclink", "token_hash": forged}))
    assert r.status_code == 403, r.text
    r = no_500(client.post(project.url + "/auth/v1/verify", headers=_api(project),
                           json={"type": "magiclink", "token_hash": token_hash}))
    assert r.status_code == 200 and r.json()["access_token"], r.text


def test_reauthentication_nonce_is_bounded(project: Project, client: httpx.Client) -> None:
    set_auth_config(project, {**BASE, "security_update_password_require_reauthentication": True,
                              "rate_limits": {**OPEN, "reauthentication_attempts": 5}})
    token, email = _signed_in(project, client)
    # the nonce is required for sessions older than a day
    project.sql("update auth.sessions set created_at = now() - interval '2 days' "
                "where user_id = (select id from auth.users where email = $1)", email)
    r = no_500(client.get(project.url + "/auth/v1/reauthenticate", headers=_api(project, token)))
    assert r.status_code == 200, r.text
    nonce, _ = _mail(project, email)
    wrong = next(c for c in ("000000", "111111", "222222") if c != nonce)
    for _ in range(5):
        r = no_500(client.put(project.url + "/auth/v1/user", headers=_api(project, token),
                              json={"password": "another horse 2", "nonce": wrong}))
        assert r.status_code == 400 and r.json()["code"] == "reauthentication_not_valid", r.text
    r = no_500(client.put(project.url + "/auth/v1/user", headers=_api(project, token),
                          json={"password": "another horse 2", "nonce": nonce}))
    assert r.status_code == 429, r.text
    rows = project.sql("select reauthentication_token from auth.users where email = $1", email, fetch=True)
    assert rows[0]["reauthentication_token"] == ""
