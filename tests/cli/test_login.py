"""`madbase login` / `logout`: a password (+ TOTP) login turned into a personal access token stored 0600 in
the user's config folder; later commands reach the server through it without a data folder; logout revokes."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import httpx
import pyotp

from tests.cli.conftest import Cli, run_cli
from tests.support.servers import MadbaseProcess


def _admin(cli: Cli, email: str, password: str) -> None:
    made = cli("admin", "create", "--email", email, "--password", password)
    assert made.returncode == 0, made.stderr


def test_login_stores_a_token_and_logout_revokes_it(cli: Cli, cli_server: MadbaseProcess, config_dir: Path,
                                                     tmp_path: Path) -> None:
    _admin(cli, "cli-login@example.com", "correct horse battery staple")
    elsewhere = tmp_path / "elsewhere"  # no data folder here: only the login can find the server
    elsewhere.mkdir()
    env = {"MADBASE_CONFIG_DIR": str(config_dir)}
    wrong = run_cli(["login", "--api-url", cli_server.url, "--email", "cli-login@example.com", "--password", "nope"],
                    cwd=elsewhere, env=env)
    assert wrong.returncode == 1 and wrong.stderr.strip() == "madbase: Invalid login credentials"
    ok = run_cli(["login", "--api-url", cli_server.url, "--email", "cli-login@example.com",
                  "--password", "correct horse battery staple", "--project-ref", cli_server.project_ref],
                 cwd=elsewhere, env=env)
    assert ok.returncode == 0, ok.stderr
    stored_path = config_dir / "credentials.json"
    assert stat.S_IMODE(stored_path.stat().st_mode) == 0o600
    stored = json.loads(stored_path.read_text())
    assert stored["api_url"] == cli_server.url and stored["token"].startswith("mbp_")
    me = httpx.get(cli_server.url + "/admin/v1/me", headers={"Authorization": f"Bearer {stored['token']}"})
    assert me.json()["email"] == "cli-login@example.com" and me.json()["method"] == "token"
    # the login's session ended: the CLI keeps only the token
    sessions = httpx.get(cli_server.url + "/admin/v1/me/sessions",
                         headers={"Authorization": f"Bearer {stored['token']}"}).json()["sessions"]
    assert sessions == []

    # a command through the stored login (default project from --project-ref at login)
    listed = run_cli(["gen", "types", "typescript"], cwd=elsewhere, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("export type Json")
    # --local: the local server (its data folder) even though logged in
    local = run_cli(["gen", "types", "typescript", "--local", "--data-dir", str(cli_server.data_dir)],
                    cwd=elsewhere, env=env)
    assert local.returncode == 0, local.stderr
    no_local = run_cli(["gen", "types", "typescript", "--local"], cwd=elsewhere, env=env)
    assert no_local.returncode == 1 and "no MadBase server is running with data folder" in no_local.stderr

    out = run_cli(["logout"], cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr
    assert not stored_path.exists()
    assert httpx.get(cli_server.url + "/admin/v1/me",
                     headers={"Authorization": f"Bearer {stored['token']}"}).status_code == 401
    again = run_cli(["gen", "types", "typescript"], cwd=elsewhere, env=env)
    assert again.returncode == 1 and "no MadBase server is running" in again.stderr


def test_login_with_totp_and_token_option(cli: Cli, cli_server: MadbaseProcess, config_dir: Path,
                                          tmp_path: Path) -> None:
    email, password = "cli-totp@example.com", "another long passphrase here"
    _admin(cli, email, password)
    with httpx.Client(base_url=cli_server.url + "/admin/v1") as http:
        session = http.post("/login", json={"email": email, "password": password}).json()
        csrf = {"x-csrf-token": session["csrf_token"]}
        secret = http.post("/me/totp", headers=csrf).json()["secret"]
        verified = http.post("/me/totp/verify", json={"code": pyotp.TOTP(secret).now()}, headers=csrf)
        assert verified.status_code == 200
        recovery = verified.json()["recovery_codes"]
    env = {"MADBASE_CONFIG_DIR": str(config_dir)}
    base = ["login", "--api-url", cli_server.url, "--email", email, "--password", password]
    missing = run_cli(base, cwd=tmp_path, env=env, stdin="")  # no code given and none typed
    assert missing.returncode != 0
    # the code asked for at the prompt: here a recovery code
    # (and no --api-url: the URL of the local server of --data-dir)
    prompted = run_cli(["login", "--data-dir", str(cli_server.data_dir), "--email", email, "--password", password],
                       cwd=tmp_path, env=env, stdin=recovery[0] + "\n")
    assert prompted.returncode == 0, prompted.stderr
    assert json.loads((config_dir / "credentials.json").read_text())["api_url"] == cli_server.url
    # --totp-code: the next time step's code (the current one was burnt by the verification above)
    ok = run_cli([*base, "--totp-code", pyotp.TOTP(secret).at(time.time() + 30)], cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stderr
    token = json.loads((config_dir / "credentials.json").read_text())["token"]

    # --token / MADBASE_ACCESS_TOKEN with --api-url, no stored login needed
    other = tmp_path / "other-config"
    viaenv = run_cli(["gen", "types", "typescript", "--api-url", cli_server.url,
                      "--project-ref", cli_server.project_ref],
                     cwd=tmp_path, env={"MADBASE_CONFIG_DIR": str(other), "MADBASE_ACCESS_TOKEN": token})
    assert viaenv.returncode == 0, viaenv.stderr
    bad = run_cli(["gen", "types", "typescript", "--api-url", cli_server.url, "--token", "mbp_nope",
                   "--project-ref", cli_server.project_ref], cwd=tmp_path, env={"MADBASE_CONFIG_DIR": str(other)})
    assert bad.returncode == 1
    assert bad.stderr.strip() == "madbase: Unauthorized: invalid, expired or revoked token"
