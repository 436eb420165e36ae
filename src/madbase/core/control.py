"""The control-plane store: projects, their status, database URL and secrets (sealed by `SecretBox`).

Secrets inside a project's `config` (SMTP password, OAuth and hook secrets, S3 keys) are sealed on every write
and opened on every read (core/configsecrets.py): a `ProjectRecord` holds them in clear for the services, the
row never does, and the record's repr leaves the config out.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from madbase.core import configsecrets, jsonutil
from madbase.core.jwt import make_api_key
from madbase.core.secretbox import SecretBox

STATUSES = ("active", "disabled", "deleted")


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    ref: str
    name: str
    status: str
    db_url: str = field(repr=False)  # a DSN carries its password
    jwt_secret: str = field(repr=False)
    anon_key: str
    service_role_key: str = field(repr=False)
    login_role: str
    login_password: str = field(repr=False)
    # repr=False: a record in a log line or traceback must not print opened secrets
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ProjectExists(Exception):
    pass


def new_ref() -> str:
    """A project ref shaped like Supabase's: 20 lowercase letters."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))


def new_jwt_secret() -> str:
    return secrets.token_urlsafe(40)


_COLUMNS = (
    "ref, name, status, db_url_enc, jwt_secret_enc, service_key_enc, anon_key, login_role, "
    "login_password_enc, config, created_at, updated_at"
)


class ControlStore:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self.pool = pool
        self._box = box
        # refs whose stored config still holds a plain secret (seen by the last read); see seal_plain_secrets
        self.unsealed: set[str] = set()

    @property
    def box(self) -> SecretBox:
        """The box sealing this store's secrets (core/keystore.py seals key material with it too)."""
        return self._box

    def _open(self, row: asyncpg.Record) -> ProjectRecord:
        ref = row["ref"]
        raw = row["config"]
        config, plain = configsecrets.open_all(self._box, ref, jsonutil.loads(raw) if isinstance(raw, str)
                                               else dict(raw))
        if plain:
            self.unsealed.add(ref)
        else:
            self.unsealed.discard(ref)
        return ProjectRecord(
            ref=ref,
            name=row["name"],
            status=row["status"],
            db_url=self._box.open(row["db_url_enc"], context=f"{ref}:db_url"),
            jwt_secret=self._box.open(row["jwt_secret_enc"], context=f"{ref}:jwt_secret"),
            service_role_key=self._box.open(row["service_key_enc"], context=f"{ref}:service_role_key"),
            anon_key=row["anon_key"],
            login_role=row["login_role"],
            login_password=self._box.open(row["login_password_enc"], context=f"{ref}:login_password"),
            config=config,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def list(self, *, include_deleted: bool = False) -> list[ProjectRecord]:
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from madbase_control.projects where $1 or status <> 'deleted' order by created_at",
            include_deleted,
        )
        return [self._open(r) for r in rows]

    async def get(self, ref: str) -> ProjectRecord | None:
        row = await self.pool.fetchrow(f"select {_COLUMNS} from madbase_control.projects where ref = $1", ref)
        return None if row is None else self._open(row)

    async def create(
        self,
        *,
        name: str,
        db_url: str,
        ref: str | None = None,
        jwt_secret: str | None = None,
        anon_key: str | None = None,
        service_role_key: str | None = None,
        login_role: str = "authenticator",
        config: dict[str, Any] | None = None,
    ) -> ProjectRecord:
        ref = ref or new_ref()
        secret = jwt_secret or new_jwt_secret()
        anon = anon_key or make_api_key(secret, "anon", ref)
        service = service_role_key or make_api_key(secret, "service_role", ref)
        password = secrets.token_urlsafe(32)
        seal = self._box.seal
        try:
            await self.pool.execute(
                """insert into madbase_control.projects
                   (ref, name, db_url_enc, jwt_secret_enc, service_key_enc, anon_key, login_role,
                    login_password_enc, config)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)""",
                ref, name, seal(db_url, context=f"{ref}:db_url"), seal(secret, context=f"{ref}:jwt_secret"),
                seal(service, context=f"{ref}:service_role_key"), anon, login_role,
                seal(password, context=f"{ref}:login_password"),
                jsonutil.dumps_str(configsecrets.seal(self._box, ref, config or {})),
            )
        except asyncpg.UniqueViolationError:
            raise ProjectExists(ref) from None
        record = await self.get(ref)
        assert record is not None
        return record

    async def set_status(self, ref: str, status: str) -> bool:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        result = await self.pool.execute(
            """update madbase_control.projects
               set status = $2, updated_at = now(),
                   deleted_at = case when $2 = 'deleted' then now() else null end
               where ref = $1""",
            ref, status,
        )
        return result.endswith(" 1")

    async def set_db_url(self, ref: str, db_url: str) -> bool:
        result = await self.pool.execute(
            "update madbase_control.projects set db_url_enc = $2, updated_at = now() where ref = $1",
            ref, self._box.seal(db_url, context=f"{ref}:db_url"),
        )
        return result.endswith(" 1")

    async def update_config(self, ref: str, patch: dict[str, Any]) -> bool:
        """Replace top-level keys of the config (`config || patch`); secrets in `patch` are sealed."""
        result = await self.pool.execute(
            "update madbase_control.projects set config = config || $2::jsonb, updated_at = now() where ref = $1",
            ref, jsonutil.dumps_str(configsecrets.seal(self._box, ref, patch)),
        )
        return result.endswith(" 1")

    async def edit_config(self, ref: str, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
        """Read-modify-write of the whole config under the row's lock: `edit` gets the opened config and
        returns the new one, which is sealed and written only when it differs. True when it was written."""
        async with self.pool.acquire() as conn, conn.transaction():
            raw = await conn.fetchval("select config from madbase_control.projects where ref = $1 for update", ref)
            if raw is None:
                return False
            current, plain = configsecrets.open_all(self._box, ref, jsonutil.loads(raw) if isinstance(raw, str)
                                                    else dict(raw))
            wanted = edit(current)
            if wanted == current and not plain:
                return False
            await conn.execute("update madbase_control.projects set config = $2::jsonb, updated_at = now() "
                               "where ref = $1", ref, jsonutil.dumps_str(configsecrets.seal(self._box, ref, wanted)))
            return True

    async def seal_plain_secrets(self, refs: Iterable[str] | None = None) -> tuple[str, ...]:
        """Seal plain secrets found in stored configs (written with SQL or by an older MadBase): the given refs,
        or every row SQL reports (`config_has_plain_secrets`). Returns the refs rewritten."""
        if refs is None:
            refs = [r["ref"] for r in await self.pool.fetch(
                "select ref from madbase_control.projects where madbase_control.config_has_plain_secrets(config)")]
        done = tuple([ref for ref in refs if await self.edit_config(ref, lambda config: config)])
        self.unsealed.difference_update(done)
        return done
