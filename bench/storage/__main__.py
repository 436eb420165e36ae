"""Storage benchmark: download/upload MB/s for 1 MB and 200 MB objects on the filesystem backend, 4 KB
objects per second, and server RSS during the large transfers — with nginx (Debian package) serving the same
files and accepting the same bodies to disk (WebDAV PUT) over loopback in the same run, and the ratio.

    ./dev bench storage            (ROUNDS=3 DUR=5 CONNS=16 FSYNC=0 by default; needs nginx, curl, wrk)
    ONLY=targets ./dev bench storage   (just the two target ratios below)

The target ratios, measured in the same run: a 4 KB download with a *user* token (role authenticated, RLS
policy on storage.objects decides) in req/s against REST's single-row GET (`/rest/v1/items?id=eq.1`) with the
same token — both one request transaction under the same role, so the ratio is storage's own overhead
(object row read + file open/read) over REST's; and the 200 MB upload against nginx's WebDAV PUT.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import asyncpg
import httpx
from tests.support.servers import MadbaseProcess, create_database, external_db_env, free_port

from bench.common import wrk
from madbase.core.jwt import sign_hs256
from madbase.core.pgcluster import PgCluster

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DUR = int(os.environ.get("DUR", "5"))
CONNS = int(os.environ.get("CONNS", "16"))
# nginx does not fsync what it receives; compare like with like unless FSYNC=1 (MadBase's default is on)
FSYNC = os.environ.get("FSYNC", "0") == "1"
ONLY = os.environ.get("ONLY", "")
MB = 1024 * 1024
USER_SETUP = """
create table public.items (id int primary key, name text, price numeric);
insert into public.items select g, 'item-' || g, g * 1.5 from generate_series(1, 10000) g;
grant select on public.items to authenticated;
create policy bench_read on storage.objects for select to authenticated using (bucket_id = 'bench');
notify pgrst, 'reload schema';
"""
SIZES = {"4k": 4096, "1m": MB, "200m": 200 * MB}

NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location /files/ {{ root {root}/www; }}
    location /put/ {{
      root {root}/www;
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
      client_body_buffer_size 1m;
    }}
  }}
}}
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Peak:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> Peak:
        self._t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._t.join()


def curl_speed(args: list[str]) -> float:
    """MB/s of one curl transfer (download or upload, whichever curl reports as non-zero)."""
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{speed_upload} %{http_code}",
                          *args], capture_output=True, text=True, timeout=600, check=True).stdout.split()
    if not out[2].startswith("2"):
        raise RuntimeError(f"curl got HTTP {out[2]} for {args[-1]}")
    return max(float(out[0]), float(out[1])) / MB


def wrk_rps(url: str, headers: dict[str, str], script: str | None = None) -> float:
    args = ["wrk", "-t2", f"-c{CONNS}", f"-d{DUR}s"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if script:
        args += ["-s", script]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=DUR + 60, check=True).stdout
    bad = [line for line in out.splitlines() if "Non-2xx" in line]
    if bad:
        raise RuntimeError(f"wrk saw errors for {url}: {bad[0]}")
    return float(out.split("Requests/sec:")[1].split()[0])


def post_script(root: Path, name: str, method: str, path_prefix: str, size: int, extra: dict[str, str]) -> str:
    script = root / f"{name}.lua"
    headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in extra.items())
    script.write_text(
        f'wrk.method = "{method}"\nwrk.body = string.rep("x", {size})\n{headers}'
        f'local n = 0\nrequest = function()\n  n = n + 1\n'
        f'  return wrk.format(nil, "{path_prefix}" .. math.random(1, 1000000000) .. "-" .. n)\nend\n')
    return str(script)


def med(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="madbase-bench-storage-"))
    cluster = PgCluster(root / "pg", free_port(), "postgres", fsync=False)
    cluster.start()
    server: MadbaseProcess | None = None
    nginx: subprocess.Popen[bytes] | None = None
    try:
        www = root / "www" / "files"
        www.mkdir(parents=True)
        (root / "www" / "put").mkdir()
        for name, size in SIZES.items():
            with (www / name).open("wb") as handle:
                left = size
                while left:
                    block = os.urandom(min(left, MB))
                    handle.write(block)
                    left -= len(block)
        db_url = asyncio.run(create_database(cluster, "bench"))
        env = external_db_env(db_url, LOG_LEVEL="WARNING", MADBASE_ACCESS_LOG="false")
        server = MadbaseProcess(root / "srv", env).start()

        async def configure() -> None:
            conn = await asyncpg.connect(db_url)
            try:
                await conn.execute("update madbase_control.projects set config = config || $1::jsonb",
                                   json.dumps({"storage": {"file_size_limit": "1GB", "fsync": FSYNC}}))
            finally:
                await conn.close()

        asyncio.run(configure())
        server.stop()
        server.start()
        assert server.proc is not None
        pid = server.proc.pid
        port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""  # workers must write into our temporary folder
        (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=port, user=user))
        nginx = subprocess.Popen(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ng = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                httpx.get(ng + "/files/4k", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        key = server.service_role_key
        auth = {"apikey": key, "Authorization": f"Bearer {key}"}
        hflags = [x for k, v in auth.items() for x in ("-H", f"{k}: {v}")]
        api = server.url + "/storage/v1"
        httpx.post(api + "/bucket", json={"id": "bench"}, headers=auth).raise_for_status()
        for name in SIZES:
            curl_speed([*hflags, "-H", "content-type: application/octet-stream", "-H", "x-upsert: true",
                        "--data-binary", f"@{www / name}", f"{api}/object/bench/{name}"])
        time.sleep(1)
        idle = rss_mb(pid)
        rows: list[tuple[str, float, float, str]] = []

        # user token: storage 4 KB download vs REST single-row GET, alternating per round
        async def user_setup() -> None:
            conn = await asyncpg.connect(db_url)
            try:
                await conn.execute(USER_SETUP)
            finally:
                await conn.close()

        asyncio.run(user_setup())
        now = int(time.time())
        token = sign_hs256({"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated",
                            "aud": "authenticated", "iat": now, "exp": now + 7200}, server.jwt_secret)
        user = {"apikey": server.anon_key, "Authorization": f"Bearer {token}"}
        rest_url = server.url + "/rest/v1/items?id=eq.1"
        for _ in range(100):
            if httpx.get(rest_url, headers=user).status_code == 200:
                break
            time.sleep(0.1)
        got = httpx.get(f"{api}/object/authenticated/bench/4k", headers=user)
        assert got.status_code == 200 and len(got.content) == 4096, got.text[:200]
        wrk_rps(f"{api}/object/authenticated/bench/4k", user)  # warm-up
        wrk_rps(rest_url, user)
        if os.environ.get("PROFILE"):  # PROFILE=out.txt: py-spy's collapsed stacks of the server during one run
            for url, out in ((f"{api}/object/authenticated/bench/4k", os.environ["PROFILE"]),
                             (rest_url, os.environ["PROFILE"] + ".rest")):
                spy = subprocess.Popen(["py-spy", "record", "--format", "raw", "-r", "250", "-o", out, "-d",
                                        str(DUR), "-p", str(pid)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                wrk_rps(url, user)
                spy.wait(60)
        sto, rst, sto_cpu, rst_cpu = [], [], [], []
        for _ in range(ROUNDS):
            # server CPU per request too: on a shared machine it moves less than req/s does
            got_s = wrk(f"{api}/object/authenticated/bench/4k", headers=user, conns=CONNS, duration=DUR, pids=[pid])
            got_r = wrk(rest_url, headers=user, conns=CONNS, duration=DUR, pids=[pid])
            if got_s.non_2xx or got_r.non_2xx:
                raise RuntimeError(f"non-2xx answers: storage {got_s.non_2xx}, REST {got_r.non_2xx}")
            sto.append(got_s.rps)
            rst.append(got_r.rps)
            sto_cpu.append(got_s.cpu_us_per_request)
            rst_cpu.append(got_r.cpu_us_per_request)
        targets = [("4 KB download, user token (req/s) vs REST single-row GET", med(sto), med(rst), "target >= 0.8"),
                   ("same, server CPU µs per request (REST / storage)", med(sto_cpu), med(rst_cpu),
                    "ratio = REST cpu / storage cpu")]

        # 200 MB upload vs nginx, RSS sampled
        ul, nul = [], []
        peak_ul = 0.0
        for _ in range(ROUNDS):
            with Peak(pid) as p:
                ul.append(curl_speed([*hflags, "-H", "content-type: application/octet-stream", "-H",
                                      "x-upsert: true", "--data-binary", f"@{www / '200m'}",
                                      f"{api}/object/bench/up-200m"]))
            peak_ul = max(peak_ul, p.peak)
            nul.append(curl_speed(["-T", str(www / "200m"), f"{ng}/put/200m"]))
        targets.append(("upload 200 MB (MB/s) vs nginx PUT", med(ul), med(nul),
                        f"target >= 0.5; RSS +{peak_ul - idle:.1f} MB"))
        print(f"\nTargets — loopback, {os.cpu_count()} cores, ROUNDS={ROUNDS} DUR={DUR}s CONNS={CONNS} "
              f"FSYNC={int(FSYNC)}\n")
        print("| case | MadBase storage | reference | ratio | notes |")
        print("|---|---:|---:|---:|---|")
        for label, ours_v, theirs_v, note in targets:
            ratio = theirs_v / ours_v if "CPU" in label else ours_v / theirs_v
            print(f"| {label} | {ours_v:,.0f} | {theirs_v:,.0f} | {ratio:.2f}x | {note} |")
        print(f"per round: storage {[round(x) for x in sto]} REST {[round(x) for x in rst]}; "
              f"upload {[round(x) for x in ul]} nginx {[round(x) for x in nul]}", flush=True)
        if ONLY == "targets":
            return

        # 200 MB: one curl transfer per round, server RSS sampled throughout
        dl, ndl, ul, nul = [], [], [], []
        peak_dl = peak_ul = 0.0
        for _ in range(ROUNDS):
            with Peak(pid) as p:
                dl.append(curl_speed([*hflags, f"{api}/object/bench/200m"]))
            peak_dl = max(peak_dl, p.peak)
            ndl.append(curl_speed([f"{ng}/files/200m"]))
            with Peak(pid) as p:
                ul.append(curl_speed([*hflags, "-H", "content-type: application/octet-stream", "-H",
                                      "x-upsert: true", "--data-binary", f"@{www / '200m'}",
                                      f"{api}/object/bench/up-200m"]))
            peak_ul = max(peak_ul, p.peak)
            nul.append(curl_speed(["-T", str(www / "200m"), f"{ng}/put/200m"]))
        rows.append(("download 200 MB (MB/s)", med(dl), med(ndl), f"RSS +{peak_dl - idle:.1f} MB"))
        rows.append(("upload 200 MB (MB/s)", med(ul), med(nul), f"RSS +{peak_ul - idle:.1f} MB"))

        # 1 MB and 4 KB: wrk, CONNS connections
        upload_auth = {**auth, "content-type": "application/octet-stream", "x-upsert": "true"}
        cases = [
            ("download 1 MB (MB/s)", f"{api}/object/bench/1m", auth, None, f"{ng}/files/1m", None, 1.0),
            ("upload 1 MB (MB/s)", api + "/", {}, post_script(root, "mb_up", "POST", "/storage/v1/object/bench/u1m-",
                                                              MB, upload_auth),
             ng + "/", post_script(root, "ng_mb_up", "PUT", "/put/1m-", MB, {}), 1.0),
            ("download 4 KB (req/s)", f"{api}/object/bench/4k", auth, None, f"{ng}/files/4k", None, 0.0),
            ("upload 4 KB (req/s)", api + "/", {}, post_script(root, "kb_up", "POST", "/storage/v1/object/bench/u4k-",
                                                               4096, upload_auth),
             ng + "/", post_script(root, "ng_kb_up", "PUT", "/put/4k-", 4096, {}), 0.0),
        ]
        for label, url, headers, script, nurl, nscript, mb in cases:
            ours = [wrk_rps(url, headers, script) for _ in range(ROUNDS)]
            theirs = [wrk_rps(nurl, {}, nscript) for _ in range(ROUNDS)]
            factor = mb if mb else 1.0
            rows.append((label, med(ours) * factor, med(theirs) * factor, ""))

        print(f"\nMadBase storage (fs backend) vs nginx {nginx_version()} — loopback, {os.cpu_count()} cores, "
              f"ROUNDS={ROUNDS} DUR={DUR}s CONNS={CONNS} FSYNC={int(FSYNC)}, idle RSS {idle:.0f} MB\n")
        print("| case | MadBase | nginx | ratio | notes |")
        print("|---|---:|---:|---:|---|")
        for label, ours_v, theirs_v, note in rows:
            print(f"| {label} | {ours_v:,.0f} | {theirs_v:,.0f} | {ours_v / theirs_v:.0%} | {note} |")
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        if server is not None:
            server.stop()
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def nginx_version() -> str:
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr.strip()
    return out.split("/")[-1] if "/" in out else out


if __name__ == "__main__":
    main()
