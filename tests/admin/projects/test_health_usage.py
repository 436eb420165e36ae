"""A project's health (database, replication, storage checked now) and its per-minute usage samples (per process),
plus the pure parts: the database checks' report, the settings schema, masking, the latency quantiles."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from madbase.admin import configschema, dbprobe, settings
from madbase.admin.usage import SERIES, _quantile
from tests.admin.projects.conftest import SAMPLE, Admin, project_headers, wait_for
from tests.support.servers import MadbaseProcess


def test_health_and_usage(pm_server: MadbaseProcess, admin: Admin) -> None:
    r = admin("POST", "/projects", json={"name": "usage"})
    ref, keys = r.json()["ref"], r.json()["api_keys"]
    r = admin("GET", f"/projects/{ref}/health")
    assert r.status_code == 200, r.text
    health = r.json()
    assert health["status"] == "healthy" and health["project_status"] == "active", health
    checks = health["checks"]
    assert checks["database"]["ok"] and checks["replication"]["wal_level"] == "logical"
    assert checks["storage"] == {**checks["storage"], "ok": True, "backend": "fs"}
    with httpx.Client(base_url=pm_server.url, headers=project_headers(ref, keys["anon"])) as c:
        for _ in range(20):
            assert c.get("/rest/v1/").status_code == 200
        assert c.get("/rest/v1/nosuchtable").status_code == 404

    def requests() -> float:
        out = admin("GET", f"/projects/{ref}/usage?period=1h").json()
        return sum(v for _, v in out["series"]["requests"])

    wait_for(lambda: requests() >= 21, timeout=10)
    out = admin("GET", f"/projects/{ref}/usage?period=24h").json()
    assert out["period"] == "24h" and out["per_process"] is True and out["interval_seconds"] == SAMPLE
    assert set(out["series"]) == set(SERIES)
    assert all(isinstance(p, list) and len(p) == 2 for p in out["series"]["latency_p99_ms"])
    assert max(v for _, v in out["series"]["latency_p99_ms"]) > 0
    assert admin("GET", f"/projects/{ref}/usage?period=7d").status_code == 400
    # another project's samples stay its own
    other = admin("POST", "/projects", json={"name": "idle"}).json()["ref"]
    time.sleep(SAMPLE * 2)
    assert sum(v for _, v in admin("GET", f"/projects/{other}/usage").json()["series"]["requests"]) == 0


def test_database_checks_report() -> None:
    facts: dict[str, Any] = {"version_num": 130012, "version": "13.12", "wal_level": "replica", "max_slots": 2,
                             "used_slots": 2, "rolsuper": False, "rolreplication": False, "rolcreaterole": True,
                             "login": "app", "db": "shop", "can_create": True, "extensions": ["pgcrypto"]}
    checks = {c.name: c for c in dbprobe.facts_checks(facts)}
    assert not dbprobe.passed(list(checks.values()))
    assert not checks["version"].ok and "14 or later" in checks["version"].detail
    assert not checks["wal_level"].ok and "wal_level = logical" in checks["wal_level"].detail
    assert not checks["replication_slots"].ok and not checks["replication"].ok
    assert checks["create_roles"].ok and checks["create_schemas"].ok
    assert not checks["extensions"].ok and not checks["extensions"].required
    message = dbprobe.failure_message(list(checks.values()))
    assert "version" in message and "extensions" not in message
    assert dbprobe.masked("postgresql://u:secret@h:5432/d") == "postgresql://u:********@h:5432/d"
    for bad in ("", "http://x/y", "postgresql://h:5432/", "postgresql://h:99999/d", 3):
        assert dbprobe.url_problem(bad), bad


@pytest.mark.parametrize(("section", "body", "words"), [
    ("auth", {"jwt_exp": 10}, "between 30"),
    ("auth", {"rate_limits": {"otp": "many"}}, "rate_limits.otp"),
    ("auth", {"templates": {"invite": {"subject": 1}}}, "templates.invite.subject"),
    ("storage", {"file_size_limit": "lots"}, "file_size_limit"),
    ("storage", {"s3": {"bucket": ["x"]}}, "s3.bucket"),
    ("jwt", {"expiry": "forever"}, "expiry"),
    ("api", {"max_rows": 0}, "max_rows"),
])
def test_schema_refusals_name_the_setting(section: str, body: dict[str, Any], words: str) -> None:
    with pytest.raises(configschema.SchemaError, match=words.replace(".", r"\.")):
        settings.patched(section, {}, body)


def test_settings_views_and_patches() -> None:
    config = {"db_schemas": "public,api", "auth": {"jwt_exp": 600, "smtp": {"host": "h", "password": "pw"}},
              "storage": {"backend": "s3", "s3": {"bucket": "b", "secret_access_key": "sk"}}}
    assert settings.view("api", config)["db_schemas"] == ["public", "api"]
    assert settings.view("jwt", config) == {"expiry": 600, "issuer": "", "audience": "authenticated"}
    assert settings.view("auth", config)["smtp"] == {"host": "h", "password": "********"}
    assert settings.view("storage", config)["s3"]["secret_access_key"] == "********"
    assert settings.view("realtime", config) == {}
    kept = settings.patched("auth", config, {"smtp": {"password": "********", "port": 2525}})
    assert kept["auth"]["smtp"] == {"host": "h", "password": "pw", "port": 2525}
    assert settings.patched("api", config, {"db_schema": "a, b", "max_rows": 5})["db_schemas"] == "a,b"
    assert settings.patched("jwt", config, {"expiry": "1h"})["auth"]["jwt_exp"] == 3600
    assert settings.patched("storage", config, {"file_size_limit": "50MB"})["storage"]["file_size_limit"] == "50MB"


def test_latency_quantiles() -> None:
    assert _quantile([], 0.5) == 0.0
    counts = [0] * 14
    counts[2] = 98  # ≤ 5 ms
    counts[7] = 2  # ≤ 250 ms
    assert _quantile(counts, 0.5) == 5.0
    assert _quantile(counts, 0.99) == 250.0
