"""The REST service's control-plane routes (handed to /admin/v1 through `Service.admin_routes`):

    GET /projects/{ref}/types/typescript?included_schemas=public,… → {"types": "<TypeScript>"}

Supabase's Management API path and answer for `supabase gen types typescript`: the `Database` type of the
project's schemas (default `public`), read from the database catalog (rest/typecatalog.py) and rendered by
rest/typegen.py. Unknown schemas are left out, as they would be empty.
"""

from __future__ import annotations

import re

from madbase.core.kit import Response, route
from madbase.core.kit.message import MessageError
from madbase.core.platform import AdminRequest
from madbase.rest import typecatalog, typegen

MAX_SCHEMAS = 50
_SCHEMA = re.compile(r"^[^\x00]{1,63}$")


async def typescript(request: AdminRequest) -> Response:
    raw = request.query.get("included_schemas") or "public"
    names = list(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    if not names or len(names) > MAX_SCHEMAS or not all(_SCHEMA.match(n) for n in names):
        raise MessageError(400, f"included_schemas must list 1 to {MAX_SCHEMAS} schema names, comma-separated")
    pool = await request.ctx.runtime.pools.get(request.project)
    async with pool.acquire() as conn:
        schemas = await typecatalog.existing_schemas(conn, names)
        catalog = await typecatalog.read(conn, schemas)
    return Response.json({"types": typegen.render(catalog)})


ADMIN_ROUTES = (
    route("GET", "/projects/{ref}/types/typescript", typescript, name="admin.types.typescript",
          right="database.read"),
)
