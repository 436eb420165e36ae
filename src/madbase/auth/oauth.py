"""External identity providers: `grant_type=id_token` (OpenID Connect ID tokens).

Not implemented yet: every provider answers GoTrue's provider-not-supported error.
"""

from __future__ import annotations

from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp


async def id_token_grant(req: Req) -> Resp:
    provider = req.str_field("provider")
    raise AuthError("oauth_provider_not_supported", f"Custom OIDC provider \"{provider}\" not allowed")
