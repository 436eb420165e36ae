"""Split an SQL script into its statements, as psql does, so each runs on its own (the SQL editor's route,
admin/sqlrun.py) and an error's position is known within the whole script.

Semicolons end a statement except inside: '…' strings ('' doubles a quote; E'…' strings also take a
backslash escape), "…" identifiers, $tag$…$tag$ dollar quotes, -- line comments and /* … */ comments (nested,
as PostgreSQL's). Parentheses are counted too, so `create rule … (a; b)` stays one statement and an
expression given for a policy can be checked to stay inside its parentheses (`balanced`). Statements holding
only whitespace and comments are dropped. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")


class SplitError(ValueError):
    """The script does not end where a statement can: an unterminated string, identifier or comment."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position  # 1-based character offset in the script, as PostgreSQL's


@dataclass(frozen=True, slots=True)
class Statement:
    offset: int  # 0-based offset of `text` in the script
    text: str


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """The index after the closing quote of the literal opening at `i`."""
    n = len(sql)
    j = i + 1
    while j < n:
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    kind = "identifier" if quote == '"' else "string"
    raise SplitError(f"unterminated quoted {kind}", i + 1)


def _skip_block_comment(sql: str, i: int) -> int:
    depth = 0
    n = len(sql)
    j = i
    while j < n:
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise SplitError("unterminated /* comment", i + 1)


def _scan(sql: str) -> tuple[list[int], list[tuple[int, int]], int, int]:
    """(offsets of the statement-ending semicolons, spans of comments, the lowest parenthesis depth seen, the
    depth at the end)."""
    ends: list[int] = []
    comments: list[tuple[int, int]] = []
    depth = 0
    lowest = 0
    i = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(sql[i - 2]))
            i = _skip_quoted(sql, i, "'", backslash)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', False)
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            comments.append((i, j))
            i = j
        elif c == "/" and sql.startswith("/*", i):
            j = _skip_block_comment(sql, i)
            comments.append((i, j))
            i = j
        elif c == "$" and (i == 0 or not _IDENT_CHAR.match(sql[i - 1])):
            m = _DOLLAR.match(sql, i)
            if m is None:
                i += 1
                continue
            close = sql.find(m.group(0), m.end())
            if close < 0:
                raise SplitError("unterminated dollar-quoted string", i + 1)
            i = close + len(m.group(0))
        elif c == "(":
            depth += 1
            i += 1
        elif c == ")":
            depth -= 1
            lowest = min(lowest, depth)
            i += 1
        elif c == ";" and depth <= 0:
            ends.append(i)
            depth = 0
            i += 1
        else:
            i += 1
    return ends, comments, lowest, depth


def _blank(sql: str, start: int, end: int, comments: list[tuple[int, int]]) -> bool:
    """Whether sql[start:end] is only whitespace and comments."""
    pos = start
    for a, b in comments:
        if b <= start or a >= end:
            continue
        if sql[pos:a].strip():
            return False
        pos = max(pos, b)
    return not sql[pos:end].strip()


def split(sql: str) -> list[Statement]:
    """The statements of `sql` in order (without their semicolons); SplitError when a literal, identifier or
    comment is never closed."""
    ends, comments, _, _ = _scan(sql)
    out: list[Statement] = []
    start = 0
    for end in [*ends, len(sql)]:
        if not _blank(sql, start, end, comments):
            text = sql[start:end]
            lead = len(text) - len(text.lstrip())
            out.append(Statement(start + lead, text[lead:].rstrip()))
        start = end + 1
    return out


def balanced(expression: str) -> bool:
    """Whether `expression` is one piece of SQL that cannot close the parentheses it is put in nor end the
    statement: no `;` outside literals, never more `)` than `(` at any point, as many of each, all literals
    closed."""
    try:
        ends, _, lowest, final = _scan(expression)
    except SplitError:
        return False
    return not ends and lowest >= 0 and final == 0
