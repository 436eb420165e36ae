"""The control plane's routes for API keys and JWT signing keys: rotation with a grace window, the sb_publishable_/sb_secret_ key style (docs/admin.md)."""

from __future__ import annotations

from typing import Any

from madbase.core.kit.routing import Route

ROUTES: tuple[Route[Any], ...] = ()
