"""Assembles the ASGI application: the gateway with every service package mounted at its prefix."""

from __future__ import annotations

from madbase import admin, auth, functions, realtime, rest, storage, whoami
from madbase.core.runtime import Runtime
from madbase.core.service import Service
from madbase.gateway import Gateway


def services() -> list[Service]:
    return [rest.service, auth.service, storage.service, realtime.service, functions.service, admin.service,
            whoami.service]


def build_app(runtime: Runtime) -> Gateway:
    return Gateway(runtime, services())
