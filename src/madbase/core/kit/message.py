"""The kit's vocabulary for the gateway's own small services, whose errors are in Supabase's gateway (Kong)
shape `{"message": ...}`: `/gateway/v1` (whoami) and `/admin/v1`.

    KIT = message_kit("admin", "/admin/v1", ROUTES, forbidden="This endpoint requires ...")

`MessageError(status, message)` is their one error type; a path no route matches is 404 "no route matched with
those values" (Kong's words), a path matched for other methods only 405 "Method not allowed", a role the route
does not allow 401 with the service's message. Bodies over a route's limit are 413, bad JSON 400.
"""

from __future__ import annotations

from typing import Any

from madbase.core.context import RequestContext
from madbase.core.kit.app import ServiceKit
from madbase.core.kit.request import BodyErrors
from madbase.core.kit.response import Response
from madbase.core.kit.routing import Route, RouteTable

NO_ROUTE = "no route matched with those values"


class MessageError(Exception):
    """A refusal rendered as `{"message": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _render(err: Exception) -> Response:
    assert isinstance(err, MessageError)
    return Response.json({"message": err.message}, err.status)


BODY_ERRORS = BodyErrors(
    too_large=lambda limit: MessageError(413, f"Request body exceeds the limit of {limit} bytes"),
    bad_json=lambda message: MessageError(400, message),
)


def message_kit(name: str, prefix: str, table: RouteTable[Any], *, forbidden: str) -> ServiceKit:
    """The ServiceKit of a Kong-shaped service: 404/405 from `table`, 401 `forbidden` for a role refused."""

    def not_found(method: str, path: str) -> Exception:
        if table.allowed(path[len(prefix):] or "/"):
            return MessageError(405, "Method not allowed")
        return MessageError(404, NO_ROUTE)

    def refuse(route: Route[Any], ctx: RequestContext) -> Exception:
        return MessageError(401, forbidden)

    return ServiceKit(name=name, prefix=prefix, error_type=MessageError, render=_render, not_found=not_found,
                      forbidden=refuse, body_errors=BODY_ERRORS)
