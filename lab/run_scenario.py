"""Fault lab: run nginx -> shop-api -> PostgreSQL + Redis on loopback, inject one fault, keep the logs.

Writes one scenario directory per run (the layout of ../shared/corpus/scenarios: nginx/access.log,
nginx/error.log, postgres/postgresql.log, app/app.log, app/supervisor.log when supervised,
redis/redis.log, truth.json). Needs root (postgres runs as the `postgres` user via runuser; the OOM
scenario uses a cgroup v1 memory limit; the disk-full scenario mounts a small tmpfs) and a Python
with SQLAlchemy 1.4, psycopg2 and redis-py for the app and this script (see lab/README.md).

    /tmp/shoplab-venv/bin/python lab/run_scenario.py --out /tmp/lab_scenarios redis_down pg_terminate
    /tmp/shoplab-venv/bin/python lab/run_scenario.py --out /tmp/lab_scenarios --list
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

HERE = Path(__file__).resolve().parent
BIN_PG = "/usr/local/bin"
NGINX = "/usr/sbin/nginx"
REDIS = "/usr/bin/redis-server"
UAS = ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
       "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"]


def now_iso() -> str:
    t = dt.datetime.now(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass
class Spec:
    name: str
    root_cause: str
    component: str
    description: str
    symptoms: list[str]
    fault: str | None = None            # method name on Lab
    healthy_s: float = 30.0
    after_s: float = 40.0
    app: dict = field(default_factory=dict)      # extra shop_api options
    supervised: bool = False
    app_memory_mb: int = 0               # cgroup v1 memory limit for the app (kernel OOM killer)
    app_as_mb: int = 0                   # RLIMIT_AS for the app (MemoryError)
    app_nofile: int = 0                  # RLIMIT_NOFILE for the app
    limit_req: bool = False
    limit_req_status: int = 0            # 0: nginx's default (503)
    redis_maxmemory: str = ""            # e.g. "4mb" with maxmemory-policy noeviction
    worker_connections: int = 512
    pg_tmpfs_mb: int = 0
    pg_max_connections: int = 100
    redis_maxclients: int = 0            # 0: Redis's default (10000)
    nginx_port_offset: int = 0           # nginx's upstream is the app's port + this from the start
    users: int = 2
    harmless: str | None = None          # method name on Lab, run early in the healthy period
    lock_hold_s: float = 20.0            # how long fault_migration_lock holds its lock
    app_tmpfs_mb: int = 0                # the app's data dir (--data-dir, receipts) on a tmpfs of this size
    checkout_users: int = 0              # clients calling POST checkout_path from the start
    checkout_path: str = "/api/checkout?hold=3"
    redis_save: str = ""                 # Redis `save` points, e.g. "5 1" (RDB snapshots; "" = none)
    redis_tmpfs_mb: int = 0              # Redis's dir (its RDB dump) on a tmpfs of this size


SPECS = {s.name: s for s in [
    Spec("redis_down", "service.down", "redis",
         "Redis was stopped (SIGTERM, no restart). shop-api keeps a session counter and the item cache in Redis: "
         "/api/items/<id> and POST /api/orders retry the Redis call (WARNING 'redis call failed, retrying') and then "
         "fail with redis ConnectionError (Error 111 connecting ... Connection refused) -> 500; requests that do not "
         "touch Redis keep working.", ["conn.refused", "http.5xx"], fault="fault_redis_down"),
    Spec("app_oom_kill", "proc.oom", "app",
         "shop-api runs in a cgroup with a 160 MB memory limit. From the fault time a client requests /api/report "
         "repeatedly; every report stays referenced (a leak), so the app's memory grows until the kernel OOM killer "
         "kills it (SIGKILL). The supervisor logs the OOM kill and restarts it after 1 s; the cycle repeats. Requests in "
         "flight are cut off (nginx: upstream prematurely closed / connection refused, 502).",
         ["conn.reset_before_headers", "conn.refused", "http.5xx"], fault="fault_report_leak", supervised=True,
         app_memory_mb=160),
    Spec("app_memory_error", "proc.oom", "app",
         "shop-api runs with an address-space limit (RLIMIT_AS) and MALLOC_ARENA_MAX=2. From the fault time a client "
         "requests /api/report repeatedly; every report stays referenced (a leak) until allocations fail: the app "
         "logs MemoryError for requests and cannot start handler threads (stderr tracebacks); nginx sees 500/502/504.",
         ["http.5xx"], fault="fault_report_leak", app_as_mb=700),
    Spec("app_slow_timeout", "timeout.upstream", "app",
         "shop-api rebuilds its price index (admin call) while holding the price lock for 25 s; every /api/items/<id> "
         "that misses the cache waits on that lock. nginx's proxy_read_timeout is 5 s: it logs 'upstream timed out "
         "(110: Connection timed out) while reading response header' and answers 504. Postgres and Redis are healthy.",
         ["timeout.upstream", "http.5xx"], fault="fault_app_slow"),
    Spec("pg_lock_timeout", "timeout.query", "postgres",
         "shop-api sets lock_timeout=2s on its sessions. A migration holds ACCESS EXCLUSIVE on items for 20 s; the app's "
         "SELECTs on items wait, then postgres cancels them: 'ERROR: canceling statement due to lock timeout'. The app "
         "logs OperationalError (LockNotAvailable) and answers 500.", ["http.5xx"], fault="fault_migration_lock",
         app={"lock_timeout_ms": 2000}),
    Spec("pg_statement_timeout", "timeout.query", "postgres",
         "shop-api sets statement_timeout=3s on its sessions. A migration holds ACCESS EXCLUSIVE on items for 20 s; the "
         "app's SELECTs on items wait, then postgres cancels them: 'ERROR: canceling statement due to statement "
         "timeout'. The app logs OperationalError (QueryCanceled) and answers 500.", ["http.5xx"],
         fault="fault_migration_lock", app={"statement_timeout_ms": 3000}),
    Spec("pg_terminate", "db.connection_terminated", "postgres",
         "An admin clean-up job runs pg_terminate_backend() on every session of role app, every 2 s for 20 s. Postgres "
         "logs 'FATAL: terminating connection due to administrator command'; the app's pooled connections are dead "
         "(pool_pre_ping=False): OperationalError (terminating connection / server closed the connection "
         "unexpectedly) and 500s.", ["conn.reset", "http.5xx"], fault="fault_pg_terminate"),
    Spec("app_fd_exhausted", "resource.fd_exhausted", "app",
         "shop-api runs with ulimit -n 64, and /api/export keeps its spool file open (an fd leak). From the fault time "
         "an export client calls /api/export; the descriptors run out: accept failed 'OSError: [Errno 24] Too many "
         "open files', connections to postgres/redis fail with 'Too many open files'; nginx logs upstream timeouts "
         "and 5xx.", ["timeout.upstream", "http.5xx"], fault="fault_exports", app={"leak_fds": True},
         app_nofile=64),
    Spec("nginx_ratelimit", "ratelimit", "nginx",
         "nginx has limit_req (zone api, 10 r/s per client address, burst 5, nodelay; limit_req_status left at the "
         "default 503). From the fault time a scraper on the same address requests /api/items/<id> fast: nginx logs "
         "'limiting requests, excess: ... by zone \"api\"' and answers 503, also to the ordinary users behind the same "
         "address. The app and databases are healthy.", ["ratelimit", "http.5xx"], fault="fault_scraper",
         limit_req=True),
    Spec("nginx_ratelimit_429", "ratelimit", "nginx",
         "As nginx_ratelimit, but nginx answers the rejected requests with limit_req_status 429 (no 5xx from the "
         "limiter).", ["ratelimit"], fault="fault_scraper", limit_req=True, limit_req_status=429),
    Spec("redis_killed", "service.down", "redis",
         "redis-server was killed with SIGKILL (no shutdown lines in its log) and not restarted; the app's Redis "
         "calls fail with ConnectionError (Error 111 ... Connection refused) -> 500 on /api/items/<id> and orders.",
         ["conn.refused", "http.5xx"], fault="fault_redis_kill"),
    Spec("redis_maxmemory", "proc.oom", "redis",
         "Redis runs with maxmemory 8mb and maxmemory-policy noeviction. From the fault time a batch job stores "
         "session blobs until Redis is full, and keeps retrying; every write the app makes (INCR, SET of the item cache) is then refused: "
         "'OOM command not allowed when used memory > 'maxmemory'.' (redis ResponseError) -> 500s. Redis logs "
         "nothing at notice level.", ["http.5xx"], fault="fault_redis_fill", redis_maxmemory="8mb"),
    Spec("db_disk_full", "resource.disk_full", "postgres",
         "PostgreSQL's data directory is on a small tmpfs. From the fault time a bulk audit import writes large rows "
         "until the file system is full: postgres logs 'could not extend file ... No space left on device' (and may "
         "PANIC on WAL writes); the app's writes fail with 500s.", ["http.5xx"], fault="fault_fill_disk",
         pg_tmpfs_mb=72),
    Spec("healthy_2", "", "", "Normal traffic, no incident (ordinary 404s, slow /api/export statements).", []),
    Spec("red_herring", "", "", "Normal traffic with harmless noise early on: a Redis CLIENT PAUSE of 1.2 s "
         "(cache reads retried), one failed psql login with a wrong password by a human, and a scanner requesting "
         "a few non-existent paths (404). No incident.", [], harmless="harmless_noise"),
    Spec("db_restart_late", "db.connection_terminated", "postgres",
         "PostgreSQL was restarted (pg_ctl restart -m fast) late in the run, after a longer healthy period, with 3 "
         "users; the app's pooled connections die (OperationalError) until the pool reconnects.",
         ["conn.reset", "conn.refused", "http.5xx"], fault="fault_pg_restart", healthy_s=45, after_s=30, users=3),
    Spec("app_sigkill", "proc.crash", "app",
         "shop-api is killed with SIGKILL three times, 8 s apart (as an OOM killer whose events nobody reads, or an "
         "operator's kill -9, would): the supervisor only records 'Main process exited, code=killed, "
         "status=9/KILL' and restarts it after 1 s. In-flight requests are cut off; 502s. Nothing in the logs says "
         "who sent the signal, so the truth is proc.crash (it was proc.oom until lab round 3).",
         ["conn.reset_before_headers", "conn.refused", "http.5xx"], fault="fault_sigkill", supervised=True),
    Spec("pool_leak", "pool.exhausted", "app",
         "A code path of shop-api (/api/report?detail=1) checks out a pooled connection and never returns it. From the "
         "fault time a client calls it every few seconds; the pool (size 5, overflow 5, timeout 3 s) drains and other "
         "requests fail with 'QueuePool limit of size 5 overflow 5 reached, connection timed out' (503). Postgres is "
         "healthy (the leaked sessions sit idle).", ["http.5xx"], fault="fault_pool_leak",
         app={"leak_conns": True, "pool_timeout": 3}),
    Spec("pg_backend_killed", "proc.crash", "postgres",
         "A postgres backend serving the app is killed with SIGKILL three times, 8 s apart: the postmaster logs "
         "'server process (PID n) was terminated by signal 9: Killed', terminates every other session and runs crash "
         "recovery; the app's sessions break (server closed the connection unexpectedly / the database system is in "
         "recovery mode) and requests fail with 500 until it reconnects.", ["db.connection_terminated", "conn.reset",
                                                                           "http.5xx"], fault="fault_kill_backend"),
    Spec("app_db_port_mismatch", "config.port_mismatch", "app config",
         "shop-api is redeployed (supervisor stop/start) with a wrong database port (postgres listens on +2, the new "
         "config says +7). The new process fails its start-up database check (psycopg2 OperationalError: connection "
         "to server at 127.0.0.1, port N failed: Connection refused, uncaught traceback on stderr) and exits 1; the "
         "supervisor restarts it every second; nginx gets connection refused (502).",
         ["conn.refused", "proc.crash", "http.5xx"], fault="fault_bad_db_port", supervised=True),
    Spec("nginx_worker_connections", "resource.fd_exhausted", "nginx",
         "nginx runs with worker_connections 12 (one worker). From the fault time 8 clients call the slow /api/export "
         "(1.2 s each) besides the users: each proxied request holds two connections, so nginx runs out: "
         "'12 worker_connections are not enough' ([alert]) and requests fail. The app and databases are healthy.",
         ["resource.fd_exhausted"], fault="fault_export_surge", worker_connections=12),
    Spec("app_segfault", "proc.crash", "app",
         "shop-api dies with SIGSEGV (faulthandler dump on stderr) three times, 8 s apart; the supervisor restarts it "
         "after 1 s each time (code=dumped, status=11/SEGV). In-flight requests are cut off; 502s.",
         ["conn.reset_before_headers", "conn.refused", "http.5xx"], fault="fault_segv", supervised=True),
    Spec("app_db_dns", "dns.failure", "app config",
         "shop-api is redeployed (supervisor stop/start) with its database host set to db-primary.shop.invalid, a name "
         "that does not resolve. The new process fails its start-up database check (psycopg2 OperationalError: could "
         "not translate host name ... to address) and exits 1; the supervisor restarts it every second; nginx gets "
         "connection refused (502). Truth: the line that shows the cause is the name lookup failure (dns.failure); what "
         "is wrong is the app's configuration (the host name it was given), as with app_db_port_mismatch, so the "
         "component is 'app config'; the crash loop and nginx's refusals are consequences.",
         ["dns.failure", "proc.crash", "conn.refused", "http.5xx"], fault="fault_bad_db_host", supervised=True),
    Spec("app_bad_config", "proc.crash", "app",
         "shop-api is redeployed (supervisor stop/start) with a config file that is invalid JSON (a trailing comma). "
         "The new process dies at start-up with an uncaught json.decoder.JSONDecodeError traceback on stderr and exit "
         "status 1; the supervisor restarts it every second (crash loop); nginx gets connection refused (502). Truth: "
         "the app process dies and restarts for a reason that is not memory (proc.crash / app); the refusals are its "
         "consequence, not a port mismatch (the app never gets to listen).",
         ["proc.crash", "conn.refused", "http.5xx"], fault="fault_bad_config", supervised=True),
    Spec("pg_stopped", "service.down", "postgres",
         "PostgreSQL is stopped (pg_ctl stop -m fast) and not restarted. Postgres logs its fast shutdown ('terminating "
         "connection due to administrator command' for the open sessions, then 'database system is shut down'); from "
         "then on every new connection of the app fails with 'Connection refused' (OperationalError) -> 500. Truth: "
         "the service is not running any more (service.down / postgres); the shutdown's session terminations are the "
         "start of it, not a restart.", ["conn.refused", "http.5xx"], fault="fault_pg_stop"),
    Spec("redis_hang", "timeout.upstream", "redis",
         "Redis stops answering every client for 25 s (CLIENT PAUSE 25000 ALL, the way a blocking command or a long "
         "fork stall hangs it). The app's Redis calls hit its 0.5 s socket timeout ('Timeout reading from socket', "
         "redis TimeoutError), are retried, then fail -> 500 on /api/items/<id> and orders. Redis logs nothing. Truth: "
         "requests to an upstream (Redis) got no response in time (timeout.upstream / redis).",
         ["timeout.upstream", "http.5xx"], fault="fault_redis_pause"),
    Spec("nginx_wrong_port", "config.port_mismatch", "nginx config",
         "A new nginx config is deployed (nginx -s reload) whose upstream is the app's port + 1, where nothing listens; "
         "the app keeps running and logged at start that it listens on its own port. nginx logs connect() failed (111: "
         "Connection refused) to the new address and answers 502 for /api/. Truth: config.port_mismatch / nginx config "
         "(the proxy dials a port where nothing listens while the service listens on another).",
         ["conn.refused", "http.5xx"], fault="fault_nginx_wrong_port"),
    Spec("nginx_tls_upstream", "tls.failure", "nginx config",
         "A new nginx config is deployed (nginx -s reload) with proxy_pass https:// to the app, which speaks plain HTTP. "
         "Every proxied request fails the TLS handshake (SSL_do_handshake() failed ... wrong version number while SSL "
         "handshaking to upstream) and nginx answers 502. Truth: tls.failure; the fault is in nginx's configuration "
         "(the app is healthy), so the component is 'nginx config', as for a proxy-side port mismatch.",
         ["tls.failure", "http.5xx"], fault="fault_nginx_tls_upstream"),
    Spec("pg_batch_max_connections", "db.too_many_connections", "postgres",
         "PostgreSQL runs with max_connections=30. A batch job (another client, not the app) opens sessions until "
         "postgres refuses it and holds them 25 s, taking every slot that frees up; meanwhile 3 clients call the slow "
         "/api/export, so the app's pool needs more connections than it holds, and its new connections are "
         "refused ('FATAL: sorry, too many clients already' / 'remaining connection slots are reserved') -> "
         "OperationalError and 500s. Truth: the database refused sessions because its limit was reached "
         "(db.too_many_connections / postgres), whoever filled it.", ["http.5xx"], fault="fault_batch_connections",
         pg_max_connections=30),
    Spec("app_new_port", "config.port_mismatch", "nginx config",
         "shop-api is redeployed (supervisor stop/start) listening on its port + 1 and logs the new address at start; "
         "nginx's upstream still points at the old port, where nothing listens any more: connect() failed (111: "
         "Connection refused) and 502 although the app is up (the lab's version of the dev port_mismatch, other "
         "timings). Truth: config.port_mismatch / nginx config.", ["conn.refused", "http.5xx"],
         fault="fault_app_new_port", supervised=True),
    Spec("pool_idle_in_tx", "pool.exhausted", "app",
         "A checkout code path of shop-api calls a slow payment provider (4 s) inside its database transaction, so "
         "its sessions sit 'idle in transaction' holding pooled connections. From the fault time 5 clients check out; "
         "the pool (size 3, overflow 2, timeout 3 s) runs dry and other requests fail with 'QueuePool limit of size 3 "
         "overflow 2 reached, connection timed out' (503). Postgres is healthy. Truth: pool.exhausted / app.",
         ["http.5xx"], fault="fault_checkout_hold", app={"pool_timeout": 3, "pool_size": 3, "max_overflow": 2}),
    Spec("nginx_wrong_port_at_start", "config.port_mismatch", "nginx config",
         "nginx starts with an upstream of the app's port + 1, where nothing listens; the app runs and logged at start "
         "the port it listens on. Every /api/ request fails from the first one (connect() failed (111: Connection "
         "refused), 502); there is no healthy period before the fault. Truth: config.port_mismatch / nginx config.",
         ["conn.refused", "http.5xx"], fault=None, healthy_s=0, nginx_port_offset=1),
    Spec("redis_maxclients", "db.too_many_connections", "redis",
         "Redis runs with maxclients 40. From the fault time batch workers open Redis connections and never close "
         "them, for 25 s; once Redis is full 4 more users browse items (the app's redis pool needs more connections); Redis "
         "refuses further clients ('ERR max number of clients reached'), so the app's new connections fail -> redis ConnectionError and 500s. Truth: the server refused a session because its "
         "connection limit was reached (db.too_many_connections, TAXONOMY lists Redis' message) / redis.",
         ["http.5xx"], fault="fault_redis_clients", redis_maxclients=40),
    # round 3: kinds of fault the dev set and rounds 1-2 do not have
    Spec("pg_lock_storm", "db.slow_query", "postgres",
         "A migration holds ACCESS EXCLUSIVE on items for 30 s and the app sets no lock_timeout or "
         "statement_timeout, so nothing in the database fires: the app's SELECTs on items just wait (postgres: "
         "'still waiting for AccessShareLock ... after 1000 ms', and 'duration: N ms' when they finally run), its "
         "pooled connections are held by the waiters (QueuePool timeouts for other requests) and nginx gives up "
         "after 5 s (upstream timed out, 504). Truth: database work waited on locks with no timeout firing in the "
         "database (TAXONOMY's db.slow_query) / postgres; the pool timeouts and 504s are the callers waiting.",
         ["db.slow_query", "timeout.upstream", "pool.exhausted", "http.5xx"], fault="fault_migration_lock",
         lock_hold_s=30),
    Spec("pg_idle_tx_timeout", "timeout.query", "postgres",
         "Two clients use POST /api/checkout all along; that code path calls a payment provider (3 s) inside its "
         "database transaction. At the fault time a DBA sets idle_in_transaction_session_timeout = 2s (ALTER SYSTEM + "
         "pg_reload_conf()): postgres ends every checkout session while it sits idle in transaction ('FATAL: "
         "terminating connection due to idle-in-transaction timeout'); the app's next statement fails "
         "(OperationalError) -> 500. Truth: the database ended work on a timeout (timeout.query, TAXONOMY names "
         "the idle-in-transaction timeout) / postgres, not an admin or restart termination (db.connection_terminated).",
         ["timeout.query", "http.5xx"], fault="fault_idle_tx_timeout", checkout_users=2),
    Spec("app_disk_full", "resource.disk_full", "app",
         "shop-api writes a receipt file per order into its data directory, an 8 MB volume (tmpfs). At the fault "
         "time a debug dump written into the same volume fills it: every POST /api/orders then fails writing its "
         "receipt ('OSError: [Errno 28] No space left on device') -> 500. Postgres, Redis and nginx are healthy. "
         "Truth: the app ran out of disk space (resource.disk_full / app).", ["resource.disk_full", "http.5xx"],
         fault="fault_app_fill_disk", app_tmpfs_mb=8),
    Spec("redis_requirepass", "db.auth_failed", "redis",
         "An operator turns on Redis authentication at run time (CONFIG SET requirepass) and kicks the connected "
         "clients (CLIENT KILL TYPE normal) so they re-authenticate; shop-api is not given the password. Its new "
         "Redis connections get 'NOAUTH Authentication required.' (redis AuthenticationError), retried, then 500 "
         "on /api/items/<id> and orders. Truth: the server rejected the client's (missing) credentials "
         "(db.auth_failed) / redis, the server that changed; Redis itself logs nothing at notice level.",
         ["db.auth_failed", "http.5xx"], fault="fault_redis_requirepass"),
    Spec("pg_password_rotated", "db.auth_failed", "postgres",
         "The app role's password is rotated in the database (ALTER ROLE app PASSWORD ...) without redeploying "
         "shop-api. Its open sessions keep working until the pool recycles them (pool_recycle 20 s); from then on "
         "every new session fails: 'FATAL: password authentication failed for user \"app\"' (postgres) / "
         "OperationalError (app) -> 500. Truth: db.auth_failed / postgres (as the dev set's db_auth_failure), here "
         "with a gradual onset while the old sessions age out.", ["db.auth_failed", "http.5xx"],
         fault="fault_pg_password"),
    Spec("app_frozen", "timeout.upstream", "app",
         "shop-api's process is frozen (SIGSTOP, as under a debugger, a stuck stop-the-world pause or a VM stall) "
         "for 30 s, then resumed (SIGCONT). The kernel still completes TCP handshakes into its listen backlog, so "
         "nginx first connects and waits: 'upstream timed out (110) while reading response header' (504); once the "
         "backlog is full new connections are not accepted: 'connect() ... timed out (110)' (504). The app logs "
         "nothing while frozen. Truth: requests to the upstream got no response in time (timeout.upstream) / app, "
         "the service that stopped answering; the connect timeouts are the same hang seen once its backlog filled, "
         "not a network fault.", ["timeout.upstream", "timeout.connect", "http.5xx"], fault="fault_app_freeze"),
    Spec("app_frozen_backlog", "timeout.upstream", "app",
         "As app_frozen (shop-api frozen with SIGSTOP for 30 s, then SIGCONT), with 4 users and the app's listen "
         "backlog at 8 (as a small gunicorn --backlog or a low net.core.somaxconn): the backlog fills within seconds, "
         "so most of nginx's errors are 'connect() ... timed out (110: Connection timed out) while connecting to "
         "upstream' (504 after proxy_connect_timeout 2 s) rather than read timeouts. Truth: still timeout.upstream / "
         "app: the app stopped answering; the connect timeouts are its full accept queue, not the network.",
         ["timeout.connect", "timeout.upstream", "http.5xx"], fault="fault_app_freeze", app={"backlog": 8}, users=4),
    Spec("pg_deadlock", "db.slow_query", "postgres",
         "Two clients check out baskets all along: each locks two of the 5 best-selling items in id order (SELECT "
         "... FOR UPDATE, 0.5 s apart), so they only ever wait for each other. At the fault time a repricing job "
         "starts updating those items in descending id order in one transaction per pass (0.3 s apart), for 30 s: "
         "the lock order is reversed, postgres waits (deadlock_timeout 1 s), finds the cycles and aborts one side "
         "('ERROR: deadlock detected', 'Process N waits for ShareLock ... blocked by process M'); the app's aborted "
         "checkouts fail with OperationalError (DeadlockDetected) -> 500. Truth: db.slow_query / postgres, "
         "TAXONOMY's class for lock waits and 'deadlock detected' (no timeout fired).",
         ["db.slow_query", "http.5xx"], fault="fault_reprice_deadlock", checkout_users=2,
         checkout_path="/api/checkout?hold=0.5&hot=5"),
    Spec("app_bad_release", "http.5xx", "app",
         "shop-api is redeployed (supervisor stop/start) with a release whose item serializer has a bug: every "
         "/api/items/<id> that misses the cache raises NoSuchColumnError (a KeyError: it reads a column, price_eur, the "
         "query does not select) "
         "and is answered 500 with the traceback in the app's log; the process keeps running and every dependency "
         "is healthy. Truth: TAXONOMY has no class for an application bug, so the incident is server errors with no "
         "more specific evidence (http.5xx), and the component that produced them is the app, not nginx which only "
         "passed them on.", ["http.5xx"], fault="fault_bad_release", supervised=True),
    Spec("pg_postmaster_killed", "service.down", "postgres",
         "PostgreSQL's postmaster is killed with SIGKILL and nothing restarts it. Its backends notice and end the "
         "app's sessions ('FATAL: terminating connection due to unexpected postmaster exit'); every new connection "
         "is refused (OperationalError ... Connection refused) -> 500. Truth: the database is not running any "
         "more (service.down / postgres, as pg_stopped and redis_killed), with no shutdown lines of its own.",
         ["db.connection_terminated", "conn.refused", "http.5xx"], fault="fault_pg_kill_postmaster"),
    Spec("herring_auth_probe", "pool.exhausted", "app",
         "A red herring layered on a real fault: from early in the run a monitoring agent with a stale password "
         "tries to log in to postgres every 2 s ('FATAL: password authentication failed', harmless: the app's role "
         "is fine). At the fault time /api/report?detail=1 starts leaking pooled connections (as pool_leak): "
         "QueuePool timeouts and 503s. Truth: pool.exhausted / app; the steady authentication failures started "
         "long before and do not change with the incident.", ["http.5xx"], fault="fault_pool_leak",
         app={"leak_conns": True, "pool_timeout": 3}, harmless="harmless_auth_probe"),
    # round 4: kinds of fault not in the dev set nor rounds 1-3
    Spec("app_redis_dns", "dns.failure", "app config",
         "shop-api is redeployed (supervisor stop/start) with its Redis host set to cache-primary.shop.invalid, a "
         "name that does not resolve. Unlike app_db_dns the app starts and listens (it checks only its database at "
         "start-up): every request that touches Redis (/api/items/<id>, POST /api/orders) fails its lookup (redis "
         "ConnectionError: Error -2 connecting to cache-primary.shop.invalid:N. Name or service not known), is "
         "retried, then answered 500; the other endpoints keep working. Truth: the line that shows the cause is the "
         "name lookup failure (dns.failure, NXDOMAIN, not a failing resolver); what is wrong is the host name the app "
         "was given, so the component is 'app config' (as app_db_dns). Redis itself is healthy.",
         ["dns.failure", "http.5xx"], fault="fault_bad_redis_host", supervised=True),
    Spec("app_db_sslmode", "tls.failure", "app config",
         "shop-api is redeployed (supervisor stop/start) with sslmode=require for its database connections while "
         "PostgreSQL runs with ssl = off. libpq sends an SSLRequest, postgres declines it, and the client gives up: "
         "'server does not support SSL, but SSL was required'. The new process fails its start-up database check "
         "and exits 1; the supervisor restarts it every second (crash loop); nginx gets connection refused (502). "
         "Truth: TAXONOMY's tls.failure (the TLS negotiation with a dependency failed), and the fault is in the "
         "client's configuration (postgres is healthy and unchanged), so the component is 'app config', as for "
         "nginx_tls_upstream ('nginx config'); the crash loop and nginx's refusals are consequences.",
         ["tls.failure", "proc.crash", "conn.refused", "http.5xx"], fault="fault_db_sslmode", supervised=True),
    Spec("pg_role_conn_limit", "db.too_many_connections", "postgres",
         "A DBA runs ALTER ROLE app CONNECTION LIMIT 2 (meant for a reporting role) while shop-api's pool holds a few "
         "sessions; 2 clients start calling the slow /api/export, so the pool needs more. Every new session of role "
         "app beyond two is refused: 'FATAL: too many connections for role \"app\"' (postgres) / OperationalError "
         "(app) -> 500, and more of them as the pool recycles its old sessions (pool_recycle 20 s). Truth: the "
         "database refused sessions because a connection limit was reached (db.too_many_connections / postgres), "
         "a per-role limit rather than max_connections.", ["db.too_many_connections", "http.5xx"],
         fault="fault_role_conn_limit"),
    Spec("redis_down_app_restart", "service.down", "redis",
         "Redis is stopped (SIGTERM) for host maintenance and not restarted; 3 s later shop-api is restarted by a "
         "routine rollout (same release). Its start-up check PINGs Redis, which fails (redis ConnectionError: "
         "Error 111 connecting to 127.0.0.1:N. Connection refused, uncaught traceback), so it exits 1 and the "
         "supervisor restarts it every second (a crash loop); nginx gets connection refused (502) on every /api/ "
         "request. Truth: service.down / redis: the dependency that is not running is the cause; the app's crash "
         "loop (proc.crash) and nginx's refusals are its symptoms.",
         ["conn.refused", "proc.crash", "http.5xx"], fault="fault_redis_down_app_restart", supervised=True,
         app={"check_redis": True}),
    Spec("pg_down_app_restart", "service.down", "postgres",
         "PostgreSQL is stopped (pg_ctl stop -m fast) for host maintenance and not restarted; 3 s later shop-api is "
         "restarted by a routine rollout (same release). Its start-up database check is refused (psycopg2 "
         "OperationalError: connection to server at 127.0.0.1, port N failed: Connection refused, uncaught "
         "traceback), so it exits 1 and the supervisor restarts it every second; nginx gets connection refused "
         "(502). Truth: service.down / postgres, as redis_down_app_restart; unlike app_db_port_mismatch the app "
         "dials the port postgres listened on, and postgres logged its shutdown.",
         ["db.connection_terminated", "conn.refused", "proc.crash", "http.5xx"], fault="fault_pg_down_app_restart",
         supervised=True),
    Spec("app_cpu_starved", "timeout.upstream", "app",
         "shop-api runs 4 handler workers (a bounded thread pool, as gunicorn's gthread). A partner's batch client "
         "starts calling /api/recommend, which burns 2.5 s of CPU in Python per call, from 6 connections: the "
         "workers are all busy burning CPU (and the GIL), other requests queue behind them, and nginx gives up "
         "after 5 s ('upstream timed out (110) while reading response header', 504). Postgres and Redis are "
         "healthy; the app logs no error of its own, only slow requests. Truth: requests to the upstream got no "
         "response in time (timeout.upstream) / app, the service that stopped answering in time.",
         ["timeout.upstream", "http.5xx"], fault="fault_cpu_burn", app={"workers": 4}),
    Spec("redis_misconf_disk_full", "resource.disk_full", "redis",
         "Redis saves RDB snapshots (save 5 1) into its dir, an 8 MB volume (tmpfs). At the fault time a backup job "
         "copies into the same volume until it is full; Redis's next background save fails ('Write error saving DB "
         "on disk: No space left on device', 'Background saving error') and with stop-writes-on-bgsave-error (the "
         "default) Redis refuses every write: the app's INCR/SET get 'MISCONF Redis is configured to save RDB "
         "snapshots, but it's currently unable to persist to disk' (ResponseError) -> 500 on /api/items/<id> and "
         "orders; reads keep working. Truth: the dump dir became unwritable because its volume is full, so the "
         "cause is resource.disk_full / redis (the server that cannot write; MISCONF is how it shows to clients). A "
         "dump dir made unwritable by permissions would show the same MISCONF with 'Permission denied' in Redis's "
         "log, which TAXONOMY has no class for; this lab uses the full volume.",
         ["resource.disk_full", "http.5xx"], fault="fault_redis_dir_full", redis_save="5 1", redis_tmpfs_mb=8),
]}


class Lab:
    def __init__(self, spec: Spec, out: Path, port: int, keep: bool = False):
        self.spec = spec
        self.keep = keep                      # keep the servers' work directory after the run
        self.out = out / spec.name
        self.port = port                      # nginx; postgres +2, redis +3, app +10
        self.pg_port, self.redis_port, self.app_port = port + 2, port + 3, port + 10
        self.base = Path(f"/tmp/shoplab/{spec.name}-{port}")
        self.events: list[dict] = []
        self.traffic: dict[str, dict[str, int]] = {}
        self.stop_traffic = threading.Event()
        self.threads: list[threading.Thread] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.app_proc: subprocess.Popen | None = None
        self.sup_log = None
        self.app_stopping = False
        self.fault_at: str | None = None
        self.cgroup: Path | None = None
        self.restarts = 0
        self.redeploying = False
        self.db_port_override: int | None = None
        self.db_host_override: str | None = None
        self.redis_host_override: str | None = None
        self.app_port_override: int | None = None
        self.app_config: Path | None = None
        self.upstream = f"http://127.0.0.1:{self.app_port + spec.nginx_port_offset}"    # nginx's proxy_pass

    # ------------------------------------------------------------------ plumbing
    def event(self, what: str) -> None:
        self.events.append({"at": now_iso(), "what": what})
        print(f"  {self.events[-1]['at']} {what}", flush=True)

    def pg_admin(self):
        return psycopg2.connect(host=str(self.base / "pgsock"), port=self.pg_port, user="postgres", dbname="appdb")

    def start_postgres(self) -> None:
        pgdata = self.base / "pgdata"
        if self.spec.pg_tmpfs_mb:
            pgdata.mkdir(parents=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.spec.pg_tmpfs_mb}m", "tmpfs", str(pgdata)],
                           check=True)
        (self.base / "pgsock").mkdir(parents=True, exist_ok=True)
        (self.base / "logs").mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", "postgres", str(self.base)], check=True)
        wal = ["--wal-segsize=1"] if self.spec.pg_tmpfs_mb else []
        subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN_PG}/initdb", "-D", str(pgdata), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", *wal],
                       check=True, stdout=subprocess.DEVNULL)
        conf = {
            "listen_addresses": "'127.0.0.1'", "port": self.pg_port, "unix_socket_directories": f"'{self.base}/pgsock'",
            "max_connections": self.spec.pg_max_connections, "log_line_prefix": "'%m [%p] %q%u@%d '", "log_connections": "on",
            "log_disconnections": "on", "log_min_duration_statement": 500, "log_lock_waits": "on",
            "log_statement": "'ddl'", "logging_collector": "off", "log_timezone": "'UTC'", "lc_messages": "'C'",
            "shared_buffers": "'16MB'",
        }
        if self.spec.pg_tmpfs_mb:
            conf.update({"min_wal_size": "'2MB'", "max_wal_size": "'4MB'"})
        with open(pgdata / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        self.pg_log = self.base / "logs" / "postgresql.log"
        subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN_PG}/pg_ctl", "-D", str(pgdata), "-l", str(self.pg_log),
                        "-w", "start"], check=True, stdout=subprocess.DEVNULL)
        c = psycopg2.connect(host=str(self.base / "pgsock"), port=self.pg_port, user="postgres", dbname="postgres")
        c.autocommit = True
        cur = c.cursor()
        cur.execute("CREATE ROLE app LOGIN PASSWORD 'app-secret'")
        cur.execute("CREATE DATABASE appdb OWNER app")
        c.close()
        c = psycopg2.connect(host=str(self.base / "pgsock"), port=self.pg_port, user="app", dbname="appdb")
        cur = c.cursor()
        cur.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL)")
        cur.execute("INSERT INTO items SELECT g, 'item ' || g, (g % 97) + 0.99 FROM generate_series(1, 1000) g")
        cur.execute("CREATE TABLE orders (id serial PRIMARY KEY, item_id int, amount int, created timestamptz DEFAULT now())")
        cur.execute("INSERT INTO orders(item_id, amount) SELECT g % 1000 + 1, g % 300 FROM generate_series(1, 2000) g")
        cur.execute("CREATE TABLE audit (id serial PRIMARY KEY, payload text)")
        c.commit()
        c.close()
        self.event(f"postgres up on 127.0.0.1:{self.pg_port} (max_connections={self.spec.pg_max_connections})")

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN_PG}/pg_ctl", "-D", str(self.base / "pgdata"),
                        "-l", str(self.pg_log), *args], stdout=subprocess.DEVNULL, check=False)

    def start_redis(self) -> None:
        self.redis_log = self.base / "logs" / "redis.log"
        rdir = self.base
        if self.spec.redis_tmpfs_mb:
            rdir = self.base / "redisdata"
            rdir.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.spec.redis_tmpfs_mb}m", "tmpfs", str(rdir)],
                           check=True)
        self.redis_dir = rdir
        self.procs["redis"] = subprocess.Popen(
            [REDIS, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--logfile", str(self.redis_log),
             "--loglevel", "notice", "--save", self.spec.redis_save, "--appendonly", "no", "--dir", str(rdir),
             "--daemonize", "no",
             *(["--maxmemory", self.spec.redis_maxmemory, "--maxmemory-policy", "noeviction"]
               if self.spec.redis_maxmemory else []),
             *(["--maxclients", str(self.spec.redis_maxclients)] if self.spec.redis_maxclients else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        self.event(f"redis up on 127.0.0.1:{self.redis_port} (maxclients={self.spec.redis_maxclients or 10000})")

    def start_nginx(self) -> None:
        n = self.base / "nginx"
        self.write_nginx_conf()
        subprocess.run(["chown", "-R", "nobody", str(n)], check=True)
        subprocess.run([NGINX, "-p", str(n), "-c", str(n / "nginx.conf")], check=True)
        self.event(f"nginx up on 127.0.0.1:{self.port} -> upstream {self.upstream}")

    def reload_nginx(self) -> None:
        n = self.base / "nginx"
        self.write_nginx_conf()
        subprocess.run([NGINX, "-p", str(n), "-c", str(n / "nginx.conf"), "-s", "reload"], check=True)

    def write_nginx_conf(self) -> None:
        n = self.base / "nginx"
        (n / "www" / "static").mkdir(parents=True, exist_ok=True)
        (n / "www" / "static" / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>\n')
        (n / "www" / "static" / "app.js").write_text("console.log('shop');\n" * 40)
        limit_zone = "limit_req_zone $binary_remote_addr zone=api:1m rate=10r/s;" if self.spec.limit_req else ""
        limit = "limit_req zone=api burst=5 nodelay;" if self.spec.limit_req else ""
        if self.spec.limit_req_status:
            limit += f" limit_req_status {self.spec.limit_req_status};"
        self.nginx_logs = self.base / "logs"
        (n / "nginx.conf").write_text(f"""
worker_processes 1;
error_log {self.nginx_logs}/nginx-error.log warn;
pid {n}/nginx.pid;
events {{ worker_connections {self.spec.worker_connections}; }}
http {{
    log_format lab '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                   '"$http_referer" "$http_user_agent" $upstream_addr $upstream_status $request_time $upstream_response_time';
    access_log {self.nginx_logs}/nginx-access.log lab;
    client_body_temp_path {n}/client_body; proxy_temp_path {n}/proxy; fastcgi_temp_path {n}/fastcgi;
    uwsgi_temp_path {n}/uwsgi; scgi_temp_path {n}/scgi;
    {limit_zone}
    server {{
        listen 127.0.0.1:{self.port};
        server_name shop.lab.local;
        location /static/ {{ root {n}/www; }}
        location /api/ {{
            {limit}
            proxy_pass {self.upstream};
            proxy_connect_timeout 2s;
            proxy_read_timeout 5s;
        }}
        location / {{ return 404; }}
    }}
}}
""")

    # ------------------------------------------------------------------ the app and its supervisor
    def app_argv(self) -> list[str]:
        argv = [sys.executable, "-X", "faulthandler", str(HERE / "shop_api.py"),
                "--port", str(self.app_port_override or self.app_port),
                "--db-port", str(self.db_port_override or self.pg_port), "--redis-port", str(self.redis_port)]
        if self.db_host_override:
            argv += ["--db-host", self.db_host_override]
        if self.redis_host_override:
            argv += ["--redis-host", self.redis_host_override]
        if self.app_config:
            argv += ["--config", str(self.app_config)]
        if self.spec.app_tmpfs_mb:
            argv += ["--data-dir", str(self.base / "appdata")]
        for k, v in self.spec.app.items():
            flag = "--" + k.replace("_", "-")
            argv += [flag] if v is True else [flag, str(v)]
        return argv

    def sup(self, text: str) -> None:
        if self.sup_log:
            self.sup_log.write(f"{now_iso()} supervisor[{os.getpid()}]: {text}\n")
            self.sup_log.flush()

    def spawn_app(self) -> None:
        spec = self.spec
        cg = self.cgroup

        def pre():
            if spec.app_as_mb:
                resource.setrlimit(resource.RLIMIT_AS, (spec.app_as_mb << 20, spec.app_as_mb << 20))
            if spec.app_nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (spec.app_nofile, spec.app_nofile))
            if cg:
                (cg / "cgroup.procs").write_text(str(os.getpid()))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if spec.app_as_mb:
            env["MALLOC_ARENA_MAX"] = "2"
        self.app_proc = subprocess.Popen(self.app_argv(), stdout=self.app_out, stderr=self.app_out, preexec_fn=pre,
                                         env=env)
        self.sup(f"Started shop-api.service (pid {self.app_proc.pid}).")

    def oom_kills(self) -> int:
        if not self.cgroup:
            return 0
        for line in (self.cgroup / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def watch_app(self) -> None:
        while True:
            proc = self.app_proc
            rc = proc.wait()
            if self.app_stopping:
                return
            while self.redeploying or self.app_proc is not proc and self.app_proc.poll() is None:
                if self.app_proc is not proc:
                    break
                time.sleep(0.05)
            if self.app_proc is not proc:     # a redeploy replaced it: watch the new process
                continue
            if not self.spec.supervised:
                self.event(f"app exited rc={rc} (not supervised)")
                return
            oom_before = getattr(self, "_oom_seen", 0)
            oom_now = self.oom_kills()
            if oom_now > oom_before:
                self._oom_seen = oom_now
                self.sup("shop-api.service: A process of this unit has been killed by the OOM killer.")
            if rc < 0:
                sig = signal.Signals(-rc)
                code = "dumped" if sig in (signal.SIGSEGV, signal.SIGABRT) else "killed"
                self.sup(f"shop-api.service: Main process exited, code={code}, status={-rc}/{sig.name[3:]}")
                result = "oom-kill" if oom_now > oom_before else ("core-dump" if code == "dumped" else "signal")
            else:
                self.sup(f"shop-api.service: Main process exited, code=exited, status={rc}")
                result = "exit-code"
            self.sup(f"shop-api.service: Failed with result '{result}'.")
            self.event(f"app exited rc={rc}" + (" (OOM kill)" if result == "oom-kill" else ""))
            time.sleep(1.0)
            if self.app_stopping:         # the run ended while the supervisor waited
                return
            self.restarts += 1
            self.sup(f"shop-api.service: Scheduled restart job, restart counter is at {self.restarts}.")
            self.spawn_app()

    def start_app(self) -> None:
        (self.base / "logs").mkdir(parents=True, exist_ok=True)
        if self.spec.app_tmpfs_mb:
            (self.base / "appdata").mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.spec.app_tmpfs_mb}m", "tmpfs",
                            str(self.base / "appdata")], check=True)
        self.app_out = open(self.base / "logs" / "app.log", "ab", buffering=0)
        if self.spec.supervised:
            self.sup_log = open(self.base / "logs" / "supervisor.log", "a")
        if self.spec.app_memory_mb:
            self.cgroup = Path(f"/sys/fs/cgroup/memory/shoplab-{self.spec.name}-{self.port}")
            self.cgroup.mkdir(exist_ok=True)
            (self.cgroup / "memory.limit_in_bytes").write_text(str(self.spec.app_memory_mb << 20))
            sw = self.cgroup / "memory.memsw.limit_in_bytes"
            if sw.exists():
                try:
                    sw.write_text(str(self.spec.app_memory_mb << 20))
                except OSError:
                    pass
        self.spawn_app()
        threading.Thread(target=self.watch_app, daemon=True).start()
        for _ in range(50):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.app_port, timeout=2)
                c.request("GET", "/healthz")
                c.getresponse().read()
                c.close()
                break
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)

    # ------------------------------------------------------------------ traffic
    def stream(self, name: str, workers: int, pick, pause: tuple[float, float]) -> None:
        self.traffic.setdefault(name, {})
        self.event(f"traffic stream '{name}' started ({workers} workers)")
        stop = threading.Event()

        def work():
            ua = random.choice(UAS)
            while not self.stop_traffic.is_set() and not stop.is_set():
                method, path = pick()
                try:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                    c.request(method, path, body=b"{}" if method == "POST" else None,
                              headers={"Host": "shop.lab.local", "User-Agent": ua, "Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    key = str(r.status)
                    c.close()
                except (OSError, http.client.HTTPException) as e:
                    key = type(e).__name__
                counts = self.traffic[name]
                counts[key] = counts.get(key, 0) + 1
                time.sleep(random.uniform(*pause))
        for _ in range(workers):
            t = threading.Thread(target=work, daemon=True)
            t.start()
            self.threads.append(t)
        return stop

    @staticmethod
    def user_request() -> tuple[str, str]:
        r = random.random()
        if r < 0.40:
            return "GET", f"/api/items/{random.randint(1, 1010)}"
        if r < 0.55:
            return "GET", "/api/items"
        if r < 0.68:
            return "GET", f"/api/search?q={random.choice(['1', '2', '3', 'item+4', '77'])}"
        if r < 0.78:
            return "POST", "/api/orders"
        if r < 0.90:
            return "GET", random.choice(["/static/logo.svg", "/static/app.js"])
        if r < 0.95:
            return "GET", "/api/export"
        return "GET", random.choice(["/favicon.ico", "/robots.txt", "/api/v1/items"])

    # ------------------------------------------------------------------ faults
    def fault_redis_down(self) -> None:
        self.event(f"FAULT: redis (pid {self.procs['redis'].pid}) stopped with SIGTERM and not restarted")
        self.procs["redis"].send_signal(signal.SIGTERM)

    def fault_redis_kill(self) -> None:
        self.event(f"FAULT: redis (pid {self.procs['redis'].pid}) killed with SIGKILL and not restarted")
        self.procs["redis"].kill()

    def fault_redis_fill(self) -> None:
        import redis
        self.event("FAULT: a batch job stores 4 KB session blobs in redis until it is full (maxmemory, noeviction)")
        def run():
            r = redis.Redis(port=self.redis_port)
            blob = os.urandom(4 * 1024)      # small values: Redis is full for small writes too
            refused = 0
            t_end = time.time() + 35
            i = 0
            while time.time() < t_end:       # the job retries its writes, so Redis stays full
                try:
                    r.set(f"batch:session:{i}", blob)
                    i += 1
                except redis.ResponseError as e:
                    if not refused:
                        self.event(f"batch job refused after {i} blobs: {e}")
                    refused += 1
                    time.sleep(0.05)
            self.event(f"batch job gave up ({refused} refused writes)")
        threading.Thread(target=run, daemon=True).start()

    def fault_report_leak(self) -> None:
        self.event("FAULT: a client starts requesting /api/report (each report, 4 MB, stays referenced: a leak)")
        self.stream("report-client", 2, lambda: ("GET", "/api/report?kb=4096"), (0.2, 0.4))

    def fault_app_slow(self) -> None:
        self.event("FAULT: admin POST /admin/reindex?seconds=25: the app holds its price lock for 25 s")
        c = http.client.HTTPConnection("127.0.0.1", self.app_port, timeout=5)
        c.request("POST", "/admin/reindex?seconds=25")
        c.getresponse().read()

    def fault_migration_lock(self) -> None:
        def run():
            c = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app", password="app-secret",
                                 dbname="appdb", application_name="migrate")
            cur = c.cursor()
            cur.execute("ALTER TABLE items ADD COLUMN note text")
            time.sleep(self.spec.lock_hold_s)
            c.commit()
            c.close()
            self.event("migration committed (lock released)")
        self.event(f"FAULT: migration session takes ACCESS EXCLUSIVE lock on items for {self.spec.lock_hold_s:g} s "
                   "(ALTER TABLE items ADD COLUMN)")
        threading.Thread(target=run, daemon=True).start()

    def fault_pg_terminate(self) -> None:
        def run():
            c = self.pg_admin()
            c.autocommit = True
            for _ in range(10):
                cur = c.cursor()
                cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE usename = 'app' AND pid <> pg_backend_pid()")
                n = cur.fetchone()[0]
                self.event(f"pg_terminate_backend on {n} app sessions")
                time.sleep(2)
            c.close()
        self.event("FAULT: admin job terminates every app session (pg_terminate_backend) every 2 s for 20 s")
        threading.Thread(target=run, daemon=True).start()

    def fault_exports(self) -> None:
        self.event("FAULT: an export client starts calling /api/export (each call leaks its spool file descriptor)")
        self.stream("exports", 2, lambda: ("GET", "/api/export"), (0.1, 0.3))

    def fault_scraper(self) -> None:
        self.event("FAULT: a scraper on the same client address requests /api/items/<id> fast (3 workers)")
        self.stream("scraper", 3, lambda: ("GET", f"/api/items/{random.randint(1, 1000)}"), (0.03, 0.06))

    def fault_fill_disk(self) -> None:
        def run():
            c = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app", password="app-secret",
                                 dbname="appdb", application_name="audit-import")
            cur = c.cursor()
            for i in range(400):
                try:
                    cur.execute("INSERT INTO audit(payload) SELECT md5(random()::text) || repeat(md5(g::text), 60) "
                                "FROM generate_series(1, 4000) g")
                    c.commit()
                except psycopg2.Error as e:
                    self.event(f"audit import failed: {str(e).splitlines()[0]}")
                    try:
                        c.rollback()
                    except psycopg2.Error:
                        break
                    time.sleep(1)
                    if i > 50:
                        break
                time.sleep(0.05)
        self.event("FAULT: bulk audit import fills postgres' data directory (tmpfs)")
        threading.Thread(target=run, daemon=True).start()

    def fault_pg_restart(self) -> None:
        self.event("FAULT: pg_ctl restart -m fast")
        self.pg_ctl("-m", "fast", "-w", "restart")
        self.event("postgres back up")

    def fault_pool_leak(self) -> None:
        self.event("FAULT: a client calls /api/report?detail=1, which leaks a pooled connection per call")
        self.stream("report-detail", 1, lambda: ("GET", "/api/report?detail=1"), (1.5, 2.5))

    def fault_kill_backend(self) -> None:
        def run():
            c = self.pg_admin()
            c.autocommit = True
            for _ in range(3):
                try:
                    cur = c.cursor()
                    cur.execute("SELECT pid FROM pg_stat_activity WHERE usename = 'app' ORDER BY backend_start LIMIT 1")
                    row = cur.fetchone()
                except psycopg2.Error:
                    c = self.pg_admin()
                    c.autocommit = True
                    continue
                if row:
                    self.event(f"SIGKILL to postgres backend pid {row[0]}")
                    os.kill(row[0], signal.SIGKILL)
                time.sleep(8)
                try:
                    c.close()
                except psycopg2.Error:
                    pass
                for _ in range(20):
                    try:
                        c = self.pg_admin()
                        c.autocommit = True
                        break
                    except psycopg2.Error:
                        time.sleep(0.5)
        self.event("FAULT: a postgres backend of the app is killed with SIGKILL, 3 times 8 s apart")
        threading.Thread(target=run, daemon=True).start()

    def fault_bad_db_port(self) -> None:
        bad = self.pg_port + 5
        self.event(f"FAULT: redeploy shop-api with --db-port {bad} (postgres listens on {self.pg_port})")
        self.redeploying = True
        self.sup("Stopping shop-api.service...")
        self.app_proc.send_signal(signal.SIGTERM)
        self.app_proc.wait(10)
        self.sup("shop-api.service: Deactivated successfully.")
        self.sup("Stopped shop-api.service.")
        self.db_port_override = bad
        self.spawn_app()
        self.redeploying = False

    def redeploy_app(self, what: str) -> None:
        """Stop the supervised app and start it with the overrides set by the caller (the supervisor restarts it)."""
        self.event(f"FAULT: redeploy shop-api with {what}")
        self.redeploying = True
        self.sup("Stopping shop-api.service...")
        self.app_proc.send_signal(signal.SIGTERM)
        self.app_proc.wait(10)
        self.sup("shop-api.service: Deactivated successfully.")
        self.sup("Stopped shop-api.service.")
        self.spawn_app()
        self.redeploying = False

    def fault_bad_db_host(self) -> None:
        self.db_host_override = "db-primary.shop.invalid"
        self.redeploy_app(f"--db-host {self.db_host_override} (a name that does not resolve)")

    def fault_bad_config(self) -> None:
        self.app_config = self.base / "shop-api.json"
        # a hand edit left a trailing comma: json.load raises at start-up
        self.app_config.write_text('{\n  "pool_size": 5,\n  "pool_timeout": 5,\n}\n')
        self.redeploy_app(f"--config {self.app_config} (invalid JSON: a trailing comma)")

    def fault_bad_release(self) -> None:
        self.spec = dataclasses.replace(self.spec, app={**self.spec.app, "price_bug": True})
        self.redeploy_app("--price-bug (release 1.8.3: the item serializer raises on every cache miss)")

    def fault_app_new_port(self) -> None:
        self.app_port_override = self.app_port + 1
        self.redeploy_app(f"--port {self.app_port_override} (nginx's upstream stays 127.0.0.1:{self.app_port})")

    def fault_checkout_hold(self) -> None:
        # 4 s: under nginx's proxy_read_timeout (5 s), so the checkouts themselves succeed
        self.event("FAULT: 5 checkout clients call POST /api/checkout?hold=4 (each call waits 4 s inside its "
                   "transaction: idle in transaction)")
        self.stream("checkout", 5, lambda: ("POST", "/api/checkout?hold=4"), (0.1, 0.3))

    def fault_redis_clients(self) -> None:
        import redis

        def run():
            held = []
            t_end = time.time() + 25
            while time.time() < t_end:        # a worker pool that opens a connection per task, never closes
                try:
                    c = redis.Redis(port=self.redis_port, socket_timeout=2)
                    c.ping()
                    held.append(c)
                except redis.RedisError as e:
                    if len(held) and not getattr(self, "_clients_full", False):
                        self._clients_full = True
                        self.event(f"batch workers hold {len(held)} redis connections; next: {e}")
                        # once Redis is full: more users, so the app needs more connections than it holds
                        self.stream("item-surge", 4, lambda: ("GET", f"/api/items/{random.randint(1, 1000)}"),
                                    (0.05, 0.2))
                    time.sleep(0.2)
            self.event(f"batch workers close their {len(held)} redis connections")
            for c in held:
                c.close()
        self.event("FAULT: batch workers open redis connections without closing them, for 25 s (maxclients 40); "
                   "once it is full 4 more users browse items, so the app needs more redis connections than it holds")
        threading.Thread(target=run, daemon=True).start()

    def fault_pg_stop(self) -> None:
        self.event("FAULT: pg_ctl stop -m fast, postgres not restarted")
        self.pg_ctl("-m", "fast", "-w", "stop")
        self.event("postgres stopped")

    def fault_redis_pause(self) -> None:
        self.event("FAULT: redis CLIENT PAUSE 25000 ALL (Redis stops answering every client for 25 s)")
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "CLIENT", "PAUSE", "25000", "ALL"],
                       stdout=subprocess.DEVNULL, check=False)

    def fault_nginx_wrong_port(self) -> None:
        self.upstream = f"http://127.0.0.1:{self.app_port + 1}"
        self.event(f"FAULT: nginx config deployed with upstream {self.upstream} (the app listens on {self.app_port}); "
                   "nginx -s reload")
        self.reload_nginx()

    def fault_nginx_tls_upstream(self) -> None:
        self.upstream = f"https://127.0.0.1:{self.app_port}"
        self.event(f"FAULT: nginx config deployed with proxy_pass {self.upstream} (the app speaks plain HTTP); "
                   "nginx -s reload")
        self.reload_nginx()

    def fault_batch_connections(self) -> None:
        def run():
            conns = []
            for _ in range(self.spec.pg_max_connections):
                try:
                    conns.append(psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app",
                                                  password="app-secret", dbname="appdb", application_name="batch"))
                except psycopg2.Error as e:
                    self.event(f"batch job holds {len(conns)} sessions; next connect failed: {str(e).strip()}")
                    break
                time.sleep(0.05)
            t_end = time.time() + 25
            while time.time() < t_end:        # its workers take every slot that frees up
                try:
                    conns.append(psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app",
                                                  password="app-secret", dbname="appdb", application_name="batch"))
                except psycopg2.Error:
                    time.sleep(0.2)
            self.event(f"batch job closes its {len(conns)} sessions")
            for c in conns:
                c.close()
        self.event("FAULT: a batch job (application_name=batch, role app) opens sessions until postgres refuses, "
                   "holds them 25 s; 3 clients start calling the slow /api/export")
        threading.Thread(target=run, daemon=True).start()
        self.stream("exports", 3, lambda: ("GET", "/api/export"), (0.2, 0.5))

    def fault_export_surge(self) -> None:
        self.event("FAULT: 8 clients start calling /api/export (1.2 s each)")
        self.stream("export-surge", 8, lambda: ("GET", "/api/export"), (0.05, 0.2))

    def fault_segv(self) -> None:
        self.signal_app(signal.SIGSEGV)

    def fault_sigkill(self) -> None:
        self.signal_app(signal.SIGKILL)

    def signal_app(self, sig: signal.Signals) -> None:
        def run():
            for i in range(3):
                p = self.app_proc
                if p and p.poll() is None:
                    self.event(f"{sig.name} to app pid {p.pid}")
                    p.send_signal(sig)
                time.sleep(8)
        self.event(f"FAULT: the app dies with {sig.name}, 3 times 8 s apart (supervisor restarts it)")
        threading.Thread(target=run, daemon=True).start()

    def fault_idle_tx_timeout(self) -> None:
        self.event("FAULT: ALTER SYSTEM SET idle_in_transaction_session_timeout = '2s'; SELECT pg_reload_conf()")
        c = self.pg_admin()
        c.autocommit = True
        c.cursor().execute("ALTER SYSTEM SET idle_in_transaction_session_timeout = '2s'")
        c.cursor().execute("SELECT pg_reload_conf()")
        c.close()

    def fault_app_fill_disk(self) -> None:
        dump = self.base / "appdata" / "heap-debug.dump"
        self.event(f"FAULT: a debug dump is written into the app's data volume ({dump}) until it is full")
        r = subprocess.run(["dd", "if=/dev/zero", f"of={dump}", "bs=1M"], capture_output=True, text=True, check=False)
        self.event(f"dump stopped: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else r.returncode}")

    def fault_redis_requirepass(self) -> None:
        self.event("FAULT: redis CONFIG SET requirepass (the app is not given the password); CLIENT KILL TYPE normal")
        for cmd in (["CONFIG", "SET", "requirepass", "rotated-9f2c"],
                    ["--no-auth-warning", "-a", "rotated-9f2c", "CLIENT", "KILL", "TYPE", "normal"]):
            subprocess.run(["redis-cli", "-p", str(self.redis_port), *cmd], stdout=subprocess.DEVNULL, check=False)

    def fault_pg_password(self) -> None:
        self.event("FAULT: ALTER ROLE app PASSWORD (rotated in the database; shop-api keeps the old one)")
        c = self.pg_admin()
        c.autocommit = True
        c.cursor().execute("ALTER ROLE app PASSWORD 'rotated-7d1e'")
        c.close()

    def fault_app_freeze(self) -> None:
        def run():
            p = self.app_proc
            self.event(f"FAULT: app pid {p.pid} frozen with SIGSTOP for 30 s")
            p.send_signal(signal.SIGSTOP)
            time.sleep(30)
            p.send_signal(signal.SIGCONT)
            self.event(f"app pid {p.pid} resumed (SIGCONT)")
        threading.Thread(target=run, daemon=True).start()

    def fault_reprice_deadlock(self) -> None:
        def run():
            c = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app", password="app-secret",
                                 dbname="appdb", application_name="reprice")
            aborted = 0
            t_end = time.time() + 30
            while time.time() < t_end:
                try:
                    cur = c.cursor()
                    for i in (5, 4, 3, 2, 1):        # the reverse of the checkouts' lock order
                        cur.execute("UPDATE items SET price = price * 1.01 WHERE id = %s", (i,))
                        time.sleep(0.3)
                    c.commit()
                except psycopg2.Error:
                    aborted += 1
                    c.rollback()
                time.sleep(0.2)
            c.close()
            self.event(f"repricing job stopped ({aborted} of its passes aborted)")
        self.event("FAULT: a repricing job updates items 5..1 (descending) in one transaction per pass, for 30 s")
        threading.Thread(target=run, daemon=True).start()

    def fault_pg_kill_postmaster(self) -> None:
        pid = int((self.base / "pgdata" / "postmaster.pid").read_text().split()[0])
        self.event(f"FAULT: postgres postmaster (pid {pid}) killed with SIGKILL, not restarted")
        os.kill(pid, signal.SIGKILL)

    # round 4
    def fault_bad_redis_host(self) -> None:
        self.redis_host_override = "cache-primary.shop.invalid"
        self.redeploy_app(f"--redis-host {self.redis_host_override} (a name that does not resolve)")

    def fault_db_sslmode(self) -> None:
        self.spec = dataclasses.replace(self.spec, app={**self.spec.app, "db_sslmode": "require"})
        self.redeploy_app("--db-sslmode require (postgres runs with ssl = off)")

    def fault_role_conn_limit(self) -> None:
        self.event("FAULT: ALTER ROLE app CONNECTION LIMIT 2 (meant for a reporting role); 2 clients start calling "
                   "the slow /api/export, so the app's pool needs more sessions than that")
        c = self.pg_admin()
        c.autocommit = True
        c.cursor().execute("ALTER ROLE app CONNECTION LIMIT 2")
        c.close()
        self.stream("exports", 2, lambda: ("GET", "/api/export"), (0.2, 0.5))

    def fault_redis_down_app_restart(self) -> None:
        self.event(f"FAULT: redis (pid {self.procs['redis'].pid}) stopped with SIGTERM for host maintenance, not "
                   "restarted; 3 s later shop-api is restarted by a routine config rollout")
        self.procs["redis"].send_signal(signal.SIGTERM)
        time.sleep(3)
        self.redeploy_app("the same release and settings (its start-up check PINGs Redis)")

    def fault_pg_down_app_restart(self) -> None:
        self.event("FAULT: pg_ctl stop -m fast for host maintenance, postgres not restarted; 3 s later shop-api is "
                   "restarted by a routine config rollout")
        self.pg_ctl("-m", "fast", "-w", "stop")
        time.sleep(3)
        self.redeploy_app("the same release and settings (its start-up check queries the database)")

    def fault_cpu_burn(self) -> None:
        self.event("FAULT: a partner's batch client starts calling /api/recommend?ms=2500 (2.5 s of CPU in Python "
                   "each) from 6 connections; the app has 4 handler workers")
        self.stream("recommend-batch", 6, lambda: ("GET", "/api/recommend?ms=2500"), (0.05, 0.2))

    def fault_redis_dir_full(self) -> None:
        dump = self.redis_dir / "dump-backup-old.rdb.tmp"
        self.event(f"FAULT: a backup job copies into Redis's dir ({self.redis_dir}) until the volume is full")
        r = subprocess.run(["dd", "if=/dev/zero", f"of={dump}", "bs=1M"], capture_output=True, text=True, check=False)
        self.event(f"copy stopped: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else r.returncode}")

    def harmless_auth_probe(self) -> None:
        def run():
            while not self.stop_traffic.is_set():
                try:
                    psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app", password="stale-monitor-pw",
                                     dbname="appdb", application_name="pg_monitor").close()
                except psycopg2.Error:
                    pass
                time.sleep(2)
        self.event("harmless: a monitoring agent with a stale password tries to log in to postgres every 2 s")
        threading.Thread(target=run, daemon=True).start()

    def harmless_noise(self) -> None:
        self.event("harmless: redis CLIENT PAUSE 1200 ms")
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "CLIENT", "PAUSE", "1200"], stdout=subprocess.DEVNULL,
                       check=False)
        time.sleep(2)
        self.event("harmless: one psql login with a wrong password")
        try:
            psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app", password="wrong", dbname="appdb",
                             application_name="psql").close()
        except psycopg2.Error:
            pass
        self.event("harmless: a scanner requests a few non-existent paths")
        for p in ["/wp-login.php", "/.env", "/admin", "/phpmyadmin/", "/.git/config", "/api/v2/items"]:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", p, headers={"Host": "shop.lab.local", "User-Agent": "zgrab/0.x"})
                c.getresponse().read()
            except OSError:
                pass

    # ------------------------------------------------------------------ the run
    def run(self) -> None:
        if self.base.exists():
            self.teardown_mount()
            shutil.rmtree(self.base)
        self.base.mkdir(parents=True)
        os.chmod(self.base, 0o755)
        try:
            self.start_postgres()
            self.start_redis()
            self.start_app()
            self.start_nginx()
            if self.spec.nginx_port_offset:       # the fault is there from the first request
                self.fault_at = now_iso()
            self.stream("users", self.spec.users, self.user_request, (0.25, 0.5))
            if self.spec.checkout_users:
                self.stream("checkout", self.spec.checkout_users, lambda: ("POST", self.spec.checkout_path), (0.5, 1.0))
            if self.spec.harmless:
                time.sleep(8)
                getattr(self, self.spec.harmless)()
                time.sleep(self.spec.healthy_s - 8)
            else:
                time.sleep(self.spec.healthy_s)
            if self.spec.fault:
                self.fault_at = now_iso()
                getattr(self, self.spec.fault)()
            time.sleep(self.spec.after_s)
            self.stop_traffic.set()
            for t in self.threads:
                t.join(timeout=16)
            time.sleep(0.5)
            self.collect()
        finally:
            self.teardown()

    def collect(self) -> None:
        if self.out.exists():
            shutil.rmtree(self.out)
        files = {"nginx/access.log": "nginx-access.log", "nginx/error.log": "nginx-error.log",
                 "postgres/postgresql.log": "postgresql.log", "app/app.log": "app.log", "redis/redis.log": "redis.log"}
        if self.spec.supervised:
            files["app/supervisor.log"] = "supervisor.log"
        sizes = {}
        for dest, src in files.items():
            p = self.out / dest
            p.parent.mkdir(parents=True, exist_ok=True)
            data = (self.base / "logs" / src).read_bytes() if (self.base / "logs" / src).exists() else b""
            if data and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]      # a half-written last line is dropped
            p.write_bytes(data)
            sizes[dest] = len(data)
        s = self.spec
        truth = {"scenario": s.name, "root_cause": s.root_cause, "component": s.component,
                 "fault_injected_at": self.fault_at, "description": s.description, "expected_symptoms": s.symptoms,
                 "events": self.events, "traffic": self.traffic, "files": sizes, "lab": "logtriage lab/run_scenario.py"}
        (self.out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
        print(f"  wrote {self.out} {sizes}", flush=True)

    def teardown_mount(self) -> None:
        for d in (self.base / "pgdata", self.base / "appdata", self.base / "redisdata"):
            if os.path.ismount(d):
                subprocess.run(["umount", "-l", str(d)], check=False)

    def teardown(self) -> None:
        self.stop_traffic.set()
        self.app_stopping = True
        n = self.base / "nginx"
        if (n / "nginx.pid").exists():
            subprocess.run([NGINX, "-p", str(n), "-c", str(n / "nginx.conf"), "-s", "quit"], stderr=subprocess.DEVNULL,
                           check=False)
        if self.app_proc and self.app_proc.poll() is None:
            self.app_proc.send_signal(signal.SIGTERM)
            try:
                self.app_proc.wait(5)
            except subprocess.TimeoutExpired:
                self.app_proc.kill()
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if (self.base / "pgdata" / "postmaster.pid").exists():
            self.pg_ctl("-m", "immediate", "stop")
        if self.cgroup and self.cgroup.exists():
            time.sleep(0.5)
            try:
                self.cgroup.rmdir()
            except OSError:
                pass
        self.teardown_mount()
        if self.sup_log:
            self.sup_log.close()
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    ap.add_argument("--out", default="/tmp/lab_scenarios", help="directory to write scenario dirs to")
    ap.add_argument("--port", type=int, default=29000, help="first port (each scenario uses port..port+10)")
    ap.add_argument("--healthy", type=float, help="seconds of normal traffic before the fault (default: the spec's)")
    ap.add_argument("--after", type=float, help="seconds after the fault (default: the spec's)")
    ap.add_argument("--users", type=int, help="concurrent ordinary users (default: the spec's, 2)")
    ap.add_argument("--suffix", default="", help="appended to the scenario directory's name, for a second run")
    ap.add_argument("--keep", action="store_true", help="keep /tmp/shoplab/<scenario>-<port>/ after the run")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for s in SPECS.values():
            print(f"{s.name:22} {s.root_cause or 'no incident':26} {s.component}")
        return 0
    if os.geteuid() != 0:
        print("the lab needs root (postgres via runuser, cgroup, tmpfs)", file=sys.stderr)
        return 2
    names = a.scenarios or list(SPECS)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        spec = SPECS[name]
        changes = {k: v for k, v in (("healthy_s", a.healthy), ("after_s", a.after), ("users", a.users)) if v}
        if changes or a.suffix:
            spec = dataclasses.replace(spec, name=spec.name + a.suffix, **changes)
        print(f"== {name}", flush=True)
        Lab(spec, out, a.port + 20 * i, keep=a.keep).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
