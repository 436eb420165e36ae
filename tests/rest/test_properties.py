"""Property-based tests (hypothesis): the parser never crashes, no input yields a 500, values never shape SQL."""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from madbase.rest.errors import ApiError
from madbase.rest.parser import parse_logic, parse_order, parse_query, parse_select, split_query
from madbase.rest.sql import read_statement
from madbase.rest.statement import quote_ident
from tests.rest.conftest import Rest
from tests.rest.test_plan_sql import plan

GRAMMAR = st.sampled_from([*'abc_,.()!:*->"\\ {}[]0123456789', "eq.", "not.", "in.", "or", "and", "::", "->>",
                           "...", "inner", "cs."])
TEXT = st.one_of(st.text(max_size=40), st.lists(GRAMMAR, max_size=20).map("".join))
COLUMNS = ["id", "title", "rating", "tags", "meta", "published", "search", "author_id", "nope", "authors",
           "comments", "meta->>k", "comments.votes", "or", "and", "select", "order", "limit", "offset"]


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_parsers_raise_only_api_errors(text: str) -> None:
    for fn in (parse_select, parse_order, lambda t: parse_logic("or", False, t)):
        try:
            fn(text)
        except ApiError as err:
            assert err.code == "PGRST100"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.sampled_from(COLUMNS), TEXT), TEXT), max_size=4))
def test_query_parser_total(pairs: list[tuple[str, str]]) -> None:
    try:
        parse_query(pairs)
    except ApiError as err:
        assert err.status == 400


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=30), alias=st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s))
def test_values_and_aliases_never_change_sql_shape(value: str, alias: str) -> None:
    from tests.rest.test_plan_sql import cache as cache_fixture

    cache = cache_fixture.__wrapped__()  # type: ignore[attr-defined]
    base = read_statement(plan(cache, "posts", "select=x:title&title=eq.v&data->>k=in.(v)"), count=False)
    qs = urlencode({"select": f'"{alias.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}":title',
                    "title": "eq." + value, "data->>k": "in.(" + '"' + value.replace("\\", "\\\\").replace('"', '\\"')
                    + '")'})
    try:
        stmt = read_statement(plan(cache, "posts", qs), count=False)
    except ApiError:
        return
    assert stmt.sql == base.sql.replace(quote_ident("x"), quote_ident(alias))
    assert stmt.params == [value, "k", [value]]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.one_of(st.sampled_from(COLUMNS), TEXT), TEXT), max_size=3),
       st.sampled_from(["posts", "authors", "rpc/add", "rpc/posts_by_author", "nope", ""]))
def test_endpoint_never_500(rest: Rest, pairs: list[tuple[str, str]], target: str) -> None:
    r = rest.client.get(f"{rest.url}/{target}?" + urlencode(pairs), headers=rest.headers())
    assert r.status_code < 500, (pairs, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == {"code", "details", "hint", "message"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_adversarial_values_round_trip(rest: Rest, value: str) -> None:
    r = rest.request("POST", "/kv?select=v", json={"k": "prop-" + value, "v": value},
                     headers={"Prefer": "return=representation, resolution=merge-duplicates"})
    assert r.status_code in (200, 201), r.text  # 200 when the value was seen before (an update)
    assert r.json() == [{"v": value}]
    r = rest.client.get(rest.url + "/kv?" + urlencode({"select": "v", "k": "eq.prop-" + value}),
                        headers=rest.headers())
    assert r.json() == [{"v": value}]
    assert split_query(urlencode({"k": value}))[0][1] == value


SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=10))
JSON_VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                         max_size=3), max_leaves=6)
BODY_KEYS = st.sampled_from(["title", "priority", "done", "owner", "id", "nope", "k", "v", "n", "a", "b", "xs"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["POST", "PATCH", "PUT", "DELETE"]),
       target=st.sampled_from(["todos", "kv", "rpc/add", "rpc/arr_len", "rpc/echo_json", "nope"]),
       body=st.one_of(st.dictionaries(BODY_KEYS, JSON_VALUES, max_size=4), st.lists(
           st.dictionaries(BODY_KEYS, JSON_VALUES, max_size=3), max_size=3), JSON_VALUES),
       pairs=st.lists(st.tuples(st.sampled_from([*COLUMNS, "columns", "on_conflict"]), TEXT), max_size=2),
       prefer=st.sampled_from(["", "return=representation", "resolution=merge-duplicates", "missing=default",
                               "tx=rollback", "count=exact", "handling=strict, max-affected=1"]))
def test_writes_never_500(rest: Rest, method: str, target: str, body: object, pairs: list[tuple[str, str]],
                          prefer: str) -> None:
    # Every write is rolled back so the fixture data stays as the other tests expect it.
    headers = {"Prefer": ", ".join(p for p in (prefer, "tx=rollback") if p)}
    r = rest.request(method, f"/{target}?" + urlencode(pairs), json=body, headers=headers)
    assert r.status_code < 500, (method, target, body, pairs, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == {"code", "details", "hint", "message"}
