"""`POST /object/list/{bucket}`: one folder level as Supabase shows it (folders first, `id: null`).

Supabase's `storage.search()` semantics: the prefix is a folder (a `/` is appended when missing), `search`
filters (case-insensitively) on what follows the prefix, entries one level below become folders.
The SQL text is fixed; the sort column and order come from a whitelist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from madbase.core.numbers import ascii_uint
from madbase.storage import errors
from madbase.storage.repo import SORT_COLUMNS


def upper_bound(prefix: str) -> str | None:
    """The smallest string (in "C" collation) above every string starting with `prefix`: lets the
    (bucket_id, name collate "C") index serve the prefix as a range scan."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF and not 0xD7FF <= last < 0xE000:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


@dataclass(frozen=True, slots=True)
class ListPlan:
    prefix: str
    level: int
    search: str
    limit: int
    offset: int
    column: str
    order: str

    def sql(self) -> str:
        return (
            "with matched as (select id, name, path_tokens, updated_at, created_at, last_accessed_at, metadata "
            "from storage.objects where bucket_id = $1 and starts_with(name, $2) "
            "and name collate \"C\" >= $2 and ($7::text is null or name collate \"C\" < $7) "
            "and ($3 = '' or starts_with(lower(substr(name, length($2) + 1)), lower($3)))) "
            "select * from ("
            "select path_tokens[$4] as name, null::uuid as id, null::timestamptz as updated_at, "
            "null::timestamptz as created_at, null::timestamptz as last_accessed_at, null::jsonb as metadata, "
            "0 as kind from matched where array_length(path_tokens, 1) > $4 group by path_tokens[$4] "
            "union all "
            "select path_tokens[$4], id, updated_at, created_at, last_accessed_at, metadata, 1 "
            "from matched where array_length(path_tokens, 1) = $4"
            f") t order by kind, {self.column} {self.order} nulls last, name collate \"C\" {self.order} "
            "limit $5 offset $6"
        )

    def args(self, bucket: str) -> list[Any]:
        return [bucket, self.prefix, self.search, self.level, self.limit, self.offset, upper_bound(self.prefix)]


def plan_list(body: dict[str, Any]) -> ListPlan:
    prefix = body.get("prefix", "")
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str):
        raise errors.invalid_request("prefix must be a string")
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    search = body.get("search") or ""
    if not isinstance(search, str):
        raise errors.invalid_request("search must be a string")
    limit = _int(body.get("limit"), 100, "limit")
    offset = _int(body.get("offset"), 0, "offset")
    sort = body.get("sortBy") or {}
    if not isinstance(sort, dict):
        raise errors.invalid_request("sortBy must be an object")
    column = str(sort.get("column") or "name")
    order = str(sort.get("order") or "asc").lower()
    if column not in SORT_COLUMNS:
        raise errors.invalid_request(f"sortBy.column must be one of {sorted(SORT_COLUMNS)}")
    if order not in ("asc", "desc"):
        raise errors.invalid_request("sortBy.order must be asc or desc")
    level = prefix.count("/") + 1
    return ListPlan(prefix, level, search, limit, offset, column, order)


def _int(value: object, default: int, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise errors.invalid_request(f"{name} must be a number")
    try:
        number = int(value)
    except ValueError:
        raise errors.invalid_request(f"{name} must be a number") from None
    if number < 0:
        raise errors.invalid_request(f"{name} must be >= 0")
    return number


@dataclass(frozen=True, slots=True)
class ListV2Plan:
    """`POST /object/list-v2/{bucket}`: S3-style listing (raw prefix, optional `/` delimiter, cursor paging).

    Folders are common prefixes (`"a/deep/"`), object names are full keys; the cursor is an opaque offset."""

    prefix: str
    delimiter: bool
    limit: int
    offset: int
    column: str
    order: str

    def sql(self) -> str:
        return (
            "with m as (select id, name, updated_at, created_at, last_accessed_at, metadata, "
            "strpos(substr(name, length($2) + 1), '/') as slash "
            "from storage.objects where bucket_id = $1 and starts_with(name, $2) "
            "and name collate \"C\" >= $2 and ($6::text is null or name collate \"C\" < $6)) "
            "select * from ("
            "select $2 || left(substr(name, length($2) + 1), slash) as name, null::uuid as id, "
            "null::timestamptz as updated_at, null::timestamptz as created_at, "
            "null::timestamptz as last_accessed_at, null::jsonb as metadata "
            "from m where $5 and slash > 0 group by 1 "
            "union all "
            "select name, id, updated_at, created_at, last_accessed_at, metadata from m "
            "where not $5 or slash = 0"
            f") t order by {self.column} {self.order} nulls last, name collate \"C\" {self.order} "
            "limit $3 offset $4"
        )

    def args(self, bucket: str) -> list[Any]:
        return [bucket, self.prefix, self.limit + 1, self.offset, self.delimiter, upper_bound(self.prefix)]

    def key(self, name: str) -> dict[str, str]:
        """Storage's `key` of a delimited listing: the name's path segment at the prefix's level (a folder
        `a/deep/` listed under `a/` has key `deep`, no slash); plain listings have none."""
        if not self.delimiter:
            return {}
        parts = name.split("/")
        level = len(self.prefix.split("/"))
        return {"key": parts[level - 1] if level <= len(parts) else ""}


def plan_list_v2(body: dict[str, Any]) -> ListV2Plan:
    prefix = body.get("prefix") or ""
    if not isinstance(prefix, str):
        raise errors.invalid_request("prefix must be a string")
    limit = min(_int(body.get("limit"), 1000, "limit"), 1000) or 1000
    offset = 0
    cursor = body.get("cursor")
    if cursor:
        parsed = ascii_uint(cursor) if isinstance(cursor, str) else None
        if parsed is None:
            raise errors.invalid_request("Invalid cursor")
        offset = parsed
    sort = body.get("sortBy") or {}
    if not isinstance(sort, dict):
        raise errors.invalid_request("sortBy must be an object")
    column = str(sort.get("column") or "name")
    order = str(sort.get("order") or "asc").lower()
    if column not in ("name", "updated_at", "created_at") or order not in ("asc", "desc"):
        raise errors.invalid_request("Invalid sortBy")
    return ListV2Plan(prefix.lstrip("/"), bool(body.get("with_delimiter")), limit, offset, column, order)
