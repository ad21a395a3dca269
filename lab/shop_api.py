"""shop-api: the small Python service behind nginx in the fault lab (not part of logtriage).

Runs with a Python that has SQLAlchemy 1.4, psycopg2 and redis-py (lab/README.md says how to make
one under /tmp). Logs one JSON object per line on stdout (timestamp, level, logger, msg, error,
exception), like the app of the dev scenarios; anything Python prints on stderr is left raw.

Endpoints: GET /api/items/<id> (redis session check + cache, then postgres), GET /api/items,
GET /api/search, GET /api/export (slow aggregate), POST /api/orders (redis + postgres),
GET /api/report (keeps every report it built: the memory leak the OOM scenarios drive),
POST /api/checkout?hold=S (waits S seconds inside its transaction: the idle-in-transaction scenario;
with hot=N it locks two of items 1..N in id order: the deadlock scenario),
POST /admin/reindex?seconds=N (rebuilds the price index while holding the price lock: the slow-app
scenario), GET /api/recommend?ms=N (burns N ms of CPU in Python: the CPU-starvation scenario, with
--workers bounding the handler threads), GET /healthz. With --data-dir, POST /api/orders writes a receipt file there (the app's
disk-full scenario).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import redis
import sqlalchemy
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import text

VERSION = "1.8.2"
_out_lock = threading.Lock()


def log(level: str, msg: str, **fields) -> None:
    now = dt.datetime.now(dt.UTC)
    rec = {"timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
           "level": level, "logger": "shop-api", "msg": msg, **fields}
    line = json.dumps(rec)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def err_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class App:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        opts = []
        if a.statement_timeout_ms:
            opts.append(f"-c statement_timeout={a.statement_timeout_ms}")
        if a.lock_timeout_ms:
            opts.append(f"-c lock_timeout={a.lock_timeout_ms}")
        connect_args = {"application_name": "shop-api", "connect_timeout": 3}
        if a.db_sslmode:
            connect_args["sslmode"] = a.db_sslmode
        if opts:
            connect_args["options"] = " ".join(opts)
        self.engine = sqlalchemy.create_engine(
            f"postgresql+psycopg2://app:{a.db_password}@{a.db_host}:{a.db_port}/appdb",
            pool_size=a.pool_size, max_overflow=a.max_overflow, pool_timeout=a.pool_timeout,
            pool_recycle=a.pool_recycle, pool_pre_ping=False, connect_args=connect_args)
        # no client-side retries (redis-py >= 6 retries by default; Debian's 4.3 client, which the dev
        # scenarios' app used, does not): the app's own retry loop below is the only one
        self.redis = redis.Redis(host=a.redis_host, port=a.redis_port, socket_timeout=0.5,
                                 socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
        self.price_lock = threading.Lock()
        self.reports: list[bytes] = []       # the leak: every report ever built stays referenced
        self.export_files: list = []         # the fd leak: export spool files never closed
        self.leaked: list = []               # the connection leak: checked out, never returned

    def cache(self, op: str, *args, **kw):
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                return getattr(self.redis, op.lower())(*args, **kw)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                if attempt == attempts:
                    raise
                log("WARNING", "redis call failed, retrying", op=op, error=err_text(e), attempt=attempt,
                    max_attempts=attempts)
                time.sleep(0.1 * attempt)

    # handlers return (status, doc)
    def item(self, item_id: int, q: dict):
        self.cache("INCR", "session:hits")
        cached = self.cache("GET", f"item:{item_id}")
        if cached:
            return 200, json.loads(cached)
        with self.price_lock:               # the price index must not change under a read
            pass
        with self.engine.connect() as c:
            row = c.execute(text("SELECT id, name, price FROM items WHERE id = :i"), {"i": item_id}).first()
        if row is None:
            return 404, {"error": "not found"}
        if self.a.price_bug:      # release 1.8.3's serializer reads a column the query does not select
            doc = {"id": row[0], "name": row[1], "price": float(row._mapping["price_eur"])}
        else:
            doc = {"id": row[0], "name": row[1], "price": float(row[2])}
        self.cache("SET", f"item:{item_id}", json.dumps(doc), ex=5)
        return 200, doc

    def items(self, q: dict):
        with self.engine.connect() as c:
            rows = c.execute(text("SELECT id, name FROM items ORDER BY id LIMIT 20")).fetchall()
        return 200, {"items": [{"id": r[0], "name": r[1]} for r in rows]}

    def search(self, q: dict):
        term = (q.get("q") or ["a"])[0]
        with self.engine.connect() as c:
            rows = c.execute(text("SELECT id FROM items WHERE name ILIKE :t LIMIT 10"), {"t": f"%{term}%"}).fetchall()
        return 200, {"ids": [r[0] for r in rows]}

    def export(self, q: dict):
        spool = tempfile.TemporaryFile(prefix="export-")
        if self.a.leak_fds:
            self.export_files.append(spool)   # bug: spool files are kept for a "download later" feature
        with self.engine.connect() as c:
            row = c.execute(text("SELECT count(*), sum(amount) FROM orders, pg_sleep(1.2)")).first()
        spool.write(json.dumps({"count": row[0]}).encode())
        if not self.a.leak_fds:
            spool.close()
        return 200, {"count": row[0], "sum": float(row[1] or 0)}

    def order(self, q: dict):
        self.cache("INCR", "session:orders")
        with self.engine.begin() as c:
            oid = c.execute(text("INSERT INTO orders(item_id, amount) VALUES (:i, :a) RETURNING id"),
                            {"i": random.randint(1, 1000), "a": random.randint(1, 500)}).scalar()
        if self.a.data_dir:
            # the receipt the mailer picks up later; a write that fails fails the request
            with open(os.path.join(self.a.data_dir, f"receipt-{oid}.json"), "w") as f:
                f.write(json.dumps({"order": oid, "lines": ["item"] * 40}))
        return 201, {"order": oid}

    def report(self, q: dict):
        if self.a.leak_conns and q.get("detail"):
            c = self.engine.connect()          # bug: the detail path never closes its connection
            c.execute(text("SELECT count(*) FROM orders"))
            self.leaked.append(c)
            return 200, {"detail": True}
        size = int((q.get("kb") or ["64"])[0]) * 1024
        with self.engine.connect() as c:
            n = c.execute(text("SELECT count(*) FROM orders")).scalar()
        blob = bytearray(os.urandom(1024)) * (size // 1024)
        self.reports.append(bytes(blob))
        return 200, {"orders": n, "bytes": size}

    def recommend(self, q: dict):
        # pure-Python scoring of every item pair: CPU-bound, holds the GIL and a worker for its whole run
        ms = float((q.get("ms") or ["50"])[0])
        t_end = time.thread_time() + ms / 1000
        n = 0
        while time.thread_time() < t_end:
            n += sum(i * i % 7 for i in range(2000))
        return 200, {"scored": n}

    def checkout(self, q: dict):
        hold = float((q.get("hold") or ["0"])[0])
        hot = int((q.get("hot") or ["0"])[0])
        with self.engine.begin() as c:     # bug: calls the payment provider inside the transaction
            if hot:                        # a basket of two of the `hot` best sellers, locked in id order
                first, second = sorted(random.sample(range(1, hot + 1), 2))
                c.execute(text("SELECT id FROM items WHERE id = :i FOR UPDATE"), {"i": first})
                time.sleep(hold)
                c.execute(text("SELECT id FROM items WHERE id = :i FOR UPDATE"), {"i": second})
            else:
                c.execute(text("SELECT id FROM items WHERE id = :i FOR UPDATE"), {"i": random.randint(1, 1000)})
                time.sleep(hold)           # the session sits "idle in transaction", holding its connection
            c.execute(text("INSERT INTO orders(item_id, amount) VALUES (1, 1)"))
        return 201, {"checkout": True}

    def reindex(self, q: dict):
        seconds = float((q.get("seconds") or ["20"])[0])

        def run():
            log("INFO", "price index rebuild started", seconds=seconds)
            with self.price_lock:
                time.sleep(seconds)
            log("INFO", "price index rebuild finished")
        threading.Thread(target=run, daemon=True).start()
        return 202, {"started": True}


def make_handler(app: App):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):       # the JSON "request completed" line replaces it
            pass

        def do_GET(self):
            self.dispatch("GET")

        def do_POST(self):
            self.dispatch("POST")

        def dispatch(self, method: str):
            t0 = time.perf_counter()
            rid = os.urandom(16).hex()
            u = urlparse(self.path)
            q = parse_qs(u.query)
            path = u.path
            try:
                if method == "GET" and path.startswith("/api/items/") and path[11:].isdigit():
                    status, doc = app.item(int(path[11:]), q)
                elif method == "GET" and path == "/api/items":
                    status, doc = app.items(q)
                elif method == "GET" and path == "/api/search":
                    status, doc = app.search(q)
                elif method == "GET" and path == "/api/export":
                    status, doc = app.export(q)
                elif method == "POST" and path == "/api/orders":
                    status, doc = app.order(q)
                elif method == "GET" and path == "/api/report":
                    status, doc = app.report(q)
                elif method == "GET" and path == "/api/recommend":
                    status, doc = app.recommend(q)
                elif method == "POST" and path == "/api/checkout":
                    status, doc = app.checkout(q)
                elif method == "POST" and path == "/admin/reindex":
                    status, doc = app.reindex(q)
                elif path == "/healthz":
                    status, doc = 200, {"ok": True}
                else:
                    status, doc = 404, {"error": "not found"}
            except sqlalchemy.exc.TimeoutError as e:
                status, doc = 503, {"error": "database busy"}
                log("ERROR", "request failed: could not acquire database connection", method=method, path=path,
                    request_id=rid, status=status, error=err_text(e), exception=traceback.format_exc())
            except Exception as e:  # noqa: BLE001 - a service logs and answers 500
                status, doc = 500, {"error": "internal error"}
                log("ERROR", "request failed", method=method, path=path, request_id=rid, status=status,
                    error=err_text(e), exception=traceback.format_exc())
            ms = round((time.perf_counter() - t0) * 1000, 1)
            body = json.dumps(doc).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError as e:
                log("WARNING", "client went away before response was sent", method=method, path=path,
                    request_id=rid, error=err_text(e))
                return
            log("WARNING" if status >= 500 else "INFO", "request completed", method=method, path=path,
                status=status, duration_ms=ms, request_id=rid)
    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    pool = None      # with --workers N: a bounded pool of handler threads (like gunicorn's gthread workers)

    def process_request(self, request, client_address):
        if self.pool is None:
            return super().process_request(request, client_address)
        self.pool.submit(self.process_request_thread, request, client_address)

    def get_request(self):
        try:
            return super().get_request()
        except OSError as e:
            # like gunicorn/uvicorn: say so, back off a little, keep serving
            log("ERROR", "accept failed", error=err_text(e))
            time.sleep(0.5)
            raise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db-host", default="127.0.0.1")
    ap.add_argument("--db-port", type=int, required=True)
    ap.add_argument("--db-password", default="app-secret")
    ap.add_argument("--redis-host", default="127.0.0.1")
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--pool-size", type=int, default=5)
    ap.add_argument("--max-overflow", type=int, default=5)
    ap.add_argument("--pool-timeout", type=float, default=5.0)
    ap.add_argument("--pool-recycle", type=int, default=20)
    ap.add_argument("--statement-timeout-ms", type=int, default=0)
    ap.add_argument("--lock-timeout-ms", type=int, default=0)
    ap.add_argument("--leak-fds", action="store_true")
    ap.add_argument("--leak-conns", action="store_true")
    ap.add_argument("--data-dir", help="where POST /api/orders writes its receipt files")
    ap.add_argument("--price-bug", action="store_true", help="a release whose item serializer raises on every cache miss")
    ap.add_argument("--backlog", type=int, default=64, help="the listen socket's accept queue (listen(2) backlog)")
    ap.add_argument("--db-sslmode", default="", help="libpq sslmode for the database connections (e.g. require)")
    ap.add_argument("--check-redis", action="store_true", help="PING Redis at start-up and exit if it fails")
    ap.add_argument("--workers", type=int, default=0, help="handler threads (0: one thread per request)")
    ap.add_argument("--config", help="a JSON file whose keys override the options above (pool_size, ...)")
    a = ap.parse_args()
    if a.config:
        with open(a.config) as f:
            for k, v in json.load(f).items():
                setattr(a, k, v)
    log("INFO", f"starting shop-api version {VERSION}", pid=os.getpid(), db=f"{a.db_host}:{a.db_port}/appdb",
        redis=f"{a.redis_host}:{a.redis_port}", db_pool_size=a.pool_size, db_max_overflow=a.max_overflow,
        db_pool_timeout=a.pool_timeout)
    app = App(a)
    with app.engine.connect() as c:
        c.execute(text("SELECT 1"))
    log("INFO", "database connection check ok", db=f"{a.db_host}:{a.db_port}")
    if a.check_redis:
        app.redis.ping()
        log("INFO", "redis connection check ok", redis=f"{a.redis_host}:{a.redis_port}")
    if a.workers:
        from concurrent.futures import ThreadPoolExecutor
        Server.pool = ThreadPoolExecutor(max_workers=a.workers, thread_name_prefix="worker")
    Server.request_queue_size = a.backlog
    srv = Server((a.host, a.port), make_handler(app))

    def on_term(signum, frame):
        log("INFO", "received SIGTERM, shutting down", pid=os.getpid())
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    log("INFO", f"listening on http://{a.host}:{a.port}", host=a.host, port=a.port, pid=os.getpid())
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    app.engine.dispose()
    log("INFO", "shutdown complete", pid=os.getpid())


if __name__ == "__main__":
    main()
