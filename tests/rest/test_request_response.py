"""Unit tests of the pure request-header parsing and response helpers."""

from __future__ import annotations

import pytest

from madbase.rest.errors import ApiError, from_pg, status_for_sqlstate
from madbase.rest.request import choose_media, parse_prefer, parse_range, parse_request
from madbase.rest.response import content_range, csv_rows, range_status, single_object


def test_prefer() -> None:
    p = parse_prefer(["return=representation, count=exact", "resolution=merge-duplicates,missing=default",
                      "tx=rollback", "max-affected=5, handling=strict", "bogus=1"])
    assert p.values == {"return": "representation", "count": "exact", "resolution": "merge-duplicates",
                        "missing": "default", "tx": "rollback", "max-affected": "5", "handling": "strict"}
    assert p.invalid == ["bogus=1"]
    with pytest.raises(ApiError) as info:
        parse_request("GET", "/t", "", {}, ["handling=strict, nope"], ("public",))
    assert info.value.code == "PGRST122"


def test_range_header() -> None:
    assert parse_range("0-9") == (0, 10)
    assert parse_range("items=5-") == (5, None)
    assert parse_range("garbage") is None
    with pytest.raises(ApiError):
        parse_range("9-1")


def test_media() -> None:
    assert choose_media(None).media == "json"
    assert choose_media("application/vnd.pgrst.object+json;nulls=stripped").strip_nulls
    assert choose_media("text/csv").media == "csv"
    assert choose_media("application/geo+json").media == "geojson"
    assert choose_media("text/html, */*;q=0.1").media == "json"
    assert choose_media("application/json", root=True).media == "openapi"
    with pytest.raises(ApiError) as info:
        choose_media("application/xml")
    assert info.value.code == "PGRST107" and info.value.status == 406


def test_paths_and_profiles() -> None:
    req = parse_request("POST", "/rpc/fn%20x", "", {"content-profile": "api"}, [], ("public", "api"))
    assert req.is_rpc and req.target == "fn x" and req.schema == "api"
    with pytest.raises(ApiError) as info:
        parse_request("GET", "/a/b", "", {}, [], ("public",))
    assert info.value.code == "PGRST125"
    with pytest.raises(ApiError) as info:
        parse_request("GET", "/a", "", {"accept-profile": "x"}, [], ("public",))
    assert info.value.code == "PGRST106"


def test_ranges_and_status() -> None:
    assert content_range(0, 0, None) == b"*/*"
    assert content_range(10, 5, 100) == b"10-14/100"
    assert content_range(0, 0, 0) == b"*/0"
    assert range_status(0, 4, 4) == 200
    assert range_status(1, 2, 4) == 206
    assert range_status(10, 0, 4) == 416
    assert range_status(0, 3, None) == 200


def test_single_and_csv() -> None:
    assert single_object(b'[{"a":1}]', 1) == b'{"a":1}'
    with pytest.raises(ApiError) as info:
        single_object(b"[]", 0)
    assert info.value.code == "PGRST116"
    assert csv_rows('a,b\n1,NULL\n"x,y",') == [{"a": "1", "b": None}, {"a": "x,y", "b": ""}]


def test_sqlstate_table() -> None:
    assert status_for_sqlstate("23505", True) == 409
    assert status_for_sqlstate("42501", False) == 401 and status_for_sqlstate("42501", True) == 403
    assert status_for_sqlstate("PT418", True) == 418
    assert status_for_sqlstate("08006", True) == 503
    assert status_for_sqlstate("22P02", True) == 400
    assert status_for_sqlstate("P0002", True) == 500

    class Exc(Exception):
        sqlstate = "PGRST"
        message = '{"code":"X1","message":"m","hint":"h"}'
        detail = '{"status":402,"headers":{"X-A":"b"}}'
        hint = None

    err = from_pg(Exc(), True)
    assert (err.status, err.code, err.message, err.hint) == (402, "X1", "m", "h")
    assert err.headers == [(b"x-a", b"b")]


def test_offset_at_total_is_partial_not_416() -> None:
    assert range_status(4, 0, 4) == 206
    assert range_status(0, 0, 0) == 200
