"""The control plane's routes for projects: create (BYO database URL tested first, or a new database on the default cluster), list, get, update, pause, soft-delete, restore, hard delete, health and usage (docs/admin.md)."""

from __future__ import annotations

from typing import Any

from madbase.core.kit.routing import Route

ROUTES: tuple[Route[Any], ...] = ()
