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
