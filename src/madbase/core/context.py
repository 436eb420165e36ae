"""The per-request context the gateway hands to a service in `scope["madbase"]`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from madbase.core.authn import AuthContext
from madbase.core.projects import Project
from madbase.core.types import Scope

if TYPE_CHECKING:
    from madbase.core.runtime import Runtime


@dataclass(slots=True)
class RequestContext:
    request_id: str
    # None on a platform service's request (`Service.platform`: /admin/v1 is no project's API)
    project_or_none: Project | None
    auth: AuthContext
    runtime: Runtime
    client_ip: str
    # The TCP peer is one of MADBASE_TRUSTED_PROXIES: its X-Forwarded-Host/-Proto may be believed.
    via_trusted_proxy: bool = False

    @property
    def project(self) -> Project:
        """The project the gateway resolved (every service but the platform ones has one)."""
        project = self.project_or_none
        if project is None:
            raise RuntimeError("a platform request has no project")
        return project


def get_context(scope: Scope) -> RequestContext:
    ctx = scope.get("madbase")
    if not isinstance(ctx, RequestContext):
        raise RuntimeError("request did not pass through the MadBase gateway")
    return ctx
