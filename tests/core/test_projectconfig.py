"""Start-time settings of the default project from the environment and supabase/config.toml (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from madbase import projectconfig
from madbase.projectconfig import ProjectConfigError, merge
from madbase.projectconfig.configtoml import patch_from_toml
from madbase.projectconfig.env import patch_from_env

TOML = """
project_id = "demo"
[api]
schemas = ["public", "api"]
max_rows = 500
[auth]
site_url = "http://127.0.0.1:3000"
additional_redirect_urls = ["https://127.0.0.1:3000", "http://app.test/**"]
jwt_expiry = 7200
enable_signup = true
enable_anonymous_sign_ins = false
minimum_password_length = 8
password_requirements = "letters_digits"
[auth.rate_limit]
email_sent = 7
token_verifications = 40
[auth.email]
enable_confirmations = true
max_frequency = "1m30s"
otp_expiry = 600
[auth.email.smtp]
host = "smtp.test"
port = 2525
user = "apikey"
pass = "env(MY_SMTP_PASS)"
admin_email = "admin@test"
sender_name = "Admin"
[auth.email.template.invite]
subject = "Join us"
content_path = "./supabase/templates/invite.html"
[auth.sessions]
timebox = "24h"
[auth.hook.custom_access_token]
enabled = true
uri = "pg-functions://postgres/public/hook"
[auth.external.github]
enabled = true
client_id = "gh-id"
secret = "env(GH_SECRET)"
redirect_uri = ""
[auth.external.apple]
enabled = false
secret = "env(UNSET_SECRET)"
[storage]
file_size_limit = "10MiB"
[studio]
port = 54323
"""


def write(tmp_path: Path, text: str = TOML) -> Path:
    folder = tmp_path / "supabase"
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "invite.html").write_text("<p>{{ .ConfirmationURL }}</p>")
    (folder / "config.toml").write_text(text)
    return folder / "config.toml"


def test_config_toml_maps_onto_the_project_config(tmp_path: Path) -> None:
    patch = patch_from_toml(write(tmp_path), {"MY_SMTP_PASS": "s3cret", "GH_SECRET": "gh"})
    auth = patch["auth"]
    assert patch["db_schemas"] == ["public", "api"] and patch["db_max_rows"] == 500
    assert auth["site_url"] == "http://127.0.0.1:3000"
    assert auth["uri_allow_list"] == ["https://127.0.0.1:3000", "http://app.test/**"]
    assert auth["jwt_exp"] == 7200 and auth["disable_signup"] is False
    assert auth["external_anonymous_users_enabled"] is False and auth["password_min_length"] == 8
    assert auth["password_required_characters"].count(":") == 1
    assert auth["mailer_autoconfirm"] is False  # enable_confirmations = true
    assert auth["rate_limits"] == {"email_sent": 7, "verify": 40, "email_per_address_seconds": 90}
    assert auth["mailer_otp_exp"] == 600 and auth["sessions_timebox"] == 86400
    assert auth["smtp"] == {"host": "smtp.test", "port": 2525, "user": "apikey", "password": "s3cret",
                            "sender": "admin@test", "sender_name": "Admin"}
    assert auth["templates"]["invite"] == {"subject": "Join us", "content": "<p>{{ .ConfirmationURL }}</p>"}
    assert auth["hook_custom_access_token"] == {"enabled": True, "uri": "pg-functions://postgres/public/hook"}
    assert auth["external"]["github"] == {"enabled": True, "client_id": "gh-id", "secret": "gh", "redirect_uri": ""}
    assert auth["external"]["apple"]["enabled"] is False and auth["external"]["apple"]["secret"] == ""
    assert patch["storage"] == {"file_size_limit": "10MiB"}


def test_smtp_disabled_in_the_file_removes_the_stored_smtp(tmp_path: Path) -> None:
    patch = patch_from_toml(write(tmp_path, "[auth.email.smtp]\nenabled = false\nhost = 'x'\n"), {})
    stored = {"auth": {"smtp": {"host": "old", "password": "p"}, "site_url": "keep"}}
    assert merge(stored, patch) == {"auth": {"site_url": "keep"}}


@pytest.mark.parametrize("text, message", [
    ("[auth]\njwt_expiry = 'soon'\n", "auth.jwt_expiry"),
    ("[auth.email]\nenable_confirmations = 'maybe'\n", "auth.email.enable_confirmations"),
    ("[auth]\npassword_requirements = 'emoji'\n", "auth.password_requirements"),
    ("[auth\n", "cannot read"),
])
def test_a_bad_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ProjectConfigError, match=message):
        patch_from_toml(write(tmp_path, text), {})


def test_environment_uses_gotrue_and_supabase_names() -> None:
    patch = patch_from_env({
        "SITE_URL": "http://site", "ADDITIONAL_REDIRECT_URLS": "http://a/**, http://b",
        "ENABLE_EMAIL_AUTOCONFIRM": "true", "ENABLE_EMAIL_SIGNUP": "false", "DISABLE_SIGNUP": "t",
        "SMTP_HOST": "mx", "SMTP_PORT": "587", "SMTP_USER": "u", "SMTP_PASS": "p", "SMTP_ADMIN_EMAIL": "a@b",
        "SMTP_SENDER_NAME": "N", "JWT_EXPIRY": "900", "FILE_SIZE_LIMIT": "1048576",
        "GOTRUE_EXTERNAL_GITHUB_ENABLED": "true", "GOTRUE_EXTERNAL_GITHUB_CLIENT_ID": "cid",
        "GOTRUE_EXTERNAL_GITHUB_SECRET": "csecret", "GOTRUE_EXTERNAL_GITHUB_REDIRECT_URI": "http://cb",
        "GOTRUE_EXTERNAL_EMAIL_ENABLED": "true", "GOTRUE_SESSIONS_TIMEBOX": "1h",
        "GOTRUE_HOOK_SEND_SMS_URI": "http://hook", "GOTRUE_HOOK_SEND_SMS_SECRETS": "v1,whsec_x",
        "AWS_SECRET_ACCESS_KEY": "not-for-us", "PATH": "/bin",
    })
    auth = patch["auth"]
    assert auth["site_url"] == "http://site" and auth["uri_allow_list"] == ["http://a/**", "http://b"]
    assert auth["mailer_autoconfirm"] is True and auth["disable_signup"] is True
    assert auth["external_email_enabled"] is True  # GOTRUE_ name wins over ENABLE_EMAIL_SIGNUP
    assert auth["smtp"] == {"host": "mx", "port": 587, "user": "u", "password": "p", "sender": "a@b",
                            "sender_name": "N"}
    assert auth["jwt_exp"] == 900 and auth["sessions_timebox"] == 3600
    assert auth["external"] == {"github": {"enabled": True, "client_id": "cid", "secret": "csecret",
                                           "redirect_uri": "http://cb"}}
    assert auth["hook_send_sms"] == {"uri": "http://hook", "secrets": "v1,whsec_x"}
    assert patch["storage"] == {"file_size_limit": 1048576}  # no S3 backend: AWS variables are not read


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ProjectConfigError, match="GOTRUE_MAILER_AUTOCONFIRM"):
        patch_from_env({"GOTRUE_MAILER_AUTOCONFIRM": "yes please"})


def test_environment_wins_over_the_file_which_wins_over_the_stored_config(tmp_path: Path) -> None:
    write(tmp_path, "[auth]\nsite_url = 'http://from-file'\njwt_expiry = 100\n")
    start = projectconfig.load(tmp_path, {"GOTRUE_SITE_URL": "http://from-env"})
    stored = {"auth": {"site_url": "http://stored", "jwt_exp": 5, "disable_signup": True}, "db_schemas": ["x"]}
    assert start.apply(stored) == {"auth": {"site_url": "http://from-env", "jwt_exp": 100, "disable_signup": True},
                                   "db_schemas": ["x"]}
    assert projectconfig.load(tmp_path / "nothing", {}).empty
