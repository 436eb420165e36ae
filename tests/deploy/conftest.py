"""The native topology of deploy/docker-compose.yml, started by deploy/native/run.sh: nginx balancing two
`madbase start` processes over one PostgreSQL (a cluster of its own, so a test may restart it), Redis for
realtime fan-out and moto as the S3 server. One topology serves the whole package (starting it costs
~10 s); tests that kill or restart a process bring it back before they end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from madbase.core.pgcluster import PgCluster
from tests.support.servers import MASTER_KEY, free_port

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "deploy" / "native" / "run.sh"
PROXY_BIND = "127.0.0.2"  # nginx's source address towards MadBase: the only trusted proxy


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.skip(f"{tool} is not installed")


@dataclass
class Topology:
    dir: Path
    env: dict[str, str]
    cluster: PgCluster
    db_url: str
    nginx_port: int
    ports: list[int]
    s3_endpoint: str
    bucket: str
    state: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def direct(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index - 1]}"

    @property
    def anon_key(self) -> str:
        return self.state["anon_key"]

    @property
    def service_role_key(self) -> str:
        return self.state["service_role_key"]

    @property
    def jwt_secret(self) -> str:
        return self.state["jwt_secret"]

    def headers(self, token: str | None = None, *, service: bool = False) -> dict[str, str]:
        key = self.service_role_key if service else self.anon_key
        return {"apikey": key, "Authorization": f"Bearer {token or key}"}

    def pid(self, index: int) -> int:
        return int((self.dir / f"madbase-{index}.pid").read_text())

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(RUN), *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def log(self, index: int) -> str:
        return (self.dir / f"madbase-{index}.log").read_text(errors="replace")

    def access_log(self) -> list[dict[str, object]]:
        path = self.dir / "nginx-access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def ensure_up(self) -> None:
        """Start whatever a test stopped (run.sh up starts only what is not running)."""
        self.run("up")


class OtlpReceiver:
    """A local OTLP/HTTP receiver (JSON encoding): keeps every span posted to /v1/traces."""

    def __init__(self) -> None:
        self.spans: list[dict[str, object]] = []
        self.resources: list[dict[str, object]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                ok = self.path == "/v1/traces" and self.headers.get("content-type") == "application/json"
                if ok:
                    payload = json.loads(body)
                    for rs in payload["resourceSpans"]:
                        receiver.resources.append(rs["resource"])
                        for ss in rs["scopeSpans"]:
                            receiver.spans.extend(ss["spans"])
                self.send_response(200 if ok else 415)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="package")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


def _moto(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto did not start")


@pytest.fixture(scope="package")
def topology(otlp: OtlpReceiver) -> Iterator[Topology]:
    _need("nginx", "redis-server")
    root = Path(tempfile.mkdtemp(prefix="madbase-deploy-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    moto_port = free_port()
    moto = _moto(moto_port)
    s3 = f"http://127.0.0.1:{moto_port}"
    bucket = "madbase-deploy"
    httpx.put(f"{s3}/{bucket}", timeout=10).raise_for_status()
    ports = [free_port(), free_port()]
    nginx_port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "NATIVE_DIR": str(root / "native"), "NGINX_PORT": str(nginx_port),
        "MADBASE_PORTS": " ".join(map(str, ports)), "REDIS_PORT": str(free_port()),
        "MADBASE": f"{sys.executable} -m madbase", "NGINX_PROXY_BIND": PROXY_BIND,
        "DATABASE_URL": cluster.dsn("postgres"), "MADBASE_MASTER_KEY": MASTER_KEY,
        "MADBASE_DRAIN_SECONDS": "1", "MADBASE_SHUTDOWN_TIMEOUT": "10", "LOG_LEVEL": "INFO",
        "MADBASE_POOL_SIZE": "8", "MADBASE_DBSTATS_INTERVAL": "1",
        "STORAGE_BACKEND": "s3", "GLOBAL_S3_BUCKET": bucket, "GLOBAL_S3_ENDPOINT": s3,
        "GLOBAL_S3_FORCE_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "REGION": "us-east-1", "FILE_SIZE_LIMIT": str(2 << 30),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_SERVICE_NAME": "madbase-deploy-test",
    }
    topo = Topology(dir=root / "native", env=env, cluster=cluster, db_url=cluster.dsn("postgres"),
                    nginx_port=nginx_port, ports=ports, s3_endpoint=s3, bucket=bucket, state={})
    try:
        topo.run("up")
        topo.state = json.loads((topo.dir / "madbase-1" / "state.json").read_text())
        yield topo
    finally:
        subprocess.run([str(RUN), "down"], env=env, capture_output=True, timeout=120)
        moto.terminate()
        moto.wait(10)
        cluster.destroy()
        if os.environ.get("MADBASE_DEPLOY_KEEP") != "1":  # keep the logs to look at
            shutil.rmtree(root, ignore_errors=True)
