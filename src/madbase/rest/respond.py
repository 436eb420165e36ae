"""REST's respond stage: a plan and the row its statement gave → the `Response` (pure).

Status, Content-Range, Preference-Applied, Location and the media's content type follow PostgREST's rules per
plan type; the body is PostgreSQL's, sent as it is (one JSON array, CSV or GeoJSON built by the statement), cut
to its one element for the single-object media. `response.headers` / `response.status` set by SQL during the
request apply last. `verify` raises the errors `respond` would, without building anything: the execute stage
runs it before COMMIT, so an answer that is an error (406, max-affected, a bad response GUC) undoes a write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from madbase.core import jsonutil
from madbase.core.numbers import ascii_uint
from madbase.rest import errors
from madbase.rest.planner import CallPlan, DbPlan, MutatePlan, ReadPlan
from madbase.rest.response import (
    CSV_CT,
    GEOJSON_CT,
    JSON_CT,
    OBJECT_CT,
    Response,
    content_range,
    range_status,
    single_object,
)

if TYPE_CHECKING:
    from madbase.rest.execute import Result

# Bodies PostgreSQL builds whole in the statement's own format (sql._csv_expr, GeoJSON), sent as they are
_SQL_BUILT = {"csv": CSV_CT, "geojson": GEOJSON_CT}


def respond(plan: DbPlan, result: Result) -> Response:
    if result.explain is not None:
        return result.explain
    row = result.row
    page: int = row["page"] or 0
    headers: list[tuple[bytes, bytes]] = []
    _check_affected(plan, page)
    if plan.prefs.applied:
        headers.append((b"preference-applied", ", ".join(plan.prefs.applied).encode()))
    if isinstance(plan, MutatePlan):
        response = _mutated(plan, row, page, headers)
    elif isinstance(plan, CallPlan) and plan.result != "rows":
        response = _called_scalar(plan, row, page, headers)
    else:
        response = _rows(plan, row, page, _total(plan, result), headers)
    if row["resp_headers"] or row["resp_status"]:  # the usual case: nothing set by SQL, nothing to parse
        _apply_response_gucs(response, row)
    return response


def verify(plan: DbPlan, result: Result) -> None:
    """The errors `respond` raises for this result, in the same order."""
    row = result.row
    page: int = row["page"] or 0
    _check_affected(plan, page)
    if isinstance(plan, MutatePlan):
        if plan.single and page != 1:
            raise errors.singular(page)
    elif not (isinstance(plan, CallPlan) and plan.result != "rows"):
        total = _total(plan, result)
        if range_status(plan.offset, page, total) == 416:
            raise _past_the_end(plan.offset, total)
        if plan.single and media_rows(plan) and not (isinstance(plan, CallPlan) and plan.object_result and page == 0):
            if page != 1:
                raise errors.singular(page)
    _response_gucs(row)


def media_rows(plan: ReadPlan | CallPlan) -> bool:
    """Whether the body is a JSON array the single-object media cuts (not CSV/GeoJSON built whole by SQL)."""
    return plan.media not in _SQL_BUILT


def _check_affected(plan: DbPlan, page: int) -> None:
    if plan.prefs.max_affected is not None and page > plan.prefs.max_affected:
        raise errors.max_affected(page)


def _total(plan: ReadPlan | CallPlan, result: Result) -> int | None:
    """The count: exact from the statement, or the planner's estimate (count=estimated keeps the exact one up to
    db-max-rows)."""
    total: int | None = result.row["total"] if plan.prefs.count else None
    planned = result.planned_total
    if planned is not None and isinstance(plan, ReadPlan) and (
            plan.estimate_above is None or (total or 0) > plan.estimate_above):
        total = planned
    return total


def _past_the_end(offset: int, total: int | None) -> errors.ApiError:
    return errors.invalid_range(f"An offset of {offset} was requested, but there are only {total} rows.")


def _rows(plan: ReadPlan | CallPlan, row: Any, page: int, total: int | None,
          headers: list[tuple[bytes, bytes]]) -> Response:
    """A read, or a call whose result reads like one."""
    status = range_status(plan.offset, page, total)
    if status == 416:
        raise _past_the_end(plan.offset, total)
    headers.append((b"content-range", content_range(plan.offset, page, total)))
    body: bytes | None = row["body"]
    if not media_rows(plan):  # a composite result is one CSV row / a FeatureCollection too
        return Response(status, body or b"", [(b"content-type", _SQL_BUILT[plan.media]), *headers])
    text = body or b"[]"
    if plan.single:
        object_result = isinstance(plan, CallPlan) and plan.object_result
        if object_result and page == 0:
            return Response(200, b"null", [(b"content-type", JSON_CT), *headers])
        text = single_object(text, page)
        return Response(status, text, [(b"content-type", JSON_CT if object_result else OBJECT_CT), *headers])
    return Response(status, text, [(b"content-type", JSON_CT), *headers])


def _called_scalar(plan: CallPlan, row: Any, page: int, headers: list[tuple[bytes, bytes]]) -> Response:
    if plan.result == "void":
        return Response(204, b"", headers)
    # a scalar result is one row to PostgREST's counts (`count: 1` in the clients)
    headers.append((b"content-range", content_range(0, page, page if plan.prefs.count else None)))
    return Response(200, row["body"] or b"null", [(b"content-type", JSON_CT), *headers])


def _mutated(plan: MutatePlan, row: Any, page: int, headers: list[tuple[bytes, bytes]]) -> Response:
    status = plan.status
    if plan.upsert and (plan.kind == "insert" or plan.body_wanted):
        status = 201 if (row["inserted"] or 0) > 0 else 200
    total = page if plan.prefs.count else None
    if plan.kind == "update":
        headers.append((b"content-range", content_range(0, page, total) if page else b"*/*"))
    else:
        headers.append((b"content-range", f"*/{total if total is not None else '*'}".encode()))
    if plan.location_pk:
        loc = location_header(plan.location_table, plan.location_pk, row["location"])
        if loc is not None:
            headers.append((b"location", loc))
    body: bytes | None = row["body"]
    if plan.single:
        text = single_object(body or b"[]", page)
        if plan.body_wanted:
            return Response(201 if status == 201 else 200, text, [(b"content-type", OBJECT_CT), *headers])
    if not plan.body_wanted:
        return Response(status if plan.kind == "insert" else 204, b"", headers)
    status = 201 if status == 201 else 200
    if plan.media in _SQL_BUILT:
        return Response(status, body or b"", [(b"content-type", _SQL_BUILT[plan.media]), *headers])
    return Response(status, body or b"[]", [(b"content-type", JSON_CT), *headers])


def location_header(table: str, pk: tuple[str, ...], location_json: str | None) -> bytes | None:
    """`Location: /table?pk=eq.value` of the row a return=headers-only insert created."""
    if not location_json:
        return None
    values = jsonutil.loads(location_json)
    parts = [f"{quote(k)}=eq.{quote(str(values.get(k)))}" for k in pk]
    return f"/{quote(table)}?{'&'.join(parts)}".encode()


def _response_gucs(row: Any) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """`response.headers` (a JSON array of one-key objects) and `response.status` set by SQL during the
    request, checked: PGRST111/112 when they are not what PostgREST accepts."""
    raw_headers, raw_status = row["resp_headers"], row["resp_status"]
    set_headers: list[tuple[bytes, bytes]] = []
    if raw_headers:
        try:
            items = jsonutil.loads(raw_headers)
        except ValueError:
            raise errors.ApiError(500, "PGRST111", "response.headers guc must be a JSON array composed of objects "
                                  "with a single key and a string value") from None
        if not isinstance(items, list):
            items = []
        for item in items:
            if isinstance(item, dict) and len(item) == 1:
                (k, v), = item.items()
                set_headers.append((str(k).lower().encode("latin-1", "replace"),
                                    str(v).encode("latin-1", "replace")))
    status: int | None = None
    if raw_status:
        status = ascii_uint(raw_status, 3)
        if status is None or not 100 <= status <= 599:
            raise errors.ApiError(500, "PGRST112", "response.status guc must be a valid status code")
    return set_headers, status


def _apply_response_gucs(response: Response, row: Any) -> None:
    set_headers, status = _response_gucs(row)
    for name, value in set_headers:  # a header set by SQL replaces the one PostgREST would send
        response.headers = [h for h in response.headers if h[0] != name]
        response.headers.append((name, value))
    if status is not None:
        response.status = status
