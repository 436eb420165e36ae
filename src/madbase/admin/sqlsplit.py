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
from typing import NamedTuple

_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")


class SplitError(ValueError):
    """The script does not end where a statement can: an unterminated string, identifier or comment."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position  # 1-based character offset in the script, as PostgreSQL's


class Statement(NamedTuple):
    offset: int  # 0-based offset of `text` in the script
    text: str


_NEXT = re.compile(r"['\"$;()]|--|/\*")
_COMMENT_MARK = re.compile(r"/\*|\*/")


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """The index after the closing quote of the literal opening at `i` (a doubled quote stays inside)."""
    stop = re.compile(r"[\\" + quote + "]" if backslash else quote)
    j = i + 1
    while True:
        m = stop.search(sql, j)
        if m is None:
            kind = "identifier" if quote == '"' else "string"
            raise SplitError(f"unterminated quoted {kind}", i + 1)
        j = m.start()
        if sql[j] == "\\":
            j += 2
        elif sql.startswith(quote * 2, j):
            j += 2
        else:
            return j + 1


def _skip_block_comment(sql: str, i: int) -> int:
    """The index after the `*/` closing the comment opening at `i` (comments nest, as PostgreSQL's)."""
    depth = 0
    j = i
    while True:
        m = _COMMENT_MARK.search(sql, j)
        if m is None:
            raise SplitError("unterminated /* comment", i + 1)
        depth += 1 if m.group(0) == "/*" else -1
        j = m.end()
        if depth == 0:
            return j


@dataclass(slots=True)
class _Scan:
    ends: list[tuple[int, bool]]  # each statement's end (its `;` or the script's end) and whether it holds SQL
    lowest: int  # the lowest parenthesis depth seen
    depth: int  # the depth at the end


def _scan(sql: str) -> _Scan:
    """One pass over `sql`, jumping from one character that matters to the next (regular expressions do the
    walking, so a 1 MB script takes milliseconds)."""
    ends: list[tuple[int, bool]] = []
    depth = lowest = 0
    content = False
    i = 0
    n = len(sql)
    while i < n:
        m = _NEXT.search(sql, i)
        if m is None:
            content = content or bool(sql[i:].strip())
            break
        k = m.start()
        if not content and sql[i:k].strip():
            content = True
        token = m.group(0)
        if token == "'":
            backslash = k > 0 and sql[k - 1] in "eE" and (k < 2 or not _IDENT_CHAR.match(sql[k - 2]))
            i = _skip_quoted(sql, k, "'", backslash)
            content = True
        elif token == '"':
            i = _skip_quoted(sql, k, '"', False)
            content = True
        elif token == "--":
            j = sql.find("\n", k)
            i = n if j < 0 else j
        elif token == "/*":
            i = _skip_block_comment(sql, k)
        elif token == "$":
            content = True
            d = _DOLLAR.match(sql, k) if k == 0 or not _IDENT_CHAR.match(sql[k - 1]) else None
            if d is None:
                i = k + 1
                continue
            close = sql.find(d.group(0), d.end())
            if close < 0:
                raise SplitError("unterminated dollar-quoted string", k + 1)
            i = close + len(d.group(0))
        elif token == "(":
            depth += 1
            content = True
            i = k + 1
        elif token == ")":
            depth -= 1
            lowest = min(lowest, depth)
            content = True
            i = k + 1
        elif depth <= 0:  # ";" ending a statement
            ends.append((k, content))
            depth = 0
            content = False
            i = k + 1
        else:  # ";" inside parentheses (a rule's actions)
            i = k + 1
    ends.append((n, content))
    return _Scan(ends, lowest, depth)


def split(sql: str) -> list[Statement]:
    """The statements of `sql` in order (without their semicolons); SplitError when a literal, identifier or
    comment is never closed."""
    out: list[Statement] = []
    start = 0
    for end, content in _scan(sql).ends:
        if content:
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
        scan = _scan(expression)
    except SplitError:
        return False
    return len(scan.ends) == 1 and scan.lowest >= 0 and scan.depth == 0
