"""The memo of planned reads by query shape: a kept plan filled with other values is exactly a fresh plan."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from madbase.rest import plancache
from madbase.rest.errors import ApiError
from madbase.rest.planner import DbPlan, PlanOptions, Prefs, ReadPlan, plan_request
from madbase.rest.request import ApiRequest, parse_request
from madbase.rest.schema import SchemaCache
from madbase.rest.statement import Statement
from tests.rest.unitschema import unit_cache

CACHE = unit_cache()
OPTIONS = PlanOptions()


def _req(qs: str, method: str = "GET", headers: dict[str, str] | None = None, target: str = "posts") -> ApiRequest:
    h = headers or {}
    prefer = [h["prefer"]] if "prefer" in h else []
    return parse_request(method, "/" + target, qs, h, prefer, ("public",))


def _fresh(req: ApiRequest, cache: SchemaCache = CACHE) -> DbPlan | ApiError:
    try:
        return plan_request(req, cache, b"", OPTIONS)
    except ApiError as err:
        return err


def _memo(req: ApiRequest, cache: SchemaCache = CACHE) -> DbPlan | ApiError:
    try:
        return plancache.plan(req, cache, b"", OPTIONS)
    except ApiError as err:
        return err


def _same(a: DbPlan | ApiError, b: DbPlan | ApiError) -> bool:
    if isinstance(a, ApiError) or isinstance(b, ApiError):
        return isinstance(a, ApiError) and isinstance(b, ApiError) and a.body() == b.body()
    return a == b


def test_query_shape() -> None:
    assert plancache.query_shape("id=eq.5") == ("id=eq.", ["5"])
    assert plancache.query_shape("select=id,title&id=not.gte.7&order=id.desc&limit=3") == (
        "select=id,title&id=not.gte.&order=id.desc&limit=3", ["7"])
    assert plancache.query_shape("users.name=eq.a%20b+c&title=lt.x.y") == ("users.name=eq.&title=lt.", ["a b c", "x.y"])
    # values that are not plain comparisons stay in the shape
    assert plancache.query_shape("title=like.a*&id=in.(1,2)&id=is.null&or=(id.eq.1)&users.limit=eq.1") is None
    assert plancache.query_shape("id=eq(any).{1,2}&title=fts.x") is None
    assert plancache.query_shape("") is None


def test_other_values_reuse_the_kept_plan() -> None:
    cache = unit_cache()
    first = _memo(_req("select=id,title,users!user_id(name)&id=eq.1&title=neq.x"), cache)
    assert len(cache.plans) == 1 and next(iter(cache.plans.values())) is not None
    second = _memo(_req("select=id,title,users!user_id(name)&id=eq.2&title=neq.it's"), cache)
    assert _same(second, _fresh(_req("select=id,title,users!user_id(name)&id=eq.2&title=neq.it's")))
    assert isinstance(first, ReadPlan) and isinstance(second, ReadPlan)
    assert first.statement.params != second.statement.params and "2" in second.statement.params
    # plans are frozen and each request gets its own statement: nothing one request does reaches another
    second.statement.params.append("x")
    third = _memo(_req("select=id,title,users!user_id(name)&id=eq.3&title=neq.y"), cache)
    assert isinstance(third, ReadPlan) and "x" not in third.statement.params
    # a time zone is part of the plan (Prefer is in the memo's key)
    tz = _memo(_req("select=id,title,users!user_id(name)&id=eq.4&title=neq.y", headers={"prefer": "timezone=UTC"}),
               cache)
    assert isinstance(tz, ReadPlan) and tz.prefs.timezone == "UTC" and "timezone=UTC" in tz.prefs.applied


def test_same_value_twice_and_values_equal_to_other_parameters() -> None:
    cache = unit_cache()
    _memo(_req("id=gt.5&user_id=lt.5&limit=5"), cache)
    for qs in ("id=gt.9&user_id=lt.1&limit=5", "id=gt.5&user_id=lt.5&limit=5", "id=gt.&user_id=lt.&limit=5"):
        assert _same(_memo(_req(qs), cache), _fresh(_req(qs)))


def test_headers_are_part_of_the_key() -> None:
    cache = unit_cache()
    _memo(_req("id=eq.1"), cache)
    for headers in ({"accept": "application/vnd.pgrst.object+json"}, {"prefer": "count=exact"}, {"range": "0-4"},
                    {"accept": "text/csv"}):
        got = _memo(_req("id=eq.2", headers=headers), cache)
        assert _same(got, _fresh(_req("id=eq.2", headers=headers)))
    head = _memo(_req("id=eq.3", method="HEAD"), cache)
    assert _same(head, _fresh(_req("id=eq.3", method="HEAD")))


def test_errors_are_not_kept() -> None:
    cache = unit_cache()
    for qs in ("nope=eq.1", "users=eq.1&select=id,users!user_id(name)"):
        first, again = _memo(_req(qs), cache), _memo(_req(qs.replace("eq.1", "eq.2")), cache)
        assert isinstance(first, ApiError) and _same(again, _fresh(_req(qs.replace("eq.1", "eq.2"))))
    assert all(v is None for v in cache.plans.values()) or not cache.plans


def test_not_used_for_writes_rpc_or_planned_counts() -> None:
    cache = unit_cache()
    _memo(_req("id=eq.1", headers={"prefer": "count=planned"}), cache)
    assert list(cache.plans.values()) == [None]
    cache.plans.clear()
    with pytest.raises(ApiError):
        plancache.plan(_req("id=eq.1", method="DELETE", target="nope"), cache, b"", OPTIONS)
    assert not cache.plans


def test_with_statement_copies_every_field() -> None:
    plan = ReadPlan(Statement("x", ["1"]), "object", Prefs(("count=exact",), True, True, 2, "UTC"), offset=3,
                    single=True, planned=Statement("e", []), estimate_above=9)
    other = Statement("y", [])
    copy = plan.with_statement(other)
    assert copy.statement is other
    assert replace(copy, statement=plan.statement) == plan


COLUMNS = ["id", "user_id", "title", "data->>k", "users.name", "nope"]
OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "not.eq", "like", "is", "in"]
EXTRAS = ["select=id,title", "select=id,users!user_id(name)", "order=id.desc", "limit=3", "offset=1",
          "or=(id.eq.1,title.eq.x)", "select=*"]
VALUE = st.text(max_size=12)
OBJECT = "application/vnd.pgrst.object+json"


@st.composite
def _shaped_pair(draw: st.DrawFn) -> tuple[str, str]:
    """Two queries of one shape: the same keys and operators, other values."""
    filters = draw(st.lists(st.tuples(st.sampled_from(COLUMNS), st.sampled_from(OPS)), max_size=3))
    extras = draw(st.lists(st.sampled_from(EXTRAS), max_size=2, unique=True))
    one, two = [], []
    for col, op in filters:
        if op in ("is", "in", "like"):
            v = {"is": "null", "in": "(1,2)", "like": "a*"}[op]
            one.append(f"{col}={op}.{v}")
            two.append(f"{col}={op}.{v}")
        else:
            one.append(f"{col}={op}.{quote_plus(draw(VALUE))}")
            two.append(f"{col}={op}.{quote_plus(draw(VALUE))}")
    order = draw(st.permutations(range(len(filters) + len(extras))))
    a, b = one + extras, two + extras
    return "&".join(a[i] for i in order), "&".join(b[i] for i in order)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_shaped_pair(), st.sampled_from([{}, {"prefer": "count=exact"}, {"accept": OBJECT}]))
def test_property_memo_equals_fresh_plan(pair: tuple[str, str], headers: dict[str, str]) -> None:
    cache = unit_cache()
    first, second = pair
    assert _same(_memo(_req(first, headers=headers), cache), _fresh(_req(first, headers=headers)))
    assert _same(_memo(_req(second, headers=headers), cache), _fresh(_req(second, headers=headers)))
