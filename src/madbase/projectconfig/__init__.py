"""Start-time settings of the default project, without SQL: environment variables (GoTrue's and Supabase's
names, see env.py) and `supabase/config.toml` (see configtoml.py).

Precedence, highest first: environment (including `.env`) > `supabase/config.toml` > the stored config. Both
are applied at **every start** to the default project (the one `madbase start` created on its first run), so
the file is the source of truth for local development as with `supabase start`; keys neither source names keep
their stored values, and other projects are never touched. The result is written to the control plane (secrets
sealed), so every server process and later requests see it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from madbase.projectconfig.configtoml import patch_from_toml
from madbase.projectconfig.env import patch_from_env
from madbase.projectconfig.parse import ProjectConfigError

__all__ = ["ProjectConfigError", "StartConfig", "load", "merge"]

CONFIG_TOML = Path("supabase") / "config.toml"


class StartConfig:
    """The two patches found at start, applied in order (file, then environment) over a stored config."""

    def __init__(self, toml_path: Path | None, toml_patch: dict[str, Any], env_patch: dict[str, Any]) -> None:
        self.toml_path = toml_path
        self.toml_patch = toml_patch
        self.env_patch = env_patch

    @property
    def empty(self) -> bool:
        return not self.toml_patch and not self.env_patch

    def apply(self, config: dict[str, Any]) -> dict[str, Any]:
        return merge(merge(config, self.toml_patch), self.env_patch)


def merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `patch` merged in: objects merge key by key, anything else replaces, None removes."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        elif isinstance(value, Mapping):
            out[key] = merge({}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _environment(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The process environment over `.env` over `supabase/.env` (as pydantic-settings and the CLI read them)."""
    merged: dict[str, str] = {}
    for file in (folder / "supabase" / ".env", folder / ".env"):
        if file.is_file():
            merged.update({k: v for k, v in dotenv_values(file).items() if v is not None})
    merged.update(environ)
    return merged


def load(folder: Path | None = None, environ: Mapping[str, str] | None = None) -> StartConfig:
    """Read `<folder>/supabase/config.toml` (or MADBASE_CONFIG_TOML) and the environment."""
    folder = folder or Path.cwd()
    env = _environment(folder, os.environ if environ is None else environ)
    named = env.get("MADBASE_CONFIG_TOML")
    toml_path = Path(named) if named else folder / CONFIG_TOML
    if named and not toml_path.is_file():
        raise ProjectConfigError(f"MADBASE_CONFIG_TOML names {toml_path}, which is not a file")
    toml_patch = patch_from_toml(toml_path, env) if toml_path.is_file() else {}
    return StartConfig(toml_path if toml_patch or toml_path.is_file() else None, toml_patch, patch_from_env(env))
