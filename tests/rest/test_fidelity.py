"""Differences from PostgREST 12+ that postgrest-js's own test suite found, each pinned to what PostgREST answers:
unnamed parameters and overload resolution, upsert status, counts of scalar calls, `missing=default` with
identity columns, `SETOF … ROWS 1` embeds, view relationships, self references, empty embeds, duplicate
embeds and deterministic error output."""

from __future__ import annotations

import random
from typing import Any

import httpx

from madbase.rest import errors
from madbase.rest.parser import parse_query, split_query
from madbase.rest.readtree import TreeBuilder
from madbase.rest.schema import build_cache
from tests.rest.conftest import Rest
from tests.rest.unitschema import _cols, _fk


def call(rest: Rest, fn: str, body: Any = None, content: str | None = None, **headers: str) -> httpx.Response:
    if content is not None:
        return rest.request("POST", f"/rpc/{fn}", content=content,
                            headers={"Content-Type": "application/json", **headers})
    return rest.request("POST", f"/rpc/{fn}", json=body if body is not None else {}, headers=headers)


# -- 1. unnamed parameters and overloads ------------------------------------------------------------------------

def test_single_unnamed_parameter_takes_the_whole_body(rest: Rest) -> None:
    # the (bool) and (int) overloads are not in the cache; (text) gets the body, as text
    r = call(rest, "poly_ret", {"": "test"})
    assert r.status_code == 200 and r.json() == "foo"
    r = call(rest, "poly_ret", {"": True})
    assert r.status_code == 200 and r.json() == "foo"
    r = call(rest, "unnamed_json", content='{"": {"test": "value"}}')
    assert r.status_code == 200 and r.json() == {"": {"test": "value"}}
    r = call(rest, "poly_none")
    assert r.status_code == 200 and r.json() == 1
    r = call(rest, "poly_none", content='{"": "x"}')
    assert r.status_code == 200 and r.json() == 'got {"": "x"}'


def test_unnamed_parameters_that_are_not_callable(rest: Rest) -> None:
    r = call(rest, "unnamed_int", {"": 1})
    assert r.status_code == 404
    assert r.json() == {
        "code": "PGRST202",
        "message": "Could not find the function public.unnamed_int() in the schema cache",
        "details": "Searched for the function public.unnamed_int with parameter  or with a single unnamed "
                   "json/jsonb parameter, but no matches were found in the schema cache.",
        "hint": None}  # unnamed_json scores 0.67 < 0.75
    assert call(rest, "two_unnamed", {"": "a"}).json()["code"] == "PGRST202"
    # an unnamed parameter among named ones is never passed as `"" := …` (a 42601 syntax error)
    r = call(rest, "mixed_unnamed", {"a": 1, "": "y"})
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"
    r = call(rest, "mixed_unnamed", {"a": 1})
    assert r.status_code == 200 and r.json() == "x"
    # a row-type parameter makes a computed field, not an endpoint
    assert call(rest, "title_upper").json()["code"] == "PGRST202"


def test_overload_resolution(rest: Rest) -> None:
    r = call(rest, "poly_default")
    assert r.status_code == 300
    assert r.json() == {
        "code": "PGRST203", "details": None,
        "hint": "Try renaming the parameters or the function itself in the database so function overloading can "
                "be resolved",
        "message": "Could not choose the best candidate function between: public.poly_default(), "
                   "public.poly_default( => text)"}
    r = call(rest, "poly_default", {"": "custom"})
    assert r.status_code == 200 and r.json() == "foo"
    assert call(rest, "unresolvable").status_code == 204
    for arg in ("test", 1):
        r = call(rest, "unresolvable", {"a": arg})
        assert r.status_code == 300
        assert r.json()["message"] == ("Could not choose the best candidate function between: "
                                       "public.unresolvable(a => integer), public.unresolvable(a => text)")
    assert call(rest, "resolvable").status_code == 204
    assert call(rest, "resolvable", {"a": "test"}).json() == 1
    assert call(rest, "resolvable", {"b": 1}).json() == "foo"
    r = call(rest, "resolvable", {"bb": 1})  # the hint names the closest overload's parameters
    assert r.status_code == 404 and r.json()["hint"] == "Perhaps you meant to call the function public.resolvable(b)"


def test_raw_bodies_for_unnamed_parameters(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/shout", content="quiet", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json() == "QUIET"
    r = rest.request("POST", "/rpc/hello", content="x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 404
    assert r.json()["details"] == ("Searched for the function public.hello with a single unnamed text parameter, "
                                   "but no matches were found in the schema cache.")
    assert r.json()["message"] == "Could not find the function public.hello in the schema cache"
    r = rest.request("POST", "/rpc/shout", content=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST102"


# -- 2. upsert status ---------------------------------------------------------------------------------------------

def test_upsert_that_only_updates_answers_200(rest: Rest) -> None:
    merge = "resolution=merge-duplicates"
    r = rest.request("POST", "/kv", json=[{"k": "fid-u1", "v": "a"}], headers={"Prefer": merge})
    assert r.status_code == 201
    r = rest.request("POST", "/kv", json=[{"k": "fid-u1", "v": "b"}], headers={"Prefer": merge})
    assert r.status_code == 200 and r.content == b""
    r = rest.request("POST", "/kv?select=k,v", json=[{"k": "fid-u1", "v": "c"}, {"k": "fid-u2", "v": "d"}],
                     headers={"Prefer": merge + ", return=representation"})
    assert r.status_code == 201 and r.json() == [{"k": "fid-u1", "v": "c"}, {"k": "fid-u2", "v": "d"}]
    r = rest.request("POST", "/kv?select=v", json={"k": "fid-u2", "v": "e"},
                     headers={"Prefer": merge + ", return=representation", "Accept": "application/vnd.pgrst.object"})
    assert r.status_code == 200 and r.json() == {"v": "e"}
    # ignore-duplicates stays 201 (PostgREST only looks at merges)
    r = rest.request("POST", "/kv", json={"k": "fid-u2", "v": "f"}, headers={"Prefer": "resolution=ignore-duplicates"})
    assert r.status_code == 201


# -- 3. counts of scalar calls ------------------------------------------------------------------------------------

def test_count_on_a_scalar_function(rest: Rest) -> None:
    r = rest.request("POST", "/rpc/add", json={"a": 1, "b": 2}, headers={"Prefer": "count=exact"})
    assert r.status_code == 200 and r.json() == 3 and r.headers["content-range"] == "0-0/1"
    r = rest.get("/rpc/add", a="1", b="2", headers={"Prefer": "count=exact"})
    assert r.headers["content-range"] == "0-0/1"
    r = rest.client.head(rest.url + "/rpc/add?a=1&b=2", headers={**rest.headers(), "Prefer": "count=exact"})
    assert r.status_code == 200 and r.headers["content-range"] == "0-0/1"
    assert rest.get("/rpc/add", a="1", b="2").headers["content-range"] == "0-0/*"


# -- 4. missing=default and identity columns -------------------------------------------------------------------

def test_missing_default_takes_the_next_identity_value(rest: Rest) -> None:
    r = rest.request("POST", "/fid_channels", json=[{"id": 100}, {"slug": "test-slug"}],
                     headers={"Prefer": "missing=default, return=representation, tx=rollback"})
    assert r.status_code == 201, r.text
    first, second = r.json()
    assert first == {"id": 100, "data": None, "slug": None}
    assert isinstance(second["id"], int) and second["id"] != 100 and second["slug"] == "test-slug"


# -- 5..9. embedding ---------------------------------------------------------------------------------------------

def test_setof_rows_1_embeds_as_to_one(rest: Rest) -> None:
    r = rest.get("/posts", select="id,top_comment(body)", id="in.(1,2)", order="id")
    assert r.json() == [{"id": 1, "top_comment": {"body": "Great"}}, {"id": 2, "top_comment": None}]


def test_fk_column_and_constraint_targets_ignore_views(rest: Rest) -> None:
    r = rest.get("/fid_profiles", select="id,username(*)", order="id")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "username": {"username": "supabot", "status": "ONLINE"}},
                        {"id": 2, "username": None}]
    r = rest.get("/fid_profiles", select="id,fid_profiles_username_fkey(username)", id="eq.1")
    assert r.json() == [{"id": 1, "fid_profiles_username_fkey": {"username": "supabot"}}]
    # the view still embeds by its own name
    r = rest.get("/fid_profiles", select="id,fid_active_users(username)", id="eq.1")
    assert r.json() == [{"id": 1, "fid_active_users": {"username": "supabot"}}]


def test_self_reference(rest: Rest) -> None:
    r = rest.get("/fid_collections", select="id,fid_collections(id)", id="in.(1,4)", order="id")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "fid_collections": [{"id": 2}, {"id": 3}]}, {"id": 4, "fid_collections": []}]
    r = rest.get("/fid_collections", select="id,parent_id(id)", id="eq.4")  # the column: the parent
    assert r.json() == [{"id": 4, "parent_id": {"id": 2}}]
    r = rest.get("/fid_collections", select="id,children:fid_collections!parent_id(id)", id="eq.2")
    assert r.json() == [{"id": 2, "children": [{"id": 4}]}]


def test_empty_embed_leaves_no_key(rest: Rest) -> None:
    r = rest.get("/posts", select="title,authors!author_id()", id="eq.1")
    assert r.status_code == 200 and r.json() == [{"title": "Hello World"}]
    r = rest.get("/posts", select="id,authors!author_id!inner()", order="id", **{"authors.name": "eq.Bob"})
    assert r.json() == [{"id": 3}, {"id": 4}]


def test_same_embed_twice_is_a_duplicate_alias(rest: Rest) -> None:
    r = rest.get("/posts", select="authors!author_id(name),authors!editor_id(name)")
    assert r.status_code == 400
    assert r.json() == {"code": "42712", "details": None, "hint": None,
                        "message": 'table name "posts_authors_1" specified more than once'}
    r = rest.get("/posts", select="a:authors!author_id(name),e:authors!editor_id(name)", id="eq.1")
    assert r.json() == [{"a": {"name": "Ann"}, "e": {"name": "Bob"}}]


# -- 10. deterministic errors --------------------------------------------------------------------------------------

def test_embedded_column_errors_name_the_alias(rest: Rest) -> None:
    r = rest.get("/authors", select="name,posts!author_id(sum)")
    assert r.status_code == 400
    assert r.json()["code"] == "42703" and r.json()["message"] == "column posts_1.sum does not exist"
    assert rest.get("/authors", select="nope").json()["message"] == "column authors.nope does not exist"


def test_candidate_lists_do_not_depend_on_catalog_order() -> None:
    cols = (_cols("users", "r", ("id", "integer")) + _cols("posts", "r", ("id", "integer"), ("a", "integer"),
                                                         ("b", "integer"), ("c", "integer")))
    keys = [{"schema": "public", "name": t, "type": "p", "cols": ["id"]} for t in ("users", "posts")]
    fks = [_fk(f"posts_{c}_fkey", "posts", [c], "users", ["id"]) for c in "abc"]
    fn_base = {"schema": "public", "name": "f", "retset": False, "vol": "i", "rettype": "integer", "typtype": "b",
               "rel_schema": None, "rel_name": None, "rel_kind": None, "argmodes": [], "ndefaults": 0,
               "descr": None, "arg_rel_schema": None, "arg_rel_name": None}
    fns = [{**fn_base, "argnames": ["x"], "argtypes": [t]} for t in ("text", "integer", "boolean")]
    seen: set[tuple[str, str]] = set()
    for seed in range(6):
        rng = random.Random(seed)
        cache = build_cache(["public"], cols, keys, rng.sample(fks, len(fks)), [], rng.sample(fns, len(fns)))
        planner = TreeBuilder(cache)
        try:
            planner.build(("public", "posts"), "posts", cache.tables[("public", "posts")].columns,
                         parse_query(split_query("select=users(*)")))
        except errors.ApiError as e:
            rel_err = str(e.hint)
        overloads = [f.params[0].type for f in cache.functions[("public", "f")]]
        seen.add((rel_err, ",".join(overloads)))
    assert seen == {("Try changing 'users' to one of the following: 'users!posts_a_fkey', 'users!posts_b_fkey', "
                     "'users!posts_c_fkey'. Find the desired relationship in the 'details' key.",
                     "boolean,integer,text")}


def test_hints_use_postgrests_fuzzy_search() -> None:
    """PostgREST's own doctests of its hints (Error.hs), and postgrest-js's: no hint under 0.75 for names."""
    assert errors.no_relationship("film", "directors", "api", [], parents=["films"]).hint == \
        "Perhaps you meant 'films' instead of 'film'."
    rels = ["directors", "roles", "actors"]
    assert errors.no_relationship("films", "role", "api", rels).hint == "Perhaps you meant 'roles' instead of 'role'."
    assert errors.no_relationship("films", "actors", "api", rels).hint is None
    assert errors.no_relationship("films", "noclosealternative", "api", rels).hint is None
    overloads = [["val", "param", "name"], ["id", "attr"]]
    for keys, hint in ((["vall", "pqaram", "nam"], "(name, param, val)"), (["val", "param"], "(name, param, val)"),
                       (["id", "attrs"], "(attr, id)"), (["id"], "(attr, id)"), (["noclosealternative"], None)):
        expected = f"Perhaps you meant to call the function api.test{hint}" if hint else None
        assert errors.no_function("api", "test", keys, overloads=overloads).hint == expected
    procs = ["test", "another"]
    assert errors.no_function("api", "testt", ["val"], procs).hint == "Perhaps you meant to call the function api.test"
    assert errors.no_function("api", "other", [], procs).hint is None
    assert errors.no_function("public", "blurb_message", [], ["get_user_messages", "get_messages"]).hint is None


def test_hints_ignore_names_no_identifier_has() -> None:
    # Levenshtein is quadratic: a hostile 10 kB name gets no hint rather than a slow one
    assert errors.no_function("public", "a" * 10_000, [], ["a" * 60, "aaaa"]).hint is None
    assert errors.no_relationship("posts", "b" * 10_000, "public", ["b" * 60]).hint is None


def test_aggregates_group_by_embeddings(rest: Rest) -> None:
    """PostgREST groups an aggregate's rows by the embeddings next to it (as jsonb); this was a 42803 naming an
    internal alias."""
    import time

    rest.set_config('{"db_aggregates_enabled": true}')
    try:
        deadline = time.time() + 10
        while True:
            r = rest.get("/posts", select="rating.sum(),authors!author_id(name)")
            if r.status_code == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        assert sorted(r.json(), key=lambda x: x["authors"]["name"]) == [
            {"sum": 7.5, "authors": {"name": "Ann"}}, {"sum": 2, "authors": {"name": "Bob"}}]
        r = rest.get("/authors", select="count(),posts!author_id(published)", **{"posts.order": "published"})
        assert r.status_code == 200, r.text
        assert sorted(r.json(), key=lambda x: x["count"]) == [
            {"count": 1, "posts": []}, {"count": 2, "posts": [{"published": False}, {"published": True}]}]
    finally:
        rest.unset_config("db_aggregates_enabled")
