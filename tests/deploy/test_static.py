"""The deployment files, checked without containers (no image can be pulled here): docker-compose and
podman-compose parse the stack with the example settings, every service is pinned, non-root, health-checked
and limited; nginx accepts the proxy configuration (with the native topology's 127.0.0.1 upstreams, as
deploy/native/run.sh renders it); promtool accepts and unit-tests the alert rules; the dashboards are valid
Grafana dashboard JSON whose every query names a metric MadBase exports (or one listed as pending)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
SYSTEM_PYTHON = "/usr/bin/python3"  # podman-compose is a module of Debian's Python, not of the venv

#: one-shot or socket-reading services (documented in docker-compose.yml)
NO_HEALTHCHECK = {"minio-init"}
ROOT_ALLOWED = {"promtail"}
SUPABASE_NAMES = {"POSTGRES_PASSWORD", "JWT_SECRET", "ANON_KEY", "SERVICE_ROLE_KEY", "DASHBOARD_USERNAME",
                  "DASHBOARD_PASSWORD", "SITE_URL", "API_EXTERNAL_URL", "SUPABASE_PUBLIC_URL", "POSTGRES_DB",
                  "PGRST_DB_SCHEMAS", "KONG_HTTP_PORT"}


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package; .ci/run installs it)")
    return path


def test_env_example_uses_supabase_names() -> None:
    env = _env_example()
    assert SUPABASE_NAMES <= set(env), SUPABASE_NAMES - set(env)
    # every ${VAR} the compose file reads without a default is in the example
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)\}", COMPOSE.read_text()))
    assert needed <= set(env), needed - set(env)


def test_docker_compose_config() -> None:
    tool = _need("docker-compose")
    done = subprocess.run([tool, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config"],
                          capture_output=True, text=True, timeout=60, cwd=DEPLOY)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services: dict[str, Any] = config["services"]
    assert {"db", "minio", "redis", "madbase-1", "madbase-2", "nginx", "victoriametrics", "vmagent", "vmalert",
            "loki", "promtail", "grafana"} <= set(services)
    for name, service in services.items():
        image = service.get("image", "")
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        if name not in ROOT_ALLOWED:
            user = str(service.get("user", ""))
            assert user and not user.startswith(("0:", "root")) and user != "0", f"{name} runs as root"
        if name not in NO_HEALTHCHECK:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory") and limits.get("cpus"), f"{name} has no resource limits"
    db_command = " ".join(services["db"]["command"])
    assert "wal_level=logical" in db_command
    for name in ("madbase-1", "madbase-2"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://postgres:change-me")
        assert env["MADBASE_REALTIME_REDIS_URL"].startswith("redis://redis:")
        assert env["MADBASE_TRUSTED_PROXIES"]
        assert env["STORAGE_BACKEND"] == "s3" and env["GLOBAL_S3_ENDPOINT"] == "http://minio:9000"
        assert "/ready" in " ".join(services[name]["healthcheck"]["test"])
    assert services["nginx"]["depends_on"]["madbase-1"]["condition"] == "service_healthy"
    # the second process starts once the first has created the control plane (no double default project)
    assert services["madbase-2"]["depends_on"]["madbase-1"]["condition"] == "service_healthy"
    assert services["madbase-2"]["depends_on"]["db"]["condition"] == "service_healthy"


_PODMAN_PARSE = """
import json, sys
import podman_compose as pcm
pc = pcm.podman_compose
sys.argv = ["podman-compose", "-f", sys.argv[1], "ps"]
pc._parse_args()
pc._parse_compose_file()
class NoPodman:  # volume inspection would call podman; the arguments are all we want
    def output(self, *a, **k): return b"[]"
pc.podman = NoPodman()
out = {}
for cnt in pc.containers:
    out[cnt["service_name"]] = pcm.container_to_args(pc, cnt)
print("\\n@@" + json.dumps(out))
"""


def test_podman_compose_parses() -> None:
    """podman-compose 1.0 has no `config` command: its own parser and argument builder turn every service
    into the `podman run` arguments it would use (nothing is started)."""
    _need("podman-compose")
    env = {**_env_example(), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([SYSTEM_PYTHON, "-c", _PODMAN_PARSE, str(COMPOSE)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    runs: dict[str, list[str]] = json.loads(done.stdout.rsplit("\n@@", 1)[1])
    assert {"madbase-1", "madbase-2", "nginx", "db", "grafana"} <= set(runs)
    for name, args in runs.items():
        joined = " ".join(args)
        assert "${" not in joined, f"{name}: unexpanded variable in {joined}"
        if name not in NO_HEALTHCHECK:
            assert "--healthcheck-command" in args, name
        if name not in ROOT_ALLOWED:
            assert "-u" in args, name
        assert "-m" in args and "--cpus" in args, name
    assert "MADBASE_REALTIME_REDIS_URL=redis://redis:6379/0" in runs["madbase-1"]


def _nginx_test(conf: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    return subprocess.run([_need("nginx"), "-t", "-c", str(path), "-p", str(tmp_path), "-e",
                           str(tmp_path / "error.log")], capture_output=True, text=True, timeout=30)


def test_nginx_accepts_the_native_rendering(tmp_path: Path) -> None:
    done = subprocess.run([str(DEPLOY / "native" / "run.sh"), "nginx-conf", "18080", "127.0.0.1:9001",
                           "127.0.0.1:9002"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin:/usr/sbin", "NATIVE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    conf = done.stdout
    assert "server 127.0.0.1:9001" in conf and "server 127.0.0.1:9002" in conf and "madbase-1:8000" not in conf
    checked = _nginx_test(conf, tmp_path)
    assert checked.returncode == 0, checked.stderr
    # what the HA and streaming behaviour rests on
    for directive in ("proxy_request_buffering off;", "proxy_buffering off;", "proxy_next_upstream error timeout",
                      "proxy_set_header Upgrade $http_upgrade;", "X-Forwarded-For $proxy_add_x_forwarded_for",
                      "client_max_body_size 0;"):
        assert directive in conf, directive
    directives = "\n".join(line.split("#")[0] for line in conf.splitlines())
    assert "ip_hash" not in directives and "sticky" not in directives and "hash " not in directives  # no affinity


def test_nginx_accepts_the_compose_file_with_hosts_resolved(tmp_path: Path) -> None:
    """The compose variant differs only in its upstream host names (which nginx resolves at load)."""
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    conf = re.sub(r"madbase-\d:8000", "127.0.0.1:8000", conf).replace("listen [::]:8080;", "")
    conf = conf.replace("listen 8080;", "listen 127.0.0.1:18099;").replace("/tmp/nginx", str(tmp_path / "nginx"))
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    checked = _nginx_test(conf, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_victoria_metrics_accepts_the_scrape_config() -> None:
    tool = _need("victoria-metrics")
    scrape = DEPLOY / "vmagent" / "scrape.yml"
    done = subprocess.run([tool, "-promscrape.config.dryRun", f"-promscrape.config={scrape}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_and_unit_tests_the_alerts() -> None:
    tool = _need("promtool")
    rules = DEPLOY / "prometheus" / "alerts.yml"
    done = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([tool, "test", "rules", "alerts.test.yml"], capture_output=True, text=True, timeout=60,
                          cwd=rules.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    names = {r["alert"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]}
    assert names == {"MadBaseInstanceDown", "MadBaseHigh5xxRatio", "MadBaseHighP99Latency",
                     "MadBaseReplicationSlotLag", "MadBaseReplicationSlotInactive", "MadBasePoolSaturation",
                     "MadBaseMailOutboxStuck"}
    tested = set(re.findall(r"alertname: (\w+)", (rules.parent / "alerts.test.yml").read_text()))
    assert tested == names, names - tested
    ops = (ROOT / "docs" / "operations.md").read_text().lower()
    for name in names:
        assert f"### {name.lower()}" in ops, f"docs/operations.md does not explain {name}"


# -- Grafana dashboards ------------------------------------------------------------------------------------
_PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "table", "logs", "bargauge", "text", "heatmap"}


def dashboards() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, json.loads(p.read_text())) for p in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))]


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, datasource type, expression) of every target of every panel."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["datasource"]["type"], target["expr"]))
    return out


def test_dashboards_are_grafana_dashboards() -> None:
    """The parts of Grafana's dashboard schema (v39) a provisioned dashboard must get right: unique uid,
    schemaVersion, panels with unique ids, known types, a grid position inside the 24-column grid, targets
    with refIds on a provisioned data source; template variables with a query."""
    found = dashboards()
    assert {d["uid"] for _, d in found} == {"madbase-overview", "madbase-logs"}
    sources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())
    uids = {s["uid"]: s["type"] for s in sources["datasources"]}
    for path, dash in found:
        assert isinstance(dash["title"], str) and dash["title"], path
        assert dash["schemaVersion"] >= 36 and isinstance(dash["panels"], list), path
        assert "id" not in dash or dash["id"] is None, "a provisioned dashboard must not carry a database id"
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), path
        for panel in dash["panels"]:
            assert panel["type"] in _PANEL_TYPES, panel["type"]
            grid = panel["gridPos"]
            assert set(grid) == {"h", "w", "x", "y"} and 0 < grid["w"] and grid["x"] + grid["w"] <= 24, panel
            if panel["type"] == "row":
                continue
            assert uids.get(panel["datasource"]["uid"]) == panel["datasource"]["type"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), panel["title"]
            for target in panel["targets"]:
                assert target["expr"].strip(), panel["title"]
        for var in dash.get("templating", {}).get("list", []):
            assert var["name"] and var["type"] in {"query", "textbox", "custom", "interval"}, var
    grafana_uids = {"victoriametrics", "loki", "alertmanager"}
    assert grafana_uids <= set(uids)


def test_dashboards_cover_the_issue_list() -> None:
    overview = next(d for _, d in dashboards() if d["uid"] == "madbase-overview")
    text = json.dumps(overview)
    for metric in ("madbase_http_requests_total", "madbase_http_request_duration_seconds_bucket",
                   "madbase_db_pool_connections", "madbase_db_replication_slot_lag_bytes", "madbase_realtime_sockets",
                   "madbase_function_invocations_total", "madbase_function_duration_seconds_bucket",
                   "madbase_storage_uploaded_bytes_total", "madbase_storage_downloaded_bytes_total",
                   "madbase_auth_sign_ins_total"):
        assert metric in text, metric
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in text
    assert {v["name"] for v in overview["templating"]["list"]} == {"project", "service"}


def test_dockerfile_is_multistage_slim_non_root_with_healthcheck() -> None:
    """No image can be built here: the Dockerfile's promises are checked as text."""
    text = (ROOT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    froms = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [stage for _, stage in froms] == ["build", "runtime"]
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base  # pinned patch release, slim variant
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=build /opt/madbase /opt/madbase" in runtime
    assert "pip install" not in runtime and "apt-get" not in runtime  # nothing built in the final stage
    user = re.search(r"^USER (\S+)$", runtime, re.M)
    assert user and user.group(1).split(":")[0] not in ("0", "root")
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD .*/ready", runtime, re.M)
    assert 'ENTRYPOINT ["madbase"]' in runtime
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*")] == "*" and {"!src/", "!requirements.lock", "!pyproject.toml"} <= set(ignore)
    # everything the build stage copies is let through by .dockerignore
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for name in copied.split():
            assert f"!{name.rstrip('/')}" in {line.rstrip("/") for line in ignore}, name
