"""Test a database URL before a project is created on it (or moved to it): can MadBase reach it, and does it
have what the bootstrap and the services need?

Each check is `{name, ok, required, detail}`; `detail` says what is there and, when it fails, what to do. The
required ones (connection, server version, privileges to create roles and schemas, replication, wal_level,
a free replication slot) must all pass before a project is created; the optional ones (the contrib
extensions Supabase projects expect) only inform. The checks run as the URL's own user, read-only: nothing
is created on the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

MIN_VERSION = 14
CONNECT_TIMEOUT = 10.0
_SCHEMES = ("postgres", "postgresql")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "required": self.required, "detail": self.detail}


def url_problem(url: object) -> str | None:
    """Why `url` is not a PostgreSQL URL we accept (None when it is)."""
    if not isinstance(url, str) or not url or len(url) > 2000:
        return "database_url must be a postgresql:// URL of at most 2000 characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "database_url is not a valid URL"
    if parts.scheme not in _SCHEMES:
        return "database_url must start with postgresql:// (or postgres://)"
    if not parts.hostname and "host=" not in parts.query:
        return "database_url must name a host"
    if not parts.path.strip("/"):
        return "database_url must name a database (postgresql://user:password@host:port/database)"
    return None


def masked(url: str) -> str:
    """The URL with its password replaced by `********` (for answers and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:********@{netloc[1]}").geturl()


def _connect_error(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "the server refused the user name or password"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:.0f} s"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


_FACTS = """
select current_setting('server_version_num')::int as version_num,
       current_setting('server_version') as version,
       current_setting('wal_level') as wal_level,
       current_setting('max_replication_slots')::int as max_slots,
       (select count(*) from pg_replication_slots)::int as used_slots,
       r.rolsuper, r.rolreplication, r.rolcreaterole, current_user as login, current_database() as db,
       has_database_privilege(current_database(), 'CREATE') as can_create,
       array(select name from pg_available_extensions
             where name in ('pgcrypto', 'uuid-ossp', 'pg_stat_statements', 'vector') order by name) as extensions
from pg_roles r where r.rolname = current_user
"""


async def probe(url: str) -> list[Check]:
    """Every check of `url` (the first failing connection stops the rest)."""
    problem = url_problem(url)
    if problem:
        return [Check("connection", False, problem)]
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # any failure of a URL the caller typed is a report, never a 500
        return [Check("connection", False, f"cannot connect: {_connect_error(exc)}")]
    try:
        row = await conn.fetchrow(_FACTS)
    except asyncpg.PostgresError as exc:
        return [Check("connection", False, f"connected, but reading the server settings failed: {exc}")]
    finally:
        await conn.close()
    assert row is not None
    return facts_checks(dict(row))


def facts_checks(row: dict[str, Any]) -> list[Check]:
    """The checks from the facts `_FACTS` read (pure: unit-tested without a server)."""
    login, db = row["login"], row["db"]
    superuser = bool(row["rolsuper"])
    checks = [Check("connection", True, f"connected to database {db} as {login}")]
    major = row["version_num"] // 10000
    checks.append(Check("version", major >= MIN_VERSION,
                        f"PostgreSQL {row['version']}" + ("" if major >= MIN_VERSION
                                                          else f": MadBase needs PostgreSQL {MIN_VERSION} or later")))
    checks.append(Check("wal_level", row["wal_level"] == "logical",
                        "wal_level = logical" if row["wal_level"] == "logical" else
                        f"wal_level is {row['wal_level']}: Realtime needs wal_level = logical (set it in "
                        "postgresql.conf and restart PostgreSQL)"))
    free = row["max_slots"] - row["used_slots"]
    checks.append(Check("replication_slots", free > 0,
                        f"{free} of {row['max_slots']} replication slots free" if free > 0 else
                        f"no free replication slot (max_replication_slots = {row['max_slots']}): Realtime needs one "
                        "per project database"))
    checks.append(Check("create_roles", superuser or bool(row["rolcreaterole"]),
                        f"{login} may create roles" if superuser or row["rolcreaterole"] else
                        f"{login} cannot create roles: the bootstrap creates anon, authenticated, service_role and "
                        f"a login role (alter role {login} createrole)"))
    checks.append(Check("create_schemas", bool(row["can_create"]),
                        f"{login} may create schemas and publications in {db}" if row["can_create"] else
                        f"{login} has no CREATE privilege on database {db}: the bootstrap creates the auth, storage "
                        f"and realtime schemas and Realtime's publication (grant create on database {db} to "
                        f"{login})"))
    checks.append(Check("replication", superuser or bool(row["rolreplication"]),
                        f"{login} may use replication" if superuser or row["rolreplication"] else
                        f"{login} has no REPLICATION privilege: Realtime reads changes through a logical "
                        f"replication slot (alter role {login} replication)"))
    available = set(row["extensions"] or ())
    wanted = ("pgcrypto", "uuid-ossp", "pg_stat_statements", "vector")
    missing = [e for e in wanted if e not in available]
    checks.append(Check("extensions", not missing,
                        "available: " + ", ".join(e for e in wanted if e in available) if not missing else
                        "not available on this server: " + ", ".join(missing) + " (optional: SQL using them will "
                        "not run)", required=False))
    return checks


def passed(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def failure_message(checks: list[Check]) -> str:
    failed = [c for c in checks if c.required and not c.ok]
    return "The database is not ready for a project: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
