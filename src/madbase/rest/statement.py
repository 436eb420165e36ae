"""A rendered statement and the SQL-text primitives every renderer shares: identifier quoting, the one
text-array bind parameter (`Params`, `$1[n]`) and the statements' result-row columns.

Split from `sql.py` so the plan types and the execute stage need only what a statement *is*, not how one is
rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from madbase.rest.schema import QName

# What SQL may set for the response (PostgREST's response.headers / response.status GUCs), read last.
RESPONSE_GUCS = ("current_setting('response.headers', true) AS resp_headers, "
                 "current_setting('response.status', true) AS resp_status")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(q: QName) -> str:
    return quote_ident(q[0]) + "." + quote_ident(q[1])


def literal(text: str) -> str:
    """A SQL string literal (for fixed, trusted text only, e.g. JSON keys of the cache's column names)."""
    return "'" + text.replace("'", "''") + "'"


def array_type(typ: str) -> str:
    return typ if typ.endswith("[]") else typ + "[]"


@dataclass(slots=True)
class Params:
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        # typed at every use: a statement run directly (not through run_prepared) must tell PostgreSQL what $1 is
        return f"($1::text[])[{len(self.values)}]"


# The column definition lists of the statements' one result row (for `madbase.run_prepared`'s record type).
READ_COLUMNS = "total int8, page int8, body bytea, resp_headers text, resp_status text"
MUTATION_COLUMNS = READ_COLUMNS + ", location text, inserted int8"


def array_literal(values: Sequence[Any]) -> str:
    """PostgreSQL's text form of a one-dimensional array (every element quoted, so no value is special)."""
    items = ["NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
             for v in values]
    return "{" + ",".join(items) + "}"


def _text_arg(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return array_literal(value)
    return str(value)


@dataclass(slots=True)
class Statement:
    sql: str
    params: list[Any]
    columns: str = READ_COLUMNS

    def args(self) -> list[str | None]:
        """The values as the text array the statement's `$1` is."""
        return [_text_arg(v) for v in self.params]

    def bind(self) -> tuple[list[str | None], ...]:
        """asyncpg arguments to run the statement directly (none when it has no values)."""
        return (self.args(),) if self.params else ()
