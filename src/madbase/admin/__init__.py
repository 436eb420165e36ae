"""`/admin/v1`: the multi-tenant control plane: admin identity, roles, sessions, tokens, audit, and the admin
routes every service contributes."""

from madbase.admin.service import platform_service, service

__all__ = ["platform_service", "service"]
