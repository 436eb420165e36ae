"""The realtime service's gateway descriptor."""

from __future__ import annotations

from madbase.core.service import Service
from madbase.realtime.adminroutes import ADMIN_ROUTES
from madbase.realtime.app import build

service = Service(name="realtime", prefix="/realtime/v1", build=build, admin_routes=ADMIN_ROUTES)
