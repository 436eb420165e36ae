"""Start-time checks of a project database that MadBase does not run itself (DATABASE_URL or a project
added to the control plane): what Realtime and the bootstrap need from the server and from the login.

Realtime's postgres_changes read the write-ahead log through a logical replication slot, which needs
`wal_level = logical`, a free replication slot and a role with REPLICATION (or superuser). The bootstrap
creates cluster-wide roles, which needs CREATEROLE. Each problem becomes one sentence for the operator: a
warning line at start and an entry of `/ready`'s `warnings` (docs/database.md).
"""

from __future__ import annotations

import asyncpg


async def database_warnings(dsn: str) -> list[str]:
    """Problems found on the database at `dsn` (connected as the URL's own user); [] when all is well."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return [f"the project database cannot be reached: {exc}"]
    try:
        row = await conn.fetchrow(
            "select current_setting('wal_level') as wal_level, "
            "current_setting('max_replication_slots')::int as max_slots, "
            "(select count(*) from pg_replication_slots)::int as used_slots, "
            "r.rolsuper, r.rolreplication, r.rolcreaterole, current_user as login "
            "from pg_roles r where r.rolname = current_user")
    finally:
        await conn.close()
    if row is None:
        return []
    warnings: list[str] = []
    if row["wal_level"] != "logical":
        warnings.append(f"wal_level is {row['wal_level']}, Realtime's postgres_changes need wal_level=logical "
                        "(set it in postgresql.conf and restart PostgreSQL)")
    elif row["max_slots"] <= row["used_slots"]:
        warnings.append(f"no free replication slot (max_replication_slots = {row['max_slots']}), Realtime's "
                        "postgres_changes need one per project database")
    if not (row["rolsuper"] or row["rolreplication"]):
        warnings.append(f"role {row['login']} has no REPLICATION privilege, Realtime's postgres_changes need it "
                        f"(alter role {row['login']} replication)")
    if not (row["rolsuper"] or row["rolcreaterole"]):
        warnings.append(f"role {row['login']} cannot create roles (CREATEROLE), the bootstrap of a new project "
                        "database needs it (docs/database.md)")
    return warnings
