"""The collector keeps what correlation needs from each classified batch, within fixed bounds."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from logtriage import pipeline, sources
from logtriage.classify.engine import Classifier, classify
from logtriage.classify.loader import load_rules
from logtriage.correlate import collect
from tests.conftest import DATA
from tests.test_correlate import refused


def test_evidence_texts_are_the_first_ones_per_rule_across_batches(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(collect, "TEXT_PER_RULE", 5)
    # the block reader with small blocks: the events arrive in many batches, digested on its threads
    monkeypatch.setattr(sources, "NATIVE_MIN_BYTES", 0)
    monkeypatch.setattr(sources, "BLOCK_BYTES", 2000)
    log = tmp_path / "nginx" / "error.log"
    log.parent.mkdir()
    log.write_text("".join(refused(i) + "\n" for i in range(100)))
    rules = load_rules([str(DATA / "rules_correlate")], builtin=False)
    clf = Classifier(rules, "rule")
    collector = collect.Collector(Classifier(rules, "signal"))
    batches = 0
    for digest in pipeline.read_events([str(log)], run=pipeline.Run(),
                                       finish=lambda b: collector.digest(classify(b, clf))):
        collector.take(digest)
        batches += 1
    assert batches > 2
    flagged = collector.result({}).flagged
    assert flagged.height == 100
    kept = flagged.filter(pl.col("text").is_not_null())
    assert kept.get_column("line").to_list() == [1, 2, 3, 4, 5]
    assert set(flagged.get_column("class")) == {"conn.refused"}


def test_a_retried_requests_upstream_is_the_first_one_nginx_tried(tmp_path: Path):
    # nginx tried two upstreams: $upstream_addr, $upstream_status and $upstream_response_time are lists
    log = tmp_path / "nginx" / "access.log"
    log.parent.mkdir()
    log.write_text(
        '10.0.0.7 - - [21/Nov/2026:10:14:33 +0000] "GET /api/orders HTTP/1.1" 502 157 "-" "curl/8.5.0" '
        '127.0.0.1:3000, 127.0.0.1:3002 502, 502 0.004 0.001, 0.002\n'
        '10.0.0.7 - - [21/Nov/2026:10:14:34 +0000] "GET /api/orders HTTP/1.1" 502 157 "-" "curl/8.5.0" '
        '127.0.0.1:3002 502 0.003 0.003\n')
    rules = load_rules([], builtin=True)
    collector = collect.Collector(Classifier(rules, "signal"))
    clf = Classifier(rules, "rule")
    for batch in pipeline.read_events([str(log)], run=pipeline.Run()):
        collector.add(classify(batch, clf))
    flagged = collector.result({}).flagged
    assert flagged.get_column("upstream").to_list() == ["127.0.0.1:3000", "127.0.0.1:3002"]


def test_a_components_layer_does_not_depend_on_the_order_its_formats_come_in():
    layer_of = {"postgres": "db", "syslog": "system", "redis": "cache", "nginx_access": "proxy", "app_json": "app"}
    # a database's directory that also holds journald lines about its unit is the database
    assert collect.component_layer(["syslog", "postgres"], layer_of) == "db"
    assert collect.component_layer(["postgres", "syslog"], layer_of) == "db"
    assert collect.component_layer(["syslog", "redis", "plain"], layer_of) == "cache"
    assert collect.component_layer(["app_json", "nginx_access"], layer_of) == "app"
    assert collect.component_layer(["plain"], layer_of) == "app"
