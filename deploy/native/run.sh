#!/usr/bin/env bash
# The compose topology without containers: nginx balancing two `madbase start` processes over one PostgreSQL,
# with Redis for realtime fan-out. tests/deploy runs exactly this script (docs/operations.md, "Native").
#
#   DATABASE_URL=postgresql://postgres:pw@127.0.0.1:5432/postgres MADBASE_MASTER_KEY=<16+ chars> \
#     deploy/native/run.sh up        # start everything in the background, wait until healthy, print URLs
#   deploy/native/run.sh status      # what runs, with pids
#   deploy/native/run.sh restart 1   # rolling restart of process 1 (SIGTERM: drains, then starts again)
#   deploy/native/run.sh down        # stop everything (SIGTERM; in-flight requests finish)
#   deploy/native/run.sh nginx-conf LISTEN_PORT UPSTREAM... # print deploy/nginx/nginx.conf for this host
#
# Settings (environment): DATABASE_URL, MADBASE_MASTER_KEY (both required for `up`); NATIVE_DIR (state, logs,
# data folders; default ./.madbase-native); NGINX_PORT (8000); MADBASE_PORTS ("8001 8002"); REDIS_PORT (6379;
# set MADBASE_REALTIME_REDIS_URL instead to use a running Redis); MADBASE (the madbase command, default
# `madbase`); NGINX (default `nginx`); NGINX_PROXY_BIND (the address nginx connects to MadBase from, e.g.
# 127.0.0.2: then only it is a trusted proxy, not every local process). Every other MadBase setting (STORAGE_BACKEND, GLOBAL_S3_*, AWS_*, ...)
# passes through the environment to both processes. PostgreSQL needs wal_level=logical for realtime.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
conf_src="$here/../nginx/nginx.conf"
dir="${NATIVE_DIR:-$PWD/.madbase-native}"
nginx_port="${NGINX_PORT:-8000}"
read -r -a ports <<< "${MADBASE_PORTS:-8001 8002}"
redis_port="${REDIS_PORT:-6379}"
madbase="${MADBASE:-madbase}"
nginx_bin="${NGINX:-nginx}"

die() { echo "run.sh: $*" >&2; exit 1; }

# deploy/nginx/nginx.conf with 127.0.0.1 upstreams, a loopback listener and its files under $2.
nginx_conf() {
    local listen="$1" work="$2"; shift 2
    local servers=""
    for up in "$@"; do servers+="server ${up} max_fails=1 fail_timeout=5s;\n        "; done
    sed -e '/server madbase-[0-9]*:8000/d' \
        -e "s|keepalive 64;|${servers}keepalive 64;|" \
        -e "s|listen 8080;|listen 127.0.0.1:${listen};|" \
        -e "s|proxy_http_version 1.1;|proxy_http_version 1.1;${NGINX_PROXY_BIND:+ proxy_bind ${NGINX_PROXY_BIND};}|" \
        -e '/listen \[::\]:8080;/d' \
        -e "s|pid /tmp/nginx.pid;|pid ${work}/nginx.pid;|" \
        -e "s|/tmp/nginx-|${work}/nginx-|g" \
        -e "s|error_log /dev/stderr warn;|error_log ${work}/nginx-error.log warn;|" \
        -e "s|access_log /dev/stdout madbase_json;|access_log ${work}/nginx-access.log madbase_json;|" \
        "$conf_src" | sed 's/\\n/\n/g'
}

wait_http() {  # url seconds
    local url="$1" deadline=$((SECONDS + $2))
    until python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; do
        (( SECONDS < deadline )) || return 1
        sleep 0.3
    done
}

# alive: the pid file's process exists and is not a zombie (a process killed with -9 whose parent — here
# often PID 1 of a container — has not reaped it yet still answers kill -0)
alive() {
    [[ -f "$1" ]] || return 1
    local pid state
    pid="$(cat "$1")"
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" ]]
}

start_madbase() {  # index
    local i="$1" port="${ports[$(( $1 - 1 ))]}"
    mkdir -p "$dir/madbase-$i"
    MADBASE_PORT="$port" MADBASE_DATA_DIR="$dir/madbase-$i" MADBASE_HOST=127.0.0.1 \
        MADBASE_TRUSTED_PROXIES="${MADBASE_TRUSTED_PROXIES:-${NGINX_PROXY_BIND:-127.0.0.1}}" \
        MADBASE_REALTIME_REDIS_URL="${MADBASE_REALTIME_REDIS_URL:-redis://127.0.0.1:$redis_port/0}" \
        API_EXTERNAL_URL="${API_EXTERNAL_URL:-http://127.0.0.1:$nginx_port}" \
        MADBASE_STORAGE_STAGING="${MADBASE_STORAGE_STAGING:-$dir/tus-staging}" \
        nohup $madbase start >> "$dir/madbase-$i.log" 2>&1 &
    echo $! > "$dir/madbase-$i.pid"
    wait_http "http://127.0.0.1:$port/ready" "${START_TIMEOUT:-90}" \
        || { tail -20 "$dir/madbase-$i.log" >&2; die "madbase $i did not become ready"; }
}

stop_pid() {  # pidfile
    local f="$1"
    alive "$f" || { rm -f "$f"; return 0; }
    local pid; pid="$(cat "$f")"
    kill -TERM "$pid"
    for _ in $(seq 1 300); do alive "$f" || break; sleep 0.1; done
    if alive "$f"; then kill -KILL "$pid"; fi
    rm -f "$f"
}

cmd="${1:-}"
case "$cmd" in
    nginx-conf)
        [[ $# -ge 3 ]] || die "usage: run.sh nginx-conf LISTEN_PORT UPSTREAM..."
        listen="$2"; shift 2
        nginx_conf "$listen" "$dir" "$@"
        ;;
    up)
        [[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is required (PostgreSQL with wal_level=logical)"
        [[ -n "${MADBASE_MASTER_KEY:-}" ]] || die "MADBASE_MASTER_KEY is required (16+ characters)"
        mkdir -p "$dir"
        if [[ -z "${MADBASE_REALTIME_REDIS_URL:-}" ]] && ! alive "$dir/redis.pid"; then
            redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
                --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
            for _ in $(seq 1 50); do [[ -s "$dir/redis.pid" ]] && break; sleep 0.1; done
        fi
        # One after the other: the first start creates the control plane and the default project.
        for i in $(seq 1 "${#ports[@]}"); do alive "$dir/madbase-$i.pid" || start_madbase "$i"; done
        upstreams=(); for p in "${ports[@]}"; do upstreams+=("127.0.0.1:$p"); done
        nginx_conf "$nginx_port" "$dir" "${upstreams[@]}" > "$dir/nginx.conf"
        if alive "$dir/nginx.pid"; then
            "$nginx_bin" -c "$dir/nginx.conf" -p "$dir" -s reload
        else
            "$nginx_bin" -c "$dir/nginx.conf" -p "$dir" -e "$dir/nginx-error.log"
        fi
        wait_http "http://127.0.0.1:$nginx_port/health" 20 || die "nginx did not answer on $nginx_port"
        echo "API (through nginx): http://127.0.0.1:$nginx_port"
        for i in $(seq 1 "${#ports[@]}"); do echo "madbase $i: http://127.0.0.1:${ports[$((i - 1))]} (pid $(cat "$dir/madbase-$i.pid"), log $dir/madbase-$i.log)"; done
        ;;
    restart)
        i="${2:?usage: run.sh restart INDEX}"
        stop_pid "$dir/madbase-$i.pid"
        start_madbase "$i"
        ;;
    status)
        for f in "$dir"/*.pid; do
            [[ -e "$f" ]] || continue
            name="$(basename "$f" .pid)"
            if alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: stopped"; fi
        done
        ;;
    down)
        if alive "$dir/nginx.pid"; then "$nginx_bin" -c "$dir/nginx.conf" -p "$dir" -s quit || true; fi
        for f in "$dir"/madbase-*.pid; do [[ -e "$f" ]] && stop_pid "$f"; done
        [[ -e "$dir/redis.pid" ]] && stop_pid "$dir/redis.pid"
        for _ in $(seq 1 50); do alive "$dir/nginx.pid" || break; sleep 0.1; done
        ;;
    *)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
