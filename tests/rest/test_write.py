"""Writes: POST (object, bulk, CSV, columns=, missing=default), upsert, PUT, PATCH, DELETE, Prefer handling."""

from __future__ import annotations

import uuid

from tests.rest.conftest import Rest

REP = {"Prefer": "return=representation"}


def uniq() -> str:
    return uuid.uuid4().hex[:10]


def test_insert_minimal_and_representation(rest: Rest) -> None:
    t = uniq()
    r = rest.request("POST", "/todos", json={"title": t})
    assert r.status_code == 201 and r.content == b""
    assert r.headers["content-range"] == "*/*"
    r = rest.request("POST", "/todos?select=title,done,priority", json={"title": t + "b"}, headers=REP)
    assert r.status_code == 201
    assert r.json() == [{"title": t + "b", "done": False, "priority": 3}]
    assert r.headers["preference-applied"] == "return=representation"


def test_bulk_insert_with_columns(rest: Rest) -> None:
    t = uniq()
    r = rest.request("POST", '/todos?columns="title","priority"&select=title,priority,done',
                     json=[{"title": t + "1", "priority": 1, "done": True}, {"title": t + "2"}], headers=REP)
    assert r.status_code == 201, r.text
    assert r.json() == [{"title": t + "1", "priority": 1, "done": False}, {"title": t + "2", "priority": None,
                                                                            "done": False}]


def test_missing_default(rest: Rest) -> None:
    t = uniq()
    r = rest.request("POST", "/todos?select=title,priority", json=[{"title": t, "priority": 1}, {"title": t}],
                     headers={"Prefer": "return=representation, missing=default"})
    assert r.status_code == 201, r.text
    assert r.json() == [{"title": t, "priority": 1}, {"title": t, "priority": 3}]
    assert "missing=default" in r.headers["preference-applied"]


def test_csv_insert(rest: Rest) -> None:
    t = uniq()
    r = rest.request("POST", "/todos?select=title,priority", content=f"title,priority\n{t}a,5\n{t}b,NULL",
                     headers={**REP, "Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    assert r.json() == [{"title": t + "a", "priority": 5}, {"title": t + "b", "priority": None}]


def test_insert_errors(rest: Rest) -> None:
    r = rest.request("POST", "/todos", json={"nope": 1})
    assert r.status_code == 400
    assert r.json() == {"code": "PGRST204", "details": None, "hint": None,
                        "message": "Could not find the 'nope' column of 'todos' in the schema cache"}
    r = rest.request("POST", "/todos", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST102"
    r = rest.request("POST", "/todos", json={"title": None})
    assert r.status_code == 400 and r.json()["code"] == "23502"
    k = uniq()
    assert rest.request("POST", "/kv", json={"k": k}).status_code == 201
    r = rest.request("POST", "/kv", json={"k": k})
    assert r.status_code == 409 and r.json()["code"] == "23505"
    r = rest.request("POST", "/posts", json={"title": "x", "author_id": 999})
    assert r.status_code == 409 and r.json()["code"] == "23503"


def test_upsert(rest: Rest) -> None:
    k = uniq()
    r = rest.request("POST", "/kv", json={"k": k, "v": "1"}, headers={"Prefer": "resolution=merge-duplicates"})
    assert r.status_code == 201
    r = rest.request("POST", "/kv?select=k,v,n", json=[{"k": k, "v": "2"}],
                     headers={"Prefer": "resolution=merge-duplicates,return=representation"})
    assert r.status_code == 200 and r.json() == [{"k": k, "v": "2", "n": 7}]  # only updated: 200, as PostgREST
    assert "resolution=merge-duplicates" in r.headers["preference-applied"]
    r = rest.request("POST", "/kv?select=k,v", json={"k": k, "v": "3"},
                     headers={"Prefer": "resolution=ignore-duplicates,return=representation"})
    assert r.status_code == 201 and r.json() == []
    r = rest.request("POST", "/kv?on_conflict=k&select=v", json={"k": k, "v": "4"},
                     headers={"Prefer": "resolution=merge-duplicates,return=representation"})
    assert r.json() == [{"v": "4"}]


def test_put(rest: Rest) -> None:
    k = uniq()
    r = rest.request("PUT", f"/kv?k=eq.{k}", json={"k": k, "v": "a"}, headers=REP)
    assert r.status_code == 201 and r.json() == [{"k": k, "v": "a", "n": 7}]  # inserted
    r = rest.request("PUT", f"/kv?k=eq.{k}", json={"k": k, "v": "a"}, headers=REP)
    assert r.status_code == 200 and r.json() == [{"k": k, "v": "a", "n": 7}]  # updated
    r = rest.request("PUT", f"/kv?k=eq.{k}", json={"k": k, "v": "b"})
    assert r.status_code == 204
    assert rest.get("/kv", k=f"eq.{k}", select="v").json() == [{"v": "b"}]
    r = rest.request("PUT", f"/kv?k=eq.{k}", json={"k": "other", "v": "b"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST115"
    r = rest.request("PUT", "/kv?v=eq.1", json={"k": "x"})
    assert r.status_code == 405 and r.json()["code"] == "PGRST105"


def test_patch_and_delete(rest: Rest) -> None:
    t = uniq()
    rest.request("POST", "/todos", json=[{"title": t, "priority": 1}, {"title": t, "priority": 2}])
    r = rest.request("PATCH", f"/todos?title=eq.{t}", json={"done": True})
    assert r.status_code == 204 and r.headers["content-range"] == "0-1/*"
    r = rest.request("PATCH", f"/todos?title=eq.{t}&priority=eq.2&select=priority,done", json={"priority": 9},
                     headers=REP)
    assert r.status_code == 200 and r.json() == [{"priority": 9, "done": True}]
    r = rest.request("PATCH", f"/todos?title=eq.{t}", json={"nope": 1})
    assert r.status_code == 400 and r.json()["code"] == "PGRST204"
    r = rest.request("DELETE", f"/todos?title=eq.{t}&priority=eq.9&select=priority", headers=REP)
    assert r.status_code == 200 and r.json() == [{"priority": 9}]
    r = rest.request("DELETE", f"/todos?title=eq.{t}", headers={"Prefer": "count=exact"})
    assert r.status_code == 204 and r.headers["content-range"] == "*/1"
    assert rest.get("/todos", title=f"eq.{t}", role="service_role").json() == []


def test_headers_only_location(rest: Rest) -> None:
    k = uniq()
    r = rest.request("POST", "/kv", json={"k": k}, headers={"Prefer": "return=headers-only"})
    assert r.status_code == 201 and r.content == b""
    assert r.headers["location"] == f"/kv?k=eq.{k}"


def test_tx_rollback(rest: Rest) -> None:
    t = uniq()
    r = rest.request("POST", "/todos?select=title", json={"title": t},
                     headers={"Prefer": "return=representation, tx=rollback"})
    assert r.status_code == 201 and r.json() == [{"title": t}]
    assert "tx=rollback" in r.headers["preference-applied"]
    assert rest.get("/todos", title=f"eq.{t}", role="service_role").json() == []


def test_max_affected(rest: Rest) -> None:
    t = uniq()
    rest.request("POST", "/todos", json=[{"title": t}, {"title": t}])
    r = rest.request("PATCH", f"/todos?title=eq.{t}", json={"done": True},
                     headers={"Prefer": "handling=strict, max-affected=1"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST124"
    assert rest.get("/todos", title=f"eq.{t}", done="is.true", role="service_role").json() == []
    r = rest.request("DELETE", f"/todos?title=eq.{t}", headers={"Prefer": "max-affected=2, handling=strict"})
    assert r.status_code == 204 and r.headers["preference-applied"] == "handling=strict, max-affected=2"
    r = rest.request("DELETE", "/todos?id=eq.0", headers={"Prefer": "handling=strict, bogus=1"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST122"


def test_preference_applied(rest: Rest) -> None:
    """Every applied preference, lenient handling included, in PostgREST's order."""
    t = uniq()
    r = rest.request("POST", "/kv", json={"k": t},
                     headers={"Prefer": "tx=rollback, handling=lenient, bogus, return=minimal, missing=default, "
                                        "resolution=merge-duplicates, count=exact, timezone=UTC"})
    assert r.status_code == 201
    assert r.headers["preference-applied"] == ("resolution=merge-duplicates, missing=default, return=minimal, "
                                               "count=exact, tx=rollback, handling=lenient, timezone=UTC")
    r = rest.request("POST", "/rpc/add", json={"a": 1, "b": 2}, headers={"Prefer": "handling=lenient"})
    assert r.headers["preference-applied"] == "handling=lenient"
    r = rest.request("POST", "/rpc/add", json=[{"a": 1, "b": 2}], headers={"Prefer": "params=multiple-objects"})
    assert r.headers["preference-applied"] == "params=multiple-objects"
    r = rest.get("/todos", select="id", limit="0", headers={"Prefer": "handling=lenient, count=exact"})
    assert r.headers["preference-applied"] == "count=exact, handling=lenient"


def test_single_object_write(rest: Rest) -> None:
    t = uniq()
    r = rest.request("POST", "/todos?select=title", json={"title": t},
                     headers={**REP, "Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 201 and r.json() == {"title": t}
    rest.request("POST", "/todos", json={"title": t})
    r = rest.request("PATCH", f"/todos?title=eq.{t}", json={"done": True},
                     headers={**REP, "Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    assert rest.get("/todos", title=f"eq.{t}", done="is.true", role="service_role").json() == []


def test_embed_in_representation(rest: Rest) -> None:
    r = rest.request("POST", "/comments?select=body,posts(title)", json={"post_id": 2, "body": "embedded"},
                     headers=REP)
    assert r.status_code == 201 and r.json() == [{"body": "embedded", "posts": {"title": "Second post"}}]
    rest.request("DELETE", "/comments?body=eq.embedded")


def test_empty_object_inserts_defaults(rest: Rest) -> None:
    r = rest.request("POST", "/kv?select=n", json={}, headers=REP)
    assert r.status_code == 400 and r.json()["code"] == "23502"  # kv.k has no default
    r = rest.request("POST", "/reservations?select=room", json=[{}, {}], headers=REP)
    assert r.status_code == 201 and r.json() == [{"room": None}, {"room": None}]
    r = rest.request("POST", "/todos", json=[], headers=REP)
    assert r.status_code == 201 and r.json() == []


def test_form_body(rest: Rest) -> None:
    t = uniq()
    r = rest.request("POST", "/todos?select=title,priority", content=f"title={t}&priority=4",
                     headers={**REP, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201 and r.json() == [{"title": t, "priority": 4}]


def test_patch_delete_with_order_limit(rest: Rest) -> None:
    t = uniq()
    rest.request("POST", "/todos", json=[{"title": t, "priority": p} for p in (1, 2, 3, 4)])
    r = rest.request("PATCH", f"/todos?title=eq.{t}&order=priority.desc&limit=2&select=priority", json={"done": True},
                     headers=REP)
    assert r.status_code == 200 and sorted(x["priority"] for x in r.json()) == [3, 4]
    r = rest.request("DELETE", f"/todos?title=eq.{t}&order=priority&limit=1&select=priority", headers=REP)
    assert r.json() == [{"priority": 1}]
    left = rest.get("/todos", title=f"eq.{t}", select="priority,done", order="priority", role="service_role")
    assert left.json() == [{"priority": 2, "done": False}, {"priority": 3, "done": True},
                           {"priority": 4, "done": True}]
