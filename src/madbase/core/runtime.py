"""Process-wide state: settings, the control-plane pool and store, projects, tenant pools, limits, metrics.

Built once per server process; `start()` migrates the control plane, creates the default project on the
first run, loads the project cache and bootstraps the default project's database.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

from madbase.config import Settings
from madbase.core import migrations, tenants
from madbase.core.control import ControlStore
from madbase.core.db import PoolRegistry
from madbase.core.metrics import Metrics
from madbase.core.projects import Project, ProjectRegistry
from madbase.core.ratelimit import RateLimiter
from madbase.core.secretbox import SecretBox

log = structlog.get_logger("madbase.runtime")


class StartupError(Exception):
    """The server cannot start; the message is one line for the operator."""


@dataclass
class Endpoints:
    """Where the control plane lives and which database a first-run default project gets."""

    control_dsn: str
    default_db_url: str | None


class Runtime:
    def __init__(self, settings: Settings, box: SecretBox, endpoints: Endpoints) -> None:
        self.settings = settings
        self.box = box
        self.endpoints = endpoints
        self.control_pool: asyncpg.Pool | None = None
        self._store: ControlStore | None = None
        self._projects: ProjectRegistry | None = None
        self.pools = PoolRegistry(
            pool_size=settings.pool_size, acquire_timeout=settings.pool_acquire_timeout, bootstrap=self._bootstrap,
            client_share_percent=settings.pool_client_share
        )
        self.limiter: RateLimiter = RateLimiter(None)
        self.metrics = Metrics(self.pools.stats)

    @property
    def store(self) -> ControlStore:
        assert self._store is not None, "runtime not started"
        return self._store

    @property
    def projects(self) -> ProjectRegistry:
        assert self._projects is not None, "runtime not started"
        return self._projects

    async def start(self) -> None:
        try:
            self.control_pool = await asyncpg.create_pool(
                self.endpoints.control_dsn, min_size=1, max_size=4, max_queries=10_000_000, timeout=10
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise StartupError(f"cannot reach the control database: {exc}") from exc
        assert self.control_pool is not None
        async with self.control_pool.acquire() as conn:
            await migrations.apply(conn, "control")
        self._store = ControlStore(self.control_pool, self.box)
        await self._ensure_default_project()
        self._projects = ProjectRegistry(self._store)
        await self._projects.start()
        self.limiter = RateLimiter(self.control_pool)
        self.limiter.start()
        for ref in self._projects.active_refs[:1]:
            await self.pools.get(self._projects.resolve(ref))

    async def _ensure_default_project(self) -> None:
        store = self.store
        if await store.list(include_deleted=True) or self.endpoints.default_db_url is None:
            return
        s = self.settings
        record = await store.create(
            name="default",
            db_url=self.endpoints.default_db_url,
            jwt_secret=s.jwt_secret.get_secret_value() if s.jwt_secret else None,
            anon_key=s.anon_key,
            service_role_key=s.service_role_key.get_secret_value() if s.service_role_key else None,
            login_role=s.db_login_role,
            config={"db_schemas": [x.strip() for x in s.db_schemas.split(",") if x.strip()]},
        )
        log.info("default_project_created", project_ref=record.ref)

    async def _bootstrap(self, project: Project) -> None:
        await tenants.bootstrap(project.record.db_url, project.record.login_role, project.record.login_password)

    async def close(self) -> None:
        await self.limiter.close()
        if self._projects is not None:
            await self._projects.close()
        await self.pools.close()
        if self.control_pool is not None:
            await self.control_pool.close()
