"""Statement timeouts of the API roles, as Supabase configures them: anon 3 s, authenticated 8 s, service_role none.

Supabase sets them as role settings (`ALTER ROLE anon SET statement_timeout = '3s'`); PostgreSQL applies a role's
settings only when a session logs in as that role, never on `SET ROLE`, so PostgREST reads the impersonated roles'
settings and applies them in every request transaction. MadBase does the same: the tenant migration 0005 gives the
roles Supabase's values (per database: `ALTER ROLE ... IN DATABASE`, since several projects may share a cluster),
the pool reads them back (`pg_db_role_setting`, the database-specific value winning) and refreshes them every
minute, and the project config key `statement_timeouts` (`{"anon": "3s", "authenticated": "8s",
"service_role": "0"}`) overrides them per project. `core/db.py` sends the role's value with the request's settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import asyncpg

API_ROLES = ("anon", "authenticated", "service_role")

# PostgreSQL's own units for time settings (the default unit of statement_timeout is milliseconds)
_UNITS = {"": 1.0, "us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")
# Upper bound for a configured timeout (PostgreSQL's own maximum is INT_MAX milliseconds).
_MAX_MS = 2_147_483_647

ROLE_SETTINGS_SQL = """
select r.rolname, s.setdatabase <> 0 as db_specific, s.setconfig
from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
where r.rolname = any($1::text[])
  and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
"""


def parse_ms(value: object) -> int | None:
    """A statement_timeout value (`'3s'`, `'500ms'`, `8000`, `'0'`) in whole milliseconds; None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        ms = float(value)
    elif isinstance(value, str):
        match = _TIME.match(value)
        if match is None:
            return None
        ms = float(match.group(1)) * _UNITS[match.group(2) or ""]
    else:
        return None
    if ms < 0:
        return None
    return min(int(ms), _MAX_MS)


def from_role_rows(rows: list[Any]) -> dict[str, int]:
    """Each API role's statement_timeout in ms from `ROLE_SETTINGS_SQL` rows (a database-specific setting wins
    over a role-wide one; roles without one are absent)."""
    found: dict[str, tuple[bool, int]] = {}
    for row in rows:
        role, specific, config = row[0], bool(row[1]), row[2] or ()
        for item in config:
            name, _, raw = str(item).partition("=")
            if name.strip().lower() != "statement_timeout":
                continue
            ms = parse_ms(raw)
            if ms is None:
                continue
            if role not in found or specific:
                found[role] = (specific, ms)
    return {role: ms for role, (_, ms) in found.items()}


async def load_role_timeouts(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    rows = await conn.fetch(ROLE_SETTINGS_SQL, list(API_ROLES))
    return from_role_rows(list(rows))


def effective(role_timeouts: Mapping[str, int], config: Mapping[str, Any]) -> dict[str, int]:
    """The timeout (ms, > 0) per API role: the project config's `statement_timeouts` over the database's role
    settings; 0 or absent means none."""
    out = dict(role_timeouts)
    raw = config.get("statement_timeouts")
    if isinstance(raw, Mapping):
        for role in API_ROLES:
            if role in raw:
                ms = parse_ms(raw[role])
                if ms is not None:
                    out[role] = ms
    return {role: ms for role, ms in out.items() if ms > 0}
