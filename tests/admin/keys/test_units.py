"""The pure parts of the key handling (no server): key formats, the key ring's lookups and grace windows,
verification with retired secrets, and the gateway's reading of apikey + Authorization as Supabase's."""

from __future__ import annotations

import hashlib
import time

import pytest

from madbase.core import apikeys
from madbase.core.apikeys import ProjectKeys, StoredKey
from madbase.core.authn import authenticate
from madbase.core.control import ProjectRecord
from madbase.core.errors import GatewayError, Kind
from madbase.core.jwt import JwtVerifier, TokenError, make_api_key, sign_hs256, verify_hs256_exact
from madbase.core.projects import Project

REF = "bbbbbbbbbbbbbbbbbbbb"
OLD = "the-old-secret-of-decent-length-0123456"
NEW = "the-new-secret-of-decent-length-6543210"


def record(secret: str = NEW, anon: str | None = None, service: str | None = None) -> ProjectRecord:
    return ProjectRecord(ref=REF, name="p", status="active", db_url="postgresql://x/y", jwt_secret=secret,
                         anon_key=anon or make_api_key(secret, "anon", REF),
                         service_role_key=service or make_api_key(secret, "service_role", REF),
                         login_role="authenticator", login_password="pw")


def test_key_formats() -> None:
    pub, sec = apikeys.new_key("publishable"), apikeys.new_key("secret")
    assert pub.startswith("sb_publishable_") and sec.startswith("sb_secret_")
    assert len(sec) == len("sb_secret_") + 22 + 1 + 8 and apikeys.well_formed(sec) and apikeys.well_formed(pub)
    assert not apikeys.well_formed(sec[:-1] + ("A" if sec[-1] != "A" else "B"))
    assert not apikeys.well_formed("sb_secret_x_12345678") and not apikeys.well_formed("eyJ.x.y")
    assert apikeys.hint(sec) == sec[:14] + apikeys.MASK and sec[14:] not in apikeys.hint(sec)
    many = {apikeys.new_key("secret") for _ in range(2000)}
    assert len(many) == 2000 and all(apikeys.well_formed(k) for k in many)


def _stored(kind: str, value: str) -> StoredKey:
    return StoredKey(id=hashlib.md5(value.encode()).hexdigest(), type=kind, name="n", role=apikeys.TYPES[kind][1],
                     digest=apikeys.digest(value), hint=apikeys.hint(value),
                     value=value if kind == "publishable" else None)


def test_ring_lookups_and_grace() -> None:
    pub, sec = apikeys.new_key("publishable"), apikeys.new_key("secret")
    old_anon = make_api_key(OLD, "anon", REF, issued_at=int(time.time()) - 10)
    keys = ProjectKeys(keys=(_stored("publishable", pub), _stored("secret", sec),
                             StoredKey("x", "legacy", "anon", "anon", apikeys.digest(old_anon), "h", old_anon,
                                       time.time() + 0.3)),
                       previous_secrets=((OLD, time.time() + 0.3),),
                       retired_digests=frozenset({apikeys.digest(old_anon)}))
    p = Project.from_record(record(), keys)
    assert authenticate(p, pub, None).role == "anon" and authenticate(p, sec, None).role == "service_role"
    assert authenticate(p, old_anon, None).role == "anon"  # in its grace window
    # the claims of a new-style key: its role, this project, no user, no expiry
    assert authenticate(p, sec, None).claims == {"iss": "supabase", "ref": REF, "role": "service_role"}
    # Supabase's gateway: an sb_ key as bearer is ignored when there is an apikey; without one it is the key
    assert authenticate(p, pub, f"Bearer {sec}").role == "anon"
    assert authenticate(p, sec, f"Bearer {pub}").role == "service_role"
    assert authenticate(p, sec, "Bearer sb_secret_unknown").role == "service_role"
    assert authenticate(p, None, f"Bearer {sec}", key_required=False).role == "service_role"
    with pytest.raises(GatewayError) as unknown:
        authenticate(p, None, "Bearer sb_secret_unknown", key_required=False)
    assert unknown.value.kind is Kind.INVALID_API_KEY
    with pytest.raises(GatewayError) as bad:
        authenticate(p, "sb_publishable_nope", None)
    assert bad.value.kind is Kind.INVALID_API_KEY
    # a user's JWT decides over any key
    user = sign_hs256({"sub": "u1", "role": "authenticated", "exp": int(time.time()) + 60}, NEW)
    assert authenticate(p, pub, f"Bearer {user}").role == "authenticated"
    old_user = sign_hs256({"sub": "u2", "role": "authenticated", "exp": int(time.time()) + 60}, OLD)
    assert authenticate(p, pub, f"Bearer {old_user}").role == "authenticated"  # cached from here on
    time.sleep(0.35)
    # the window closed: the old key and a token of the old secret are refused, even from the cache
    with pytest.raises(GatewayError):
        authenticate(p, old_anon, None)
    with pytest.raises(GatewayError) as closed:
        authenticate(p, pub, f"Bearer {old_user}")
    assert closed.value.kind is Kind.JWT_INVALID and "grace" in closed.value.message


def test_retired_legacy_key_refused_as_bearer_while_its_secret_still_verifies() -> None:
    old_anon = make_api_key(NEW, "anon", REF, issued_at=int(time.time()) - 10)
    keys = ProjectKeys(retired_digests=frozenset({apikeys.digest(old_anon)}))
    p = Project.from_record(record(), keys)
    with pytest.raises(GatewayError) as refused:
        authenticate(p, p.record.anon_key, f"Bearer {old_anon}")
    assert refused.value.kind is Kind.JWT_INVALID
    # other key-shaped tokens signed with the secret (an operator's own) still pass
    custom = make_api_key(NEW, "service_role", REF, issued_at=int(time.time()) - 99)
    assert authenticate(p, p.record.anon_key, f"Bearer {custom}").role == "service_role"


def test_verifier_previous_secrets_newest_first_and_expired_ones_skipped() -> None:
    now = time.time()
    v = JwtVerifier(NEW, previous=(("second-old-secret-of-decent-length-99", now + 60), (OLD, now - 1)))
    assert v.verify(sign_hs256({"role": "anon"}, "second-old-secret-of-decent-length-99")).until == now + 60
    with pytest.raises(TokenError) as err:
        v.verify(sign_hs256({"role": "anon"}, OLD))
    assert err.value.bad_signature
    assert v.verify(sign_hs256({"role": "anon"}, NEW)).until is None
    # expired stays expired, whichever secret signed it
    with pytest.raises(TokenError) as exp:
        v.verify(sign_hs256({"role": "anon", "exp": int(now) - 3600}, "second-old-secret-of-decent-length-99"))
    assert exp.value.expired


def test_signed_url_tokens_of_a_previous_secret() -> None:
    token = sign_hs256({"url": "b/o", "exp": int(time.time()) + 60}, OLD)
    assert verify_hs256_exact(token, NEW, ((OLD, time.time() + 5),))["url"] == "b/o"
    with pytest.raises(TokenError):
        verify_hs256_exact(token, NEW, ((OLD, time.time() - 5),))
    with pytest.raises(TokenError):
        verify_hs256_exact(token, NEW)
