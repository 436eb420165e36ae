"""A small, real OpenID Connect provider for tests (stdlib HTTP server in a thread): discovery, authorize
(auto-approves the user the test chose), token (RS256-signed id_token), userinfo, JWKS — plus GitHub-shaped
endpoints (/login/oauth/*, /api/user, /api/user/emails)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.servers import free_port


class OidcProvider:
    def __init__(self, client_id: str = "madbase-client", secret: str = "madbase-secret") -> None:
        self.client_id = client_id
        self.secret = secret
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.next_user: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, {"issuer": provider.base, "authorization_endpoint": provider.base + "/authorize",
                                     "token_endpoint": provider.base + "/token",
                                     "userinfo_endpoint": provider.base + "/userinfo",
                                     "jwks_uri": provider.base + "/jwks"})
                elif url.path in ("/authorize", "/login/oauth/authorize"):
                    provider.authorize_requests.append(q)
                    code = secrets.token_urlsafe(12)
                    provider.codes[code] = {"user": dict(provider.next_user), "nonce": q.get("nonce"),
                                            "redirect_uri": q["redirect_uri"]}
                    self.send_response(302)
                    self.send_header("location", q["redirect_uri"] + "?" + urlencode({"code": code,
                                                                                      "state": q["state"]}))
                    self.send_header("content-length", "0")
                    self.end_headers()
                elif url.path == "/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(provider.key.public_key()))
                    self._json(200, {"keys": [{**jwk, "kid": provider.kid, "alg": "RS256", "use": "sig"}]})
                elif url.path in ("/userinfo", "/api/user", "/api/user/emails"):
                    token = self.headers.get("authorization", "").removeprefix("Bearer ")
                    user = provider.tokens.get(token)
                    if user is None:
                        self._json(401, {"error": "invalid_token"})
                    elif url.path == "/userinfo":
                        self._json(200, user)
                    elif url.path == "/api/user":
                        self._json(200, {"id": int(user["sub"]), "login": user["name"].lower(), "name": user["name"],
                                         "email": None, "avatar_url": "http://img/" + user["sub"]})
                    else:
                        self._json(200, [{"email": user["email"], "primary": True,
                                          "verified": user.get("email_verified", True)}])
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                url = urlsplit(self.path)
                if url.path not in ("/token", "/login/oauth/access_token"):
                    self._json(404, {"error": "not_found"})
                    return
                grant = provider.codes.pop(form.get("code", ""), None)
                if (grant is None or form.get("client_id") != provider.client_id
                        or form.get("client_secret") != provider.secret
                        or form.get("redirect_uri") != grant["redirect_uri"]):
                    self._json(400, {"error": "invalid_grant"})
                    return
                access = secrets.token_urlsafe(16)
                provider.tokens[access] = grant["user"]
                body: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
                if url.path == "/token":
                    body["id_token"] = provider.id_token(grant["user"], nonce=grant["nonce"])
                    body["refresh_token"] = "provider-refresh-" + access
                self._json(200, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def id_token(self, user: dict[str, Any], *, nonce: str | None = None, aud: str | None = None) -> str:
        now = int(time.time())
        claims = {"iss": self.base, "aud": aud or self.client_id, "iat": now, "exp": now + 600, **user}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def start(self) -> OidcProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
