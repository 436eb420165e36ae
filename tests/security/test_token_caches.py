"""Memory per token must be bounded: metadata is copied into every access token, every cached verification and
every request's claims (an adversarial run: several MB of user metadata, 20 refreshed tokens, +57 MB)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from madbase.core import db
from madbase.core.jwt import CACHE_BYTES, JwtVerifier, sign_hs256
from tests.security.conftest import Project, no_500, set_auth_config

BIG = {"blob": "x" * 100_000}
LIMITS = {"sign_in_sign_ups": 100000, "token_refresh": 100000, "otp": 100000, "email_sent": 100000,
          "email_per_address_seconds": 0}


@pytest.fixture(scope="module")
def project(project_a: Project) -> Iterator[Project]:
    set_auth_config(project_a, {"mailer_autoconfirm": True, "rate_limits": LIMITS})
    yield project_a
    set_auth_config(project_a, {"site_url": "http://localhost:3000"})


def _api(project: Project, role: str = "anon", token: str | None = None) -> dict[str, str]:
    return project.headers(role, token=token, **{"x-supabase-api-version": "2024-01-01"})


def _refused(r: httpx.Response) -> None:
    no_500(r)
    assert r.status_code == 400 and r.json()["code"] == "validation_failed", (r.status_code, r.text[:300])
    assert "too large" in r.json()["message"]


def test_metadata_is_bounded_on_every_route(project: Project, client: httpx.Client) -> None:
    url = project.url + "/auth/v1"
    email = f"meta-{uuid.uuid4().hex[:8]}@example.com"
    _refused(client.post(url + "/signup", headers=_api(project),
                         json={"email": email, "password": "correct horse 1", "data": BIG}))
    _refused(client.post(url + "/signup", headers=_api(project), json={"data": BIG}))  # anonymous
    _refused(client.post(url + "/otp", headers=_api(project), json={"email": email, "data": BIG}))
    r = no_500(client.post(url + "/signup", headers=_api(project),
                           json={"email": email, "password": "correct horse 1", "data": {"a": 1}}))
    assert r.status_code == 200, r.text
    token, uid = r.json()["access_token"], r.json()["user"]["id"]
    _refused(client.put(url + "/user", headers=_api(project, token=token), json={"data": BIG}))
    # growth by merging small patches is bounded too
    for i in range(3):
        r = no_500(client.put(url + "/user", headers=_api(project, token=token),
                              json={"data": {f"k{i}": "y" * 6000}}))
    _refused(r)
    admin = _api(project, "service_role")
    _refused(client.post(url + "/admin/users", headers=admin,
                         json={"email": f"a-{uuid.uuid4().hex[:8]}@example.com", "user_metadata": BIG}))
    _refused(client.post(url + "/admin/users", headers=admin,
                         json={"email": f"a-{uuid.uuid4().hex[:8]}@example.com", "app_metadata": BIG}))
    _refused(client.put(f"{url}/admin/users/{uid}", headers=admin, json={"user_metadata": BIG}))
    _refused(client.put(f"{url}/admin/users/{uid}", headers=admin, json={"app_metadata": BIG}))
    _refused(client.post(url + "/invite", headers=admin,
                         json={"email": f"i-{uuid.uuid4().hex[:8]}@example.com", "data": BIG}))
    _refused(client.post(url + "/admin/generate_link", headers=admin,
                         json={"type": "invite", "email": f"g-{uuid.uuid4().hex[:8]}@example.com", "data": BIG}))
    r = no_500(client.get(url + "/user", headers=_api(project, token=token)))
    assert len(r.text) < 20_000, "nothing of the refused metadata was stored"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_huge_stored_metadata_does_not_grow_the_server_per_token(project: Project, client: httpx.Client) -> None:
    """Metadata already stored (written by SQL, or before the limit) still mints huge tokens: the caches that
    keep tokens and claims must not keep them."""
    url = project.url + "/auth/v1"
    email = f"huge-{uuid.uuid4().hex[:8]}@example.com"
    r = no_500(client.post(url + "/signup", headers=_api(project),
                           json={"email": email, "password": "correct horse 1"}))
    assert r.status_code == 200, r.text
    project.sql("update auth.users set raw_user_meta_data = $2::jsonb where email = $1", email,
                json.dumps({"blob": "z" * 1_000_000}))
    refresh = r.json()["refresh_token"]
    proc = project.server.proc
    assert proc is not None

    def one_token() -> str:
        nonlocal refresh
        r = no_500(client.post(url + "/token?grant_type=refresh_token", headers=_api(project),
                               json={"refresh_token": refresh}))
        assert r.status_code == 200, r.text[:300]
        refresh = r.json()["refresh_token"]
        token = str(r.json()["access_token"])
        assert len(token) > 1_000_000
        # Used on auth and on rest. A token this large exceeds the request-head limit (64 KB, as a proxy in front
        # of Supabase has one too): it is refused with 431 before anything verifies or caches it — or the
        # connection is closed while the client is still sending the rest of the head.
        for target in (url + "/user", project.url + "/rest/v1/"):
            try:
                assert no_500(client.get(target, headers=_api(project, token=token))).status_code == 431
            except httpx.TransportError:
                pass
        return token

    for _ in range(3):  # warm up: allocator arenas, pools, first-use imports
        one_token()
    time.sleep(0.2)
    before = _rss_kib(proc.pid)
    for _ in range(20):
        one_token()
    time.sleep(0.2)
    grown_mib = (_rss_kib(proc.pid) - before) / 1024
    # before the byte bound and the head limit: ~24 MiB (every token and its claims kept); after: ~2 MiB
    assert grown_mib < 10, f"server grew {grown_mib:.0f} MiB for 20 tokens of 1.3 MB"


def test_verifier_and_claim_caches_are_bounded_by_bytes() -> None:
    verifier = JwtVerifier("s" * 32)
    now = int(time.time())
    for i in range(200):
        verifier.verify(sign_hs256({"sub": str(i), "exp": now + 600, "meta": "m" * 50_000}, "s" * 32))
    assert verifier._cache.bytes <= CACHE_BYTES
    big = sign_hs256({"sub": "big", "exp": now + 600, "meta": "m" * 1_000_000}, "s" * 32)
    assert verifier.verify(big).claims["sub"] == "big"
    assert verifier._cache.get(big) is None
    for i in range(300):
        claims = {"sub": str(i), "s": "v" * 40_000}
        db.request_gucs("authenticated", claims, json.dumps(claims))
    assert db._claim_gucs_cache.bytes <= db._claim_gucs_cache.max_bytes
