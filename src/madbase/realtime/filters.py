"""postgres_changes binding filters (`column=op.value`), parsed once at join and evaluated per change.

Operators as Supabase Realtime has long supported them: eq, neq, lt, lte, gt, gte, in (`in.(a,b,"c,d")`).
Values compare typed by the column's type OID (numbers numerically, booleans as booleans, else as text),
as Realtime casts the filter value to the column type. Pure module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from madbase.realtime.values import comparable

OPS: Final = ("eq", "neq", "lt", "lte", "gt", "gte", "in")


class FilterError(ValueError):
    """The filter string cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Filter:
    column: str
    op: str
    values: tuple[str, ...]  # one value, or the list for `in`

    def matches(self, record: dict[str, tuple[int, str | None]]) -> bool:
        """`record` maps column name → (type oid, text value). A missing column never matches."""
        entry = record.get(self.column)
        if entry is None:
            return False
        oid, raw = entry
        if raw is None:
            return False
        left = comparable(oid, raw)
        rights = [_typed(oid, v) for v in self.values]
        try:
            if self.op == "in":
                return left in rights
            return bool(_CMP[self.op](left, rights[0]))
        except TypeError:
            return False


def _typed(oid: int, value: str) -> Any:
    if oid == 16:
        return value.lower() in ("t", "true", "1", "y", "yes", "on")
    return comparable(oid, value)


_CMP: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


def _split_list(body: str) -> tuple[str, ...]:
    items: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    while i < len(body):
        ch = body[i]
        if quoted:
            if ch == "\\" and i + 1 < len(body):
                cur.append(body[i + 1])
                i += 2
                continue
            if ch == '"':
                quoted = False
            else:
                cur.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == ",":
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if quoted:
        raise FilterError("unterminated quote in `in` list")
    items.append("".join(cur).strip())
    return tuple(items)


def parse_filter(text: str) -> Filter:
    """Parse `column=op.value`; raises FilterError with a message fit for the client."""
    column, sep, rest = text.partition("=")
    column = column.strip()
    if not sep or not column:
        raise FilterError(f"invalid filter {text!r}: expected column=operator.value")
    op, dot, value = rest.partition(".")
    if not dot or op not in OPS:
        raise FilterError(f"invalid filter {text!r}: operator must be one of {', '.join(OPS)}")
    if op == "in":
        value = value.strip()
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterError(f"invalid filter {text!r}: `in` expects a list like in.(1,2,3)")
        return Filter(column, op, _split_list(value[1:-1]))
    return Filter(column, op, (value,))
