"""A project database's tables with their row-level security and policies, read from the catalogs, and the
statements that change them (create/drop a policy, enable/disable RLS) — for admin/opsroutes.py.

Identifiers come from the path and are only ever used after the catalog confirmed the table exists, and then
quoted by PostgreSQL's own `format('%I')`; values are parameters. A policy's `using`/`with check` expressions
are SQL text by nature (the caller holds database.write, which also runs SQL): they are checked to be one
balanced expression (admin/sqlsplit.balanced) so that they cannot end the statement they are placed in.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from madbase.admin.sqlsplit import balanced

# Schemas of PostgreSQL and MadBase's own bookkeeping: never listed.
HIDDEN_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "madbase", "madbase_migrations",
                  "madbase_control")
COMMANDS = ("ALL", "SELECT", "INSERT", "UPDATE", "DELETE")
MAX_NAME = 63

_TABLES = """
select n.nspname as schema, c.relname as name,
       case c.relkind when 'p' then 'partitioned table' else 'table' end as kind,
       c.relrowsecurity as rls_enabled, c.relforcerowsecurity as rls_forced,
       greatest(c.reltuples, 0)::bigint as rows_estimate,
       pg_total_relation_size(c.oid) as bytes,
       (select count(*) from pg_policy p where p.polrelid = c.oid)::int as policies,
       obj_description(c.oid, 'pg_class') as comment
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
  and n.nspname <> all($1::text[]) and n.nspname not like 'pg\\_temp\\_%' and n.nspname not like 'pg\\_toast%'
  and ($2::text is null or n.nspname = $2)
order by n.nspname, c.relname
limit $3
"""

_TABLE = """
select c.oid, c.relrowsecurity as rls_enabled, c.relforcerowsecurity as rls_forced
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p') and n.nspname <> all($3::text[])
"""

_POLICIES = """
select p.polname as name, case p.polcmd when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE'
         when 'd' then 'DELETE' else 'ALL' end as command,
       p.polpermissive as permissive,
       case when p.polroles = '{0}' then array['public']
            else array(select rolname from pg_roles where oid = any(p.polroles) order by rolname) end as roles,
       pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as with_check
from pg_policy p where p.polrelid = $1 order by p.polname
"""


class CatalogError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def table_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"schema": row["schema"], "name": row["name"], "kind": row["kind"], "rls_enabled": row["rls_enabled"],
            "rls_forced": row["rls_forced"], "rows_estimate": row["rows_estimate"], "bytes": row["bytes"],
            "policies": row["policies"], "comment": row["comment"]}


def policy_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"name": row["name"], "command": row["command"], "permissive": row["permissive"],
            "roles": list(row["roles"]), "using": row["using"], "with_check": row["with_check"]}


async def tables(conn: asyncpg.Connection, schema: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(_TABLES, list(HIDDEN_SCHEMAS), schema, limit)
    return [table_json(r) for r in rows]


async def table_oid(conn: asyncpg.Connection, schema: str, table: str) -> asyncpg.Record:
    """The table's oid and RLS state; 404 for one that does not exist (or is hidden)."""
    if len(schema) > MAX_NAME or len(table) > MAX_NAME:
        raise CatalogError(404, "Table not found")
    row = await conn.fetchrow(_TABLE, schema, table, list(HIDDEN_SCHEMAS))
    if row is None:
        raise CatalogError(404, "Table not found")
    return row


async def policies(conn: asyncpg.Connection, oid: int) -> list[dict[str, Any]]:
    return [policy_json(r) for r in await conn.fetch(_POLICIES, oid)]


def _expression(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(400, f"{key} must be a non-empty SQL expression")
    if len(value) > 64 * 1024:
        raise CatalogError(400, f"{key} is longer than 65536 characters")
    if not balanced(value):
        raise CatalogError(400, f"{key} must be one SQL expression (balanced parentheses, closed quotes, no ';')")
    return value


def policy_statement(body: Any) -> tuple[str, list[str], str]:
    """The `create policy` template (%I placeholders, expressions inlined), its identifier arguments after
    the schema and table, and the policy's name; CatalogError for a bad body."""
    if not isinstance(body, dict):
        raise CatalogError(400, "Body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or "\x00" in name:
        raise CatalogError(400, "name must be a policy name of 1 to 63 characters")
    command = str(body.get("command") or "ALL").upper()
    if command not in COMMANDS:
        raise CatalogError(400, f"command must be one of {', '.join(COMMANDS)}")
    roles = body.get("roles", ["public"])
    if not isinstance(roles, list) or not roles or len(roles) > 32 or not all(
            isinstance(r, str) and r and len(r) <= MAX_NAME and "\x00" not in r for r in roles):
        raise CatalogError(400, "roles must be a non-empty list of role names")
    permissive = body.get("permissive", True)
    if not isinstance(permissive, bool):
        raise CatalogError(400, "permissive must be a boolean")
    using = _expression(body, "using")
    check = _expression(body, "with_check")
    if using is None and check is None:
        raise CatalogError(400, "a policy needs using and/or with_check")
    if command == "INSERT" and using is not None:
        raise CatalogError(400, "an INSERT policy takes with_check only")
    if command in ("SELECT", "DELETE") and check is not None:
        raise CatalogError(400, f"a {command} policy takes using only")
    # `public` is a keyword in TO, not a role name: it stays unquoted
    role_sql = ", ".join("public" if r == "public" else "%I" for r in roles)
    args = [name, *(r for r in roles if r != "public")]
    template = (f"create policy %I on %I.%I as {'permissive' if permissive else 'restrictive'} for {command} "
                f"to {role_sql}")
    if using is not None:
        template += " using (" + using.replace("%", "%%") + ")"
    if check is not None:
        template += " with check (" + check.replace("%", "%%") + ")"
    return template, args, name


async def formatted(conn: asyncpg.Connection, template: str, *args: str) -> str:
    """`template` with its %I placeholders filled by PostgreSQL's format() (quoting done by the server; the
    template itself is a parameter too)."""
    return str(await conn.fetchval("select format($1::text, variadic $2::text[])", template, list(args)))
