"""`/admin/v1`: the multi-tenant control-plane API and its web UI."""

from madbase.admin.service import service

__all__ = ["service"]
