"""`madbase login` / `madbase logout`: a personal access token for a (remote) server, kept in the user's
config folder (mode 0600).

Login signs in once (`POST /admin/v1/login`: e-mail, password, TOTP or recovery code when enrolled), creates a
personal access token with that session (`POST /me/tokens`), then ends the session: the CLI keeps only the
token. Logout revokes that token on the server and forgets it locally.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated

import httpx
import typer

from madbase.clicmds import client
from madbase.clicmds.client import CliError
from madbase.clicmds.common import DataDir, command

MFA_PROMPT_MARK = "TOTP code is required"


def _post(http: httpx.Client, url: str, body: dict[str, object], headers: dict[str, str] | None = None
          ) -> httpx.Response:
    try:
        return http.post(url, json=body, headers=headers or {})
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the MadBase server at {url}: {exc}") from exc


def _check(response: httpx.Response) -> dict[str, object]:
    if response.status_code >= 400:
        raise CliError(client.message_of(response.status_code, response.content))
    body = response.json()
    assert isinstance(body, dict)
    return body


@command
def login(
    api_url: Annotated[str | None, typer.Option("--api-url", metavar="URL",
                                                help="The server (default: the local server's URL)")] = None,
    email: Annotated[str | None, typer.Option(metavar="EMAIL", help="Your admin e-mail")] = None,
    password: Annotated[str | None, typer.Option(
        metavar="PASSWORD", help="Your password (MADBASE_PASSWORD; asked when missing)")] = None,
    totp_code: Annotated[str | None, typer.Option(
        "--totp-code", metavar="CODE", help="TOTP code, when you enrolled one (asked when needed)")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", metavar="TOKEN", help="Store this personal access token instead of signing in")] = None,
    project_ref: Annotated[str | None, typer.Option(
        "--project-ref", metavar="REF", help="Default project of later commands")] = None,
    days: Annotated[int, typer.Option("--expires-in-days", metavar="DAYS", help="Token lifetime")] = 90,
    data_dir: DataDir = None,
) -> None:
    """Sign in to a MadBase server and keep a personal access token for the next commands."""
    api_url = api_url or os.environ.get("MADBASE_API_URL")
    if not api_url:
        try:  # the local server of this folder (or --data-dir), else ask
            api_url = client.resolve(data_dir=data_dir, local=True).api_url
        except CliError:
            api_url = typer.prompt("API URL")
    api_url = api_url.rstrip("/")
    token_id = None  # a token given with --token: logout only forgets it (its holder may revoke it elsewhere)
    if token is None:
        token, token_id = _sign_in(api_url, email, password, totp_code, days)
    me = client.request(client.Target(api_url, token, None, local=False), "GET", "/me")
    stored = {"api_url": api_url, "token": token, "email": me.get("email"), "token_id": token_id,
              "project_ref": project_ref}
    path = client.write_login(stored)
    print(f"Logged in to {api_url} as {me.get('email')} (token stored in {path}).")


def _sign_in(api_url: str, email: str | None, password: str | None, totp_code: str | None,
             days: int) -> tuple[str, str]:
    """(token, its id) from a password (+ second factor) login."""
    email = email or typer.prompt("E-mail")
    password = password or os.environ.get("MADBASE_PASSWORD") or typer.prompt("Password", hide_input=True)
    base = api_url + "/admin/v1"
    with httpx.Client(timeout=client.TIMEOUT) as http:
        body: dict[str, object] = {"email": email, "password": password}
        if totp_code:
            body.update(_factor(totp_code))
        answer = _post(http, base + "/login", body)
        if answer.status_code == 401 and MFA_PROMPT_MARK in client.message_of(401, answer.content) and not totp_code:
            body.update(_factor(typer.prompt("TOTP code (or a recovery code)")))
            answer = _post(http, base + "/login", body)
        session = _check(answer)
        csrf = {"x-csrf-token": str(session["csrf_token"])}
        name = f"madbase CLI on {socket.gethostname()}"[:200]
        created = _check(_post(http, base + "/me/tokens", {"name": name, "expires_in_days": days}, csrf))
        _post(http, base + "/logout", {}, csrf)  # the CLI keeps the token only; the session ends now
    return str(created["token"]), str(created["id"])


def _factor(code: str) -> dict[str, str]:
    """A 6-digit TOTP code, or a recovery code (longer, with a dash)."""
    code = code.strip()
    return {"recovery_code": code} if "-" in code or len(code) > 8 else {"totp_code": code}


@command
def logout() -> None:
    """Revoke the stored token on its server and forget it."""
    stored = client.read_login()
    if stored is None:
        print("Not logged in.")
        return
    token_id = stored.get("token_id")
    if token_id:
        target = client.Target(stored["api_url"], stored["token"], None, local=False)
        try:
            client.request(target, "DELETE", f"/me/tokens/{token_id}")
        except client.ApiError as exc:
            if exc.status not in (401, 404):  # already revoked or expired: forgetting it is enough
                raise
    client.credentials_path().unlink(missing_ok=True)
    print(f"Logged out of {stored['api_url']}.")
