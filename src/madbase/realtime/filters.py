"""postgres_changes binding filters (`column=op.value`), parsed once at join and evaluated per change.

Operators as Supabase Realtime has long supported them — eq, neq, lt, lte, gt, gte, in (`in.(a,b,"c,d")`) —
and its 2026 additions: like, ilike, is (null/true/false/unknown), match, imatch (regex), isdistinct, the
`not.` negation and several comma-joined filters (AND).
Values compare typed by the column's type OID (numbers numerically, booleans as booleans, else as text),
as Realtime casts the filter value to the column type. Pure module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from madbase.realtime.values import comparable

OPS: Final = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct")
_IS_VALUES: Final = ("null", "true", "false", "unknown")


class FilterError(ValueError):
    """The filter string cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Condition:
    column: str
    op: str
    values: tuple[str, ...]  # one value, or the list for `in`
    negate: bool = False
    pattern: re.Pattern[str] | None = None

    def matches(self, record: dict[str, tuple[int, str | None]]) -> bool:
        entry = record.get(self.column)
        if entry is None:
            return False
        result = self._test(*entry)
        if result is None:  # SQL NULL: neither the condition nor its negation holds
            return False
        return result != self.negate

    def _test(self, oid: int, raw: str | None) -> bool | None:
        if self.op == "is":
            want = self.values[0]
            if want in ("null", "unknown"):
                return raw is None
            if raw is None:
                return None if want != "null" else True
            return bool(_typed(16, raw) == (want == "true"))
        if self.op == "isdistinct":
            if raw is None:
                return self.values[0].lower() != "null"
            return bool(comparable(oid, raw) != _typed(oid, self.values[0]))
        if raw is None:
            return None
        if self.pattern is not None:
            return self.pattern.search(raw) is not None
        left = comparable(oid, raw)
        rights = [_typed(oid, v) for v in self.values]
        try:
            if self.op == "in":
                return left in rights
            return bool(_CMP[self.op](left, rights[0]))
        except TypeError:
            return False


@dataclass(frozen=True, slots=True)
class Filter:
    """All conditions must hold (several comma-joined filters are an AND, as in Realtime's 2026 syntax)."""

    conditions: tuple[Condition, ...]

    @property
    def column(self) -> str:
        return self.conditions[0].column

    @property
    def op(self) -> str:
        return self.conditions[0].op

    @property
    def values(self) -> tuple[str, ...]:
        return self.conditions[0].values

    def matches(self, record: dict[str, tuple[int, str | None]]) -> bool:
        """`record` maps column name → (type oid, text value). A missing column never matches."""
        return all(c.matches(record) for c in self.conditions)


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


def _like(pattern: str, insensitive: bool) -> re.Pattern[str]:
    out = ["^"]
    for ch in pattern:
        out.append(".*" if ch in "%*" else "." if ch == "_" else re.escape(ch))
    out.append("$")
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL if insensitive else re.DOTALL)


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


_NEXT_FILTER = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*=)")


def _split_filters(text: str) -> list[str]:
    """Split `a=eq.1,b=in.(x,y)` at commas that start a new `column=` and are outside parentheses/quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0 and not quoted and _NEXT_FILTER.match(text, i):
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _parse_one(text: str) -> Condition:
    column, sep, rest = text.partition("=")
    column = column.strip()
    if not sep or not column:
        raise FilterError(f"invalid filter {text!r}: expected column=operator.value")
    negate = rest.startswith("not.")
    if negate:
        rest = rest[4:]
    op, dot, value = rest.partition(".")
    if not dot or op not in OPS:
        raise FilterError(f"invalid filter {text!r}: operator must be one of {', '.join(OPS)}")
    if op == "in":
        value = value.strip()
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterError(f"invalid filter {text!r}: `in` expects a list like in.(1,2,3)")
        return Condition(column, op, _split_list(value[1:-1]), negate)
    if op == "is" and value.lower() not in _IS_VALUES:
        raise FilterError(f"invalid filter {text!r}: `is` expects null, true, false or unknown")
    pattern: re.Pattern[str] | None = None
    if op in ("like", "ilike"):
        pattern = _like(value, op == "ilike")
    elif op in ("match", "imatch"):
        try:
            pattern = re.compile(value, re.IGNORECASE if op == "imatch" else 0)
        except re.error:
            raise FilterError(f"invalid filter {text!r}: bad regular expression") from None
    return Condition(column, op, (value.lower() if op == "is" else value,), negate, pattern)


def parse_filter(text: str) -> Filter:
    """Parse `column=[not.]op.value[,column=op.value…]`; raises FilterError with a message for the client."""
    return Filter(tuple(_parse_one(part) for part in _split_filters(text)))
