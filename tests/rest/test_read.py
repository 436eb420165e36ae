"""GET reads through the running server: select, filters, logic trees, order, pages, counts, errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rest.conftest import Rest


def ids(r: Any) -> list[int]:
    assert r.status_code in (200, 206), r.text
    return [row["id"] for row in r.json()]


def test_select_alias_cast_jsonpath(rest: Rest) -> None:
    r = rest.get("/posts", select="id,heading:title,rating::text,meta->>k,n:meta->n,first:meta->arr->0",
                 order="id", limit="2")
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"id": 1, "heading": "Hello World", "rating": "4.5", "k": "v", "n": 1, "first": 1},
        {"id": 2, "heading": "Second post", "rating": "3", "k": "w", "n": 2, "first": None},
    ]
    assert r.headers["content-range"] == "0-1/*"
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(("params", "expected"), [
    ({"id": "eq.1"}, [1]),
    ({"id": "neq.1"}, [2, 3, 4]),
    ({"id": "gt.2"}, [3, 4]),
    ({"id": "gte.2", "rating": "lte.3"}, [2, 4]),
    ({"id": "lt.2"}, [1]),
    ({"title": "like.*post*"}, [2]),
    ({"title": "ilike.*WORLD"}, [1]),
    ({"title": "match.^B"}, [3]),
    ({"title": "imatch.^b"}, [3]),
    ({"id": "in.(1,3)"}, [1, 3]),
    ({"title": 'in.("Draft, with comma",Bob writes)'}, [3, 4]),
    ({"rating": "is.null"}, [3]),
    ({"rating": "not.is.null"}, [1, 2, 4]),
    ({"published": "is.true"}, [1, 3]),
    ({"published": "is.false"}, [2, 4]),
    ({"editor_id": "isdistinct.2"}, [2, 3, 4]),
    ({"search": "fts.cats"}, [1, 3]),
    ({"search": "plfts(english).cats dogs"}, [3]),
    ({"search": "phfts.cats and dogs"}, [3]),
    ({"search": "wfts.cats -dogs"}, [1]),
    ({"tags": "cs.{b}"}, [1, 2]),
    ({"tags": "cd.{a,b,c}"}, [1, 2, 3, 4]),
    ({"tags": "ov.{a,c}"}, [1, 4]),
    ({"meta": 'cs.{"k":"v"}'}, [1, 4]),
    ({"meta->>k": "eq.w"}, [2]),
    ({"meta->n": "eq.2"}, [2]),
    ({"id": "not.in.(1,2)"}, [3, 4]),
    ({"title": "like(any).{*World,*comma}"}, [1, 4]),
    ({"title": "ilike(all).{*o*,*e*}"}, [1, 2, 3]),
    ({"id": "eq(any).{2,3}"}, [2, 3]),
    ({"id": "gt(all).{1,2}"}, [3, 4]),
    ({"or": "(id.eq.1,id.eq.4)"}, [1, 4]),
    ({"or": "(id.eq.1,and(published.is.false,rating.gt.2))"}, [1, 2]),
    ({"and": "(id.gt.1,or(rating.is.null,rating.eq.2))"}, [3, 4]),
    ({"not.or": "(id.eq.1,id.eq.2)"}, [3, 4]),
    ({"or": "(title.eq.\"Draft, with comma\",tags.cs.{a})"}, [1, 4]),
    ({"or": "(id.in.(1,2),not.and(id.gt.0,id.lt.4))"}, [1, 2, 4]),
    ({"or": "(meta->>k.eq.w,id.eq.3)"}, [2, 3]),
])
def test_filters(rest: Rest, params: dict[str, str], expected: list[int]) -> None:
    assert ids(rest.get("/posts", select="id", order="id", **params)) == expected


def test_range_operators(rest: Rest) -> None:
    for op, val, expected in [("sl", "[6,8)", [1]), ("sr", "[6,8)", [2]), ("nxr", "[0,6)", [1]),
                              ("nxl", "[3,4)", [2]), ("adj", "[5,10)", [1, 2]), ("ov", "[3,12)", [1, 2])]:
        assert ids(rest.get("/reservations", select="id", order="id", during=f"{op}.{val}")) == expected, op


def test_repeated_keys_and_space_plus(rest: Rest) -> None:
    r = rest.client.get(rest.url + "/posts?select=id&id=gte.2&id=lte.3&title=neq.Hello+World&order=id",
                        headers=rest.headers())
    assert ids(r) == [2, 3]


def test_order(rest: Rest) -> None:
    assert ids(rest.get("/posts", select="id", order="rating.desc.nullslast,id")) == [1, 2, 4, 3]
    assert ids(rest.get("/posts", select="id", order="rating.asc.nullsfirst")) == [3, 4, 2, 1]
    assert ids(rest.get("/posts", select="id", order="meta->>k.desc,id.desc")) == [3, 2, 4, 1]
    r = rest.get("/posts", select="id,author:authors!author_id(name)", order="author(name).desc,id")
    assert ids(r) == [3, 4, 1, 2]
    r = rest.get("/comments", select="id", order="posts(title).asc,id")
    assert ids(r) == [3, 1, 2]
    r = rest.get("/authors", select="id,posts!author_id(id)", order="posts(title)")
    assert r.status_code == 400 and r.json()["code"] == "PGRST118"


def test_limit_offset_and_count(rest: Rest) -> None:
    r = rest.get("/posts", select="id", order="id", limit="2", offset="1", headers={"Prefer": "count=exact"})
    assert r.status_code == 206
    assert r.json() == [{"id": 2}, {"id": 3}]
    assert r.headers["content-range"] == "1-2/4"
    assert r.headers["preference-applied"] == "count=exact"
    r = rest.get("/posts", select="id", headers={"Prefer": "count=exact"})
    assert r.status_code == 200 and r.headers["content-range"] == "0-3/4"
    r = rest.get("/posts", select="id", id="gt.100", headers={"Prefer": "count=exact"})
    assert r.status_code == 200 and r.headers["content-range"] == "*/0" and r.json() == []
    r = rest.get("/posts", offset="10", headers={"Prefer": "count=exact"})
    assert r.status_code == 416
    assert r.json()["code"] == "PGRST103"


def test_range_header(rest: Rest) -> None:
    r = rest.get("/posts", select="id", order="id", headers={"Range": "1-2", "Range-Unit": "items"})
    assert r.json() == [{"id": 2}, {"id": 3}]
    assert r.headers["content-range"] == "1-2/*"
    r = rest.get("/posts", select="id", order="id", headers={"Range": "3-"})
    assert r.json() == [{"id": 4}]


def test_head_count(rest: Rest) -> None:
    r = rest.client.head(rest.url + "/posts", headers={**rest.headers(), "Prefer": "count=exact"})
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-range"] == "0-3/4"


def test_view(rest: Rest) -> None:
    assert ids(rest.get("/published_posts", select="id", order="id")) == [1, 3]


def test_unknown_table(rest: Rest) -> None:
    r = rest.get("/postz")
    assert r.status_code == 404
    assert r.json() == {"code": "PGRST205", "details": None,
                        "hint": "Perhaps you meant the table 'public.posts'",
                        "message": "Could not find the table 'public.postz' in the schema cache"}


def test_unknown_column(rest: Rest) -> None:
    r = rest.get("/posts", select="id,nope")
    assert r.status_code == 400
    assert r.json()["code"] == "42703"
    assert r.json()["message"] == "column posts.nope does not exist"
    r = rest.get("/posts", nope="eq.1")
    assert r.status_code == 400 and r.json()["code"] == "42703"
    r = rest.get("/posts", order="nope.desc")
    assert r.status_code == 400 and r.json()["code"] == "42703"


@pytest.mark.parametrize("params", [
    {"select": "id,"}, {"select": "id,author("}, {"id": "eqq.1"}, {"id": "in.(1,2"}, {"or": "(id.eq.1"},
    {"order": "id.sideways"}, {"limit": "x"}, {"offset": "-1"}, {"rating": "is.maybe"},
])
def test_parse_errors(rest: Rest, params: dict[str, str]) -> None:
    r = rest.get("/posts", **params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "PGRST100"
    assert set(body) == {"code", "details", "hint", "message"}
    assert body["message"].startswith("failed to parse")


def test_bad_value_is_a_400_not_500(rest: Rest) -> None:
    r = rest.get("/posts", id="eq.notanumber")
    assert r.status_code == 400
    assert r.json()["code"] == "22P02"


def test_profiles(rest: Rest) -> None:
    r = rest.get("/posts", headers={"Accept-Profile": "nope"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST106"
    r = rest.get("/posts", select="id", limit="1", headers={"Accept-Profile": "public"})
    assert r.status_code == 200


def test_single_object(rest: Rest) -> None:
    r = rest.get("/posts", select="id,title", id="eq.1", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 200
    assert r.json() == {"id": 1, "title": "Hello World"}
    assert r.headers["content-type"].startswith("application/vnd.pgrst.object+json")
    r = rest.get("/posts", select="id", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 406
    assert r.json() == {"code": "PGRST116", "details": "The result contains 4 rows", "hint": None,
                        "message": "Cannot coerce the result to a single JSON object"}
    r = rest.get("/posts", select="id", id="eq.99", headers={"Accept": "application/vnd.pgrst.object+json"})
    assert r.status_code == 406 and r.json()["details"] == "The result contains 0 rows"


def test_csv_and_strip_nulls(rest: Rest) -> None:
    r = rest.get("/authors", select="id,name,bio", order="id", headers={"Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == 'id,name,bio\n1,Ann,"writes a lot"\n2,Bob,\n3,Cid,quiet'
    r = rest.get("/authors", select="id,bio", id="eq.2",
                 headers={"Accept": "application/vnd.pgrst.array+json;nulls=stripped"})
    assert r.json() == [{"id": 2}]
    r = rest.get("/authors", headers={"Accept": "application/xml"})
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


def test_csv_format(rest: Rest) -> None:
    """PostgREST's CSV, built by PostgreSQL: header from the first row's keys, each line the row's record text
    (quoted when it holds a comma, quote, backslash, parenthesis or whitespace, or is empty; NULL empty;
    booleans t/f; arrays and JSON as their text), no trailing newline; no rows → a lone newline."""
    csv = {"Accept": "text/csv"}
    r = rest.get("/posts", select="id,title,published,rating,tags,meta,nothing:meta->>x", order="id", headers=csv)
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text == (
        'id,title,published,rating,tags,meta,nothing\n'
        '1,"Hello World",t,4.5,"{a,b}","{""k"": ""v"", ""n"": 1, ""arr"": [1, 2]}",\n'
        '2,"Second post",f,3,{b},"{""k"": ""w"", ""n"": 2}",\n'
        '3,"Bob writes",t,,{},,\n'
        '4,"Draft, with comma",f,2,{c},"{""k"": ""v""}",')
    r = rest.get("/authors", select="id,posts!author_id(id)", id="eq.2", headers=csv)  # an embedding: JSON text
    assert r.text == 'id,posts\n2,"[{""id"":3}, \n {""id"":4}]"'
    r = rest.get("/authors", select="id", id="eq.99", headers=csv)
    assert r.status_code == 200 and r.text == "\n"
    r = rest.get("/authors", select="id", order="id", limit="1", headers={**csv, "Prefer": "count=exact"})
    assert r.status_code == 206 and r.text == "id\n1" and r.headers["content-range"] == "0-0/3"
    r = rest.client.head(rest.url + "/authors", headers={**rest.headers(), **csv})
    assert r.status_code == 200 and r.content == b"" and r.headers["content-type"].startswith("text/csv")
    # set-returning, composite and scalar-set functions
    assert rest.get("/rpc/posts_by_author", aid="2", select="id", headers=csv).text == "id\n3\n4"
    assert rest.get("/rpc/get_author", aid="2", headers=csv).text == "id,name,bio\n2,Bob,"
    assert rest.get("/rpc/numbers", n="2", headers=csv).text == "numbers\n1\n2"
    # mutations with return=representation
    rep = {**csv, "Prefer": "return=representation, tx=rollback"}
    r = rest.request("POST", "/kv?select=k,v", json=[{"k": "a b", "v": None}, {"k": "", "v": 'q"\\'}],
                     headers=rep)
    assert r.status_code == 201 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text == 'k,v\n"a b",\n"","q""\\\\"'
    r = rest.request("PATCH", "/authors?id=eq.3&select=name", json={"name": "Cy"}, headers=rep)
    assert r.status_code == 200 and r.text == "name\nCy"
    r = rest.request("DELETE", "/authors?id=eq.99", headers=rep)
    assert r.status_code == 200 and r.text == "\n"


def test_openapi(rest: Rest) -> None:
    r = rest.client.get(rest.url + "/", headers=rest.headers())
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/openapi+json; charset=utf-8"
    doc = r.json()
    assert doc["swagger"] == "2.0" and doc["basePath"] == "/rest/v1"
    assert "text/csv" in doc["produces"] and "application/vnd.pgrst.object+json" in doc["consumes"]
    defs, params, paths = doc["definitions"], doc["parameters"], doc["paths"]
    # definitions: types/formats, NOT NULL columns required, literal defaults, comments with key notes
    todos = defs["todos"]
    assert todos["description"] == "Things to do\n\nKept short." and todos["type"] == "object"
    assert todos["required"] == ["id", "title", "done"]
    assert todos["properties"]["id"] == {"description": "Note:\nThis is a Primary Key.<pk/>", "format": "integer",
                                         "type": "integer"}  # nextval(...) is no JSON default
    assert todos["properties"]["title"] == {"description": "What to do", "format": "text", "type": "string"}
    assert todos["properties"]["done"] == {"default": False, "format": "boolean", "type": "boolean"}
    assert todos["properties"]["priority"] == {"default": 3, "format": "integer", "type": "integer"}
    posts = defs["posts"]["properties"]
    assert posts["author_id"]["description"] == ("Note:\nThis is a Foreign Key to `authors.id`."
                                                 "<fk table='authors' column='id'/>")
    assert posts["tags"] == {"format": "text[]", "type": "array", "items": {"type": "string"}}
    assert posts["meta"] == {"format": "jsonb"}  # json has no swagger type, as in PostgREST
    assert posts["rating"] == {"format": "numeric", "type": "number"}
    assert posts["created_at"] == {"default": "now()", "format": "timestamp with time zone", "type": "string"}
    assert defs["profiles"]["properties"]["id"]["description"] == (
        "Note:\nThis is a Primary Key.<pk/>\nThis is a Foreign Key to `authors.id`.<fk table='authors' column='id'/>")
    assert "Foreign Key" not in defs["authors"]["properties"]["id"]["description"]  # the referenced side
    assert defs["codes"]["properties"]["code"] == {"description": "Note:\nThis is a Primary Key.<pk/>",
                                                   "format": "character", "maxLength": 5, "type": "string"}
    assert defs["published_posts"]["properties"]["author_id"]["description"].startswith("Note:\nThis is a Foreign")
    # shared parameters: select/order/paging/Prefer, a body and a row filter per column
    assert params["select"] == {"name": "select", "description": "Filtering Columns", "required": False,
                                "in": "query", "type": "string"}
    assert params["range"]["in"] == "header" and params["rangeUnit"]["default"] == "items"
    assert {"order", "offset", "limit", "on_conflict", "preferParams", "preferReturn", "preferCount",
            "preferPost"} <= set(params)
    assert "return=representation" in params["preferPost"]["enum"]
    assert params["body.todos"] == {"name": "todos", "description": "todos", "required": False, "in": "body",
                                    "schema": {"$ref": "#/definitions/todos"}}
    assert params["rowFilter.todos.title"] == {"name": "title", "description": "What to do", "required": False,
                                               "in": "query", "type": "string", "format": "text"}
    # paths: tables and views with their verbs, functions under /rpc
    get = paths["/todos"]["get"]
    assert get["tags"] == ["todos"] and get["summary"] == "Things to do" and get["description"] == "Kept short."
    assert {"$ref": "#/parameters/rowFilter.todos.done"} in get["parameters"]
    assert [p["$ref"] for p in get["parameters"][-7:]] == [
        f"#/parameters/{n}" for n in ("select", "order", "range", "rangeUnit", "offset", "limit", "preferCount")]
    assert get["responses"]["200"]["schema"] == {"type": "array", "items": {"$ref": "#/definitions/todos"}}
    assert set(paths["/todos"]) == {"get", "post", "patch", "delete"}
    assert paths["/todos"]["post"]["parameters"] == [{"$ref": "#/parameters/body.todos"},
                                                     {"$ref": "#/parameters/select"},
                                                     {"$ref": "#/parameters/preferPost"}]
    assert set(paths["/published_posts"]) == {"get", "post", "patch", "delete"}
    add = paths["/rpc/add"]
    assert set(add) == {"get", "post"} and add["post"]["summary"] == "Adds two integers"
    assert add["post"]["parameters"][0] == {
        "name": "args", "in": "body", "required": True,
        "schema": {"type": "object", "description": "Adds two integers", "required": ["a", "b"], "properties": {
            "a": {"format": "integer", "type": "integer"}, "b": {"format": "integer", "type": "integer"}}}}
    assert add["get"]["parameters"] == [
        {"name": "a", "in": "query", "required": True, "format": "integer", "type": "integer"},
        {"name": "b", "in": "query", "required": True, "format": "integer", "type": "integer"}]
    assert set(paths["/rpc/bump"]) == {"post"}  # volatile: POST only
    assert paths["/rpc/sum_all"]["get"]["parameters"][0]["collectionFormat"] == "multi"
    assert paths["/"]["get"]["tags"] == ["Introspection"]


def test_planned_and_estimated_counts(rest: Rest) -> None:
    r = rest.get("/posts", select="id", limit="1", headers={"Prefer": "count=planned"})
    assert r.status_code in (200, 206)
    total = r.headers["content-range"].split("/")[1]
    assert total.isdigit()
    assert r.headers["preference-applied"] == "count=planned"
    r = rest.get("/posts", select="id", limit="1", headers={"Prefer": "count=estimated"})
    assert r.status_code == 206 and r.headers["content-range"] == "0-0/4"


def test_computed_field(rest: Rest) -> None:
    r = rest.get("/posts", select="id,title_upper", title_upper="like.*BOB*", order="title_upper")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 3, "title_upper": "BOB WRITES"}]


def test_aggregates_when_enabled(rest: Rest) -> None:
    import time

    rest.set_config('{"db_aggregates_enabled": true}')
    try:
        deadline = time.time() + 10
        while True:
            r = rest.get("/posts", select="rating.sum(),total:count()")
            if r.status_code == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        assert r.json() == [{"sum": 9.5, "total": 4}]
        r = rest.get("/posts", select="author_id,count(),rating.max()", order="author_id")
        assert r.json() == [{"author_id": 1, "count": 2, "max": 4.5}, {"author_id": 2, "count": 2, "max": 2}]
        r = rest.get("/authors", select="name,posts!author_id(rating.avg())", id="eq.1")
        assert r.json() == [{"name": "Ann", "posts": [{"avg": 3.75}]}]
        # grouped by a spread's columns
        r = rest.get("/posts", select="rating.sum(),...authors!author_id(name)")
        assert r.status_code == 200, r.text
        assert sorted(r.json(), key=lambda x: x["name"]) == [{"sum": 7.5, "name": "Ann"}, {"sum": 2, "name": "Bob"}]
        # aggregates inside a to-one spread are hoisted to the parent, grouped by its columns
        r = rest.get("/posts", select="published,...authors!author_id(name.max(),low:name.min()::text),n:count()",
                     order="published")
        assert r.status_code == 200, r.text
        assert r.json() == [{"published": False, "max": "Bob", "low": "Ann", "n": 2},
                            {"published": True, "max": "Bob", "low": "Ann", "n": 2}]
        r = rest.get("/comments", select="...posts(rating.sum(),count())")
        assert r.json() == [{"sum": 9, "count": 3}]
    finally:
        rest.unset_config("db_aggregates_enabled")
        deadline = time.time() + 10
        while rest.get("/posts", select="rating.sum()").status_code == 200 and time.time() < deadline:
            time.sleep(0.2)


def test_timezone_preference_and_proxy_status(rest: Rest) -> None:
    r = rest.get("/rpc/hello", headers={"Prefer": "timezone=America/New_York"})
    assert r.status_code == 200 and "timezone=America/New_York" in r.headers["preference-applied"]
    r = rest.get("/nope")
    assert r.headers["proxy-status"] == "PostgREST; error=PGRST205"


def test_char_and_bit_columns(rest: Rest) -> None:
    assert rest.get("/codes", select="code", code="eq.XYZ12").json() == [{"code": "XYZ12"}]
    assert rest.get("/codes", select="code", code="in.(AB,XYZ12)", order="code").json() == [
        {"code": "AB   "}, {"code": "XYZ12"}]
    assert rest.get("/codes", select="code", flags="eq.1010").json() == [{"code": "AB   "}]
    assert rest.get("/rpc/pad_len", c="abc").json() == 3


def test_max_rows(rest: Rest) -> None:
    import time

    rest.set_config('{"db_max_rows": 2}')
    try:
        deadline = time.time() + 10
        while True:
            r = rest.get("/posts", select="id", order="id", headers={"Prefer": "count=exact"})
            if len(r.json()) == 2 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.json() == [{"id": 1}, {"id": 2}] and r.headers["content-range"] == "0-1/4"
        assert r.status_code == 206
        assert len(rest.get("/posts", select="id", limit="1").json()) == 1
        assert len(rest.get("/rpc/numbers", n="10").json()) == 2
        r = rest.get("/posts", select="id", headers={"Prefer": "count=estimated"})
        assert r.headers["content-range"].split("/")[1].isdigit()  # the planner's estimate (exact 4 > 2)
        rest.set_config('{"db_max_rows": 1}')
        deadline = time.time() + 10
        while len(rest.get("/posts", select="id").json()) != 1 and time.time() < deadline:
            time.sleep(0.2)
        # every to-many embedding is capped too (PostgREST restricts each node of the read tree) ...
        r = rest.get("/authors", select="id,posts!author_id(id)", id="eq.1", **{"posts.order": "id"})
        assert r.json() == [{"id": 1, "posts": [{"id": 1}]}]
        r = rest.get("/posts", select="id,author:authors!author_id(name)", id="eq.3")
        assert r.json() == [{"id": 3, "author": {"name": "Bob"}}]
        # ... but not mutations: their representation holds every affected row (PostgREST ≥ 10)
        rollback = {"Prefer": "return=representation, tx=rollback"}
        r = rest.request("PATCH", "/posts?id=in.(1,2,3)&select=id,comments(id)&order=id", json={"rating": 1},
                         headers=rollback)
        assert r.status_code == 200
        assert r.json() == [{"id": 1, "comments": [{"id": 1}, {"id": 2}]}, {"id": 2, "comments": []},
                            {"id": 3, "comments": [{"id": 3}]}]
        r = rest.request("POST", "/kv?select=k", json=[{"k": "m1"}, {"k": "m2"}], headers=rollback)
        assert r.status_code == 201 and r.json() == [{"k": "m1"}, {"k": "m2"}]
        total = int(rest.get("/comments", role="service_role", headers={"Prefer": "count=exact"})
                    .headers["content-range"].split("/")[1])
        r = rest.request("DELETE", "/comments?select=id", headers=rollback)
        assert r.status_code == 200 and len(r.json()) == total > 1
    finally:
        rest.unset_config("db_max_rows")
        deadline = time.time() + 10
        while len(rest.get("/posts", select="id").json()) != 4 and time.time() < deadline:
            time.sleep(0.2)


def test_server_timing(rest: Rest) -> None:
    import time

    rest.set_config('{"server_timing_enabled": true}')
    try:
        deadline = time.time() + 10
        while "server-timing" not in rest.get("/posts", select="id").headers and time.time() < deadline:
            time.sleep(0.2)
        timing = rest.get("/posts", select="id").headers["server-timing"]
        assert [p.split(";")[0] for p in timing.split(", ")] == ["plan", "transaction", "response"]
    finally:
        rest.unset_config("server_timing_enabled")
        deadline = time.time() + 10
        while "server-timing" in rest.get("/posts", select="id").headers and time.time() < deadline:
            time.sleep(0.2)


def test_explain_media(rest: Rest) -> None:
    import time

    plan = {"Accept": 'application/vnd.pgrst.plan+text; for="application/json"; options=analyze'}
    r = rest.get("/posts", select="id", headers=plan)
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"
    rest.set_config('{"db_plan_enabled": true}')
    try:
        deadline = time.time() + 10
        while rest.get("/posts", headers=plan).status_code != 200 and time.time() < deadline:
            time.sleep(0.2)
        r = rest.get("/posts", select="id", id="eq.1", headers=plan)
        assert r.status_code == 200 and "actual time" in r.text
        assert r.headers["content-type"].startswith("application/vnd.pgrst.plan+text")
        r = rest.get("/posts", select="id", headers={"Accept": "application/vnd.pgrst.plan+json"})
        assert r.json()[0]["Plan"]["Node Type"] == "Aggregate"
        r = rest.request("DELETE", "/posts?id=eq.1", headers=plan)
        assert r.status_code == 200 and "Delete" in r.text
        assert rest.get("/posts", id="eq.1", select="id").json() == [{"id": 1}]  # ANALYZE effects rolled back
    finally:
        rest.unset_config("db_plan_enabled")
        deadline = time.time() + 10
        while rest.get("/posts", headers=plan).status_code == 200 and time.time() < deadline:
            time.sleep(0.2)


def test_openapi_follows_the_roles_privileges(rest: Rest) -> None:
    """As PostgREST's openapi-mode=follow-privileges: relations and functions the role cannot use are left out,
    write verbs follow updatability, enum columns list their labels."""
    rest.sql("""
        create type public.oa_mood as enum ('sad', 'ok', 'happy');
        create table public.oa_members_only (id int primary key, mood public.oa_mood);
        revoke all on public.oa_members_only from anon, authenticated;
        grant select on public.oa_members_only to authenticated;
        create view public.oa_summary as select count(*) as n from public.oa_members_only;
        grant select on public.oa_summary to anon, authenticated;
        create function public.oa_members_fn() returns int language sql as 'select 1';
        revoke execute on function public.oa_members_fn() from public, anon;
        grant execute on function public.oa_members_fn() to authenticated;
        notify pgrst, 'reload schema';
    """)
    try:
        rest.wait_for("/oa_summary")
        user = {"Authorization": f"Bearer {rest.user_token('00000000-0000-0000-0000-00000000000a')}"}
        anon = rest.client.get(rest.url + "/", headers=rest.headers()).json()
        member = rest.client.get(rest.url + "/", headers={**rest.headers(), **user}).json()
        assert "/oa_members_only" not in anon["paths"] and "oa_members_only" not in anon["definitions"]
        assert "/rpc/oa_members_fn" not in anon["paths"]
        assert "rowFilter.oa_members_only.id" not in anon["parameters"]
        assert "/rpc/oa_members_fn" in member["paths"]
        # the table itself takes writes (privileges decide at request time, as PostgREST documents them);
        # an aggregate view takes none
        assert set(member["paths"]["/oa_members_only"]) == {"get", "post", "patch", "delete"}
        assert set(anon["paths"]["/oa_summary"]) == {"get"}
        assert member["definitions"]["oa_members_only"]["properties"]["mood"] == {
            "enum": ["sad", "ok", "happy"], "format": "oa_mood", "type": "string"}
        service = rest.client.get(rest.url + "/", headers=rest.headers("service_role")).json()
        assert "/oa_members_only" in service["paths"] and "/rpc/oa_members_fn" in service["paths"]
    finally:
        rest.sql("""
            drop view if exists public.oa_summary; drop table if exists public.oa_members_only;
            drop function if exists public.oa_members_fn(); drop type if exists public.oa_mood;
            notify pgrst, 'reload schema';
        """)
