"""Secrets inside a project's config are sealed in place (core/configsecrets.py), and the SQL list of secret
paths (control migration 0002) agrees with the Python one."""

from __future__ import annotations

import asyncpg
import pytest

from madbase.core import configsecrets, migrations
from madbase.core.pgcluster import PgCluster
from madbase.core.secretbox import SecretBox
from tests.support.servers import create_database

BOX = SecretBox("unit-test-master-key-0123456789")

CONFIG = {
    "auth": {"site_url": "http://x", "smtp": {"host": "mx", "password": "smtp-pass-1"},
             "external": {"github": {"client_id": "id", "secret": "gh-secret-2"}, "keycloak": {"secret": ""}},
             "hook_send_sms": {"uri": "http://h", "secrets": "v1,whsec_abc"}},
    "storage": {"s3": {"bucket": "b", "secret_access_key": "s3-secret-3"}},
}


def test_seal_hides_every_secret_and_opens_back() -> None:
    sealed = configsecrets.seal(BOX, "proj", CONFIG)
    text = str(sealed)
    for secret in ("smtp-pass-1", "gh-secret-2", "v1,whsec_abc", "s3-secret-3"):
        assert secret not in text
    assert sealed["auth"]["site_url"] == "http://x" and sealed["auth"]["smtp"]["host"] == "mx"
    assert sealed["auth"]["external"]["keycloak"]["secret"] == ""  # nothing to hide
    assert not configsecrets.has_plain(sealed) and configsecrets.has_plain(CONFIG)
    opened, plain = configsecrets.open_all(BOX, "proj", sealed)
    assert opened == CONFIG and not plain
    assert configsecrets.seal(BOX, "proj", sealed) == sealed  # sealing twice changes nothing


def test_a_sealed_value_is_bound_to_its_project_and_field() -> None:
    sealed = configsecrets.seal(BOX, "proj", CONFIG)
    opened, _ = configsecrets.open_all(BOX, "other", sealed)
    assert opened["auth"]["smtp"]["password"] == ""  # another project's row: does not open
    moved = configsecrets.seal(BOX, "proj", CONFIG)
    moved["auth"]["external"]["github"]["secret"] = moved["auth"]["smtp"]["password"]
    opened, _ = configsecrets.open_all(BOX, "proj", moved)
    assert opened["auth"]["external"]["github"]["secret"] == ""  # another field: does not open
    assert opened["auth"]["smtp"]["password"] == "smtp-pass-1"


def test_plain_values_are_reported_and_redacted() -> None:
    opened, plain = configsecrets.open_all(BOX, "proj", CONFIG)
    assert plain and opened == CONFIG
    redacted = configsecrets.redact(CONFIG)
    assert redacted["auth"]["smtp"]["password"] == "[sealed]" and "gh-secret-2" not in str(redacted)


@pytest.mark.parametrize("value", ["plain", 12345])
async def test_sql_and_python_agree_on_secret_paths(pg_cluster: PgCluster, value: object) -> None:
    conn = await asyncpg.connect(await create_database(pg_cluster, "cs"))
    try:
        await migrations.apply(conn, "control")
        paths = await conn.fetchval("select madbase_control.config_secret_paths()")
        assert sorted(paths) == sorted("$." + ".".join(p) for p in configsecrets.SECRET_PATHS)
        import json

        has = "select madbase_control.config_has_plain_secrets($1::jsonb)"
        for pattern in configsecrets.SECRET_PATHS:
            doc: dict[str, object] = {}
            node = doc
            for key in pattern[:-1]:
                node = node.setdefault("x" if key == "*" else key, {})  # type: ignore[assignment]
            node[pattern[-1]] = value
            assert await conn.fetchval(has, json.dumps(doc)), pattern
            assert configsecrets.has_plain(doc), pattern
            sealed = configsecrets.seal(BOX, "r", doc)
            assert not await conn.fetchval(has, json.dumps(sealed)), pattern
        assert not await conn.fetchval(has, json.dumps({"auth": {"smtp": {"password": ""}}}))
    finally:
        await conn.close()


def test_opened_secrets_stay_out_of_reprs() -> None:
    from madbase.auth import config as auth_config
    from madbase.core.control import ProjectRecord

    record = ProjectRecord(ref="r", name="n", status="active", db_url="postgresql://x", jwt_secret="jwt-s3cret",
                           anon_key="anon", service_role_key="svc-s3cret", login_role="l",
                           login_password="login-s3cret", config=CONFIG)
    parsed = auth_config.parse(CONFIG["auth"])  # type: ignore[arg-type]
    text = repr(record) + repr(parsed)
    for secret in ("smtp-pass-1", "gh-secret-2", "v1,whsec_abc", "jwt-s3cret", "svc-s3cret", "login-s3cret"):
        assert secret not in text
