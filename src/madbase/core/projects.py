"""Project resolution: which project a request is for, from a cached, change-notified view of the store.

The hot path is one dict lookup. The cache is filled at start, refreshed on `NOTIFY madbase_projects`
(sent by the store's trigger from any server process) and, as a safety net, every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt as pyjwt
import structlog
from asyncpg.pool import PoolConnectionProxy

from madbase.core import keystore
from madbase.core.apikeys import KeyEntry, KeyRing, ProjectKeys, synthetic_claims
from madbase.core.control import ControlStore, ProjectRecord
from madbase.core.errors import GatewayError, Kind
from madbase.core.jwt import JwtVerifier, PublicKey, TokenError

log = structlog.get_logger("madbase.projects")

_REFRESH_SECONDS = 5.0
_NO_KEYS = ProjectKeys()
# a request with an unknown key or token may come from a client that saw a rotation made by another process a
# moment ago: such a miss re-reads the store, at most this often per process (core/authn callers)
_MISS_REFRESH_SECONDS = 1.0


@dataclass(slots=True)
class Project:
    """A project as the request path needs it: secrets decrypted, keys indexed, verifier ready."""

    record: ProjectRecord
    verifier: JwtVerifier
    keys: KeyRing = field(default_factory=KeyRing)
    stored_keys: ProjectKeys = _NO_KEYS  # what the control tables added (core/keystore.py)

    @property
    def ref(self) -> str:
        return self.record.ref

    @property
    def config(self) -> dict[str, Any]:
        return self.record.config

    @classmethod
    def from_record(cls, record: ProjectRecord, stored: ProjectKeys = _NO_KEYS) -> Project:
        verifier = JwtVerifier(record.jwt_secret, _public_keys(record), stored.previous_secrets)
        project = cls(record=record, verifier=verifier, stored_keys=stored)
        ring = project.keys
        for key, role in ((record.anon_key, "anon"), (record.service_role_key, "service_role")):
            try:
                token = verifier.verify(key)
            except TokenError:
                log.warning("project_key_invalid", project_ref=record.ref, role=role)
                continue
            ring.add_text(key, KeyEntry(role, role, token))
        for item in stored.keys:
            if item.type == "legacy":  # a rotated legacy key in its grace window: still a JWT of this project
                if item.value is None:
                    continue
                try:
                    token = verifier.verify(item.value)
                except TokenError:
                    continue
                ring.add_text(item.value, KeyEntry(item.id, item.role, token, item.expires_at))
            else:
                ring.add_digest(item.digest, KeyEntry(item.id, item.role, synthetic_claims(record.ref, item.role)))
        ring.retired = stored.retired_digests
        return project


def _public_keys(record: ProjectRecord) -> tuple[PublicKey, ...]:
    """Asymmetric verification keys a service published in the config (`jwt_public_keys`: a list of JWKs);
    `jwt_keys_retiring` maps the kid of a rotated-out key to the end of its grace window (Unix time)."""
    keys: list[PublicKey] = []
    retiring = record.config.get("jwt_keys_retiring") or {}
    if not isinstance(retiring, dict):
        retiring = {}
    for jwk in record.config.get("jwt_public_keys") or ():
        try:
            parsed = pyjwt.PyJWK(jwk)
        except (pyjwt.PyJWTError, TypeError, ValueError):
            log.warning("project_public_key_invalid", project_ref=record.ref)
            continue
        kid = str(jwk.get("kid", ""))
        until = retiring.get(kid)
        keys.append(PublicKey(kid=kid, alg=str(jwk.get("alg", "")), key=parsed.key,
                              until=float(until) if isinstance(until, int | float) else None))
    return tuple(keys)


class ProjectRegistry:
    def __init__(self, store: ControlStore) -> None:
        self._store = store
        self._by_ref: dict[str, Project] = {}
        self._status: dict[str, str] = {}
        self._active: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._listen_conn: PoolConnectionProxy[asyncpg.Record] | None = None
        self._changed = asyncio.Event()
        self._miss_refresh: asyncio.Task[None] | None = None
        self._miss_refreshed_at = 0.0

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresher(), name="project-registry")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listen_conn is not None:
            with contextlib.suppress(Exception):
                await self._listen_conn.close()

    async def refresh(self) -> None:
        records = await self._store.list(include_deleted=True)
        if self._store.unsealed:
            # A secret was written in clear (with SQL): seal it now rather than at the next start. The write
            # notifies every process, which then reads the same (opened) values again.
            sealed = await self._store.seal_plain_secrets(sorted(self._store.unsealed))
            if sealed:
                log.info("project_secrets_sealed", project_refs=sealed)
        stored = await keystore.load_all(self._store)
        by_ref: dict[str, Project] = {}
        for record in records:
            old = self._by_ref.get(record.ref)
            keys = stored.get(record.ref, _NO_KEYS)
            same = old is not None and old.record == record and old.stored_keys == keys
            by_ref[record.ref] = old if same and old is not None else Project.from_record(record, keys)
        self._by_ref = by_ref
        self._status = {r.ref: r.status for r in records}
        self._active = [r.ref for r in records if r.status == "active"]

    async def _refresher(self) -> None:
        while True:
            try:
                if self._listen_conn is None or self._listen_conn.is_closed():
                    conn = await self._store.pool.acquire()
                    await conn.add_listener("madbase_projects", self._on_notify)
                    self._listen_conn = conn
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), _REFRESH_SECONDS)
                self._changed.clear()
                await self.refresh()
            except asyncio.CancelledError:
                if self._listen_conn is not None:
                    with contextlib.suppress(Exception):
                        await self._listen_conn.remove_listener("madbase_projects", self._on_notify)
                        await self._store.pool.release(self._listen_conn)
                    self._listen_conn = None
                raise
            except Exception as exc:  # the control DB may be briefly away; keep serving from the cache
                log.warning("project_refresh_failed", error=str(exc))
                self._listen_conn = None
                await asyncio.sleep(1.0)

    def _on_notify(self, *_: object) -> None:
        self._changed.set()

    async def refresh_after_miss(self) -> bool:
        """Re-read the store because a request carried a key or token this process does not know (yet): True
        when a re-read happened (then resolve again), False when one ran less than a second ago. Concurrent
        callers share one re-read; a flood of bad keys costs one read per second."""
        loop = asyncio.get_running_loop()
        task = self._miss_refresh
        if task is None or task.done():
            if loop.time() - self._miss_refreshed_at < _MISS_REFRESH_SECONDS:
                return False
            self._miss_refreshed_at = loop.time()
            task = self._miss_refresh = loop.create_task(self.refresh())
        try:
            await asyncio.shield(task)
        except Exception as exc:
            log.warning("project_refresh_failed", error=str(exc))
            return False
        return True

    @property
    def active_refs(self) -> list[str]:
        return list(self._active)

    def resolve(self, ref: str | None) -> Project:
        """The project for `ref`, or the only active project when no ref is given."""
        if ref is None:
            if len(self._active) == 1:
                ref = self._active[0]
            elif not self._active:
                raise GatewayError(Kind.PROJECT_NOT_FOUND, "No project exists on this server")
            else:
                raise GatewayError(
                    Kind.PROJECT_NOT_FOUND,
                    "Project not specified",
                    hint="Use the project's subdomain or send the x-project-ref header",
                )
        project = self._by_ref.get(ref)
        status = self._status.get(ref)
        if project is None or status == "deleted":
            raise GatewayError(Kind.PROJECT_NOT_FOUND, "Project not found")
        if status != "active":
            raise GatewayError(Kind.PROJECT_DISABLED, "Project is disabled")
        return project

    def lookup(self, ref: str) -> tuple[Project, str] | None:
        """The project `ref` whatever its status (active, disabled, deleted), with the status: for the control
        plane, which manages projects requests may not reach."""
        project = self._by_ref.get(ref)
        status = self._status.get(ref)
        return None if project is None or status is None else (project, status)

    async def resolve_fresh(self, ref: str | None) -> Project:
        """Like `resolve`, but a miss re-reads the store once (a project created a moment ago elsewhere)."""
        try:
            return self.resolve(ref)
        except GatewayError as exc:
            if exc.kind is not Kind.PROJECT_NOT_FOUND:
                raise
            await self.refresh()
            return self.resolve(ref)
