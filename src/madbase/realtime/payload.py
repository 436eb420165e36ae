"""Pure helpers for building postgres_changes payloads from decoded changes (no I/O, no state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from madbase.realtime.pgoutput import Relation, Value
from madbase.realtime.replication import Change
from madbase.realtime.values import comparable, to_json_value


def commit_ts_text(dt: datetime) -> str:
    """Realtime's commit_timestamp format: ISO-8601 UTC with milliseconds and `Z`."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def filter_value(oid: int, text: str) -> Any:
    """A filter's literal typed like the column it is compared with (for the eq index)."""
    if oid == 16:
        return text.lower() in ("t", "true", "1", "y", "yes", "on")
    return comparable(oid, text)


def typed_row(change: Change) -> dict[str, tuple[int, str | None]]:
    """Column name → (type oid, text) of the row a filter or key lookup should see."""
    cols = change.relation.columns
    row = change.new if change.kind != "DELETE" else change.old
    typed: dict[str, tuple[int, str | None]] = {}
    for col, val in zip(cols, row or (), strict=False):
        if val is None or isinstance(val, str):
            typed[col.name] = (col.type_oid, val)
    if change.kind == "UPDATE" and change.old is not None:
        for col, val in zip(cols, change.old, strict=False):
            if col.name not in typed and (val is None or isinstance(val, str)):
                typed[col.name] = (col.type_oid, val)
    return typed


def record_json(rel: Relation, values: tuple[Value, ...] | None, allowed: set[str] | frozenset[str]
                ) -> dict[str, Any]:
    """The JSON record of `values` restricted to `allowed` columns (unchanged TOAST values are left out)."""
    out: dict[str, Any] = {}
    if values is None:
        return out
    for col, val in zip(rel.columns, values, strict=False):
        if col.name in allowed and isinstance(val, str | None):
            out[col.name] = to_json_value(col.type_oid, val)
    return out
