"""Unit tests of the pure query-string parser (no server)."""

from __future__ import annotations

import pytest

from madbase.rest.ast import Field, Filter, JsonOp, Logic, OpExpr, OrderTerm, SelectEmbed, SelectField
from madbase.rest.errors import ApiError
from madbase.rest.parser import (
    parse_columns,
    parse_logic,
    parse_order,
    parse_query,
    parse_select,
    parse_tree_path,
    split_query,
)


def test_select_fields() -> None:
    assert parse_select("id, name") == (SelectField(Field("id")), SelectField(Field("name")))
    assert parse_select("full:name::text") == (SelectField(Field("name"), alias="full", cast="text"),)
    assert parse_select("data->a->>b") == (
        SelectField(Field("data", (JsonOp("->", "a"), JsonOp("->>", "b")))),)
    assert parse_select("data->arr->0") == (
        SelectField(Field("data", (JsonOp("->", "arr"), JsonOp("->", "0", index=True)))),)
    assert parse_select('"quoted, name":"a b"') == (SelectField(Field("a b"), alias="quoted, name"),)
    assert parse_select("") == parse_select("*")
    assert parse_select("amount.sum()")[0] == SelectField(Field("amount"), aggregate="sum")
    assert parse_select("total:count()")[0] == SelectField(Field("count"), alias="total", aggregate="count")


def test_select_embeds() -> None:
    (e,) = parse_select("writer:authors!posts_author_id_fkey!inner(id,name)")
    assert e == SelectEmbed("authors", "writer", "posts_author_id_fkey", "inner", False,
                            (SelectField(Field("id")), SelectField(Field("name"))))
    (s,) = parse_select("...authors(name)")
    assert isinstance(s, SelectEmbed) and s.spread and s.key == "authors"
    (n,) = parse_select("posts(id,comments(*))")
    assert isinstance(n, SelectEmbed) and isinstance(n.items[1], SelectEmbed)
    (d,) = parse_select("authors()")
    assert isinstance(d, SelectEmbed) and d.items == ()  # an empty embed (PostgREST leaves its key out)


@pytest.mark.parametrize("bad", ["id,", "a(", "a!(", ",", "a::", "a->", "a.b", "a)"])
def test_select_errors(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_select(bad)
    assert info.value.code == "PGRST100" and info.value.status == 400


def test_filters() -> None:
    q = parse_query(split_query("id=eq.1&name=not.like.*a*&tags=cs.{a,b}&id=in.(1,\"2,3\")&x=is.NULL"))
    conds = q.conditions[()]
    assert conds[0] == Filter(Field("id"), OpExpr("eq", "1"))
    assert conds[1] == Filter(Field("name"), OpExpr("like", "*a*", negated=True))
    assert conds[2] == Filter(Field("tags"), OpExpr("cs", "{a,b}"))
    assert conds[3] == Filter(Field("id"), OpExpr("in", ("1", "2,3")))
    assert conds[4] == Filter(Field("x"), OpExpr("is", "null"))
    q = parse_query(split_query("t=fts(english).cat&n=like(any).{a*,b*}&c.d.e=gt.5"))
    assert q.conditions[()][0].expr == OpExpr("fts", "cat", config="english")  # type: ignore[union-attr]
    assert q.conditions[()][1].expr == OpExpr("like", "{a*,b*}", modifier="any")  # type: ignore[union-attr]
    assert q.conditions[("c", "d")] == [Filter(Field("e"), OpExpr("gt", "5"))]


def test_value_keeps_dots_and_plus_is_space() -> None:
    q = parse_query(split_query("v=eq.a.b.c&w=eq.x+y&z=eq.%2B"))
    assert [c.expr.value for c in q.conditions[()]] == ["a.b.c", "x y", "+"]  # type: ignore[union-attr]


def test_logic_trees() -> None:
    tree = parse_logic("or", False, "(a.eq.1,and(b.gt.2,not.or(c.is.null,d.in.(1,2))),e.eq.\"x,y)\")")
    assert tree == Logic("or", (
        Filter(Field("a"), OpExpr("eq", "1")),
        Logic("and", (Filter(Field("b"), OpExpr("gt", "2")),
                      Logic("or", (Filter(Field("c"), OpExpr("is", "null")),
                                   Filter(Field("d"), OpExpr("in", ("1", "2")))), negated=True))),
        Filter(Field("e"), OpExpr("eq", "x,y)")),
    ))
    q = parse_query([("not.and", "(a.eq.1)"), ("child.or", "(x.eq.1)")])
    assert q.conditions[()] == [Logic("and", (Filter(Field("a"), OpExpr("eq", "1")),), negated=True)]
    assert q.conditions[("child",)] == [Logic("or", (Filter(Field("x"), OpExpr("eq", "1")),))]
    t = parse_logic("or", False, "(tags.cs.{a,b},r.ov.[1,5))")
    assert t.children[0] == Filter(Field("tags"), OpExpr("cs", "{a,b}"))
    assert t.children[1] == Filter(Field("r"), OpExpr("ov", "[1,5)"))


@pytest.mark.parametrize("bad", ["(a.eq.1", "a.eq.1", "(a.zz.1)", "(a.eq.1,)", "()", "(and())"])
def test_logic_errors(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_logic("or", False, bad)
    assert info.value.code == "PGRST100"


def test_order_and_pages() -> None:
    assert parse_order("a.desc.nullslast,b,c->>k.asc,rel(x).desc") == (
        OrderTerm(Field("a"), None, "desc", "last"), OrderTerm(Field("b")),
        OrderTerm(Field("c", (JsonOp("->>", "k"),)), None, "asc"),
        OrderTerm(Field("x"), "rel", "desc"))
    q = parse_query([("limit", "5"), ("offset", "2"), ("c.limit", "1"), ("c.order", "id")])
    assert q.limit == {(): 5, ("c",): 1} and q.offset == {(): 2}
    for bad in ({"limit": "-1"}, {"offset": "x"}, {"order": "a.up"}):
        with pytest.raises(ApiError):
            parse_query(bad.items())


def test_columns_and_tree_path() -> None:
    assert parse_columns("columns", '"a","b c",d') == ("a", "b c", "d")
    assert parse_tree_path("x.y.data->>k") == (("x", "y"), Field("data", (JsonOp("->>", "k"),)))


def test_rpc_args_are_not_filters() -> None:
    q = parse_query([("a", "1"), ("b", "{1,2}"), ("c", "eq.3")], arg_names={"a", "b"})
    assert q.args == [("a", "1"), ("b", "{1,2}")]
    assert q.conditions[()] == [Filter(Field("c"), OpExpr("eq", "3"))]


def test_nesting_is_bounded() -> None:
    for fn in (lambda: parse_logic("or", False, "(" + "and(" * 500 + "a.eq.1" + ")" * 500 + ")"),
               lambda: parse_select("a(" * 500 + "b" + ")" * 500)):
        with pytest.raises(ApiError) as info:
            fn()
        assert info.value.code == "PGRST100"
