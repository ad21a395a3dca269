#!/usr/bin/env bash
# Build the benchmark corpus in benchmarks/corpus/ from REAL server output (git-ignored).
#
# What runs, all on 127.0.0.1 and for a bounded time (GEN_SECONDS, default 120):
#   * nginx (Debian nginx-light + its echo module) as a shop front with the access log format
#       '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
#        "$http_referer" "$http_user_agent" $upstream_addr $upstream_status $request_time
#        $upstream_response_time'
#     proxying to backends that are mostly fine, one checkout service with nothing listening
#     (502, error.log "connect() failed (111: Connection refused)", then "no live upstreams"),
#     a report service slower than proxy_read_timeout (504, "upstream timed out"), and a
#     timeline: the API backend goes down (40%-50% of the run) and turns slow (70%-78%),
#     both by swapping backend.conf and `nginx -s reload`. Load: wrk (benchmarks/wrk_mix.lua).
#   * PostgreSQL in a throwaway cluster (initdb/pg_ctl in a temp dir, port 15432) with
#     log_line_prefix '%m [%p] %q%u@%d ', log_min_duration_statement = 0 (every statement, as
#     during an investigation), log_connections/disconnections and log_lock_waits, under pgbench,
#     plus max_connections = 20 with bursts of more pgbench clients ("sorry, too many clients
#     already"), failed logins, a lock storm, deadlocks, statement timeouts and other ERRORs.
# This gives a few hundred MB of real output in benchmarks/corpus/raw/. The > 1 GB corpus is then
# assembled by REPEATING that output with timestamps shifted by the run's span per copy
# (benchmarks/assemble_corpus.py): the line mix and sizes are real, the repetition is not.
#
# Idempotent: an existing complete corpus is kept (--force rebuilds it; a complete raw/ is reused
# unless --force). Every server it starts is stopped on exit (trap). Installs missing tools with
# apt-get (Debian) when run as root, without letting the packages start their system services.
#
# Usage: bash benchmarks/make_corpus.sh [--force]
# Environment: GEN_SECONDS (120), TARGET_MB (1200), CORPUS_DIR (benchmarks/corpus), PORT_BASE (18080)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS=${CORPUS_DIR:-$HERE/corpus}
RAW=$CORPUS/raw
GEN_SECONDS=${GEN_SECONDS:-120}
TARGET_MB=${TARGET_MB:-1200}
PORT_BASE=${PORT_BASE:-18080}
FORCE=0
case "${1:-}" in
    --force) FORCE=1 ;;
    "") ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "make_corpus.sh: unknown argument '$1' (use --force or --help)." >&2; exit 2 ;;
esac

FRONT=$PORT_BASE; API=$((PORT_BASE + 1)); REPORTS=$((PORT_BASE + 2))
CHECKOUT_A=$((PORT_BASE + 3)); CHECKOUT_B=$((PORT_BASE + 4)); SEARCH_B=$((PORT_BASE + 5))
PGPORT=${PGPORT:-15432}

say() { echo "[make_corpus $(date +%H:%M:%S)] $*"; }

if [ "$FORCE" = 0 ] && [ -f "$CORPUS/manifest.json" ]; then
    say "corpus already built: $CORPUS (manifest.json); use --force to rebuild."
    exit 0
fi

# -- tools ------------------------------------------------------------------------------------
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

missing_packages() {
    local pkgs=()
    command -v nginx >/dev/null || pkgs+=(nginx-light)
    [ -f "$ECHO_MODULE" ] || pkgs+=(libnginx-mod-http-echo)
    command -v wrk >/dev/null || pkgs+=(wrk)
    { [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] && [ -x "$(pg_bin)/pgbench" ]; } || pkgs+=(postgresql)
    command -v psql >/dev/null || pkgs+=(postgresql-client)
    command -v python3 >/dev/null || pkgs+=(python3)
    command -v rg >/dev/null || pkgs+=(ripgrep)         # for run.py
    echo "${pkgs[@]:-}"
}

install_packages() {
    local pkgs
    pkgs=$(missing_packages)
    [ -z "$pkgs" ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "make_corpus.sh: missing tools; install the Debian packages: $pkgs" >&2
        exit 2
    fi
    say "installing $pkgs"
    # Debian's nginx and postgresql start their system services on install; we want none of them.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1
    fi
    # shellcheck disable=SC2086
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; } \
        || { [ "$made_policy" = 1 ] && rm -f "$policy"; echo "make_corpus.sh: apt-get install failed." >&2; exit 2; }
    [ "$made_policy" = 1 ] && rm -f "$policy"
    return 0
}

# -- servers and their cleanup -------------------------------------------------------------------
RUN=""
PIDS=()
NGINX_UP=0
PG_UP=0

as_pg() {  # PostgreSQL refuses to run as root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    if [ "$NGINX_UP" = 1 ] && [ -f "$RUN/nginx/nginx.pid" ]; then
        kill -QUIT "$(cat "$RUN/nginx/nginx.pid")" 2>/dev/null
        for _ in $(seq 50); do [ -f "$RUN/nginx/nginx.pid" ] || break; sleep 0.1; done
    fi
    if [ "$PG_UP" = 1 ]; then
        as_pg "$(pg_bin)/pg_ctl" -D "$RUN/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1
    fi
    [ -n "$RUN" ] && rm -rf "$RUN"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# -- nginx ---------------------------------------------------------------------------------------
write_nginx_conf() {
    local user_line=""
    [ "$(id -u)" = 0 ] && user_line="user www-data;"
    cat >"$RUN/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $RUN/nginx/nginx.pid;
error_log $RAW/nginx/error.log warn;
load_module $ECHO_MODULE;
events { worker_connections 4096; }
http {
    access_log off;
    log_format upstreaminfo '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent '
                            '"\$http_referer" "\$http_user_agent" \$upstream_addr \$upstream_status '
                            '\$request_time \$upstream_response_time';
    client_body_temp_path $RUN/nginx/tmp/body;
    proxy_temp_path $RUN/nginx/tmp/proxy;
    fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
    uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
    scgi_temp_path $RUN/nginx/tmp/scgi;
    keepalive_requests 100000;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    proxy_connect_timeout 1s;
    proxy_read_timeout 1s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;

    upstream shop_api  { server 127.0.0.1:$API; keepalive 32; }
    upstream reports   { server 127.0.0.1:$REPORTS; }
    # the checkout service is not running: nothing listens on either port
    upstream checkout  { server 127.0.0.1:$CHECKOUT_A max_fails=1 fail_timeout=2s;
                         server 127.0.0.1:$CHECKOUT_B max_fails=1 fail_timeout=2s; }
    # one of the two search instances is gone
    upstream search    { server 127.0.0.1:$API; server 127.0.0.1:$SEARCH_B max_fails=1 fail_timeout=3s; keepalive 8; }

    server {
        listen 127.0.0.1:$FRONT;
        server_name shop.example.com;
        access_log $RAW/nginx/access.log upstreaminfo buffer=256k flush=1s;
        location /api/      { proxy_pass http://shop_api; }
        location /search    { proxy_pass http://search; }
        location /checkout/ { proxy_pass http://checkout; }
        location /report/   { proxy_pass http://reports; }
        location /static/   { default_type application/javascript; return 200 "console.log('shop');\n"; }
        location /          { return 404; }
    }
    include $RUN/nginx/backend.conf;
}
EOF
}

backend() {  # ok | down | slow : what the API backend (port $API) does; reports stay as they are
    local mode=$1 api
    case "$mode" in
        ok)   api="server { listen 127.0.0.1:$API; access_log off; default_type application/json;
                  location /api/items/ { return 200 '{\"id\":17,\"name\":\"socks\",\"price\":9.99,\"stock\":12}'; }
                  location / { return 200 '{\"ok\":true}'; } }" ;;
        down) api="" ;;
        slow) api="server { listen 127.0.0.1:$API; access_log off; default_type application/json;
                  location / { echo_sleep 1.5; echo '{\"ok\":true}'; } }" ;;
    esac
    cat >"$RUN/nginx/backend.conf" <<EOF
$api
server { listen 127.0.0.1:$REPORTS; access_log off; default_type text/plain;
    location /report/export { echo_sleep 1.5; echo "export"; }
    location / { return 200 "daily report\n"; } }
EOF
    if [ "$NGINX_UP" = 1 ]; then
        say "API backend: $mode"
        nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e "$RAW/nginx/error.log" -s reload
    fi
}

start_nginx() {
    mkdir -p "$RUN/nginx/tmp" "$RAW/nginx"
    write_nginx_conf
    backend ok
    nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e "$RAW/nginx/error.log" -t -q
    nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e "$RAW/nginx/error.log"
    NGINX_UP=1
    for _ in $(seq 50); do [ -f "$RUN/nginx/nginx.pid" ] && break; sleep 0.1; done
    curl_ok=$(exec 3<>"/dev/tcp/127.0.0.1/$FRONT" && printf 'GET /api/items/1 HTTP/1.0\r\nHost: shop.example.com\r\n\r\n' >&3 && head -1 <&3)
    say "nginx up on 127.0.0.1:$FRONT (${curl_ok%$'\r'})"
}

# -- PostgreSQL ----------------------------------------------------------------------------------
PGDIR=""
start_pg() {
    PGDIR=$RUN/pg
    mkdir -p "$PGDIR" "$RAW/postgres"
    [ "$(id -u)" = 0 ] && chown postgres: "$PGDIR"
    echo app >"$RUN/pwfile"; chmod 644 "$RUN/pwfile"
    as_pg "$(pg_bin)/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C >/dev/null
    cat >>"$PGDIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDIR'
max_connections = 20
superuser_reserved_connections = 0
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
log_min_duration_statement = 0
log_connections = on
log_disconnections = on
log_lock_waits = on
deadlock_timeout = 200ms
log_checkpoints = on
log_autovacuum_min_duration = 0
checkpoint_timeout = 30s
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    as_pg "$(pg_bin)/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgresql.log" -w -t 60 start >/dev/null
    PG_UP=1
    as_pg psql -h "$PGDIR" -p "$PGPORT" -U postgres -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE app LOGIN PASSWORD 'app'" -c "CREATE DATABASE bench OWNER app" >/dev/null
    export PGHOST=127.0.0.1 PGPORT PGUSER=app PGPASSWORD=app PGDATABASE=bench
    pgbench -i -s 5 -q >/dev/null 2>&1
    say "postgres up on 127.0.0.1:$PGPORT (pgbench scale 5)"
}

sql() { psql -qAt -v ON_ERROR_STOP=0 "$@" >/dev/null 2>&1 || true; }

pg_errors() {  # the usual application mistakes, several times over
    local f=$RUN/errors.sql
    : >"$f"
    for i in $(seq 20); do
        cat >>"$f" <<EOF
SELECT * FROM pgbench_acounts WHERE aid = $i;
INSERT INTO pgbench_branches (bid, bbalance) VALUES (1, 0);
SELECT abalance / (bid - bid) FROM pgbench_accounts WHERE aid = $i;
SELEC abalance FROM pgbench_accounts;
SELECT abalance FROM pgbench_accounts WHERE aid = 'x$i';
SET statement_timeout = '50ms'; SELECT pg_sleep(0.2); RESET statement_timeout;
EOF
    done
    sql -f "$f"
}

pg_auth_failures() {
    for _ in $(seq 15); do
        PGPASSWORD=wrong sql -c 'SELECT 1'
        sql -U ghost -c 'SELECT 1'
        sql -d shop_prod -c 'SELECT 1'
    done
}

pg_too_many_clients() {  # sessions pile up to max_connections; every further login is refused
    for _ in 1 2; do
        for _ in $(seq 16); do sql -c 'SELECT pg_sleep(4)' & done
        sleep 1
        for _ in $(seq 40); do sql -c 'SELECT 1'; done
        wait
    done
}

pg_lock_storm() {  # one session holds the branches table; pgbench clients queue behind it
    sql -c "BEGIN; LOCK TABLE pgbench_branches IN EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;"
}

pg_deadlocks() {
    for _ in 1 2 3; do
        sql -c "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1; SELECT pg_sleep(0.5);
                UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 2; COMMIT;" &
        sql -c "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 2; SELECT pg_sleep(0.5);
                UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1; COMMIT;"
        wait
    done
}

pg_kill_a_client() {
    as_pg psql -h "$PGDIR" -p "$PGPORT" -U postgres -qAt -c \
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1" \
        >/dev/null 2>&1 || true
}

at() {  # at FRACTION COMMAND... : run COMMAND in the background at that share of GEN_SECONDS
    local delay
    delay=$(awk -v f="$1" -v g="$GEN_SECONDS" 'BEGIN { printf "%.1f", f * g }')
    shift
    (sleep "$delay"; "$@") &
    PIDS+=($!)
}

# -- generate ------------------------------------------------------------------------------------
generate_raw() {
    rm -rf "$RAW"; mkdir -p "$RAW"
    RUN=$(mktemp -d /tmp/logtriage-bench.XXXXXX)
    chmod 755 "$RUN"
    for p in $FRONT $API $REPORTS $CHECKOUT_A $CHECKOUT_B $SEARCH_B $PGPORT; do
        port_free "$p" || { echo "make_corpus.sh: port $p is in use; set PORT_BASE/PGPORT." >&2; exit 2; }
    done
    start_pg
    start_nginx

    say "load for ${GEN_SECONDS}s: wrk on nginx, pgbench on postgres"
    wrk -t1 -c96 -d"${GEN_SECONDS}s" --timeout 5s -s "$HERE/wrk_mix.lua" "http://127.0.0.1:$FRONT" \
        >"$RUN/wrk.out" 2>&1 &
    local wrk_pid=$!; PIDS+=("$wrk_pid")
    pgbench -c 6 -j 2 -T "$GEN_SECONDS" -n >"$RUN/pgbench.out" 2>&1 &
    local pgb_pid=$!; PIDS+=("$pgb_pid")
    (sleep 5; timeout "$((GEN_SECONDS / 3))" pgbench -C -c 2 -j 1 -T "$((GEN_SECONDS / 3))" -n >/dev/null 2>&1) &
    PIDS+=($!)

    at 0.15 pg_errors
    at 0.30 pg_lock_storm
    at 0.40 backend down
    at 0.45 pg_too_many_clients
    at 0.50 backend ok
    at 0.55 pg_auth_failures
    at 0.60 pg_deadlocks
    at 0.70 backend slow
    at 0.78 backend ok
    at 0.85 pg_kill_a_client
    at 0.90 pg_errors

    wait "$wrk_pid" || true
    wait "$pgb_pid" || true
    wait || true
    sed -n '/Requests\/sec/p;/Non-2xx/p;/Socket errors/p' "$RUN/wrk.out" | sed 's/^/  wrk: /'
    grep -E '^(tps|number of transactions actually)' "$RUN/pgbench.out" | sed 's/^/  pgbench: /' || true

    # stop servers now so their shutdown lines are part of the logs
    kill -QUIT "$(cat "$RUN/nginx/nginx.pid")"
    for _ in $(seq 100); do [ -f "$RUN/nginx/nginx.pid" ] || break; sleep 0.1; done
    NGINX_UP=0
    as_pg "$(pg_bin)/pg_ctl" -D "$PGDIR/data" -m fast -w -t 30 stop >/dev/null
    PG_UP=0
    cp "$PGDIR/postgresql.log" "$RAW/postgres/postgresql.log"
    touch "$RAW/.complete"
    du -sh "$RAW"/* | sed 's/^/  raw: /'
}

install_packages
rm -f "$CORPUS/manifest.json"     # written last: its presence means the corpus is complete
if [ "$FORCE" = 1 ] || [ ! -f "$RAW/.complete" ]; then
    generate_raw
else
    say "reusing the real output in $RAW"
fi
say "assembling the corpus (target ${TARGET_MB} MB)"
python3 "$HERE/assemble_corpus.py" --raw "$RAW" --out "$CORPUS" --target-mb "$TARGET_MB"
say "done: $CORPUS"
