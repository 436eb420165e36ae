"""The realtime service's gateway descriptor."""

from __future__ import annotations

from madbase.core.service import Service, not_implemented

service = Service(name="realtime", prefix="/realtime/v1", build=not_implemented("Realtime"))
