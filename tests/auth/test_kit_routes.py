"""Auth on the core request kit: the body limit, 404/405 and HEAD in GoTrue's shapes, database-free refusals."""

from __future__ import annotations

from tests.auth.conftest import AuthEnv


async def test_body_over_the_limit_is_413_in_gotrue_shape(auth: AuthEnv) -> None:
    big = b'{"email": "a@example.com", "password": "secret-pass-1", "data": {"x": "' + b"y" * (1024 * 1024) + b'"}}'
    r = await auth.client.post("/signup", content=big, headers={**auth.headers(), "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"
    legacy = await auth.client.post("/signup", content=big,
                                    headers={**auth.headers(legacy=True), "content-type": "application/json"})
    assert legacy.status_code == 413 and legacy.json()["error_code"] == "request_too_large"


async def test_not_found_method_not_allowed_and_head(auth: AuthEnv) -> None:
    r = await auth.client.get("/nope", headers=auth.headers())
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await auth.client.patch("/user", headers=auth.headers())
    assert r.status_code == 405 and r.json()["code"] == "validation_failed"
    r = await auth.client.head("/token", headers=auth.headers())
    assert r.status_code == 405
    r = await auth.client.head("/settings", headers=auth.headers())
    assert r.status_code == 200 and r.content == b""
    r = await auth.client.get("/settings/", headers=auth.headers())
    assert r.status_code == 200 and "external" in r.json()
