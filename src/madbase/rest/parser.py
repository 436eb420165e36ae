"""Recursive-descent parser of PostgREST's query-string grammar (select, filters, logic trees, order).

Pure functions from strings to the `ast` types; every malformed input raises `ApiError` PGRST100 with
PostgREST's "failed to parse ..." message. Follows PostgREST's `ApiRequest/QueryParams.hs` grammar:
field names are letters/digits/`_`/`$`/space/`-` (not before `>`), or `"quoted"` with backslash escapes.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import Literal, cast
from urllib.parse import unquote_plus

from madbase.core.numbers import ascii_uint
from madbase.rest.ast import (
    STAR,
    Condition,
    EmbedPath,
    Field,
    Filter,
    JsonOp,
    Logic,
    OpExpr,
    OrderTerm,
    QueryParams,
    SelectEmbed,
    SelectField,
    SelectItem,
)
from madbase.rest.errors import parse_error

OPERATORS = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "in", "is",
                       "isdistinct", "fts", "plfts", "phfts", "wfts", "cs", "cd", "ov", "sl", "sr", "nxr",
                       "nxl", "adj"})
QUANTIFIABLE = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
FTS = frozenset({"fts", "plfts", "phfts", "wfts"})
IS_VALUES = {"null": "null", "not_null": "not_null", "true": "true", "false": "false", "unknown": "unknown"}
AGGREGATES = frozenset({"sum", "avg", "max", "min", "count"})
RESERVED = frozenset({"select", "columns", "on_conflict", "order", "limit", "offset", "or", "and"})
_OPS_TEXT = ", ".join(sorted(OPERATORS))
# `str.isdigit()` also accepts `²` or `٣`, which `int()` refuses or reads as another number: ASCII only.
_ASCII_DIGITS = frozenset("0123456789")


class _Fail(Exception):
    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


MAX_DEPTH = 40  # nesting of embeds and logic trees; deeper input is refused rather than recursed into
# Fields one select may name, all embeds together: PostgreSQL refuses a target list over 1664 entries (54011, which
# PostgREST answers with a 500); refusing earlier and plainly is the client's answer (400 PGRST100).
MAX_SELECT_ITEMS = 1000


class Cursor:
    __slots__ = ("depth", "i", "items", "s")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0
        self.depth = 0
        self.items = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Fail(f"nesting deeper than {MAX_DEPTH} levels")

    def leave(self) -> None:
        self.depth -= 1

    def eof(self) -> bool:
        return self.i >= len(self.s)

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def take(self, text: str) -> bool:
        if self.s.startswith(text, self.i):
            self.i += len(text)
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            self.fail(f'"{text}"')

    def fail(self, expecting: str) -> None:
        got = "end of input" if self.eof() else f'"{self.s[self.i]}"'
        raise _Fail(f"unexpected {got} expecting {expecting}")


def _name_char(c: str, nxt: str) -> bool:
    if c.isalnum() or c in "_$ ":
        return True
    return c == "-" and nxt != ">"


def parse_quoted(cur: Cursor) -> str:
    cur.expect('"')
    out: list[str] = []
    while True:
        if cur.eof():
            cur.fail('"\\"" (closing quote)')
        c = cur.s[cur.i]
        if c == "\\" and cur.i + 1 < len(cur.s):
            out.append(cur.s[cur.i + 1])
            cur.i += 2
            continue
        cur.i += 1
        if c == '"':
            return "".join(out)
        out.append(c)


def parse_name(cur: Cursor) -> str:
    if cur.peek() == '"':
        return parse_quoted(cur)
    start = cur.i
    s = cur.s
    while cur.i < len(s) and _name_char(s[cur.i], s[cur.i + 1:cur.i + 2]):
        cur.i += 1
    name = s[start:cur.i].strip()
    if not name:
        cur.fail("field name")
    return name


def _json_key(cur: Cursor) -> tuple[str, bool]:
    if cur.peek() == '"':
        return parse_quoted(cur), False
    start = cur.i
    if cur.peek() == "-" and cur.s[cur.i + 1:cur.i + 2] in _ASCII_DIGITS:
        cur.i += 1
    while cur.i < len(cur.s) and cur.s[cur.i] in _ASCII_DIGITS:
        cur.i += 1
    digits = cur.s[start:cur.i]
    if digits and digits != "-" and (cur.eof() or not _name_char(cur.peek(), cur.s[cur.i + 1:cur.i + 2])
                                     or cur.peek() == "-"):
        return digits, True
    cur.i = start
    return parse_name(cur), False


def parse_field(cur: Cursor) -> Field:
    name = parse_name(cur)
    path: list[JsonOp] = []
    while cur.peek(2) == "->":
        arrow: Literal["->", "->>"] = "->>" if cur.take("->>") else "->"
        if arrow == "->":
            cur.take("->")
        key, index = _json_key(cur)
        path.append(JsonOp(arrow, key, index))
    return Field(name, tuple(path))


def _cast(cur: Cursor) -> str | None:
    if not cur.take("::"):
        return None
    start = cur.i
    while cur.i < len(cur.s) and (cur.s[cur.i].isalnum() or cur.s[cur.i] == "_"):
        cur.i += 1
    if start == cur.i:
        cur.fail("cast type")
    return cur.s[start:cur.i]


# -- select ---------------------------------------------------------------------------------------------------

def _select_items(cur: Cursor, nested: bool) -> tuple[SelectItem, ...]:
    items: list[SelectItem] = []
    while True:
        cur.items += 1
        if cur.items > MAX_SELECT_ITEMS:
            raise _Fail(f"more than {MAX_SELECT_ITEMS} items selected")
        items.append(_select_item(cur))
        if cur.take(","):
            continue
        if nested and cur.peek() == ")":
            return tuple(items)
        if not nested and cur.eof():
            return tuple(items)
        cur.fail('"," or end of select' if not nested else '"," or ")"')


def _alias(cur: Cursor) -> str | None:
    start = cur.i
    if cur.peek() == "*" or cur.peek(3) == "...":
        return None
    try:
        name = parse_name(cur)
    except _Fail:
        cur.i = start
        return None
    if cur.peek() == ":" and cur.peek(2) != "::":
        cur.i += 1
        return name
    cur.i = start
    return None


def _select_item(cur: Cursor) -> SelectItem:
    if cur.take("..."):
        name = parse_name(cur)
        return _embed(cur, name, None, spread=True)
    if cur.take("*"):
        return SelectField(Field("*"), star=True)
    alias = _alias(cur)
    if cur.take("count()"):
        return SelectField(Field("count"), alias=alias, aggregate="count", cast=_cast(cur))
    fld = parse_field(cur)
    if not fld.path and (cur.peek() in ("(", "!")):
        return _embed(cur, fld.name, alias, spread=False)
    aggregate = None
    if cur.peek() == "." :
        save = cur.i
        cur.i += 1
        agg = parse_name(cur) if not cur.eof() else ""
        if agg in AGGREGATES and cur.take("()"):
            aggregate = agg
        else:
            cur.i = save
            cur.fail('"," or "::" or "->"')
    cast_to = _cast(cur)
    return SelectField(fld, alias=alias, cast=cast_to, aggregate=aggregate)


def _embed(cur: Cursor, name: str, alias: str | None, spread: bool) -> SelectEmbed:
    hint: str | None = None
    join: Literal["inner", "left"] | None = None
    while cur.take("!"):
        word = parse_name(cur)
        if word in ("inner", "left"):
            join = cast(Literal["inner", "left"], word)
        elif hint is None:
            hint = word
        else:
            cur.fail('"(" after embedding hint')
    cur.expect("(")
    cur.enter()
    items: tuple[SelectItem, ...] = ()
    if cur.peek() != ")":
        items = _select_items(cur, nested=True)
    cur.expect(")")
    cur.leave()
    return SelectEmbed(name, alias, hint, join, spread, items)  # `users()`: an empty embed (filters only)


def parse_select(value: str) -> tuple[SelectItem, ...]:
    text = _strip_ws(value)
    if not text:
        return STAR
    cur = Cursor(text)
    try:
        return _select_items(cur, nested=False)
    except _Fail as f:
        raise parse_error("select", value, f.details) from None


def _strip_ws(value: str) -> str:
    """Drop whitespace outside double quotes, as the clients do."""
    if '"' not in value:
        return "".join(value.split())
    out: list[str] = []
    quoted = False
    prev = ""
    for c in value:
        if c == '"' and prev != "\\":
            quoted = not quoted
        if quoted or not c.isspace():
            out.append(c)
        prev = c
    return "".join(out)


# -- filters ---------------------------------------------------------------------------------------------------

def _operator(cur: Cursor) -> tuple[str, bool, Literal["any", "all"] | None, str | None]:
    negated = False
    if cur.take("not."):
        negated = True
    start = cur.i
    while cur.i < len(cur.s) and cur.s[cur.i].isalpha():
        cur.i += 1
    op = cur.s[start:cur.i]
    if op not in OPERATORS:
        cur.i = start
        cur.fail(f'"not" or operator ({_OPS_TEXT})')
    modifier: Literal["any", "all"] | None = None
    config: str | None = None
    if cur.peek() == "(":
        if op in QUANTIFIABLE and (cur.take("(any)") or cur.take("(all)")):
            modifier = cast(Literal["any", "all"], cur.s[cur.i - 4:cur.i - 1])
        elif op in FTS:
            cur.i += 1
            config = parse_name(cur)
            cur.expect(")")
        else:
            cur.fail('"."')
    cur.expect(".")
    return op, negated, modifier, config


def _list_value(cur: Cursor) -> tuple[str, ...]:
    cur.expect("(")
    values: list[str] = []
    if cur.take(")"):
        return ()
    while True:
        if cur.peek() == '"':
            values.append(parse_quoted(cur))
        else:
            start = cur.i
            while cur.i < len(cur.s) and cur.s[cur.i] not in ",)":
                cur.i += 1
            values.append(cur.s[start:cur.i])
        if cur.take(","):
            continue
        cur.expect(")")
        return tuple(values)


def parse_op_expr(value: str, *, in_logic: bool = False, cur: Cursor | None = None) -> OpExpr:
    """`[not.]op.value` (top level: the value is the rest of the string)."""
    cur = cur or Cursor(value)
    op, negated, modifier, config = _operator(cur)
    val: str | tuple[str, ...]
    if op == "in":
        val = _list_value(cur)
    elif op == "is":
        raw = _logic_value(cur) if in_logic else cur.s[cur.i:]
        if not in_logic:
            cur.i = len(cur.s)
        key = raw.lower()
        if key not in IS_VALUES:
            raise _Fail(f'unexpected "{raw}" expecting null or trilean value (unknown, true, false)')
        val = IS_VALUES[key]
    elif modifier is not None:
        val = _logic_value(cur) if in_logic else cur.s[cur.i:]
        if not in_logic:
            cur.i = len(cur.s)
        if not (val.startswith("{") and val.endswith("}")):
            raise _Fail(f'unexpected "{val[:1]}" expecting "{{"')
    elif in_logic:
        val = _logic_value(cur)
    else:
        val = cur.s[cur.i:]
        cur.i = len(cur.s)
    return OpExpr(op, val, negated, modifier, config)


def _logic_value(cur: Cursor) -> str:
    if cur.peek() == '"':
        return parse_quoted(cur)
    start = cur.i
    depth = 0
    while cur.i < len(cur.s):
        c = cur.s[cur.i]
        if c in "{[":
            depth += 1
        elif c in "}]" and depth:
            depth -= 1
        elif c == ")" and depth and cur.s[start:start + 1] == "[":
            depth -= 1
        elif depth == 0 and c in ",)":
            break
        cur.i += 1
    return cur.s[start:cur.i]


def _logic_items(cur: Cursor) -> tuple[Condition, ...]:
    cur.expect("(")
    cur.enter()
    items: list[Condition] = []
    while True:
        items.append(_logic_item(cur))
        if cur.take(","):
            continue
        cur.expect(")")
        cur.leave()
        return tuple(items)


def _logic_item(cur: Cursor) -> Condition:
    negated = False
    start = cur.i
    if cur.take("not."):
        negated = True
    for op in ("and", "or"):
        if cur.take(op + "("):
            cur.i -= 1
            return Logic(op, _logic_items(cur), negated)
    cur.i = start
    fld = parse_field(cur)
    cur.expect(".")
    return Filter(fld, parse_op_expr("", in_logic=True, cur=cur))


def parse_logic(key_op: Literal["and", "or"], negated: bool, value: str) -> Logic:
    cur = Cursor(value)
    try:
        children = _logic_items(cur)
        if not cur.eof():
            cur.fail("end of input")
    except _Fail as f:
        raise parse_error("logic tree", value, f.details) from None
    return Logic(key_op, children, negated)


def parse_filter_value(fld: Field, value: str) -> Filter:
    try:
        return Filter(fld, parse_op_expr(value))
    except _Fail as f:
        raise parse_error("filter", value, f.details) from None


# -- order, limit ----------------------------------------------------------------------------------------------

def parse_order(value: str) -> tuple[OrderTerm, ...]:
    cur = Cursor(_strip_ws(value))
    terms: list[OrderTerm] = []
    try:
        while True:
            fld = parse_field(cur)
            relation = None
            if not fld.path and cur.peek() == "(":
                cur.i += 1
                relation = fld.name
                fld = parse_field(cur)
                cur.expect(")")
            direction: Literal["asc", "desc"] | None = None
            nulls: Literal["first", "last"] | None = None
            while cur.take("."):
                if cur.take("asc") and direction is None and nulls is None:
                    direction = "asc"
                elif cur.take("desc") and direction is None and nulls is None:
                    direction = "desc"
                elif cur.take("nullsfirst") and nulls is None:
                    nulls = "first"
                elif cur.take("nullslast") and nulls is None:
                    nulls = "last"
                else:
                    cur.fail('"asc", "desc", "nullsfirst" or "nullslast"')
            terms.append(OrderTerm(fld, relation, direction, nulls))
            if cur.take(","):
                continue
            if not cur.eof():
                cur.fail('"," or end of input')
            return tuple(terms)
    except _Fail as f:
        raise parse_error("order", value, f.details) from None


def parse_nonneg(what: str, value: str) -> int:
    number = ascii_uint(value)
    if number is None:
        raise parse_error(what, value, f'unexpected "{value[:1]}" expecting non-negative integer')
    return number


def parse_columns(what: str, value: str) -> tuple[str, ...]:
    cur = Cursor(_strip_ws(value))
    names: list[str] = []
    try:
        while True:
            names.append(parse_name(cur))
            if cur.take(","):
                continue
            if not cur.eof():
                cur.fail('"," or end of input')
            return tuple(names)
    except _Fail as f:
        raise parse_error(what, value, f.details) from None


def parse_tree_path(key: str) -> tuple[EmbedPath, Field]:
    """`a.b.col->x` → ((a, b), Field(col, ->x))."""
    cur = Cursor(key)
    names: list[str] = []
    try:
        while True:
            start = cur.i
            name = parse_name(cur)
            if cur.peek() == ".":
                cur.i += 1
                names.append(name)
                continue
            cur.i = start
            fld = parse_field(cur)
            if not cur.eof():
                cur.fail('"." or "->" or end of input')
            return tuple(names), fld
    except _Fail as f:
        raise parse_error("filter", key, f.details) from None


# -- the whole query string -----------------------------------------------------------------------------------

def split_query(qs: str) -> list[tuple[str, str]]:
    """URL-decoded (key, value) pairs, `+` as space, keys repeatable, in order."""
    pairs: list[tuple[str, str]] = []
    if not qs:
        return pairs
    for part in qs.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def parse_query(pairs: Iterable[tuple[str, str]], arg_names: Container[str] = ()) -> QueryParams:
    q = QueryParams()
    for key, value in pairs:
        if key == "apikey":
            continue
        if key in arg_names:
            q.args.append((key, value))
            continue
        if key == "select":
            q.select = parse_select(value)
            q.select_given = True
            continue
        if key == "columns":
            q.columns = parse_columns("columns", value)
            continue
        if key == "on_conflict":
            q.on_conflict = parse_columns("on_conflict", value)
            continue
        path: EmbedPath
        head, dot, last = key.rpartition(".")
        if last in ("order", "limit", "offset", "or", "and"):
            path = tuple(head.split(".")) if dot else ()
            negated = False
            if last in ("or", "and") and path and path[-1] == "not":
                path = path[:-1]
                negated = True
            if last == "order":
                q.order[path] = q.order.get(path, ()) + parse_order(value)
            elif last == "limit":
                q.limit[path] = parse_nonneg("limit", value)
            elif last == "offset":
                q.offset[path] = parse_nonneg("offset", value)
            else:
                q.conditions.setdefault(path, []).append(
                    parse_logic(cast(Literal["and", "or"], last), negated, value))
            continue
        path, fld = parse_tree_path(key)
        q.conditions.setdefault(path, []).append(parse_filter_value(fld, value))
    return q
