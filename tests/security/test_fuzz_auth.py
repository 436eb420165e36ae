"""Property-based fuzzing of the auth API's request shapes: hostile JSON bodies, query strings and headers on
every auth route must get a clear 4xx (or a success), never a 500, never internals in the body.

Bounded for CI (`derandomize`, a few dozen examples per route, well under a minute); set
MADBASE_FUZZ_EXAMPLES=2000 for a long local run with fresh randomness."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.security.conftest import Project, no_500, set_auth_config

EXAMPLES = int(os.environ.get("MADBASE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXAMPLES or 40, deadline=None, derandomize=not EXAMPLES, database=None,
                suppress_health_check=list(HealthCheck))
OPEN = {k: 10**6 for k in ("sign_in_sign_ups", "token_refresh", "verify", "otp", "email_sent", "sms_sent",
                           "anonymous_users", "mfa_challenge_and_verify", "mfa_verify_per_factor",
                           "verify_per_address", "reauthentication_attempts")}

# Text that has broken parsers before: control characters, separators, huge numbers as text, unicode.
NASTY_TEXT = st.sampled_from([
    "", " ", "\x00", "\n", "\\", "%", "%00", "%zz", "'", '"', "--", ";", "null", "NaN", "-1", "0", "1e309",
    "9" * 40, "\uff41@\uff42.co", "a@b.co", "+1 555 0100", "15550100", "http://evil.example\\@localhost/", "https://x:abc/",
    "javascript:alert(1)", "\u202e", "\ud7ff", "💥", "a" * 300, "pkce_" + "0" * 56,
    "00000000-0000-0000-0000-000000000000",
    "s256", "plain", "email", "signup", "recovery", "magiclink", "invite", "sms", "phone_change", "email_change",
    "totp", "phone", "webauthn", "global", "local", "others", "24h", "none", "-5h", "1.5e3h", "$2a$10$x", "$argon2id$x",
])
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=40))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=False, allow_infinity=False), TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
FIELDS = ["email", "password", "phone", "data", "token", "token_hash", "type", "redirect_to", "code_challenge",
          "code_challenge_method", "refresh_token", "auth_code", "code_verifier", "provider", "id_token", "nonce",
          "access_token", "factor_type", "friendly_name", "issuer", "challenge_id", "code", "user_metadata",
          "app_metadata", "ban_duration", "role", "id", "email_confirm", "phone_confirm", "password_hash",
          "should_soft_delete", "create_user", "new_email", "channel", "options", "gotrue_meta_security",
          "link_identity"]
BODY_OBJECT = st.dictionaries(st.one_of(st.sampled_from(FIELDS), TEXT), VALUE, max_size=7)
RAW_BODY = st.one_of(
    BODY_OBJECT.map(lambda b: json.dumps(b).encode()),
    st.sampled_from([b"", b"{", b"[]", b"null", b"1", b'"x"', b"{}", b'{"a":NaN}', b'{"email": "\\ud800@x.co"}',
                     b"[" * 5000 + b"]" * 5000, b'{"data":' * 2000 + b"1" + b"}" * 2000, b"\xff\xfe", b"\x00"]),
    st.binary(max_size=64),
)
SITE_HOST = "site.fuzz.example"
# URLs assembled from hostile parts: the redirect checks must refuse (not crash on) every one of them.
URL = st.builds(
    lambda scheme, userinfo, host, port, path: f"{scheme}{userinfo}{host}{port}{path}",
    st.sampled_from(["https://"] * 4 + ["http://", "HTTPS://", "https:/\\", "//", "myapp://", "javascript:", "",
                                         "h\ttp://"]),
    st.sampled_from([""] * 4 + ["user@", "a:b@", "evil.example\\@", "%40@", "@"]),
    st.one_of(st.sampled_from([SITE_HOST] * 8 + ["localhost", "127.0.0.1", "[::1]", "0x7f.1", "2130706433",
                                                 "evil.example",
                               "xn--", "b\u00fccher.de", "a..b", "", "%2e%2e", "[zz]"]), st.text(max_size=12)),
    st.one_of(st.sampled_from(["", ":0", ":abc", ":99999", ":-1", ":", ":1:2", ": 80"]),
              st.integers(-10, 10**6).map(lambda n: f":{n}")),
    st.sampled_from(["", "/", "/cb?x=1#y", "/\\evil", "/%0a", "?@evil.example", "#@evil.example"]),
)
QUERY = st.fixed_dictionaries({}, optional={"redirect_to": st.one_of(URL, TEXT)}).flatmap(
    lambda fixed: st.dictionaries(st.sampled_from(["grant_type", "type", "token", "scope", "page", "per_page",
                                                   "filter", "provider", "code_challenge", "code_challenge_method",
                                                   "scopes", "skip_http_redirect", "apikey"]), TEXT,
                                  max_size=3).map(lambda rest: {**rest, **fixed}))
HEADERS = st.fixed_dictionaries({}, optional={
    "x-supabase-api-version": st.sampled_from(["2024-01-01", "2023-12-31", "", "x" * 20, "2024-1-1"]),
    "content-type": st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=x", ""]),
    "x-forwarded-host": st.sampled_from(["evil.example", "", "a b", "[::1]:99999", "x" * 300, "h:abc"]),
    "x-forwarded-proto": st.sampled_from(["https", "javascript", "", "HTTP"]),
    "x-forwarded-for": st.sampled_from(["1.2.3.4", "garbage", "", "1.2.3.4, ::1, x"]),
    "authorization": st.sampled_from(["", "Bearer", "Bearer\tx", "Basic abc", "Bearer a.b.c", "Bearer " + "x" * 500,
                                      "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."]),
})


@pytest.fixture(scope="module")
def fuzz_env(project_a: Project) -> Iterator[dict[str, str]]:
    set_auth_config(project_a, {"site_url": f"https://{SITE_HOST}", "mailer_autoconfirm": True, "rate_limits": OPEN,
                                "external_phone_enabled": True,
                                "uri_allow_list": "https://*.example.com/**"})
    with httpx.Client(timeout=30) as client:
        email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
        r = client.post(project_a.url + "/auth/v1/signup", headers=project_a.headers(),
                        json={"email": email, "password": "correct horse 1"})
        assert r.status_code == 200, r.text
        session = r.json()
        r = client.post(project_a.url + "/auth/v1/factors", headers=project_a.headers(token=session["access_token"]),
                        json={"factor_type": "totp"})
        assert r.status_code == 200, r.text
    yield {"token": session["access_token"], "refresh": session["refresh_token"], "user_id": session["user"]["id"],
           "factor_id": r.json()["id"]}
    set_auth_config(project_a, {"site_url": "http://localhost:3000"})


def _send(client: httpx.Client, project: Project, method: str, path: str, role: str, token: str | None,
          query: dict[str, str], headers: dict[str, str], body: bytes) -> None:
    sent = project.headers(role, token=token)
    for key, value in headers.items():
        if key == "authorization" and token is not None:
            continue  # routes that need the signed-in user keep its token (its shape is fuzzed elsewhere)
        sent[key] = value
    url = f"{project.url}/auth/v1{path}" + ("?" + urlencode(query) if query else "")
    try:
        r = client.request(method, url, headers=sent, content=body if method != "GET" else None)
    except httpx.HTTPError as exc:  # a dropped connection is as bad as a 500
        raise AssertionError(f"{method} {path}: {exc!r}") from exc
    no_500(r)


OPEN_ROUTES = [("POST", "/signup"), ("POST", "/token"), ("POST", "/verify"), ("GET", "/verify"), ("POST", "/otp"),
               ("POST", "/magiclink"), ("POST", "/recover"), ("POST", "/resend"), ("GET", "/authorize"),
               ("GET", "/callback"), ("POST", "/callback"), ("GET", "/settings"), ("POST", "/sso")]


@FUZZ
@given(route=st.sampled_from(OPEN_ROUTES), query=QUERY, headers=HEADERS, body=RAW_BODY)
@example(route=("GET", "/verify"), query={"redirect_to": f"https://{SITE_HOST}:abc/"}, headers={}, body=b"")
def test_open_routes(project_a: Project, fuzz_env: dict[str, str], client: httpx.Client, route: tuple[str, str],
                     query: dict[str, str], headers: dict[str, str], body: bytes) -> None:
    _send(client, project_a, route[0], route[1], "anon", None, query, headers, body)


@FUZZ
@given(grant=st.one_of(st.sampled_from(["password", "refresh_token", "pkce", "id_token", "otp", ""]), TEXT),
       body=BODY_OBJECT, headers=HEADERS)
def test_token_grants(project_a: Project, fuzz_env: dict[str, str], client: httpx.Client, grant: str,
                      body: dict[str, Any], headers: dict[str, str]) -> None:
    _send(client, project_a, "POST", "/token", "anon", None, {"grant_type": grant}, headers, json.dumps(body).encode())


USER_ROUTES = [("GET", "/user"), ("PUT", "/user"), ("GET", "/reauthenticate"), ("POST", "/factors"),
               ("POST", "/factors/{factor}/challenge"), ("POST", "/factors/{factor}/verify"),
               ("POST", "/factors/{junk}/verify"), ("DELETE", "/factors/{junk}"),
               ("GET", "/user/identities/authorize"), ("DELETE", "/user/identities/{junk}")]


@FUZZ
@given(route=st.sampled_from(USER_ROUTES), junk=TEXT, query=QUERY, headers=HEADERS, body=RAW_BODY)
def test_user_routes(project_a: Project, fuzz_env: dict[str, str], client: httpx.Client, route: tuple[str, str],
                     junk: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> None:
    path = route[1].replace("{factor}", fuzz_env["factor_id"]).replace("{junk}", quote(junk, safe="") or "x")
    if route == ("PUT", "/user"):
        # keep the fuzz user's own password and address: the other fields are still hostile
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            for key in ("password", "email", "phone"):
                parsed.pop(key, None)
            body = json.dumps(parsed).encode()
    _send(client, project_a, route[0], path, "anon", fuzz_env["token"], query, headers, body)


ADMIN_ROUTES = [("GET", "/admin/users"), ("POST", "/admin/users"), ("GET", "/admin/users/{junk}"),
                ("PUT", "/admin/users/{user}"), ("PUT", "/admin/users/{junk}"), ("DELETE", "/admin/users/{junk}"),
                ("GET", "/admin/users/{user}/factors"), ("DELETE", "/admin/users/{user}/factors/{junk}"),
                ("POST", "/admin/generate_link"), ("POST", "/invite")]


@FUZZ
@given(route=st.sampled_from(ADMIN_ROUTES), junk=TEXT, query=QUERY, headers=HEADERS, body=RAW_BODY)
def test_admin_routes(project_a: Project, fuzz_env: dict[str, str], client: httpx.Client, route: tuple[str, str],
                      junk: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> None:
    path = route[1].replace("{user}", fuzz_env["user_id"]).replace("{junk}", quote(junk, safe="") or "x")
    service = project_a.service_role_key
    _send(client, project_a, route[0], path, "service_role", service, query, headers, body)
