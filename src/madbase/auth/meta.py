"""GET /settings, GET /health and GET /.well-known/jwks.json, answered as GoTrue does."""

from __future__ import annotations

from madbase.auth.errors import AuthError
from madbase.auth.http import Req, Resp, json_resp

VERSION = "v2.180.0-madbase"

_PROVIDERS = ("anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook", "figma", "fly", "github",
              "gitlab", "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify", "slack",
              "slack_oidc", "workos", "twitch", "twitter", "email", "phone", "zoom")


async def settings(req: Req) -> Resp:
    cfg = req.config
    external = {name: False for name in _PROVIDERS}
    external["email"] = cfg.external_email_enabled
    external["phone"] = cfg.external_phone_enabled
    external["anonymous_users"] = cfg.external_anonymous_users_enabled
    for name in cfg.providers:
        external[name] = True
    return json_resp({"external": external, "disable_signup": cfg.disable_signup,
                      "mailer_autoconfirm": cfg.mailer_autoconfirm, "phone_autoconfirm": cfg.phone_autoconfirm,
                      "sms_provider": "", "saml_enabled": False})


async def health(req: Req) -> Resp:
    return json_resp({"version": VERSION, "name": "GoTrue",
                      "description": "GoTrue is a user registration and authentication API"})


async def sso(req: Req) -> Resp:
    raise AuthError("saml_provider_disabled", "SAML 2.0 is disabled", status=404)
