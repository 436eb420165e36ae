"""Pure parts of the core: JWT verification and cache, secret sealing, API-key/bearer checks, settings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from madbase.config import ConfigError, load_settings
from madbase.core.authn import authenticate, bearer_token
from madbase.core.control import ProjectRecord
from madbase.core.db import request_gucs
from madbase.core.errors import GatewayError, Kind
from madbase.core.jwt import JwtVerifier, TokenError, make_api_key, sign_hs256
from madbase.core.projects import Project
from madbase.core.secretbox import SecretBox, SecretBoxError, load_or_create_key_file

SECRET = "a-test-secret-of-decent-length-123456"


def project(secret: str = SECRET, ref: str = "aaaaaaaaaaaaaaaaaaaa") -> Project:
    record = ProjectRecord(ref=ref, name="p", status="active", db_url="postgresql://x/y", jwt_secret=secret,
                           anon_key=make_api_key(secret, "anon", ref),
                           service_role_key=make_api_key(secret, "service_role", ref),
                           login_role="authenticator", login_password="pw")
    return Project.from_record(record)


def test_api_keys_are_supabase_shaped() -> None:
    p = project()
    claims = p.verifier.verify(p.record.anon_key).claims
    assert claims["role"] == "anon" and claims["iss"] == "supabase" and claims["ref"] == p.ref
    assert claims["exp"] > time.time() + 5 * 365 * 86400


def test_verifier_rejects_bad_signature_and_expiry_even_when_cached() -> None:
    verifier = JwtVerifier(SECRET)
    with pytest.raises(TokenError) as bad:
        verifier.verify(sign_hs256({"role": "anon"}, "another-secret-entirely-000000"))
    assert not bad.value.expired
    with pytest.raises(TokenError) as expired:
        verifier.verify(sign_hs256({"role": "anon", "exp": int(time.time()) - 3600}, SECRET))
    assert expired.value.expired
    short = sign_hs256({"role": "authenticated", "exp": int(time.time()) - 29}, SECRET)  # within leeway
    assert verifier.verify(short).claims["role"] == "authenticated"
    with pytest.raises(TokenError):
        verifier.verify("not-a-jwt")


def test_authenticate_paths() -> None:
    p = project()
    assert authenticate(p, p.record.anon_key, None).role == "anon"
    assert authenticate(p, p.record.anon_key, f"Bearer {p.record.service_role_key}").role == "service_role"
    user = sign_hs256({"role": "authenticated", "sub": "u1", "exp": int(time.time()) + 60}, SECRET)
    ctx = authenticate(p, p.record.anon_key, f"Bearer {user}")
    assert (ctx.role, ctx.user_id) == ("authenticated", "u1")
    with pytest.raises(GatewayError) as no_key:
        authenticate(p, None, None)
    assert no_key.value.kind is Kind.NO_API_KEY and no_key.value.status == 401
    other = project("some-other-secret-for-project-b-xyz", "bbbbbbbbbbbbbbbbbbbb")
    with pytest.raises(GatewayError) as foreign_key:
        authenticate(p, other.record.anon_key, None)
    assert foreign_key.value.kind is Kind.INVALID_API_KEY
    with pytest.raises(GatewayError) as foreign_jwt:
        authenticate(p, p.record.anon_key, f"Bearer {other.record.service_role_key}")
    assert foreign_jwt.value.kind is Kind.JWT_INVALID
    superuser = sign_hs256({"role": "postgres"}, SECRET)
    with pytest.raises(GatewayError) as role:
        authenticate(p, p.record.anon_key, f"Bearer {superuser}")
    assert role.value.kind is Kind.ROLE_NOT_ALLOWED
    assert bearer_token("Basic abc") is None and bearer_token("bearer  tok ") == "tok"


def test_role_whitelist_in_gucs() -> None:
    claims = {"sub": "u", "aal": "aal1", "n": 3, "obj": {"a": 1}}
    gucs = request_gucs("authenticated", claims, json.dumps(claims), method="GET")
    pairs = dict(zip(gucs.names, gucs.values, strict=True))
    assert pairs["role"] == "authenticated" and pairs["request.jwt.claim.sub"] == "u"
    assert pairs["request.jwt.claim.n"] == "3" and "request.jwt.claim.obj" not in pairs
    with pytest.raises(GatewayError):
        request_gucs("postgres", {}, "{}")


def test_secretbox_binds_context(tmp_path: Path) -> None:
    box = SecretBox(load_or_create_key_file(tmp_path / "master.key"))
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    sealed = box.seal("s3cret", context="ref:jwt_secret")
    assert b"s3cret" not in sealed
    assert box.open(sealed, context="ref:jwt_secret") == "s3cret"
    with pytest.raises(SecretBoxError):
        box.open(sealed, context="other:jwt_secret")
    with pytest.raises(SecretBoxError):
        SecretBox("a-different-master-key-value").open(sealed, context="ref:jwt_secret")


def test_settings_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MADBASE_PORT", "not-a-port")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "MADBASE_PORT" in str(exc.value) and "\n" not in str(exc.value)
    monkeypatch.setenv("MADBASE_PORT", "8000")
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    with pytest.raises(ConfigError) as db:
        load_settings()
    assert "DATABASE_URL" in str(db.value)
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("JWT_SECRET", "from-supabase-env")
    settings = load_settings()
    assert settings.port == 8000 and settings.embedded
    assert settings.jwt_secret is not None and settings.jwt_secret.get_secret_value() == "from-supabase-env"


def test_ascii_uint_takes_ascii_digits_only_and_bounds_their_count() -> None:
    from madbase.core.numbers import ascii_uint

    assert ascii_uint("0") == 0
    assert ascii_uint("123") == 123
    assert ascii_uint("9" * 18) == int("9" * 18)
    for bad in (None, "", "²", "٣", "1²", "-1", "+1", " 1", "1.0", "9" * 19):
        assert ascii_uint(bad) is None, bad
    assert ascii_uint("123", 2) is None
