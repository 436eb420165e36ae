"""The real clients against the running server: supabase-js (every postgrest-js filter/modifier) and supabase-py."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.rest.conftest import Rest

JS = Path(__file__).parents[1] / "js" / "rest" / "postgrest.mjs"


@pytest.fixture(scope="module")
def js(rest: Rest) -> dict[str, Any]:
    proc = subprocess.run(["node", str(JS), rest.server.url, rest.anon_key, rest.service_role_key, rest.ref],
                          capture_output=True, text=True, timeout=120, cwd=JS.parent)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


EXPECTED: dict[str, Any] = {
    "eq": [1], "neq": [2, 3, 4], "gt": [3, 4], "gte": [3, 4], "lt": [1], "lte": [1, 2], "like": [2],
    "likeAllOf": [1, 2, 3], "likeAnyOf": [1, 4], "ilike": [1], "ilikeAllOf": [1, 2, 3], "ilikeAnyOf": [1, 4],
    "is": [3], "isDistinct": [2, 3, 4], "in": [1, 4], "notIn": [3, 4], "contains": [1, 2], "containsJson": [1, 4],
    "containedBy": [1, 2, 3], "overlaps": [1, 4], "rangeGt": [2], "rangeGte": [2], "rangeLt": [1],
    "rangeLte": [1], "rangeAdjacent": [1, 2], "textSearch": [1, 3], "textSearchPlain": [3],
    "textSearchPhrase": [3], "textSearchWeb": [1], "match": [2], "regexMatch": [3], "regexIMatch": [3],
    "not": [1, 2, 4], "or": [1, 2], "orReferenced": [{"id": 1, "comments": [{"body": "Nice"}, {"body": "Great"}]}],
    "filter": [2, 3], "filterNot": [2, 3, 4], "order": [1, 2, 4, 3],
    "orderReferenced": [{"id": 1, "comments": [{"votes": 5}, {"votes": 0}]}], "limit": [1, 2],
    "limitReferenced": 1, "range": [2, 3], "count": {"count": 4, "status": 206, "len": 1},
    "head": {"count": 4, "data": None, "status": 200}, "single": {"id": 1, "title": "Hello World"},
    "singleError": {"code": "PGRST116", "status": 406}, "maybeSingle": {"data": None, "error": None},
    "csv": "id,name\n1,Ann\n2,Bob\n3,Cid", "stripNulls": [{"id": 2}],
    "embed": [{"id": 3, "author": {"name": "Bob"}, "tags": [{"name": "misc"}]}], "innerJoin": [1],
    "insertSelect": None, "insertBulk": [{"priority": None}, {"priority": 2}],
    "insertDefault": [{"priority": 3}, {"priority": 2}], "update": [{"done": True}],
    "updateCount": {"count": 2, "status": 204}, "maxAffected": "PGRST124", "rollback": [],
    "delete": {"count": 5, "status": 204}, "rpc": 3, "rpcGet": 7, "rpcSetFiltered": [2],
    "rpcHead": {"count": 3, "data": None}, "rpcVoid": {"data": None, "error": None, "status": 204},
    "schema": [2], "errorUnknownColumn": "42703", "errorPermission": "42501",
    "upsertStatus": [201, 200], "rpcCount": {"count": 1, "data": 3}, "rpcUnnamed": "foo",
    "emptyEmbed": [{"title": "Hello World"}],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_supabase_js(js: dict[str, Any], name: str) -> None:
    if name == "insertSelect":
        assert js[name]["priority"] == 1
        return
    assert js[name] == EXPECTED[name]


def test_supabase_js_upsert_and_errors(js: dict[str, Any]) -> None:
    assert len(js["upsert"]) == 1 and js["upsert"][0]["v"] == "2"
    assert js["upsertIgnore"] == []
    assert js["errorUnknownTable"]["code"] == "PGRST205"
    assert set(js["errorUnknownTable"]) >= {"code", "details", "hint", "message"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # supabase-py 2.34 passes `timeout` to postgrest itself
def test_supabase_py(rest: Rest) -> None:
    import httpx
    from supabase import create_client
    from supabase.lib.client_options import SyncClientOptions

    with httpx.Client(timeout=30) as http:
        _supabase_py(rest, create_client(rest.server.url, rest.service_role_key,
                                         SyncClientOptions(httpx_client=http, headers={"x-project-ref": rest.ref})))


def _supabase_py(rest: Rest, client: Any) -> None:
    r = client.table("posts").select("id,title", count="exact").gte("id", 2).order("id", desc=True).limit(2).execute()
    assert [row["id"] for row in r.data] == [4, 3] and r.count == 3
    r = client.table("posts").select("id").in_("id", [1, 3]).execute()
    assert [row["id"] for row in r.data] == [1, 3]
    r = client.table("posts").select("id,comments(body)").eq("id", 3).single().execute()
    assert r.data == {"id": 3, "comments": [{"body": "Hmm"}]}
    t = "py_" + uuid.uuid4().hex[:8]
    r = client.table("todos").insert({"title": t}).execute()
    assert r.data[0]["title"] == t
    r = client.table("todos").update({"done": True}).eq("title", t).execute()
    assert r.data[0]["done"] is True
    r = client.table("kv").upsert({"k": t, "v": "x"}).execute()
    assert r.data == [{"k": t, "v": "x", "n": 7}]
    r = client.table("todos").delete().eq("title", t).execute()
    assert len(r.data) == 1
    assert client.rpc("add", {"a": 20, "b": 22}).execute().data == 42
    r = client.table("posts").select("id").or_("id.eq.1,id.eq.2").order("id").execute()
    assert [row["id"] for row in r.data] == [1, 2]
    r = client.table("posts").select("id").text_search("search", "cats").order("id").execute()
    assert [row["id"] for row in r.data] == [1, 3]
    from postgrest.exceptions import APIError

    with pytest.raises(APIError) as info:
        client.table("nope").select("*").execute()
    assert info.value.code == "PGRST205"
