"""Assembles the ASGI application: the gateway with every service package mounted at its prefix, and the
control plane (/admin/v1) serving the admin routes every service contributes (`Service.admin_routes`)."""

from __future__ import annotations

from madbase import admin, auth, dashboard, functions, realtime, rest, storage, whoami
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.gateway import Gateway


def services() -> list[Service]:
    mounted = [rest.service, auth.service, storage.service, realtime.service, functions.service, admin.service,
               whoami.service, dashboard.service]
    contributed = [r for s in mounted for r in s.admin_routes]
    return [admin.platform_service(contributed) if s is admin.service else s for s in mounted]


def build_app(runtime: Runtime) -> Gateway:
    return Gateway(runtime, services())
