"""Embedding: many-to-one, one-to-many, one-to-one, many-to-many, hints, !inner, spread, embedded filters."""

from __future__ import annotations

from tests.rest.conftest import Rest


def ok(r: object) -> object:
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    return r.json()  # type: ignore[attr-defined]


def test_many_to_one_with_hint(rest: Rest) -> None:
    body = ok(rest.get("/posts", select="id,author:authors!author_id(name),editor:authors!editor_id(name)",
                       order="id"))
    assert body == [
        {"id": 1, "author": {"name": "Ann"}, "editor": {"name": "Bob"}},
        {"id": 2, "author": {"name": "Ann"}, "editor": None},
        {"id": 3, "author": {"name": "Bob"}, "editor": {"name": "Ann"}},
        {"id": 4, "author": {"name": "Bob"}, "editor": None},
    ]
    body2 = ok(rest.get("/posts", select="id,authors!posts_author_id_fkey(id)", id="eq.1"))
    assert body2 == [{"id": 1, "authors": {"id": 1}}]


def test_embed_by_fk_column(rest: Rest) -> None:
    assert ok(rest.get("/posts", select="id,author_id(name)", id="eq.3")) == [{"id": 3, "author_id": {"name": "Bob"}}]


def test_ambiguous(rest: Rest) -> None:
    r = rest.get("/posts", select="id,authors(name)")
    assert r.status_code == 300
    body = r.json()
    assert body["code"] == "PGRST201"
    assert len(body["details"]) == 2
    assert {d["cardinality"] for d in body["details"]} == {"many-to-one"}
    assert "authors!posts_author_id_fkey" in body["hint"]


def test_unknown_relationship(rest: Rest) -> None:
    r = rest.get("/posts", select="id,nothing(*)")
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"


def test_one_to_many_with_filters_order_limit(rest: Rest) -> None:
    body = ok(rest.get("/posts", select="id,comments(body,votes)", order="id", **{
        "comments.order": "votes.desc", "comments.limit": "1", "id": "in.(1,2)"}))
    assert body == [{"id": 1, "comments": [{"body": "Great", "votes": 5}]}, {"id": 2, "comments": []}]
    body = ok(rest.get("/posts", select="id,comments(body)", order="id", **{
        "comments.votes": "lt.5", "id": "eq.1"}))
    assert body == [{"id": 1, "comments": [{"body": "Nice"}]}]
    body = ok(rest.get("/posts", select="id,comments(body)", id="eq.1",
                       **{"comments.or": "(votes.eq.5,body.eq.Nice)", "comments.order": "body"}))
    assert body == [{"id": 1, "comments": [{"body": "Great"}, {"body": "Nice"}]}]
    body = ok(rest.get("/posts", select="id,comments(body)", id="eq.1",
                       **{"comments.offset": "1", "comments.order": "id"}))
    assert body == [{"id": 1, "comments": [{"body": "Great"}]}]


def test_inner_join_filters_parents(rest: Rest) -> None:
    body = ok(rest.get("/posts", select="id,comments!inner(id)", order="id", **{"comments.votes": "gte.1"}))
    assert [b["id"] for b in body] == [1, 3]
    body = ok(rest.get("/posts", select="id,author:authors!author_id!inner(name)", order="id",
                       **{"author.name": "eq.Bob"}))
    assert [b["id"] for b in body] == [3, 4]


def test_null_filter_on_embed(rest: Rest) -> None:
    body = ok(rest.get("/posts", select="id,comments(id)", order="id", comments="is.null"))
    assert [b["id"] for b in body] == [2, 4]
    body = ok(rest.get("/posts", select="id,comments(id)", order="id", comments="not.is.null"))
    assert [b["id"] for b in body] == [1, 3]
    r = rest.get("/posts", select="id,comments(id)", comments="eq.1")
    assert r.status_code == 400 and r.json()["code"] == "PGRST120"


def test_filter_on_missing_embed(rest: Rest) -> None:
    r = rest.get("/posts", select="id", **{"comments.votes": "eq.1"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST108"


def test_many_to_many(rest: Rest) -> None:
    body = ok(rest.get("/posts", select="id,tags(name)", order="id", **{"tags.order": "name"}))
    assert body == [{"id": 1, "tags": [{"name": "news"}, {"name": "tech"}]}, {"id": 2, "tags": [{"name": "tech"}]},
                    {"id": 3, "tags": [{"name": "misc"}]}, {"id": 4, "tags": []}]
    body = ok(rest.get("/tags", select="name,posts(id)", order="name", **{"posts.order": "id"}))
    assert body[0] == {"name": "misc", "posts": [{"id": 3}]}


def test_one_to_one_and_nested(rest: Rest) -> None:
    body = ok(rest.get("/authors", select="name,profiles(website)", order="id"))
    assert body == [{"name": "Ann", "profiles": {"website": "ann.dev"}}, {"name": "Bob", "profiles": None},
                    {"name": "Cid", "profiles": None}]
    body = ok(rest.get("/comments", select="body,posts(title,author:authors!author_id(name))", id="eq.3"))
    assert body == [{"body": "Hmm", "posts": {"title": "Bob writes", "author": {"name": "Bob"}}}]


def test_spread(rest: Rest) -> None:
    body = ok(rest.get("/posts", select="id,...authors!author_id(author_name:name)", order="id", limit="2"))
    assert body == [{"id": 1, "author_name": "Ann"}, {"id": 2, "author_name": "Ann"}]
    body = ok(rest.get("/posts", select="id,...comments(body)", id="eq.1", **{"comments.order": "id"}))
    assert body == [{"id": 1, "body": ["Nice", "Great"]}]


def test_view_relationships(rest: Rest) -> None:
    body = ok(rest.get("/published_posts", select="id,authors(name)", order="id"))
    assert body == [{"id": 1, "authors": {"name": "Ann"}}, {"id": 3, "authors": {"name": "Bob"}}]
    body = ok(rest.get("/authors", select="name,published_posts(id)", id="eq.1"))
    assert body == [{"name": "Ann", "published_posts": [{"id": 1}]}]


def test_star_with_embed(rest: Rest) -> None:
    body = ok(rest.get("/comments", select="*,posts(id)", id="eq.1"))
    assert body == [{"id": 1, "post_id": 1, "body": "Nice", "votes": 0, "posts": {"id": 1}}]


def test_aggregates_disabled(rest: Rest) -> None:
    r = rest.get("/posts", select="rating.sum()")
    assert r.status_code == 400 and r.json()["code"] == "PGRST123"


def test_embedded_count(rest: Rest) -> None:
    body = ok(rest.get("/posts", select="id,comments(count)", order="id"))
    assert body == [{"id": 1, "comments": [{"count": 2}]}, {"id": 2, "comments": [{"count": 0}]},
                    {"id": 3, "comments": [{"count": 1}]}, {"id": 4, "comments": [{"count": 0}]}]
    body = ok(rest.get("/authors", select="name,posts!author_id(total:count)", id="eq.1"))
    assert body == [{"name": "Ann", "posts": [{"total": 2}]}]


def test_view_with_aliased_columns_and_view_of_view(rest: Rest) -> None:
    body = ok(rest.get("/post_cards", select="post_key,authors(name)", post_key="eq.3"))
    assert body == [{"post_key": 3, "authors": {"name": "Bob"}}]
    body = ok(rest.get("/post_cards2", select="post_key,authors(name),comments(body)", post_key="eq.3"))
    assert body == [{"post_key": 3, "authors": {"name": "Bob"}, "comments": [{"body": "Hmm"}]}]


def test_computed_relationships(rest: Rest) -> None:
    body = ok(rest.get("/authors", select="name,recent_posts(id)", id="eq.1"))
    assert body == [{"name": "Ann", "recent_posts": [{"id": 2}, {"id": 1}]}]
    body = ok(rest.get("/posts", select="id,main_author(name)", id="eq.3"))
    assert body == [{"id": 3, "main_author": {"name": "Bob"}}]
    body = ok(rest.get("/posts", select="id,top_comment(body)", id="eq.1"))  # SETOF … ROWS 1: to-one
    assert body == [{"id": 1, "top_comment": {"body": "Great"}}]
