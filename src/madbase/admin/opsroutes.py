"""The control plane's routes for per-project operations of the platform: database (tables, RLS policies, SQL), request logs, connection test, the OpenAPI document (docs/admin.md)."""

from __future__ import annotations

from typing import Any

from madbase.core.kit.routing import Route

ROUTES: tuple[Route[Any], ...] = ()
