"""Unit tests of the schema-cache relationships, the planner and the SQL builder (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from madbase.rest.errors import ApiError
from madbase.rest.parser import parse_query, split_query
from madbase.rest.readtree import TreeBuilder
from madbase.rest.schema import SchemaCache
from madbase.rest.sql import read_statement
from madbase.rest.statement import quote_ident
from tests.rest.unitschema import unit_cache


@pytest.fixture(scope="module")
def cache() -> SchemaCache:
    return unit_cache()


def test_relationships(cache: SchemaCache) -> None:
    kinds = sorted((r.kind, r.target[1], r.constraint) for r in cache.relationships[("public", "posts")])
    assert ("m2m", "tags", "pt_post") in kinds
    assert ("m2o", "users", "posts_user_id_fkey") in kinds and ("m2o", "users", "posts_reviewer_id_fkey") in kinds
    assert ("o2m", "post_tags", "pt_post") in kinds
    view = {(r.kind, r.target[1]) for r in cache.relationships[("public", "user_posts")]}
    assert ("m2o", "users") in view
    users = {(r.kind, r.target[1]) for r in cache.relationships[("public", "users")]}
    assert ("o2m", "user_posts") in users


def plan(cache: SchemaCache, table: str, qs: str) -> Any:
    t = cache.tables[("public", table)]
    return TreeBuilder(cache).build(t.qname, t.name, t.columns, parse_query(split_query(qs)))


def test_planner_errors(cache: SchemaCache) -> None:
    with pytest.raises(ApiError) as info:
        plan(cache, "posts", "select=id,users(*)")
    assert info.value.code == "PGRST201" and info.value.status == 300
    with pytest.raises(ApiError) as info:
        plan(cache, "posts", "select=nope")
    assert info.value.code == "42703"
    with pytest.raises(ApiError) as info:
        plan(cache, "posts", "select=id,comments(*)")
    assert info.value.code == "PGRST200"
    with pytest.raises(ApiError) as info:
        plan(cache, "posts", "select=id&tags.name=eq.x")
    assert info.value.code == "PGRST108"
    assert plan(cache, "posts", "select=id,users!user_id(name)").outputs[1].rel.constraint == "posts_user_id_fkey"


def test_sql_is_parameterised(cache: SchemaCache) -> None:
    root = plan(cache, "posts", "select=id,data->>k,tags(name)&title=eq.x'); drop table users;--&order=id.desc"
                "&limit=5&tags.name=in.(a,b)")
    stmt = read_statement(root, count=True)
    assert "drop table" not in stmt.sql
    assert "x'); drop table users;--" in stmt.params
    assert ["a", "b"] in stmt.params and 5 in stmt.params and "k" in stmt.params
    assert stmt.sql.startswith("SELECT (SELECT count(*)")
    assert '"public"."post_tags"' in stmt.sql


def test_quote_ident() -> None:
    assert quote_ident('we"ird') == '"we""ird"'
