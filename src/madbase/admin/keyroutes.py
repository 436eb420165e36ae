"""The control plane's routes for API keys and JWT signing keys (docs/admin.md)."""

from __future__ import annotations

from typing import Any

from madbase.core.kit.routing import Route

ROUTES: tuple[Route[Any], ...] = ()
