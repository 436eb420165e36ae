"""What a postgres_changes subscriber may learn: the join-time column check and the per-change gate.

Filters are evaluated on the WAL row, before (or without) any RLS check, so a filter is an oracle on the
columns it names: a subscription may only filter on (and `select`) columns its role can SELECT — refused
otherwise, as Supabase's `realtime.subscription_check_filters` does ("invalid column for filter …").
Privileges can change after the join, so every change is gated again with the role's current column
privileges (`deliverable`): nothing at all reaches a role that cannot select the table's primary key
(not even Supabase's "Error 401" event, whose arrival would reveal activity on the table); a filter that
names a column the role can no longer select never matches; a DELETE on a table with RLS — which cannot be
checked, the row is gone — is matched only on primary-key columns (the only ones sent), so its filter
cannot probe columns of other users' rows; a table without a primary key under RLS cannot be checked and
delivers nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from madbase.realtime.filters import Filter
from madbase.realtime.protocol import PgBinding
from madbase.realtime.rls import TableInfo


def filter_columns(filt: Filter | None) -> set[str]:
    return {c.column for c in filt.conditions} if filt is not None else set()


def deliverable(filt: Filter | None, allowed: frozenset[str], info: TableInfo, kind: str) -> bool:
    """May a change of `kind` on a table described by `info` reach a subscriber whose role can select
    `allowed` and whose filter is `filt` (the filter itself is evaluated elsewhere)? Pure."""
    if not allowed:
        return False
    if info.pk:
        if not all(c in allowed for c in info.pk):
            return False
    elif info.rls_enabled:
        return False
    names = filter_columns(filt)
    if not names <= allowed:
        return False
    if kind == "DELETE" and info.rls_enabled and not names <= set(info.pk):
        return False
    return True


def _inspect(value: object) -> str:
    """Elixir's `inspect` of the values Supabase prints in its subscription error."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "{" + ", ".join(_inspect(v) for v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_inspect(v) for v in value) + "]"
    return str(value)


def params_text(binding: PgBinding, filt: Filter | None) -> str:
    """The `[event: …, schema: …, table: …, filters: […], select: …]` part of Supabase's message."""
    filters: list[tuple[str, str, str, bool]] = []
    for c in filt.conditions if filt is not None else ():
        value = "{" + ",".join(c.values) + "}" if c.op == "in" else c.values[0]
        filters.append((c.column, c.op, value, c.negate))
    select = list(binding.select) if binding.select is not None else None
    return (f"event: {binding.event}, schema: {binding.schema}, table: {binding.table or '*'}, "
            f"filters: {_inspect(filters)}, select: {_inspect(select)}")


def refusal(binding: PgBinding, filt: Filter | None, reason: str) -> str:
    return ("Unable to subscribe to changes with given parameters. An exception happened so please check your "
            f"connect parameters: [{params_text(binding, filt)}]. Exception: ERROR P0001 (raise_exception) {reason}")


async def check_bindings(pool: asyncpg.Pool, bindings: Sequence[PgBinding], filters: Sequence[Filter | None],
                         role: str, publication: str) -> str | None:
    """None when every binding only filters on / selects columns `role` may SELECT in every published table
    it covers; else Supabase's error message for the first offending binding."""
    wanted = [(b, f) for b, f in zip(bindings, filters, strict=True) if f is not None or b.select]
    if not wanted:
        return None
    async with pool.acquire() as conn:
        for binding, filt in wanted:
            rows = await conn.fetch(
                "select array(select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 "
                "  and not a.attisdropped and has_column_privilege($3::text, c.oid, a.attnum, 'SELECT')) as cols "
                "from pg_publication_tables p "
                "join pg_namespace n on n.nspname = p.schemaname "
                "join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename "
                "where p.pubname = $4 and p.schemaname = $1 and ($2::text is null or p.tablename = $2)",
                binding.schema, binding.table, role, publication)
            for row in rows:
                allowed = set(row["cols"])
                for cond in filt.conditions if filt is not None else ():
                    if cond.column not in allowed:
                        return refusal(binding, filt, f"invalid column for filter {cond.column}")
                for col in binding.select or ():
                    if col not in allowed:
                        return refusal(binding, filt, f"invalid column for select {col}")
    return None
