"""A migration file's statements, for the history `db push` records (supabase_migrations.schema_migrations
keeps each applied file's statements, as Supabase's CLI does) and for spotting an applied file changed since.

The split only has to be faithful enough to record and compare: the file itself is executed whole by
PostgreSQL's own parser. Semicolons inside quotes ('…', E'…', "…"), dollar quotes ($$…$$, $tag$…$tag$) and
comments (--, nested /* */) do not split; `BEGIN ATOMIC … END` bodies are kept whole.
"""

from __future__ import annotations

import re

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _skip_quoted(sql: str, i: int, quote: str, backslashes: bool) -> int:
    """The index after the string starting at sql[i] (a doubled quote is a quote; E-strings escape)."""
    n = len(sql)
    j = i + 1
    while j < n:
        c = sql[j]
        if backslashes and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _skip_block_comment(sql: str, i: int) -> int:
    depth, j, n = 0, i, len(sql)
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
    return n


def split(sql: str) -> list[str]:
    """The statements of `sql`, each trimmed and without its terminating semicolon; empty ones dropped."""
    out: list[str] = []
    start, i, n = 0, 0, len(sql)
    atomic = 0  # depth of BEGIN ATOMIC … END (CASE … END inside counted too)
    prev_word = ""
    while i < n:
        c = sql[i]
        if c == "'":
            backslashes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            i = _skip_quoted(sql, i, "'", backslashes)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', False)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif c == "$" and (m := _DOLLAR.match(sql, i)) and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            end = sql.find(m.group(0), m.end())
            i = n if end < 0 else end + len(m.group(0))
        elif c.isalpha() or c == "_":
            m = _WORD.match(sql, i)
            assert m is not None
            word = m.group(0).lower()
            if word == "atomic" and prev_word == "begin":
                atomic += 1
            elif atomic and word == "case":
                atomic += 1
            elif atomic and word == "end":
                atomic -= 1
            prev_word = word
            i = m.end()
        elif c == ";" and not atomic:
            out.append(sql[start:i].strip())
            start = i = i + 1
            prev_word = ""
        else:
            i += 1
    out.append(sql[start:].strip())
    return [s for s in out if s and not _only_comments(s)]


def _only_comments(statement: str) -> bool:
    i, n = 0, len(statement)
    while i < n:
        if statement[i].isspace():
            i += 1
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            i = n if end < 0 else end + 1
        elif statement.startswith("/*", i):
            i = _skip_block_comment(statement, i)
        else:
            return False
    return True


def fingerprint(statements: list[str]) -> str:
    """What must match between an applied file and the local one: the statements with all whitespace and
    semicolons removed (another tool's split, e.g. Supabase's CLI keeping the `;`, compares equal)."""
    return re.sub(r"[\s;]+", "", "".join(statements))
