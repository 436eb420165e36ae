"""The plan stage's typed plans and the respond stage on them (pure, no database): which plan each action gets,
the preferences a plan applies, and `respond.verify` failing exactly where `respond` does (the execute stage runs
`verify` before COMMIT so such an answer undoes a write)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from madbase.rest.errors import ApiError
from madbase.rest.execute import Result, one_statement
from madbase.rest.planner import DbPlan, InfoPlan, MutatePlan, PlanOptions, ReadPlan, info_plan, plan_request
from madbase.rest.request import ApiRequest, parse_request
from madbase.rest.respond import respond, verify
from tests.rest.unitschema import unit_cache

CACHE = unit_cache()


def _req(method: str, path: str, qs: str = "", headers: dict[str, str] | None = None) -> ApiRequest:
    h = headers or {}
    prefer = [h["prefer"]] if "prefer" in h else []
    return parse_request(method, path, qs, h, prefer, ("public",))


def _plan(method: str, qs: str = "", body: bytes = b"", headers: dict[str, str] | None = None) -> DbPlan:
    return plan_request(_req(method, "/posts", qs, headers), CACHE, body, PlanOptions())


def test_each_action_gets_its_plan_type() -> None:
    read = _plan("GET", "id=eq.1")
    assert isinstance(read, ReadPlan) and read.readonly
    insert = _plan("POST", body=b'{"id": 1}')
    assert isinstance(insert, MutatePlan) and (insert.kind, insert.status) == ("insert", 201) and not insert.readonly
    put = _plan("PUT", "id=eq.1", b'{"id": 1, "title": "x"}')
    assert isinstance(put, MutatePlan) and (put.kind, put.status, put.upsert) == ("upsert", 204, True)
    update = _plan("PATCH", "id=eq.1", b'{"title": "x"}')
    assert isinstance(update, MutatePlan) and update.kind == "update"
    delete = _plan("DELETE", "id=eq.1", headers={"prefer": "return=representation"})
    assert isinstance(delete, MutatePlan) and delete.kind == "delete" and delete.body_wanted
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.offset = 3  # type: ignore[misc]


def test_info_plans() -> None:
    assert info_plan(_req("OPTIONS", "/posts")) == InfoPlan("options")
    assert info_plan(_req("GET", "/")) == InfoPlan("openapi")
    assert info_plan(_req("GET", "/posts")) is None


def test_preferences_applied_in_postgrest_order() -> None:
    prefer = "tx=rollback, max-affected=3, count=exact, timezone=UTC, handling=strict, return=representation"
    plan = _plan("PATCH", "id=eq.1", b'{"title": "x"}', {"prefer": prefer})
    assert plan.prefs.applied == ("return=representation", "count=exact", "tx=rollback", "handling=strict",
                                  "timezone=UTC", "max-affected=3")
    assert (plan.prefs.count, plan.prefs.rollback, plan.prefs.max_affected, plan.prefs.timezone) == (
        True, True, 3, "UTC")
    unknown = _plan("GET", "id=eq.1", headers={"prefer": "timezone=Mars/Olympus"})
    assert unknown.prefs.timezone is None and unknown.prefs.applied == ()


def test_one_statement_only_when_nothing_can_undo_it() -> None:
    assert one_statement(_plan("GET", "id=eq.1"), None, None)
    assert not one_statement(_plan("GET", "id=eq.1", headers={"prefer": "count=planned"}), None, None)
    assert one_statement(_plan("POST", body=b'{"id": 1}'), None, None)
    assert not one_statement(_plan("POST", body=b'{"id": 1}'), "public.check", None)
    obj = {"accept": "application/vnd.pgrst.object+json"}
    assert not one_statement(_plan("PATCH", "id=eq.1", b'{"title": "x"}', obj), None, None)
    strict = {"prefer": "handling=strict, max-affected=1"}
    assert not one_statement(_plan("DELETE", "id=eq.1", headers=strict), None, None)


PLANS = [
    ("GET", "", b"", {}),
    ("GET", "offset=2", b"", {"prefer": "count=exact"}),
    ("GET", "", b"", {"accept": "application/vnd.pgrst.object+json"}),
    ("GET", "", b"", {"accept": "text/csv", "prefer": "count=exact"}),
    ("GET", "", b"", {"prefer": "handling=strict, max-affected=1"}),
    ("POST", "", b'{"id": 1}', {"prefer": "return=representation, count=exact"}),
    ("POST", "", b'{"id": 1}', {"prefer": "return=headers-only"}),
    ("POST", "", b'{"id": 1}', {"prefer": "resolution=merge-duplicates, return=representation"}),
    ("PATCH", "id=gt.0", b'{"title": "x"}', {"accept": "application/vnd.pgrst.object+json",
                                               "prefer": "return=representation"}),
    ("DELETE", "id=gt.0", b"", {"prefer": "handling=strict, max-affected=1, count=exact"}),
    ("PUT", "id=eq.1", b'{"id": 1}', {"prefer": "return=representation"}),
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PLANS), st.integers(0, 3), st.none() | st.integers(0, 4), st.sampled_from([None, "", "201",
       "abc", '[{"x-a": "b"}]', "{"]), st.booleans())
def test_property_verify_fails_where_respond_fails(case: tuple[str, str, bytes, dict[str, str]], page: int,
                                                   total: int | None, guc: str | None, inserted: bool) -> None:
    method, qs, body, headers = case
    plan = _plan(method, qs, body, headers)
    rows = ",".join(f'{{"id": {i}}}' for i in range(page))
    row: dict[str, Any] = {"total": total, "page": page, "body": f"[{rows}]".encode(), "inserted": int(inserted),
                           "location": '{"id": 1}', "resp_headers": guc if guc and guc[0] in "[{" else None,
                           "resp_status": guc if guc and guc[0] not in "[{" else None}
    result = Result(row)
    try:
        response = respond(plan, result)
    except ApiError as err:
        with pytest.raises(ApiError) as raised:
            verify(plan, result)
        assert raised.value.body() == err.body()
    else:
        verify(plan, result)
        assert 200 <= response.status <= 599
