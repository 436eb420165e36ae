"""Settings sections of a project, as /admin/v1/projects/{ref}/config/{section} shows and changes them, over the
one config JSON the services read (pure functions: the routes are in admin/settingsroutes.py).

| section | where in the project's config |
|---|---|
| `auth` | `auth` (GoTrue's settings: site URL, redirects, SMTP, OAuth providers, rate limits, password policy…) |
| `api` | `db_schemas` (`db_schema`, comma separated), `db_max_rows` (`max_rows`), `db_pre_request`, … |
| `jwt` | `auth.jwt_exp` (`expiry`), `auth.jwt_issuer` (`issuer`), `auth.jwt_aud` (`audience`) |
| `storage` | `storage` (backend fs or s3 with its credentials, size limit) |
| `realtime` | `realtime` (Supabase's tenant limits) |
| `functions` | `functions` (default limits of the project's functions) |
| `database` | the project's database URL (not in the config: a sealed column; routes handle it) |

A PATCH is merged into the section (objects key by key; `null` removes a key). Secrets (core/configsecrets.py's
paths: SMTP password, OAuth secrets, hook secrets, S3 keys) are answered as `********`; sending `********`
back keeps the stored value, so a form can save what it read.
"""

from __future__ import annotations

import copy
from typing import Any

from madbase.admin import configschema
from madbase.core.configsecrets import SECRET_PATHS
from madbase.projectconfig import merge

MASK = "********"
SECTIONS = ("auth", "api", "jwt", "database", "storage", "realtime", "functions")
# sections kept whole under one config key
_SUBTREE = {"auth": "auth", "storage": "storage", "realtime": "realtime", "functions": "functions"}
_API = {"db_schema": "db_schemas", "max_rows": "db_max_rows", "db_pre_request": "db_pre_request",
        "db_aggregates_enabled": "db_aggregates_enabled"}
_JWT = {"expiry": "jwt_exp", "issuer": "jwt_issuer", "audience": "jwt_aud"}


def _walk_secrets(config: dict[str, Any], visit: Any) -> None:
    """Call `visit(parent, key)` for every secret present in `config` (a whole project config)."""

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict) or not path:
            return
        head, rest = path[0], path[1:]
        for key in [k for k in list(node) if head in ("*", k)]:
            if rest:
                walk(node[key], rest)
            else:
                visit(node, key)

    for pattern in SECRET_PATHS:
        walk(config, pattern)


def masked(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a whole config with every secret that is set shown as MASK."""
    out = copy.deepcopy(config)

    def hide(parent: dict[str, Any], key: str) -> None:
        if parent[key] not in (None, ""):
            parent[key] = MASK

    _walk_secrets(out, hide)
    return out


def _keep_masked(patch: dict[str, Any]) -> dict[str, Any]:
    """The patch without the secrets sent back as MASK (the stored values stay)."""
    out = copy.deepcopy(patch)

    def drop(parent: dict[str, Any], key: str) -> None:
        if parent[key] == MASK:
            del parent[key]

    _walk_secrets(out, drop)
    return out


def view(section: str, config: dict[str, Any]) -> dict[str, Any]:
    """What GET answers for `section` (secrets masked)."""
    shown = masked(config)
    if section in _SUBTREE:
        value = shown.get(_SUBTREE[section])
        out = dict(value) if isinstance(value, dict) else {}
        if section == "storage":
            out.setdefault("backend", "fs")
        return out
    if section == "api":
        schemas = shown.get("db_schemas")
        listed = [s.strip() for s in schemas.split(",") if s.strip()] if isinstance(schemas, str) else (
            list(schemas) if isinstance(schemas, list) else [])
        return {"db_schema": ",".join(listed), "db_schemas": listed, "max_rows": shown.get("db_max_rows"),
                "db_pre_request": shown.get("db_pre_request"),
                "db_aggregates_enabled": bool(shown.get("db_aggregates_enabled", False))}
    if section == "jwt":
        auth = shown.get("auth") if isinstance(shown.get("auth"), dict) else {}
        assert isinstance(auth, dict)
        return {"expiry": auth.get("jwt_exp", 3600), "issuer": auth.get("jwt_issuer") or "",
                "audience": auth.get("jwt_aud", "authenticated")}
    raise KeyError(section)


def patched(section: str, config: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The whole new config after PATCHing `section` with `body` (validated; raises SchemaError)."""
    checked = configschema.check(configschema.SCHEMAS[section], body)
    if section in _SUBTREE:
        patch = _keep_masked({_SUBTREE[section]: checked})
        return merge(config, patch)
    if section == "api":
        top: dict[str, Any] = {}
        for key, value in checked.items():
            if key == "db_schemas":
                key = "db_schema"
            if key == "db_schema" and value is not None:
                if not value:
                    raise configschema.SchemaError("db_schema must name at least one schema")
                value = ",".join(value)
            top[_API[key]] = value
        return merge(config, top)
    if section == "jwt":
        return merge(config, {"auth": {_JWT[k]: v for k, v in checked.items()}})
    raise KeyError(section)
