"""The admin service's gateway descriptor."""

from __future__ import annotations

from madbase.core.service import Service, not_implemented

service = Service(name="admin", prefix="/admin/v1", build=not_implemented("Admin"))
