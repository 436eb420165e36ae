"""A small schema cache built without a database, for unit tests of the planner and the plan memo."""

from __future__ import annotations

from typing import Any

from madbase.rest.schema import SchemaCache, build_cache


def _cols(table: str, kind: str, *cols: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"schema": "public", "name": table, "kind": kind, "tdesc": None, "col": c, "type": t, "nullable": True,
             "dflt": None, "generated": False, "cdesc": None} for c, t in cols]


def _fk(name: str, t1: str, c1: list[str], t2: str, c2: list[str]) -> dict[str, Any]:
    return {"name": name, "s1": "public", "t1": t1, "cols1": c1, "s2": "public", "t2": t2, "cols2": c2}


def unit_cache() -> SchemaCache:
    """users, posts (two FKs to users), tags, post_tags (junction) and the view user_posts."""
    cols = (_cols("users", "r", ("id", "integer"), ("name", "text"))
            + _cols("posts", "r", ("id", "integer"), ("user_id", "integer"), ("reviewer_id", "integer"),
                    ("title", "text"), ("data", "jsonb"))
            + _cols("tags", "r", ("id", "integer"), ("name", "text"))
            + _cols("post_tags", "r", ("post_id", "integer"), ("tag_id", "integer"))
            + _cols("user_posts", "v", ("id", "integer"), ("user_id", "integer")))
    keys = [{"schema": "public", "name": t, "type": "p", "cols": c}
            for t, c in [("users", ["id"]), ("posts", ["id"]), ("tags", ["id"]), ("post_tags", ["post_id", "tag_id"])]]
    fks = [_fk("posts_user_id_fkey", "posts", ["user_id"], "users", ["id"]),
           _fk("posts_reviewer_id_fkey", "posts", ["reviewer_id"], "users", ["id"]),
           _fk("pt_post", "post_tags", ["post_id"], "posts", ["id"]),
           _fk("pt_tag", "post_tags", ["tag_id"], "tags", ["id"])]
    deps = [{"vs": "public", "vname": "user_posts", "vcol": c, "ts": "public", "tname": "posts", "col": c}
            for c in ("id", "user_id")]
    return build_cache(["public"], cols, keys, fks, deps, [])
