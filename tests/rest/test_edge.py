"""Edge inputs that once were easy to get wrong: all must answer a PostgREST-shaped 4xx, never a 500."""

from __future__ import annotations

import pytest

from tests.rest.conftest import Rest


@pytest.mark.parametrize("qs", [
    "title=eq.%00", "select=id::nonexistent", "select=id->a", "select=title::int", "id=eq.", "limit=999999999999999999",
    "select=meta->%00", "tags=cs.notanarray", "during=ov.garbage", "search=fts(nonexistent_cfg).x",
    "order=meta->0.desc", "id=in.()", "select=*,authors!nope(*)", "select=%22%22", "id=like(any).notarray",
    "select=id,comments(id)&comments.limit=5&comments.offset=2&comments.order=nope",
    "select=meta->99999999999999999999999", "select=meta->-99999999999", "order=meta->>99999999999999.desc",
])
def test_never_500(rest: Rest, qs: str) -> None:
    r = rest.client.get(f"{rest.url}/posts?{qs}", headers=rest.headers())
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert set(r.json()) == {"code", "details", "hint", "message"}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/todos", b"[1,2]"), ("POST", "/todos", b'"x"'), ("POST", "/todos", b"\x00"), ("PATCH", "/todos", b"[]"),
    ("POST", "/rpc/add", b"[]"), ("POST", "/rpc/add", b"{bad"), ("POST", "/todos", b'{"title": "\\u0000"}'),
    ("POST", "/todos?columns=nope", b'{"title": "x"}'), ("DELETE", "/todos?id=eq.x", b""),
])
def test_bad_bodies(rest: Rest, method: str, path: str, body: bytes) -> None:
    r = rest.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()) == {"code", "details", "hint", "message"}


def test_empty_in_list_is_false(rest: Rest) -> None:
    r = rest.get("/posts", id="in.()")
    assert r.status_code == 200 and r.json() == []


def test_method_and_path_errors(rest: Rest) -> None:
    r = rest.request("PATCH", "/rpc/add", json={})
    assert r.status_code == 405
    r = rest.get("/a/b/c")
    assert r.status_code == 404
