"""`madbase migrate`: bring the control plane and every project's database to this version's schema.

The same code every start runs (core/migrations.py: one advisory lock per track and database, each file in
its own transaction with its record), run on its own so an upgrade can migrate once before a rolling restart
(docs/operations.md, "Upgrades"). Processes starting meanwhile wait on the lock and then find nothing to do.
Works on a server's `DATABASE_URL` (and `MADBASE_CONTROL_DATABASE_URL`); the embedded PostgreSQL is migrated
by `madbase start` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from madbase.config import Settings
from madbase.core import migrations, tenants
from madbase.core.control import ControlStore
from madbase.core.secretbox import SecretBox


class MigrateError(Exception):
    """Migrating cannot start or failed; the message is one line for the operator."""


@dataclass
class MigrateReport:
    control: list[str] = field(default_factory=list)
    #: project ref → versions applied now
    projects: dict[str, list[str]] = field(default_factory=dict)
    #: project ref → why its database could not be migrated
    failed: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"control: {_versions(self.control)}"]
        out += [f"project {ref}: {_versions(done)}" for ref, done in sorted(self.projects.items())]
        out += [f"project {ref}: FAILED: {why}" for ref, why in sorted(self.failed.items())]
        return out


def _versions(applied: list[str]) -> str:
    return "applied " + ", ".join(applied) if applied else "up to date"


async def migrate(settings: Settings, master_key: str, *, control_only: bool = False) -> MigrateReport:
    control_dsn = settings.control_database_url or settings.database_url
    if control_dsn is None:
        raise MigrateError("DATABASE_URL is not set (the embedded PostgreSQL is migrated by `madbase start`)")
    report = MigrateReport()
    try:
        pool = await asyncpg.create_pool(control_dsn, min_size=1, max_size=2, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise MigrateError(f"cannot reach the control database: {exc}") from exc
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            try:
                report.control = await migrations.apply(conn, "control")
            except migrations.MigrationError as exc:
                raise MigrateError(str(exc)) from exc
        if control_only:
            return report
        store = ControlStore(pool, SecretBox(master_key))
        for record in await store.list():
            try:
                report.projects[record.ref] = await tenants.bootstrap(record.db_url, record.login_role,
                                                                      record.login_password)
            except (tenants.BootstrapError, migrations.MigrationError) as exc:
                report.failed[record.ref] = str(exc)
        return report
    finally:
        await pool.close()
