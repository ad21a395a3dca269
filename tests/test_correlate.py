"""Correlation on small multi-source incidents built by hand: windows, links, inferences, cause order.

Each test writes a few log files in the real formats (nginx, PostgreSQL, the app's JSON lines)
into a temporary directory and analyses them with a small fixed rule set
(tests/data/rules_correlate), so the expectations do not move when the shipped pack grows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from logtriage.correlate.analysis import analyze
from tests.conftest import DATA

RULES = [str(DATA / "rules_correlate")]
T0 = dt.datetime(2026, 11, 21, 10, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def access(t: float, status: int, path: str = "/api/items/7", upstream: str = "127.0.0.1:3000") -> str:
    return (f'127.0.0.1 - - [{at(t):%d/%b/%Y:%H:%M:%S} +0000] "GET {path} HTTP/1.1" {status} 157 "-" '
            f'"Mozilla/5.0" {upstream} {status} 0.004 0.004')


def refused(t: float, upstream: str = "127.0.0.1:3000") -> str:
    return (f'{at(t):%Y/%m/%d %H:%M:%S} [error] 7#7: *{int(t)} connect() failed (111: Connection refused) while '
            f'connecting to upstream, client: 127.0.0.1, server: shop, request: "GET /api/items/7 HTTP/1.1", '
            f'upstream: "http://{upstream}/api/items/7", host: "shop"')


def app(t: float, msg: str, level: str = "INFO") -> str:
    stamp = at(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f'{{"timestamp": "{stamp}", "level": "{level}", "logger": "shop-api", "msg": "{msg}"}}'


def app_error(t: float, level: str, msg: str, error: str) -> str:
    """The app's JSON line for a failure: msg, and the exception in `error`."""
    stamp = at(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return (f'{{"timestamp": "{stamp}", "level": "{level}", "logger": "shop-api", "msg": "{msg}", '
            f'"error": "{error}"}}')


def pg(t: float, text: str) -> str:
    return f"{at(t):%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" UTC [42] app@appdb {text}"


def write(root: Path, files: dict[str, list[str]]) -> str:
    for name, lines in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + "\n")
    return str(root)


def healthy_traffic(until: float, step: float = 0.5) -> list[str]:
    return [access(i * step, 200) for i in range(int(until / step))]


def crash_loop(startup_failure, first: float = 60, restarts: int = 12) -> tuple[list[str], list[str]]:
    """The app's log and supervisor.log of a start-up crash loop from `first` (one start every 1.5 s)."""
    app_lines = [app(0, "listening on http://127.0.0.1:3000")]
    sup = []
    for k in range(restarts):
        t = first + k * 1.5
        app_lines += startup_failure(t)
        stamp = at(t + 0.3).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        sup += [f"{stamp} supervisor[1507]: shop-api.service: Main process exited, code=exited, status=1",
                f"{stamp} supervisor[1507]: shop-api.service: Failed with result 'exit-code'."]
    return app_lines, sup


def run(root: Path, files: dict[str, list[str]]) -> dict:
    return analyze([write(root, files)], rule_dirs=RULES, builtin_rules=False)


def test_normal_traffic_reports_no_incident(tmp_path):
    doc = run(tmp_path, {"nginx/access.log": healthy_traffic(120) + [access(60, 404)],
                         "app/app.log": [app(0, "listening on http://127.0.0.1:3000")]})
    assert doc["incidents"] == []
    assert doc["totals"]["lines_read"] == 242


def test_port_mismatch_is_inferred_from_listen_address_and_refused_port(tmp_path):
    ok = healthy_traffic(60)
    bad = [access(60 + i * 0.5, 502) for i in range(60)]
    errors = [refused(60 + i * 0.5) for i in range(60)]
    doc = run(tmp_path, {
        "nginx/access.log": ok + bad + [access(75.2, 502, "/api/items/521?format=legacy")],
        "nginx/error.log": errors,
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000"), app(59.5, "received SIGTERM, shutting down"),
                        app(60, "listening on http://127.0.0.1:3001")],
    })
    [inc] = doc["incidents"]
    top = inc["causes"][0]
    assert (top["id"], top["component"]) == ("config.port_mismatch", "nginx config")
    assert "127.0.0.1:3000" in top["explanation"] and "127.0.0.1:3001" in top["explanation"]
    assert {e["class"] for e in top["explains"]} >= {"conn.refused", "http.5xx"}
    assert any("listening on http://127.0.0.1:3001" in e["text"] for e in top["evidence"])
    # ids masked and the query dropped, so one endpoint collects all of them
    assert inc["impact"]["errors"] == 61 and inc["impact"]["upstreams"][0] == {"upstream": "127.0.0.1:3000", "errors": 61}
    assert inc["impact"]["endpoints"] == [{"endpoint": "GET /api/items/{id}", "errors": 61}]


def test_service_down_when_the_service_stopped_and_did_not_come_back(tmp_path):
    doc = run(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + i * 0.5, 502) for i in range(60)],
        "nginx/error.log": [refused(60 + i * 0.5) for i in range(60)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000"), app(59.8, "received SIGTERM, shutting down")],
    })
    top = doc["incidents"][0]["causes"][0]
    assert (top["id"], top["component"]) == ("service.down", "app")
    assert top["confidence"] > doc["incidents"][0]["causes"][1]["confidence"]


def test_database_cause_outranks_an_earlier_steady_red_herring(tmp_path):
    # Redis timeouts every 5 s from the start (a steady background), then PostgreSQL refuses
    # sessions at 60 s, the app fails with the database's words, nginx answers 500.
    redis = [app(i * 5.0, "redis call failed, retrying", "WARNING") for i in range(24)]
    pg_lines = [pg(60 + i, "FATAL:  sorry, too many clients already") for i in range(20)]
    app_err = [app(60.5 + i, "request failed: OperationalError: FATAL:  sorry, too many clients already", "ERROR")
               for i in range(20)]
    doc = run(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60.6 + i, 500) for i in range(20)] + healthy_traffic(30),
        "app/app.log": sorted(redis + app_err),
        "postgres/postgresql.log": pg_lines,
    })
    [inc] = doc["incidents"]
    ids = [(c["id"], c["component"]) for c in inc["causes"]]
    assert ids[0] == ("db.too_many_connections", "postgres")
    assert ids.index(("timeout.connect", "app")) > 0
    top = inc["causes"][0]
    assert "postgres" in top["logged_by"] and "app" in top["logged_by"]   # the app's errors blame the database
    assert top["explains"][0] == {"class": "http.5xx", "component": "nginx", "count": 20}


def test_two_separate_bursts_are_two_incidents(tmp_path):
    traffic = healthy_traffic(600, step=2.0)
    bursts = [access(100 + i * 0.2, 502) for i in range(30)] + [access(450 + i * 0.2, 502) for i in range(30)]
    doc = run(tmp_path, {"nginx/access.log": sorted(traffic + bursts, key=lambda line: line[15:35])})
    assert len(doc["incidents"]) == 2
    starts = sorted(i["start"] for i in doc["incidents"])
    assert starts[0].startswith("2026-11-21T10:01:40") and starts[1].startswith("2026-11-21T10:07:30")


# ---------------------------------------------------------------- with the shipped rule pack
# Lines copied from fault-lab runs (lab/run_scenario.py), times and ports rewritten.

def run_shipped(root: Path, files: dict[str, list[str]]) -> dict:
    return analyze([write(root, files)])


def order(doc: dict) -> list[tuple[str, str]]:
    [inc] = doc["incidents"]
    return [(c["id"], c["component"]) for c in inc["causes"]]


def nginx_error(t: float, text: str, conn: int = 1) -> str:
    return f"{at(t):%Y/%m/%d %H:%M:%S} [error] 7#7: *{conn} {text}"


def access_at(t: float, status: int, path: str = "/api/items/7", upstream: str = "127.0.0.1:3000",
              seconds: float = 0.004) -> str:
    return (f'127.0.0.1 - - [{at(t):%d/%b/%Y:%H:%M:%S} +0000] "GET {path} HTTP/1.1" {status} 157 "-" '
            f'"Mozilla/5.0" {upstream} {status if upstream != "-" else "-"} {seconds:.3f} '
            f'{f"{seconds:.3f}" if upstream != "-" else "-"}')


def test_lock_timeout_in_the_database_is_timeout_query_not_slow_query(tmp_path):
    # lock_timeout=2s: each blocked SELECT is logged as still waiting after 1 s, then cancelled
    pg_lines, app_lines, ng = [], [], []
    for i in range(14):
        t = 60 + i * 1.2
        pg_lines += [pg(t, f"LOG:  process {100 + i} still waiting for AccessShareLock on relation 16386 of "
                           f"database 16385 after 1000.085 ms at character 29"),
                     pg(t + 1, "ERROR:  canceling statement due to lock timeout at character 29"),
                     pg(t + 1, "STATEMENT:  SELECT id, name, price FROM items WHERE id = 115")]
        app_lines.append(app(t + 1, "request failed: OperationalError: (psycopg2.errors.LockNotAvailable) "
                                    "canceling statement due to lock timeout", "ERROR"))
        ng.append(access_at(t + 1, 500, seconds=2.02))
    doc = run_shipped(tmp_path, {"nginx/access.log": healthy_traffic(60) + ng + [access(80 + i, 200) for i in range(20)],
                                 "app/app.log": app_lines, "postgres/postgresql.log": pg_lines})
    ids = order(doc)
    assert ids[0] == ("timeout.query", "postgres")
    assert ids.index(("db.slow_query", "postgres")) > 0


def test_upstream_timeouts_blame_the_service_listening_there(tmp_path):
    # the app holds a lock in its own code: nginx waits 5 s and answers 504; no database error anywhere
    timeouts = [nginx_error(60 + i, 'upstream timed out (110: Connection timed out) while reading response header '
                                    'from upstream, client: 127.0.0.1, server: shop.lab.local, request: "GET '
                                    '/api/items/185 HTTP/1.1", upstream: "http://127.0.0.1:3000/api/items/185", '
                                    'host: "shop.lab.local"', i) for i in range(16)]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access_at(60 + i, 504, seconds=5.006) for i in range(16)],
        "nginx/error.log": timeouts,
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")],
        "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app database=appdb")],
    })
    top = doc["incidents"][0]["causes"][0]
    assert (top["id"], top["component"]) == ("timeout.upstream", "app")
    assert "nginx" in top["logged_by"] and "127.0.0.1:3000" in top["explanation"]


def rate_limited(tmp_path: Path, status: int) -> dict:
    """nginx's limit_req rejecting a burst from one client with `status`, the app healthy."""
    limited = [nginx_error(60 + i * 0.1, 'limiting requests, excess: 5.460 by zone "api", client: 127.0.0.1, '
                                         'server: shop.lab.local, request: "GET /api/items/915 HTTP/1.1", '
                                         'host: "shop.lab.local"', i) for i in range(200)]
    return run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access_at(60 + i * 0.1, status, upstream="-", seconds=0)
                                                   for i in range(200)],
        "nginx/error.log": limited,
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")],
    })


def test_rate_limited_503s_are_explained_by_the_limiter(tmp_path):
    doc = rate_limited(tmp_path, 503)
    ids = order(doc)
    assert ids[0] == ("ratelimit", "nginx")
    top = doc["incidents"][0]["causes"][0]
    assert {"class": "http.5xx", "component": "nginx", "count": 200} in top["explains"]


def test_an_oom_kill_outranks_the_process_exit_it_caused(tmp_path):
    # a memory cgroup's OOM kill under a systemd-like supervisor, three times; nginx sees resets and refusals
    sup, errors, ng = [], [], []
    for k, t in enumerate((60.0, 67.0, 74.0), 1):
        stamp = at(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        sup += [f"{stamp} supervisor[21666]: shop-api.service: A process of this unit has been killed by the OOM killer.",
                f"{stamp} supervisor[21666]: shop-api.service: Main process exited, code=killed, status=9/KILL",
                f"{stamp} supervisor[21666]: shop-api.service: Failed with result 'oom-kill'.",
                f"{stamp} supervisor[21666]: shop-api.service: Scheduled restart job, restart counter is at {k}."]
        for j in range(10):
            errors.append(refused(t + j * 0.1))
            ng.append(access(t + j * 0.1, 502))
    doc = run_shipped(tmp_path, {"nginx/access.log": healthy_traffic(60) + ng, "nginx/error.log": errors,
                                 "app/app.log": [app(0, "listening on http://127.0.0.1:3000")],
                                 "app/supervisor.log": sup})
    ids = order(doc)
    assert ids[0] == ("proc.oom", "app")
    top = doc["incidents"][0]["causes"][0]
    assert {e["class"] for e in top["explains"]} >= {"conn.refused", "http.5xx"}


def test_an_unrequested_sigkill_of_the_service_ranks_as_a_crash_of_it(tmp_path):
    # the supervisor does not read OOM events: it only sees status=9/KILL, which does not say who sent
    # it (OOM killer, kill -9, a watchdog): a crash of the app, as a SIGSEGV run is (below)
    def supervised(status: str, result: str) -> dict:
        sup, errors, ng = [], [], []
        for k, t in enumerate((60.0, 68.0, 76.0), 1):
            stamp = at(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            sup += [f"{stamp} supervisor[21666]: shop-api.service: Main process exited, {status}",
                    f"{stamp} supervisor[21666]: shop-api.service: Failed with result '{result}'.",
                    f"{stamp} supervisor[21666]: shop-api.service: Scheduled restart job, restart counter is at {k}."]
            for j in range(8):
                errors.append(refused(t + j * 0.1))
                ng.append(access(t + j * 0.1, 502))
        return {"nginx/access.log": healthy_traffic(60) + ng, "nginx/error.log": errors,
                "app/app.log": [app(0, "listening on http://127.0.0.1:3000")], "app/supervisor.log": sup}

    ids = order(run_shipped(tmp_path / "kill", supervised("code=killed, status=9/KILL", "signal")))
    assert ids[0] == ("proc.crash", "app")
    assert ("proc.oom", "app") not in ids
    assert order(run_shipped(tmp_path / "segv", supervised("code=dumped, status=11/SEGV", "core-dump")))[0] == \
        ("proc.crash", "app")


def _redis_oom_failure(t: float) -> str:
    """The app's JSON error line for a write Redis refused at maxmemory (noeviction)."""
    stamp = at(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return (f'{{"timestamp": "{stamp}", "level": "ERROR", "logger": "shop-api", "msg": "request failed", '
            f'"method": "GET", "path": "/api/items/42", "status": 500, "error": "ResponseError: OOM command not '
            f'allowed when used memory > \'maxmemory\'."}}')


def test_a_redis_reply_in_the_apps_error_blames_redis(tmp_path):
    # Redis at maxmemory with noeviction refuses the app's writes; only the app logs it
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + i, 500) for i in range(20)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")] + [_redis_oom_failure(60 + i) for i in range(20)],
        "redis/redis.log": ["9308:M 21 Nov 2026 10:00:00.760 * Running mode=standalone, port=6379.",
                            "9308:M 21 Nov 2026 10:00:00.760 * Ready to accept connections"],
        "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app database=appdb")],
    })
    top = doc["incidents"][0]["causes"][0]
    assert (top["id"], top["component"]) == ("proc.oom", "redis")
    assert top["logged_by"] == ["app"]


def test_rate_limiting_with_429_is_still_an_incident(tmp_path):
    doc = rate_limited(tmp_path, 429)
    assert order(doc)[0] == ("ratelimit", "nginx")


def test_a_killed_postgres_backend_outranks_the_crash_recovery_it_forced(tmp_path):
    pg_lines, app_lines, ng = [], [], []
    for k, t in enumerate((60.0, 68.0, 76.0)):
        pg_lines += [f"{at(t):%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" UTC [22087] LOG:  server process (PID {500 + k}) was "
                     "terminated by signal 9: Killed",
                     f"{at(t):%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC [22087] LOG:  terminating any other active server "
                     "processes"]
        pg_lines += [pg(t + 0.2 + j * 0.1, "FATAL:  the database system is in recovery mode") for j in range(6)]
        pg_lines.append(f"{at(t + 1):%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC [22087] LOG:  all server processes "
                        "terminated; reinitializing")
        app_lines += [app(t + 0.3 + j * 0.1, "request failed: OperationalError: (psycopg2.OperationalError) "
                                             "FATAL:  the database system is in recovery mode", "ERROR")
                      for j in range(5)]
        ng += [access(t + 0.3 + j * 0.1, 500) for j in range(5)]
    doc = run_shipped(tmp_path, {"nginx/access.log": healthy_traffic(60) + ng,
                                 "app/app.log": [app(0, "listening on http://127.0.0.1:3000")] + app_lines,
                                 "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app")] + pg_lines})
    ids = order(doc)
    assert ids[0] == ("proc.crash", "postgres")
    assert ids.index(("db.connection_terminated", "postgres")) > 0


def test_an_app_crash_does_not_explain_the_databases_own_restart(tmp_path):
    # postgres restarts at 60 s; the app exits on the lost connection (status 1) and is restarted
    pg_lines = [pg(60 + j * 0.05, "FATAL:  terminating connection due to administrator command") for j in range(8)]
    pg_lines += [pg(60.6 + j * 0.1, "FATAL:  the database system is shutting down") for j in range(6)]
    stamp = at(60.3).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sup = [f"{stamp} supervisor[9294]: shop-api.service: Main process exited, code=exited, status=1",
           f"{stamp} supervisor[9294]: shop-api.service: Failed with result 'exit-code'."]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60.1 + j * 0.1, 502) for j in range(12)],
        "nginx/error.log": [refused(60.4 + j * 0.1) for j in range(8)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")],
        "app/supervisor.log": sup,
        "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app")] + pg_lines})
    ids = order(doc)
    assert ids[0] == ("db.connection_terminated", "postgres")
    crash = next(c for c in doc["incidents"][0]["causes"] if c["id"] == "proc.crash")
    assert "db.connection_terminated" not in {e["class"] for e in crash["explains"]}


def test_a_client_configured_for_the_wrong_database_port_is_a_port_mismatch_in_its_config(tmp_path):
    # shop-api redeployed with the database at :5433 while postgres listens on :5432: the new process
    # fails its start-up check (libpq's words, uncaught traceback), exits 1 and is restarted, nginx gets refused
    def startup_failure(t: float) -> list[str]:
        return [app(t, "starting shop-api version 1.8.2"),
                "Traceback (most recent call last):",
                '  File "/srv/shop-api/app.py", line 301, in main',
                ("sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "
                 '"127.0.0.1", port 5433 failed: Connection refused'),
                "\tIs the server running on that host and accepting TCP/IP connections?"]
    app_lines, sup = crash_loop(startup_failure)
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + j * 0.3, 502) for j in range(60)],
        "nginx/error.log": [refused(60 + j * 0.3) for j in range(60)],
        "app/app.log": app_lines, "app/supervisor.log": sup,
        "postgres/postgresql.log": [f"{at(0):%Y-%m-%d %H:%M:%S.%f}"[:-3] + ' UTC [1] LOG:  listening on IPv4 address '
                                    '"127.0.0.1", port 5432']})
    top = doc["incidents"][0]["causes"][0]
    assert (top["id"], top["component"]) == ("config.port_mismatch", "app config")
    assert "127.0.0.1:5433" in top["explanation"] and "127.0.0.1:5432" in top["explanation"]
    assert order(doc).index(("proc.crash", "app")) > 0


def test_a_database_host_name_that_does_not_resolve_blames_the_clients_config(tmp_path):
    # shop-api redeployed with a database host that does not exist: the start-up check fails in the
    # name lookup, the process exits 1 and is restarted, nginx gets refused
    def startup_failure(t: float) -> list[str]:
        return [app(t, "starting shop-api version 1.8.2"),
                "Traceback (most recent call last):",
                '  File "/srv/shop-api/app.py", line 301, in main',
                ('sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) could not translate host name '
                 '"db-primary.shop.invalid" to address: Name or service not known')]
    app_lines, sup = crash_loop(startup_failure)
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + j * 0.3, 502) for j in range(60)],
        "nginx/error.log": [refused(60 + j * 0.3) for j in range(60)],
        "app/app.log": app_lines, "app/supervisor.log": sup})
    ids = order(doc)
    assert ids[0] == ("dns.failure", "app config")
    assert ids.index(("proc.crash", "app")) > 0      # the restart loop is the failed lookup's effect


def test_a_stalled_redis_is_blamed_for_the_apps_read_timeouts(tmp_path):
    # Redis stops answering (paused); the app retries (WARNING), then fails the request (ERROR)
    def line(t: float, level: str, msg: str) -> str:
        return app_error(t, level, msg, "TimeoutError: Timeout reading from socket")
    app_lines = [app(0, "listening on http://127.0.0.1:3000")]
    for i in range(15):
        t = 60 + i * 1.5
        app_lines += [line(t, "WARNING", "redis call failed, retrying"), line(t + 0.6, "WARNING",
                      "redis call failed, retrying"), line(t + 1.2, "ERROR", "request failed")]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(61.2 + i * 1.5, 500) for i in range(15)],
        "app/app.log": app_lines,
        "redis/redis.log": ["9308:M 21 Nov 2026 10:00:00.760 * Running mode=standalone, port=6379.",
                            "9308:M 21 Nov 2026 10:00:00.760 * Ready to accept connections"]})
    assert order(doc)[0] == ("timeout.upstream", "redis")


def test_tls_spoken_to_a_plaintext_upstream_blames_the_proxys_config(tmp_path):
    # proxy_pass https:// to a service that speaks plain HTTP: every handshake fails, 502
    def handshake(t: float, conn: int) -> str:
        return nginx_error(t, "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) "
                              'while SSL handshaking to upstream, client: 127.0.0.1, server: shop, request: "GET '
                              '/api/items HTTP/1.1", upstream: "https://127.0.0.1:3000/api/items", host: "shop"', conn)
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + i * 0.5, 502) for i in range(40)],
        "nginx/error.log": [handshake(60 + i * 0.5, i) for i in range(40)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")]})
    assert order(doc)[0] == ("tls.failure", "nginx config")


def test_a_listen_line_without_a_time_is_left_out_not_a_crash(tmp_path):
    # a plain "listening on ..." line has no time stamp: it cannot be placed before or after the fault
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + i * 0.2, 502) for i in range(40)],
        "nginx/error.log": [refused(60 + i * 0.2) for i in range(40)],
        "app/app.log": ["listening on http://127.0.0.1:3001"]})
    assert doc["incidents"] and doc["incidents"][0]["causes"]
    assert "config.port_mismatch" not in [c["id"] for c in doc["incidents"][0]["causes"]]


def test_redis_rejecting_the_apps_credentials_blames_redis_not_the_database(tmp_path):
    # requirepass turned on at run time: the app's new Redis connections are refused with NOAUTH
    # (redis-py strips the code word); PostgreSQL, the run's database, is healthy
    def failed(t: float, level: str, msg: str) -> str:
        return app_error(t, level, msg, "AuthenticationError: Authentication required.")
    app_lines = [app(0, "listening on http://127.0.0.1:3000")]
    for i in range(20):
        app_lines += [failed(60 + i, "WARNING", "redis call failed, retrying"), failed(60.3 + i, "ERROR", "request failed")]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60.3 + i, 500) for i in range(20)],
        "app/app.log": app_lines,
        "redis/redis.log": ["9308:M 21 Nov 2026 10:00:00.760 * Running mode=standalone, port=6379.",
                            "9308:M 21 Nov 2026 10:00:00.760 * Ready to accept connections"],
        "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app database=appdb")]})
    ids = order(doc)
    assert ids[0] == ("db.auth_failed", "redis")
    assert ("db.auth_failed", "postgres") not in ids


def test_failed_logins_that_ran_steadily_before_the_incident_do_not_outrank_it(tmp_path):
    # a monitoring agent with a stale password fails to log in every 2 s from 20 s on, all of it inside
    # the incident's look-back; at 64 s the app's pool runs dry (a leak), nginx answers 503
    logins = [pg(20 + i * 2, 'FATAL:  password authentication failed for user "app"') for i in range(40)]
    pool = [app(64 + i, "request failed: could not acquire database connection: TimeoutError: QueuePool limit of "
                        "size 5 overflow 5 reached, connection timed out, timeout 3.00", "ERROR") for i in range(16)]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(64) + [access(64.1 + i, 503) for i in range(16)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")] + pool,
        "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app database=appdb")] + logins})
    ids = order(doc)
    assert ids[0] == ("pool.exhausted", "app")
    assert ids.index(("db.auth_failed", "postgres")) > 0


def test_connect_timeouts_after_a_hung_upstreams_read_timeouts_are_its_effect_not_its_cause(tmp_path):
    # the app hangs at 60 s: nginx's reads time out (504) first; once the app's listen backlog is
    # full, from 70 s, its connects time out too. Both are the app not answering, and the connect
    # timeouts (which links.toml lets explain upstream timeouts) came 10 s after the read timeouts.
    def timeout(t: float, phase: str, conn: int) -> str:
        return nginx_error(t, f'upstream timed out (110: Connection timed out) while {phase}, client: 127.0.0.1, '
                              'server: shop.lab.local, request: "GET /api/items/7 HTTP/1.1", upstream: '
                              '"http://127.0.0.1:3000/api/items/7", host: "shop.lab.local"', conn)
    reads = [timeout(60 + i, "reading response header from upstream", i) for i in range(10)]
    connects = [timeout(70 + i * 0.5, "connecting to upstream", 100 + i) for i in range(40)]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access_at(60 + i, 504, seconds=5.0) for i in range(10)]
        + [access_at(70 + i * 0.5, 504, seconds=2.0) for i in range(40)],
        "nginx/error.log": sorted(reads + connects),
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")]     # logs nothing while hung
        + [app(i * 0.5, "request completed") for i in range(1, 120)] + [app(91 + i * 0.5, "request completed")
                                                                         for i in range(10)]})
    ids = order(doc)
    assert ids[0] == ("timeout.upstream", "app")
    assert ids.index(("timeout.connect", "app")) > 0      # the service at the upstream, not nginx
    connect = next(c for c in doc["incidents"][0]["causes"] if c["id"] == "timeout.connect")
    assert "timeout.upstream" not in {e["class"] for e in connect["explains"]}


def test_an_idle_in_transaction_timeout_explains_the_apps_closed_connections(tmp_path):
    # idle_in_transaction_session_timeout ends each checkout's session while it waits; the app's next
    # statement finds the connection closed (conn.reset) and answers 500
    pg_lines = [pg(60 + i * 2, "FATAL:  terminating connection due to idle-in-transaction timeout") for i in range(15)]
    app_lines = [app(61 + i * 2, "request failed: OperationalError: (psycopg2.OperationalError) server closed the "
                                 "connection unexpectedly", "ERROR") for i in range(15)]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(61 + i * 2, 500, "/api/checkout") for i in range(15)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")] + app_lines,
        "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app database=appdb")] + pg_lines})
    ids = order(doc)
    assert ids[0] == ("timeout.query", "postgres")
    top = doc["incidents"][0]["causes"][0]
    assert {"class": "conn.reset", "component": "app", "count": 15} in top["explains"]


def test_a_sparse_but_sustained_failure_is_an_incident_and_a_few_scattered_errors_are_not(tmp_path):
    # deadlocks abort one checkout every 2 s for 30 s, never two failures in the same second, among
    # 4 requests a second: no 1 s bucket is hot, the 10 s blocks are
    pg_lines, app_lines = [], [app(0, "listening on http://127.0.0.1:3000")]
    for i in range(15):
        t = 60 + i * 2
        pg_lines += [pg(t, "ERROR:  deadlock detected"),
                     pg(t, "DETAIL:  Process 4242 waits for ShareLock on transaction 812; blocked by process 4243.")]
        app_lines.append(app(t + 0.1, "request failed: OperationalError: (psycopg2.errors.DeadlockDetected) "
                                      "deadlock detected", "ERROR"))
    traffic = healthy_traffic(120, step=0.25)
    failed = [access(60.1 + i * 2, 500, "/api/checkout") for i in range(15)]
    doc = run_shipped(tmp_path / "sustained", {
        "nginx/access.log": sorted(traffic + failed, key=lambda line: line[15:35]), "app/app.log": app_lines,
        "postgres/postgresql.log": [pg(0.5, "LOG:  connection authorized: user=app database=appdb")] + pg_lines})
    assert order(doc)[0] == ("db.slow_query", "postgres")
    # sparser: 6 failed checkouts in 8 s (only the middle of the stretch has 5 within 10 s); all of them count
    few = [access(60.1 + d, 500, "/api/checkout") for d in (0, 2, 3, 5, 7, 8)]
    doc = run_shipped(tmp_path / "few", {
        "nginx/access.log": sorted(traffic + few, key=lambda line: line[15:35]),
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")]})
    [inc] = doc["incidents"]
    assert inc["impact"]["errors"] == 6
    scattered = [access(20.1 + i * 30, 500, "/api/checkout") for i in range(3)]
    doc = run_shipped(tmp_path / "scattered", {
        "nginx/access.log": sorted(traffic + scattered, key=lambda line: line[15:35]),
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")]})
    assert doc["incidents"] == []


def test_500s_the_app_answered_itself_are_the_apps_not_a_redeploys_one_refused_connection(tmp_path):
    # a bad release: the restart costs one refused connect and one reset (502s), then every item
    # request fails inside the app, which answers 500 itself ($upstream_status 500); dependencies healthy
    reset = nginx_error(60.5, 'upstream prematurely closed connection while reading response header from '
                              'upstream, client: 127.0.0.1, server: shop, request: "GET /api/items/7 HTTP/1.1", '
                              'upstream: "http://127.0.0.1:3000/api/items/7", host: "shop"', 2)
    answered = [access(61 + i * 0.4, 500) for i in range(80)]
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60, 502), access(60.5, 502)] + answered,
        "nginx/error.log": [refused(60), reset],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000"), app(60.7, "starting shop-api version 1.8.2"),
                        app(60.8, "listening on http://127.0.0.1:3000")]
        + [app(61 + i * 0.4, "request failed", "ERROR") for i in range(80)]})
    ids = order(doc)
    assert ids[0] == ("http.5xx", "app")
    top = doc["incidents"][0]["causes"][0]
    assert "answered nginx's requests with server errors itself" in top["explanation"]
    assert any(e["source"].endswith("app/app.log") for e in top["evidence"])    # the app's own error lines
    assert "when it started at 10:01:00, just before its server errors began" in top["check_first"]   # the release
    refused_cause = next(c for c in doc["incidents"][0]["causes"] if c["id"] == "conn.refused")
    assert all(e["count"] < 80 for e in refused_cause["explains"])   # not the app's own 500s


def sqlalchemy_startup_traceback(t: float, error: str, frames: int = 3) -> list[str]:
    """shop-api's start-up line, then the uncaught traceback of its database check (SQLAlchemy's frames)."""
    lines = [app(t, "starting shop-api version 1.8.2"), "Traceback (most recent call last):"]
    for k in range(frames):
        lines += [f'  File "/srv/venv/lib/python3.11/site-packages/sqlalchemy/pool/base.py", line {300 + k}, in _checkout',
                  "    rec = pool._do_get()", "          ^^^^^^^^^^^^^^"]
    return lines + [f"sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) {error}",
                    "(Background on this error at: https://sqlalche.me/e/14/e3q8)"]


SSL_NOT_OFFERED = ('connection to server at "127.0.0.1", port 5432 failed: server does not support SSL, but SSL '
                   "was required")


def test_a_client_requiring_tls_of_a_database_that_does_not_offer_it_blames_its_config(tmp_path):
    # shop-api redeployed with sslmode=require while postgres runs with ssl = off: libpq's start-up
    # check fails before any query, the process exits 1 and is restarted, nginx gets refused
    app_lines, sup = crash_loop(lambda t: sqlalchemy_startup_traceback(t, SSL_NOT_OFFERED, frames=1))
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + j * 0.3, 502) for j in range(60)],
        "nginx/error.log": [refused(60 + j * 0.3) for j in range(60)],
        "app/app.log": app_lines, "app/supervisor.log": sup})
    ids = order(doc)
    assert ids[0] == ("tls.failure", "app config")
    assert ids.index(("proc.crash", "app")) > 0      # the restart loop is the failed negotiation's effect
    top = doc["incidents"][0]["causes"][0]
    assert {e["class"] for e in top["explains"]} >= {"proc.crash", "conn.refused"}


def test_a_long_tracebacks_last_line_is_kept_as_its_evidence(tmp_path):
    # a multi-line record longer than the text kept per event: the exception that says what failed is
    # at the end of a Python traceback, far from the app's line that opened the record
    app_lines, sup = crash_loop(lambda t: sqlalchemy_startup_traceback(t, SSL_NOT_OFFERED, frames=12))
    assert len("\n".join(sqlalchemy_startup_traceback(0, SSL_NOT_OFFERED, frames=12))) > 1200
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + j * 0.3, 502) for j in range(60)],
        "nginx/error.log": [refused(60 + j * 0.3) for j in range(60)],
        "app/app.log": app_lines, "app/supervisor.log": sup})
    top = doc["incidents"][0]["causes"][0]
    assert (top["id"], top["component"]) == ("tls.failure", "app config")   # read from the record's end
    text = top["evidence"][0]["text"]
    assert text.startswith('{"timestamp"') and "server does not support SSL, but SSL was required" in text


def test_a_dependency_that_stopped_explains_the_crash_loop_of_the_app_that_needs_it(tmp_path):
    # Redis is stopped at 58 s; the app, restarted at 60 s, PINGs it at start-up, fails (refused), exits 1
    # and is restarted every 1.5 s; nginx gets refused. The crash loop is Redis being down, seen from the app
    def startup_failure(t: float) -> list[str]:
        return [app(t, "starting shop-api version 1.8.2"), "Traceback (most recent call last):",
                '  File "/srv/shop-api/app.py", line 318, in main',
                "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused."]
    app_lines, sup = crash_loop(startup_failure)
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + j * 0.3, 502) for j in range(60)],
        "nginx/error.log": [refused(60 + j * 0.3) for j in range(60)],
        "app/app.log": app_lines, "app/supervisor.log": sup,
        "redis/redis.log": ["9308:M 21 Nov 2026 10:00:00.760 * Running mode=standalone, port=6379.",
                            "9308:M 21 Nov 2026 10:00:00.760 * Ready to accept connections",
                            "9308:signal-handler (1795281446) Received SIGTERM scheduling shutdown...",
                            "9308:M 21 Nov 2026 10:00:58.100 # User requested shutdown...",
                            "9308:M 21 Nov 2026 10:00:58.120 # Redis is now ready to exit, bye bye..."]})
    ids = order(doc)
    assert ids[0] == ("service.down", "redis")
    assert ids.index(("proc.crash", "app")) > 0
    top = doc["incidents"][0]["causes"][0]
    assert "proc.crash" in {e["class"] for e in top["explains"]}


def test_500s_the_app_answered_and_logged_itself_are_one_app_cause(tmp_path):
    # as above, but the app also writes a request log line with the 500 (flagged on its own):
    # nginx's passed-on 500s and the app's own join one http.5xx / app candidate
    def failed(t: float) -> str:
        stamp = at(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return (f'{{"timestamp": "{stamp}", "level": "ERROR", "logger": "shop-api", "msg": "request failed", '
                f'"method": "GET", "path": "/api/items/7", "status": 500, "error": "KeyError: price_eur"}}')
    doc = run_shipped(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60, 502)] + [access(61 + i * 0.4, 500) for i in range(80)],
        "nginx/error.log": [refused(60)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000"), app(60.8, "listening on http://127.0.0.1:3000")]
        + [failed(61 + i * 0.4) for i in range(80)]})
    causes = doc["incidents"][0]["causes"]
    assert (causes[0]["id"], causes[0]["component"]) == ("http.5xx", "app")
    assert [c["component"] for c in causes if c["id"] == "http.5xx"].count("app") == 1


def test_since_keeps_where_services_listen_and_what_they_are_from_before_it(tmp_path):
    # --since 50 s: the app's and Redis's start-up lines (t=0) fall before it. Where the app said it
    # listens, and that redis/ holds a Redis log, still hold: nginx dialling the old port is a port
    # mismatch in its config, and Redis's OOM reply in the app's errors blames Redis. The listen
    # line is correlation's evidence, not one of the report's key events (those start at --since).
    redis_log = ["9308:M 21 Nov 2026 10:00:00.760 * Running mode=standalone, port=6379.",
                 "9308:M 21 Nov 2026 10:00:00.760 * Ready to accept connections"]
    since = at(50)
    moved = write(tmp_path / "moved", {
        "nginx/access.log": healthy_traffic(60) + [access(60 + i * 0.5, 502) for i in range(60)],
        "nginx/error.log": [refused(60 + i * 0.5) for i in range(60)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3001")],
        "redis/redis.log": redis_log,
    })
    doc = analyze([moved], since=since)
    top = doc["incidents"][0]["causes"][0]
    assert (top["id"], top["component"]) == ("config.port_mismatch", "nginx config")
    assert "127.0.0.1:3001" in top["explanation"]
    assert all(k["ts"] >= "2026-11-21T10:00:50" for k in doc["key_events"])
    full = write(tmp_path / "oom", {
        "nginx/access.log": healthy_traffic(60) + [access(60 + i, 500) for i in range(20)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")] + [_redis_oom_failure(60 + i) for i in range(20)],
        "redis/redis.log": redis_log,
    })
    top = analyze([full], since=since)["incidents"][0]["causes"][0]
    assert (top["id"], top["component"]) == ("proc.oom", "redis")


def test_a_dependency_log_silent_in_the_whole_since_range_is_silent_not_unknown(tmp_path):
    # Redis (at `notice`, quiet while healthy) is SIGKILLed at 60 s: no shutdown line, and with
    # --since 50 none of its lines fall in the range. It was last heard from at start-up, so its
    # log is silent before the app's refused connections: service.down, as without --since.
    def refused_redis(t: float) -> str:
        stamp = at(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return (f'{{"timestamp": "{stamp}", "level": "ERROR", "logger": "shop-api", "msg": "request failed", '
                f'"method": "GET", "path": "/api/items/42", "status": 500, "error": "ConnectionError: Error 111 '
                f'connecting to 127.0.0.1:6379. Connection refused."}}')
    root = write(tmp_path, {
        "nginx/access.log": healthy_traffic(60) + [access(60 + i * 0.5, 500) for i in range(40)],
        "app/app.log": [app(0, "listening on http://127.0.0.1:3000")] + [refused_redis(60 + i * 0.5) for i in range(40)],
        "redis/redis.log": ["9308:M 21 Nov 2026 10:00:00.760 * Running mode=standalone, port=6379.",
                            "9308:M 21 Nov 2026 10:00:00.760 * Ready to accept connections"],
    })
    for since in (None, at(50)):
        top = analyze([root], since=since)["incidents"][0]["causes"][0]
        assert (top["id"], top["component"]) == ("service.down", "redis"), since
