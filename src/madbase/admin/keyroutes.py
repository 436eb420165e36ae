"""The control plane's routes for API keys and JWT signing keys (docs/keys.md): the project's keys in the
Management API's shape, new `sb_publishable_…` / `sb_secret_…` keys (named, several, revocable one by one),
rotation of the legacy anon/service_role keys and of the JWT secret / signing key with a grace window.

Rights: `keys.read` to list, `keys.write` to change anything (and to reveal the service_role key). Every
mutation is audited by the dispatcher from `request.audit(...)`, whose details never hold a key.
The store work is core/keystore.py and core/signingkeys.py; after a change this process reloads its project
cache before answering (every other process reloads on the store's NOTIFY), so a key handed out here works
from its first request.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from madbase.admin.http import MAX_BODY, body
from madbase.core import keystore, signingkeys
from madbase.core.db import internal_transaction
from madbase.core.keystore import KeyProblem, ListedKey
from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.kit.routing import Route
from madbase.core.platform import AdminRequest

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_NO_STORE = {"cache-control": "no-store"}


def _iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.isoformat()


def _grace(form: dict[str, Any]) -> int:
    raw = form.get("grace_seconds", keystore.DEFAULT_GRACE_SECONDS)
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= keystore.MAX_GRACE_SECONDS:
        raise MessageError(400, f"grace_seconds must be an integer from 0 to {keystore.MAX_GRACE_SECONDS}")
    return raw


def _shown(key: ListedKey, reveal: bool, may_write: bool) -> str:
    """The value a list shows: masked unless `reveal`; a secret key never (only its digest is stored); the
    legacy service_role key only to an admin who may change keys."""
    if not reveal or key.value is None or (key.role == "service_role" and not may_write):
        return key.hint
    return key.value


def _item(key: ListedKey, api_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": key.id, "name": key.name, "type": key.type, "api_key": api_key,
                           "role": key.role, "created_at": _iso(key.created_at), "revoked_at": None}
    if key.expires_at is not None:
        out["expires_at"] = _iso(key.expires_at)
    return out


def _problem(exc: KeyProblem) -> MessageError:
    return MessageError(exc.status, exc.message)


async def _reload(request: AdminRequest) -> None:
    await request.ctx.runtime.projects.refresh()


# -- handlers ---------------------------------------------------------------------------------------------
async def list_keys(request: AdminRequest) -> Response:
    reveal = request.query.get("reveal", "false").lower()
    if reveal not in ("true", "false"):
        raise MessageError(400, "reveal must be true or false")
    may_write = request.admin.allows("keys.write", request.project.ref)
    keys = await keystore.list_keys(request.ctx.runtime.store, request.project.ref)
    items = [_item(k, _shown(k, reveal == "true", may_write)) for k in keys]
    return Response.json(items, headers=_NO_STORE)


async def create_key(request: AdminRequest) -> Response:
    form = await body(request)
    kind = form.get("type")
    name = form.get("name")
    if kind not in ("publishable", "secret"):
        raise MessageError(400, 'type must be "publishable" or "secret"')
    if not isinstance(name, str) or not _NAME.match(name):
        raise MessageError(400, "name must be 1 to 64 lowercase letters, digits or _, not starting with a digit")
    ref = request.project.ref
    try:
        key, value = await keystore.create_key(request.ctx.runtime.store, ref, kind, name)
    except KeyProblem as exc:
        raise _problem(exc) from None
    await _reload(request)
    await request.audit("api_keys.create", f"projects/{ref}/api-keys/{key.id}", {"type": kind, "name": name})
    listed = ListedKey(key.id, key.name, key.type, key.role, value, key.hint,
                       datetime.fromtimestamp(key.created_at or time.time(), UTC))
    return Response.json(_item(listed, value), 201, headers=_NO_STORE)


async def revoke_key(request: AdminRequest) -> Response:
    ref = request.project.ref
    key_id = request.params[1]
    if key_id in ("anon", "service_role"):
        raise MessageError(400, "The legacy keys cannot be revoked: rotate them (POST api-keys/legacy/rotate)")
    revoked = await keystore.revoke_key(request.ctx.runtime.store, ref, key_id)
    if revoked is None:
        raise MessageError(404, "API key not found")
    await _reload(request)
    await request.audit("api_keys.revoke", f"projects/{ref}/api-keys/{revoked['id']}",
                        {"type": revoked["type"], "name": revoked["name"]})
    return Response.json({"id": revoked["id"], "name": revoked["name"], "type": revoked["type"],
                          "revoked_at": _iso(revoked["revoked_at"])})


async def rotate_legacy(request: AdminRequest) -> Response:
    grace = _grace(await body(request))
    ref = request.project.ref
    try:
        rotated = await keystore.rotate(request.ctx.runtime.store, ref, grace, new_secret=False)
    except KeyProblem as exc:
        raise _problem(exc) from None
    await _reload(request)
    await request.audit("api_keys.legacy.rotate", f"projects/{ref}/api-keys/legacy", {"grace_seconds": grace})
    return Response.json({"anon_key": rotated.anon_key, "service_role_key": rotated.service_role_key,
                          "grace_until": _iso(rotated.grace_until)}, headers=_NO_STORE)


async def rotate_jwt_secret(request: AdminRequest) -> Response:
    """A new HS256 secret (new legacy keys signed with it) and, when the project signs its access tokens with
    an asymmetric key, a new signing key too; the old ones verify until `grace_until`."""
    grace = _grace(await body(request))
    project = request.project
    ref = project.ref
    runtime = request.ctx.runtime
    auth = project.config.get("auth")
    alg = auth.get("jwt_signing_alg") if isinstance(auth, dict) else None
    kid: str | None = None
    if alg in signingkeys.ALGS:
        kid = await _rotate_signing_key(request, str(alg), grace)
    try:
        rotated = await keystore.rotate(runtime.store, ref, grace, new_secret=True)
    except KeyProblem as exc:
        raise _problem(exc) from None
    await _reload(request)
    details: dict[str, Any] = {"grace_seconds": grace, "alg": alg if kid else "HS256"}
    await request.audit("jwt_secret.rotate", f"projects/{ref}/jwt-secret", details)
    return Response.json({"key_id": kid or rotated.key_id, "alg": alg if kid else "HS256",
                          "grace_until": _iso(rotated.grace_until), "anon_key": rotated.anon_key,
                          "service_role_key": rotated.service_role_key}, headers=_NO_STORE)


async def _rotate_signing_key(request: AdminRequest, alg: str, grace: int) -> str:
    """A new active asymmetric key in the project's database; the previous active key is published and
    verifies until the grace window ends (`jwt_keys_retiring` in the config), then drops out of the JWKS."""
    project = request.project
    runtime = request.ctx.runtime
    pool = await runtime.pools.get(project)
    until = time.time() + grace
    async with internal_transaction(pool, "supabase_auth_admin") as conn:
        await signingkeys.lock(conn)
        old = await signingkeys.active(conn)
        kid, _ = await signingkeys.create(conn, runtime.box, project.ref, alg)
        jwks = await signingkeys.published_jwks(conn)
    now = time.time()

    def edit(config: dict[str, Any]) -> dict[str, Any]:
        retiring = config.get("jwt_keys_retiring")
        kept = {k: v for k, v in (retiring if isinstance(retiring, dict) else {}).items()
                if isinstance(v, int | float) and v > now - 86400}
        if old is not None:
            kept[old["kid"]] = until
        return {**config, "jwt_public_keys": jwks, "jwt_keys_retiring": kept}

    await runtime.store.edit_config(project.ref, edit)
    return kid


_B = MAX_BODY
ROUTES: tuple[Route[Any], ...] = (
    route("GET", "/projects/{ref}/api-keys", list_keys, name="admin.api_keys.list", right="keys.read"),
    route("POST", "/projects/{ref}/api-keys", create_key, name="admin.api_keys.create", right="keys.write",
          body_limit=_B),
    route("POST", "/projects/{ref}/api-keys/legacy/rotate", rotate_legacy, name="admin.api_keys.rotate_legacy",
          right="keys.write", body_limit=_B),
    route("DELETE", "/projects/{ref}/api-keys/{id}", revoke_key, name="admin.api_keys.revoke", right="keys.write"),
    route("POST", "/projects/{ref}/jwt-secret/rotate", rotate_jwt_secret, name="admin.jwt_secret.rotate",
          right="keys.write", body_limit=_B),
)
