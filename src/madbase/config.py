"""Process settings: read once at start from the environment (and `.env`), validated, then immutable.

Supabase's own variable names (JWT_SECRET, ANON_KEY, SERVICE_ROLE_KEY, POSTGRES_PASSWORD, SITE_URL,
API_EXTERNAL_URL, PGRST_DB_SCHEMAS) are accepted beside the MADBASE_* names so an existing self-hosting
`.env` keeps working. Per-project settings live in the control plane, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from madbase.core.proxies import TrustedProxies, parse_networks


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line meant for the operator."""


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, populate_by_name=True)

    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL", "MADBASE_DATABASE_URL"))
    control_database_url: str | None = Field(None, validation_alias=_env("MADBASE_CONTROL_DATABASE_URL"))
    data_dir: Path = Field(Path(".madbase"), validation_alias=_env("MADBASE_DATA_DIR"))
    host: str = Field("127.0.0.1", validation_alias=_env("MADBASE_HOST"))
    port: int = Field(54321, ge=1, le=65535, validation_alias=_env("MADBASE_PORT", "PORT"))
    db_port: int = Field(54322, ge=1, le=65535, validation_alias=_env("MADBASE_DB_PORT"))
    postgres_password: SecretStr = Field(
        SecretStr("postgres"), validation_alias=_env("POSTGRES_PASSWORD", "MADBASE_POSTGRES_PASSWORD")
    )
    postgres_fsync: bool = Field(True, validation_alias=_env("MADBASE_POSTGRES_FSYNC"))
    master_key: SecretStr | None = Field(None, validation_alias=_env("MADBASE_MASTER_KEY"))
    base_domain: str | None = Field(None, validation_alias=_env("MADBASE_BASE_DOMAIN"))
    api_external_url: str | None = Field(None, validation_alias=_env("API_EXTERNAL_URL", "MADBASE_API_URL"))
    site_url: str = Field("http://localhost:3000", validation_alias=_env("SITE_URL", "GOTRUE_SITE_URL"))
    jwt_secret: SecretStr | None = Field(None, validation_alias=_env("JWT_SECRET", "MADBASE_JWT_SECRET"))
    anon_key: str | None = Field(None, validation_alias=_env("ANON_KEY", "MADBASE_ANON_KEY"))
    service_role_key: SecretStr | None = Field(
        None, validation_alias=_env("SERVICE_ROLE_KEY", "MADBASE_SERVICE_ROLE_KEY")
    )
    db_login_role: str = Field("authenticator", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                               validation_alias=_env("MADBASE_DB_LOGIN_ROLE"))
    db_schemas: str = Field("public,graphql_public", validation_alias=_env("PGRST_DB_SCHEMAS", "MADBASE_DB_SCHEMAS"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    pool_size: int = Field(10, ge=1, le=500, validation_alias=_env("MADBASE_POOL_SIZE"))
    pool_acquire_timeout: float = Field(5.0, gt=0, validation_alias=_env("MADBASE_POOL_ACQUIRE_TIMEOUT"))
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, validation_alias=_env("MADBASE_MAX_BODY_BYTES"))
    # Share (percent) of a project's pool one client IP may hold with anon/authenticated requests while the
    # pool is contended (100: no per-client bound)
    pool_client_share: int = Field(50, ge=1, le=100, validation_alias=_env("MADBASE_POOL_CLIENT_SHARE"))
    # HTTP request head limits, enforced by the protocol before anything is parsed into memory (431 / 414)
    max_header_bytes: int = Field(64 * 1024, ge=4096, validation_alias=_env("MADBASE_MAX_HEADER_BYTES"))
    max_header_line_bytes: int = Field(16 * 1024, ge=1024, validation_alias=_env("MADBASE_MAX_HEADER_LINE_BYTES"))
    max_url_bytes: int = Field(32 * 1024, ge=1024, validation_alias=_env("MADBASE_MAX_URL_BYTES"))
    max_headers: int = Field(100, ge=10, validation_alias=_env("MADBASE_MAX_HEADERS"))
    # Slow clients: the request head must arrive within header_timeout seconds; a body may pause at most
    # body_idle_timeout seconds and must average body_min_rate bytes/s (0: no rate bound) after its first
    # body_idle_timeout seconds (408, connection closed)
    header_timeout: float = Field(10.0, gt=0, validation_alias=_env("MADBASE_HEADER_TIMEOUT"))
    body_idle_timeout: float = Field(15.0, gt=0, validation_alias=_env("MADBASE_BODY_IDLE_TIMEOUT"))
    body_min_rate: int = Field(1024, ge=0, validation_alias=_env("MADBASE_BODY_MIN_RATE"))
    shutdown_timeout: float = Field(10.0, ge=0, validation_alias=_env("MADBASE_SHUTDOWN_TIMEOUT"))
    # On SIGTERM: answer /ready with 503 for this many seconds while still serving (balancers with active
    # health checks take the process out), then stop accepting and drain (docs/operations.md)
    drain_seconds: float = Field(0.0, ge=0, le=300, validation_alias=_env("MADBASE_DRAIN_SECONDS"))
    # how often replication-slot and mail-outbox gauges are sampled from each open project database
    dbstats_interval: float = Field(15.0, ge=0.5, le=3600, validation_alias=_env("MADBASE_DBSTATS_INTERVAL"))
    rate_limit_ip_per_minute: int = Field(0, ge=0, validation_alias=_env("MADBASE_RATE_LIMIT_IP_PER_MINUTE"))
    rate_limit_project_per_minute: int = Field(
        0, ge=0, validation_alias=_env("MADBASE_RATE_LIMIT_PROJECT_PER_MINUTE")
    )
    trusted_proxies: str = Field("", validation_alias=_env("MADBASE_TRUSTED_PROXIES"))
    workers: int = Field(1, ge=1, le=64, validation_alias=_env("MADBASE_WORKERS", "WEB_CONCURRENCY"))
    access_log: bool = Field(True, validation_alias=_env("MADBASE_ACCESS_LOG"))
    # Realtime (docs/realtime.md); realtime/config.py hands them to the service as `RealtimeSettings`.
    realtime_grace_seconds: float = Field(30.0, ge=0, le=86_400,
                                          validation_alias=_env("MADBASE_REALTIME_GRACE_SECONDS"))
    realtime_socket_queue: int = Field(1000, ge=1, le=1_000_000, validation_alias=_env("MADBASE_REALTIME_SOCKET_QUEUE"))
    realtime_ghost_buffer: int = Field(10_000, ge=1, le=10_000_000,
                                       validation_alias=_env("MADBASE_REALTIME_GHOST_BUFFER"))
    realtime_max_lag_bytes: int = Field(1 << 30, ge=1, validation_alias=_env("MADBASE_REALTIME_MAX_LAG_BYTES"))
    realtime_redis_url: str = Field("", validation_alias=_env("MADBASE_REALTIME_REDIS_URL"))
    realtime_node_heartbeat: float = Field(5.0, gt=0, le=3600, validation_alias=_env("MADBASE_REALTIME_NODE_HEARTBEAT"))
    realtime_max_channels: int = Field(100, ge=1, validation_alias=_env("MADBASE_REALTIME_MAX_CHANNELS"))
    realtime_max_payload_kb: int = Field(3000, ge=1, validation_alias=_env("MADBASE_REALTIME_MAX_PAYLOAD_KB"))
    realtime_max_events_per_second: int = Field(2500, ge=1,
                                                validation_alias=_env("MADBASE_REALTIME_MAX_EVENTS_PER_SECOND"))
    realtime_max_joins_per_second: int = Field(2500, ge=1,
                                               validation_alias=_env("MADBASE_REALTIME_MAX_JOINS_PER_SECOND"))
    realtime_log_maxlen: int = Field(100_000, ge=1, validation_alias=_env("MADBASE_REALTIME_LOG_MAXLEN"))

    # The control plane's admins (docs/admin.md).
    admin_email: str = Field("admin@madbase.local", min_length=3, max_length=320,
                             validation_alias=_env("MADBASE_ADMIN_EMAIL"))
    admin_session_hours: float = Field(12.0, gt=0, le=24 * 30, validation_alias=_env("MADBASE_ADMIN_SESSION_HOURS"))
    admin_login_per_ip_per_minute: int = Field(
        20, ge=1, validation_alias=_env("MADBASE_ADMIN_LOGIN_PER_IP_PER_MINUTE"))
    admin_lockout_failures: int = Field(5, ge=1, le=1000, validation_alias=_env("MADBASE_ADMIN_LOCKOUT_FAILURES"))
    admin_lockout_minutes: float = Field(15.0, gt=0, le=24 * 60, validation_alias=_env("MADBASE_ADMIN_LOCKOUT_MINUTES"))
    # Projects (docs/projects.md): how long a soft-deleted project can be restored before a hard delete is
    # allowed (seconds; default 7 days); how often /usage samples the process's metrics (seconds)
    project_delete_grace: float = Field(7 * 86_400.0, ge=0, le=365 * 86_400,
                                        validation_alias=_env("MADBASE_PROJECT_DELETE_GRACE"))
    usage_sample_seconds: float = Field(60.0, ge=0.05, le=3600, validation_alias=_env("MADBASE_USAGE_SAMPLE_SECONDS"))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url", "control_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must start with postgres:// or postgresql://")
        return value

    @field_validator("realtime_redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        # A typo would otherwise run every process on its own, each missing the others' changes and broadcasts.
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @property
    def embedded(self) -> bool:
        """True when MadBase runs its own PostgreSQL in the data folder."""
        return self.database_url is None

    @property
    def public_url(self) -> str:
        if self.api_external_url:
            return self.api_external_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # refuse a typo at start rather than trust nobody (or everybody) silently
        return value

    @property
    def trusted_proxy_networks(self) -> TrustedProxies:
        return TrustedProxies.parse(self.trusted_proxies)


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning pydantic's report into one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        field_info = Settings.model_fields.get(field)
        alias = field_info.validation_alias if field_info is not None else None
        if isinstance(alias, AliasChoices):
            field = str(alias.choices[0])
        raise ConfigError(f"invalid setting {field}: {first.get('msg', 'invalid value')}") from None
