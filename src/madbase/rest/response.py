"""Response building: status from range and count, `Content-Range`, the single-object media, CSV request bodies
(pure). CSV responses are built by PostgreSQL (`sql._csv_expr`), as PostgREST does."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from madbase.rest import errors

JSON_CT = b"application/json; charset=utf-8"
OBJECT_CT = b"application/vnd.pgrst.object+json; charset=utf-8"
CSV_CT = b"text/csv; charset=utf-8"
GEOJSON_CT = b"application/geo+json; charset=utf-8"
OPENAPI_CT = b"application/openapi+json; charset=utf-8"


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def range_status(offset: int, page: int, total: int | None) -> int:
    if total is None:
        return 200
    if offset > total:
        return 416
    if page < total:
        return 206
    return 200


def content_range(offset: int, page: int, total: int | None) -> bytes:
    total_s = "*" if total is None else str(total)
    if page <= 0:
        return f"*/{total_s}".encode()
    return f"{offset}-{offset + page - 1}/{total_s}".encode()


def single_object(body: bytes, page: int) -> bytes:
    """The one row of a JSON array built by json_agg, or PGRST116 (406)."""
    if page != 1:
        raise errors.singular(page)
    start = body.index(b"[") + 1
    end = body.rindex(b"]")
    return body[start:end].strip()


def csv_rows(text: str) -> list[dict[str, Any]]:
    """A CSV request body as objects (header row gives the keys; unquoted NULL is null)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise errors.invalid_body("Empty or invalid csv") from None
    rows: list[dict[str, Any]] = []
    for rec in reader:
        if not rec:
            continue
        if len(rec) != len(header):
            raise errors.invalid_body("All lines must have same number of fields")
        rows.append({k: (None if v == "NULL" else v) for k, v in zip(header, rec, strict=True)})
    return rows
