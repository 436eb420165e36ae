"""Unit tests of the auth service's pure parts: errors, passwords, tokens, redirects, config, routing."""

from __future__ import annotations

import base64
import hashlib
import json

import bcrypt
import pytest

from madbase.auth import admin, api, config, errors, passwords, redirects, tokens


def test_error_shapes() -> None:
    err = errors.AuthError("weak_password", "too weak", extra={"weak_password": {"reasons": ["length"]}})
    status, body, headers = errors.render(err, "2024-01-01")
    assert status == 422 and json.loads(body) == {"code": "weak_password", "message": "too weak",
                                                  "weak_password": {"reasons": ["length"]}}
    assert (b"x-supabase-api-version", b"2024-01-01") in headers
    status, body, headers = errors.render(errors.AuthError("invalid_credentials", "bad"), None)
    assert status == 400 and json.loads(body) == {"code": 400, "error_code": "invalid_credentials", "msg": "bad"}
    assert (b"x-sb-error-code", b"invalid_credentials") in headers
    assert not errors.wants_new_shape("2023-12-31") and not errors.wants_new_shape("garbage")
    assert errors.wants_new_shape("2025-06-01")


def test_every_code_has_a_status() -> None:
    for code, status in errors.STATUS.items():
        assert code == code.lower() and 200 < status < 600


def test_argon2_and_bcrypt() -> None:
    params = config.Argon2Params(time_cost=1, memory_cost=8192)
    encoded = passwords.hash_sync("pw-123456", params)
    assert encoded.startswith("$argon2id$")
    assert passwords.verify_sync(encoded, "pw-123456", params) == (True, False)
    assert passwords.verify_sync(encoded, "nope", params) == (False, False)
    # Stronger parameters make older hashes "need rehash".
    assert passwords.verify_sync(encoded, "pw-123456", config.Argon2Params(time_cost=2, memory_cost=8192)) == (
        True, True)
    legacy = bcrypt.hashpw(b"pw-123456", bcrypt.gensalt(rounds=4)).decode()
    assert passwords.verify_sync(legacy, "pw-123456", params) == (True, True)
    assert passwords.verify_sync(legacy, "wrong", params) == (False, False)
    assert passwords.verify_sync("", "x", params) == (False, False)
    assert passwords.verify_sync("$unknown$", "x", params) == (False, False)


def test_password_strength() -> None:
    cfg = config.parse({"password_min_length": 8,
                        "password_required_characters": "0123456789:abcdefghijklmnopqrstuvwxyz"})
    assert passwords.check_strength("abcdefgh", cfg) == ["characters"]
    assert passwords.check_strength("a1", cfg) == ["length"]
    assert passwords.check_strength("abcdefg1", cfg) == []
    assert "at least 8 characters" in passwords.weak_message(["length"], cfg)


def test_refresh_tokens_are_derived_and_hashed() -> None:
    a = tokens.root_refresh_token("secret", "sid")
    assert a == tokens.root_refresh_token("secret", "sid")
    assert a != tokens.root_refresh_token("secret", "sid2") and a != tokens.root_refresh_token("other", "sid")
    child = tokens.child_refresh_token("secret", tokens.token_digest(a))
    assert child not in (a, tokens.child_refresh_token("other", tokens.token_digest(a)))
    assert len(a) == 24 and tokens.token_digest(a) == hashlib.sha256(a.encode()).hexdigest()


def test_otp_hash_and_pkce() -> None:
    digest = tokens.otp_hash("a@b.c", "123456", "secret")
    assert len(digest) == 56 and digest != hashlib.sha224(b"a@b.c123456").hexdigest()
    assert digest != tokens.otp_hash("a@b.c", "123456", "other secret")
    assert len(tokens.new_otp()) == 6 and tokens.new_otp().isdigit()
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert tokens.pkce_matches("s256", challenge, verifier)
    assert not tokens.pkce_matches("s256", challenge, verifier + "x")
    assert tokens.pkce_matches("plain", verifier, verifier)


def test_access_token_claims_order() -> None:
    claims = tokens.access_token_claims(user={"id": "u1", "email": "a@b.c"}, session_id="s1", aal="aal1",
                                        amr=[{"method": "password", "timestamp": 1}], issuer="http://x/auth/v1",
                                        lifetime=60, now=100)
    assert claims == {"aud": "authenticated", "exp": 160, "iat": 100, "iss": "http://x/auth/v1", "sub": "u1",
                      "email": "a@b.c", "phone": "", "app_metadata": {}, "user_metadata": {},
                      "role": "authenticated", "aal": "aal1", "amr": [{"method": "password", "timestamp": 1}],
                      "session_id": "s1", "is_anonymous": False}


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://localhost:3000/welcome", True),
    ("https://app.example.com/any/path", True),
    ("https://app.example.com.evil.net/", False),
    ("https://sub.example.org/cb", True),
    ("https://a.b.example.org/cb", False),
    ("https://evil.example.net/", False),
    ("javascript:alert(1)", False),
    ("", False),
])
def test_redirect_allow_list(url: str, allowed: bool) -> None:
    cfg = config.parse({"site_url": "https://site.example.com", "uri_allow_list": [
        "https://app.example.com/**", "https://*.example.org/cb"]})
    assert redirects.is_allowed(url, cfg) is allowed
    assert redirects.choose(url, cfg) == (url if allowed else "https://site.example.com")


def test_config_defaults_and_overrides() -> None:
    cfg = config.parse({})
    assert cfg.mailer_autoconfirm is False and cfg.jwt_exp == 3600 and cfg.refresh_token_reuse_interval == 10
    assert cfg.rate_limits.sign_in_sign_ups == 30 and cfg.password_min_length == 6
    cfg = config.parse({"rate_limits": {"otp": 5, "unknown": 1}, "smtp": {"host": "mx", "port": 2525},
                        "external": {"github": {"client_id": "c", "secret": "s"}, "off": {"enabled": False}}})
    assert cfg.rate_limits.otp == 5 and cfg.smtp.port == 2525
    assert list(cfg.providers) == ["github"] and cfg.providers["github"].kind == "github"


def test_go_durations() -> None:
    assert admin.parse_duration("24h").total_seconds() == 86400
    assert admin.parse_duration("1h30m10s").total_seconds() == 5410
    with pytest.raises(ValueError):
        admin.parse_duration("3 days")


def test_route_table() -> None:
    found = api.match("DELETE", "/admin/users/abc/factors/def")
    assert isinstance(found, tuple) and found[1] == {"user_id": "abc", "factor_id": "def"}
    assert api.match("PATCH", "/user") is False
    assert api.match("GET", "/nope") is None
    paths = [(r.method, r.pattern) for r in api.ROUTES]
    assert len(paths) == len(set(paths))
