"""Bad input never yields a 500: every route answers garbage with a 4xx in GoTrue's error shape."""

from __future__ import annotations

import uuid

import pytest

from madbase.auth.api import ROUTES
from tests.auth.conftest import AuthEnv

BODIES: list[bytes] = [b"", b"[]", b"\"x\"", b"{bad", b"null",
                       b'{"email": 1, "password": 2, "phone": [], "data": "x", "type": 5, "token": {},'
                       b' "refresh_token": 7, "factor_type": 1, "code": 2, "challenge_id": "nope",'
                       b' "code_challenge": "c", "code_challenge_method": "md5", "provider": 3, "id_token": 4,'
                       b' "ban_duration": 5, "user_metadata": 1, "should_soft_delete": "x", "auth_code": 1}',
                       b'{"email": "a@b.co", "password": "x", "type": "nope", "token_hash": "zz", "phone": "abc"}']


QUERIES = {
    ("token",): ("", "?grant_type=password", "?grant_type=refresh_token", "?grant_type=pkce",
                 "?grant_type=id_token&provider=x"),
    ("verify",): ("", "?type=signup&token=x&redirect_to=javascript:x"),
    ("admin", "users"): ("?page=-1&per_page=abc",),
    ("authorize",): ("?provider=x",),
    ("callback",): ("?state=x&code=y",),
}


def concrete(path: tuple[str, ...]) -> str:
    return "/" + "/".join(str(uuid.uuid4()) if p.startswith("{") else p for p in path)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} /{'/'.join(r.pattern)}")
async def test_garbage_gets_4xx(auth: AuthEnv, route: object) -> None:
    from madbase.auth.api import Route
    assert isinstance(route, Route)
    token = (await auth.signup())["access_token"]
    for service in (False, True):
        for body in BODIES:
            queries = QUERIES.get(route.pattern, ("",))
            for query in queries:
                headers = auth.headers(None if service else token, service=service)
                headers["content-type"] = "application/json"
                r = await auth.client.request(route.method, concrete(route.pattern) + query, content=body,
                                              headers=headers)
                assert r.status_code < 500, (route.method, route.pattern, body, query, r.status_code, r.text)
