"""Process-wide state: settings, the control-plane pool and store, projects, tenant pools, limits, metrics.

Built once per server process; `start()` migrates the control plane, seals secrets stored in clear, creates
the default project on the first run, applies the start-time settings (environment, supabase/config.toml) to
it, loads the project cache and bootstraps the default project's database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from madbase.config import Settings
from madbase.core import migrations, tenants
from madbase.core.control import ControlStore, ProjectRecord
from madbase.core.db import PoolRegistry
from madbase.core.dbchecks import database_warnings
from madbase.core.dbstats import DbStats
from madbase.core.errors import GatewayError
from madbase.core.metrics import Metrics
from madbase.core.projects import Project, ProjectRegistry
from madbase.core.ratelimit import RateLimiter
from madbase.core.secretbox import SecretBox
from madbase.core.tracing import OtlpExporter

if TYPE_CHECKING:
    from madbase.projectconfig import StartConfig

log = structlog.get_logger("madbase.runtime")

DEFAULT_PROJECT_NAME = "default"
# The first-run project is a local development project, as `supabase start`'s: e-mail confirmations are off
# (the CLI's `[auth.email] enable_confirmations = false`). Projects created later keep GoTrue's defaults.
DEFAULT_PROJECT_AUTH: dict[str, Any] = {"mailer_autoconfirm": True}


class StartupError(Exception):
    """The server cannot start; the message is one line for the operator."""


@dataclass
class Endpoints:
    """Where the control plane lives and which database a first-run default project gets."""

    control_dsn: str
    default_db_url: str | None
    #: The embedded cluster's URL prefix (`postgresql://user:pw@127.0.0.1:<port>/`) of a previous start on
    #: another port: projects stored with it move to `default_db_url`'s prefix (`--db-port` changed).
    moved_from: str | None = None


class Runtime:
    def __init__(self, settings: Settings, box: SecretBox, endpoints: Endpoints,
                 start_config: StartConfig | None = None) -> None:
        self.settings = settings
        self.start_config = start_config
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
        # PostgreSQL-side facts for the alerts (slots, stuck mails) of the projects this process has opened
        self.dbstats = DbStats(lambda: sorted({row[0] for row in self.pools.stats()}), self._admin_dsn,
                               settings.dbstats_interval)
        self.metrics.registry.register(self.dbstats)
        #: request spans go over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (core/tracing.py)
        self.tracer: OtlpExporter | None = OtlpExporter.from_env()
        #: False from the moment a stop is requested (SIGTERM): /ready answers 503 while requests still run
        self.accepting = True
        #: Problems of the default project's database found at start (core/dbchecks.py), shown by /ready.
        self.db_warnings: list[str] = []

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
        sealed = await self._store.seal_plain_secrets()
        if sealed:
            log.info("project_secrets_sealed", project_refs=sealed)
        await self._ensure_default_project()
        await self._apply_start_config()
        self._projects = ProjectRegistry(self._store)
        await self._projects.start()
        self.limiter = RateLimiter(self.control_pool)
        self.limiter.start()
        for ref in self._projects.active_refs[:1]:
            project = self._projects.resolve(ref)
            try:
                await self.pools.get(project)
            except GatewayError as exc:
                cause = exc.__cause__ or exc
                raise StartupError(f"cannot prepare the database of project {ref}: {cause}") from None
            self.db_warnings = await database_warnings(project.record.db_url)
            for warning in self.db_warnings:
                log.warning("project_database_check", project_ref=ref, problem=warning)
        self.dbstats.start()
        if self.tracer is not None:
            self.tracer.start()

    def _admin_dsn(self, ref: str) -> str | None:
        try:
            return self.projects.resolve(ref).record.db_url
        except Exception:
            return None

    async def _ensure_default_project(self) -> None:
        store = self.store
        existing = await store.list(include_deleted=True)
        await self._follow_embedded_port(existing)
        if existing or self.endpoints.default_db_url is None:
            return
        s = self.settings
        record = await store.create(
            name="default",
            db_url=self.endpoints.default_db_url,
            jwt_secret=s.jwt_secret.get_secret_value() if s.jwt_secret else None,
            anon_key=s.anon_key,
            service_role_key=s.service_role_key.get_secret_value() if s.service_role_key else None,
            login_role=s.db_login_role,
            config={"db_schemas": [x.strip() for x in s.db_schemas.split(",") if x.strip()],
                    "auth": dict(DEFAULT_PROJECT_AUTH)},
        )
        log.info("default_project_created", project_ref=record.ref)

    async def _apply_start_config(self) -> None:
        """Environment and supabase/config.toml settings onto the default project (at every start)."""
        start = self.start_config
        if start is None or start.empty:
            return
        projects = await self.store.list()
        default = [p for p in projects if p.name == DEFAULT_PROJECT_NAME] or (projects if len(projects) == 1 else [])
        if not default:
            log.warning("start_config_ignored", reason="no default project on this server")
            return
        ref = default[0].ref
        changed = await self.store.edit_config(ref, start.apply)
        log.info("default_project_configured", project_ref=ref, changed=changed,
                 config_toml=str(start.toml_path) if start.toml_path else None,
                 from_toml=sorted(_leaves(start.toml_patch)), from_env=sorted(_leaves(start.env_patch)))

    async def _follow_embedded_port(self, records: list[ProjectRecord]) -> None:
        old, new = self.endpoints.moved_from, self.endpoints.default_db_url
        if not old or not new:
            return
        prefix = new[: new.rindex("/") + 1]
        for record in records:
            if record.db_url.startswith(old):
                await self.store.set_db_url(record.ref, prefix + record.db_url[len(old):])
                log.info("project_database_moved", project_ref=record.ref, reason="embedded PostgreSQL port changed")

    async def _bootstrap(self, project: Project) -> None:
        await tenants.bootstrap(project.record.db_url, project.record.login_role, project.record.login_password)

    async def close(self) -> None:
        await self.dbstats.close()
        if self.tracer is not None:
            await self.tracer.close()
        await self.limiter.close()
        if self._projects is not None:
            await self._projects.close()
        await self.pools.close()
        if self.control_pool is not None:
            await self.control_pool.close()


def _leaves(patch: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings a patch sets (for the start log line: names only, never values)."""
    out: list[str] = []
    for key, value in patch.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out
