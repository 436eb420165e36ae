"""RPC: POST/GET, scalar, composite, set-returning (with filters/order/limit), void, errors."""

from __future__ import annotations

from tests.rest.conftest import Rest


def test_scalar_post_and_get(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/add", json={"a": 2, "b": 3}, role="anon")
    assert r.status_code == 200 and r.json() == 5
    r = rest.get("/rpc/add", a="4", b="5")
    assert r.status_code == 200 and r.json() == 9
    r = rest.request("POST", "/rpc/hello", role="anon")
    assert r.json() == "hello"
    r = rest.get("/rpc/arr_len", xs="{1,2,3}")
    assert r.json() == 3
    r = rest.request("POST", "/rpc/arr_len", json={"xs": [1, 2]})
    assert r.json() == 2


def test_single_json_param(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/echo_json", json={"any": ["thing", 1]})
    assert r.status_code == 200 and r.json() == {"any": ["thing", 1]}


def test_setof_table_with_filters(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/posts_by_author?select=id,title&order=id.desc", json={"aid": 1})
    assert r.status_code == 200 and r.json() == [{"id": 2, "title": "Second post"}, {"id": 1, "title": "Hello World"}]
    r = rest.get("/rpc/posts_by_author", aid="2", select="id,author:authors!author_id(name)", id="eq.4")
    assert r.json() == [{"id": 4, "author": {"name": "Bob"}}]
    r = rest.get("/rpc/posts_by_author", aid="1", select="id", limit="1", offset="1", order="id",
                 headers={"Prefer": "count=exact"})
    assert r.status_code == 206 and r.json() == [{"id": 2}] and r.headers["content-range"] == "1-1/2"


def test_returns_table_and_composite(rest: Rest) -> None:
    assert rest.get("/rpc/author_summary", aid="1").json() == [{"name": "Ann", "post_count": 2}]
    assert rest.get("/rpc/get_author", aid="2").json() == {"id": 2, "name": "Bob", "bio": None}
    assert rest.get("/rpc/get_author", aid="2", select="name").json() == {"name": "Bob"}


def test_setof_scalar(rest: Rest) -> None:
    assert rest.get("/rpc/numbers", n="4").json() == [1, 2, 3, 4]
    assert rest.get("/rpc/numbers", n="5", numbers="gt.3").json() == [4, 5]


def test_void_and_volatile(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/do_nothing")
    assert r.status_code == 204 and r.content == b""
    r = rest.request("POST", "/rpc/bump", json={"n": 1})
    assert r.json() == 2
    r = rest.get("/rpc/bump", n="1")
    assert r.status_code == 405 and r.json()["code"] == "25006"


def test_rpc_errors(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/nope", json={})
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"
    r = rest.request("POST", "/rpc/add", json={"a": 1, "c": 2})
    assert r.status_code == 404
    body = r.json()
    assert body["code"] == "PGRST202"
    assert body["message"] == "Could not find the function public.add(a, c) in the schema cache"
    r = rest.request("POST", "/rpc/raise_it")
    assert r.status_code == 400
    assert r.json() == {"code": "P0001", "details": "some detail", "hint": "a hint", "message": "custom failure"}
    r = rest.request("POST", "/rpc/add", json={"a": "x", "b": 1})
    assert r.status_code == 400 and r.json()["code"] == "22P02"


def test_claims_visible_in_sql(rest: Rest) -> None:
    assert rest.request("POST", "/rpc/whoami", role="anon").json() == "anon:"
    token = rest.user_token("00000000-0000-0000-0000-00000000000a")
    r = rest.client.post(rest.url + "/rpc/whoami", headers={**rest.headers(), "Authorization": f"Bearer {token}"})
    assert r.json() == "authenticated:00000000-0000-0000-0000-00000000000a"


def test_response_gucs(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/teapot")
    assert r.status_code == 418 and r.json() == "short and stout"
    assert r.headers["x-brew"] == "green" and r.headers["cache-control"] == "no-store"


def test_computed_field_in_representation(rest: Rest) -> None:
    r = rest.request("PATCH", "/posts?id=eq.2&select=id,title_upper", json={"rating": 3},
                     headers={"Prefer": "return=representation"})
    assert r.status_code == 200 and r.json() == [{"id": 2, "title_upper": "SECOND POST"}]


def test_request_cookies_guc(rest: Rest) -> None:
    r = rest.get("/rpc/my_cookie", headers={"Cookie": "a=1; flavour=oat"})
    assert r.json() == "oat"


def test_params_single_object(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/keys_of", json={"b": 1, "a": 2}, headers={"Prefer": "params=single-object"})
    assert r.status_code == 200 and r.json() == ["a", "b"]
    r = rest.request("POST", "/rpc/keys_of", json={"payload": {"z": 1}})
    assert r.json() == ["z"]


def test_rpc_form_and_raw_text_bodies(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/add", content="a=2&b=40",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json() == 42
    r = rest.request("POST", "/rpc/shout", content="quiet please", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json() == "QUIET PLEASE"


def test_variadic(rest: Rest) -> None:
    assert rest.request("POST", "/rpc/sum_all", json={"xs": [1, 2, 3]}).json() == 6
    r = rest.client.get(rest.url + "/rpc/sum_all?xs=4&xs=5", headers=rest.headers())
    assert r.status_code == 200 and r.json() == 9


BULK = {"Prefer": "params=multiple-objects"}


def test_bulk_call_scalar(rest: Rest) -> None:
    """`Prefer: params=multiple-objects` (PostgREST ≤ 10): one call per object, results in one array."""
    r = rest.request("POST", "/rpc/add", json=[{"a": 1, "b": 2}, {"a": 4, "b": 6}, {"a": 100, "b": 200}],
                     headers=BULK)
    assert r.status_code == 200 and r.json() == [3, 10, 300]
    assert r.headers["content-type"].startswith("application/json")
    r = rest.request("POST", "/rpc/add", content="a,b\n1,2\n4,6\n100,200",
                     headers={**BULK, "Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json() == [3, 10, 300]
    r = rest.request("POST", "/rpc/bump", json=[{"n": 1}, {"n": 5}], headers=BULK)  # volatile: POST only
    assert r.json() == [2, 6]
    r = rest.request("POST", "/rpc/add", json=[], headers=BULK)  # no objects: no argument names to match
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"
    r = rest.request("POST", "/rpc/add", json={"a": 1, "b": 2}, headers=BULK)  # an object: one call, as usual
    assert r.json() == 3


def test_bulk_call_rows(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/posts_by_author?select=id,title&order=id", json=[{"aid": 2}, {"aid": 3}],
                     headers=BULK)
    assert r.status_code == 200
    assert r.json() == [{"id": 3, "title": "Bob writes"}, {"id": 4, "title": "Draft, with comma"}]
    r = rest.request("POST", "/rpc/get_author?select=name", json=[{"aid": 1}, {"aid": 2}], headers=BULK)
    assert r.json() == [{"name": "Ann"}, {"name": "Bob"}]  # a composite result per call, not one object
    r = rest.request("POST", "/rpc/numbers", json=[{"n": 2}, {"n": 3}], headers=BULK)
    assert r.json() == [1, 2, 1, 2, 3]
    r = rest.request("POST", "/rpc/numbers?numbers=gt.1", json=[{"n": 2}, {"n": 3}],
                     headers={**BULK, "Prefer": "params=multiple-objects, count=exact"})
    assert r.json() == [2, 2, 3] and r.headers["content-range"] == "0-2/3"
    r = rest.request("POST", "/rpc/do_nothing", json=[{}, {}], headers=BULK)
    assert r.status_code == 204 and r.content == b""


def test_bulk_call_errors_and_array_without_preference(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/add", json=[{"a": 1, "b": 2}, {"a": 1}], headers=BULK)
    assert r.status_code == 400
    assert r.json() == {"code": "PGRST102", "details": None, "hint": None, "message": "All object keys must match"}
    r = rest.request("POST", "/rpc/add", json=[{"a": 1, "b": 2}, 5], headers=BULK)
    assert r.status_code == 400 and r.json()["code"] == "PGRST102"
    r = rest.request("POST", "/rpc/add", json=[{"a": "x", "b": 2}], headers=BULK)
    assert r.status_code == 400 and r.json()["code"] == "22P02"
    # PostgREST 11+ (no bulk calls): an array body calls the function once, with its first object
    r = rest.request("POST", "/rpc/add", json=[{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    assert r.status_code == 200 and r.json() == 3
    # a single unnamed json parameter still receives the whole array
    r = rest.request("POST", "/rpc/echo_json", json=[{"a": 1}, {"b": 2}], headers=BULK)
    assert r.json() == [{"a": 1}, {"b": 2}]
