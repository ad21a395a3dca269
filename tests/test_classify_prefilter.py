"""Rule prefilter: field-gated rules (duration_min, status) pick their own candidates, keyword rules theirs."""

from __future__ import annotations

import polars as pl

from logtriage.classify import engine, loader
from logtriage.model import EVENT_SCHEMA

RULES = '''
[[rule]]
id = "t.slow"
class = "db.slow_query"
severity = "warning"
pattern = 'duration: \\d+'
duration_min = 3.0

[[rule]]
id = "t.five"
class = "http.5xx"
severity = "error"
status = [500, 599]

[[rule]]
id = "t.refused"
class = "conn.refused"
severity = "error"
pattern = 'Connection refused'
'''


def _batch(rows: list[dict]) -> pl.DataFrame:
    full = [{c: r.get(c) for c in EVENT_SCHEMA} for r in rows]
    return pl.DataFrame(full, schema=EVENT_SCHEMA)


def _clf() -> engine.Classifier:
    rules = [
        loader.Rule(id="t.slow", kind="rule", file="t", klass="db.slow_query", pattern=r"duration: \d+",
                    keywords=("duration: ",), duration_min=3.0),
        loader.Rule(id="t.five", kind="rule", file="t", klass="http.5xx", status=(500, 599)),
        loader.Rule(id="t.refused", kind="rule", file="t", klass="conn.refused", pattern="Connection refused",
                    keywords=("Connection refused",)),
    ]
    return engine.Classifier(rules, "rule")


def test_duration_min_and_status_gate_candidates():
    clf = _clf()
    batch = _batch([
        {"message": "duration: 12 ms  statement: SELECT 1", "duration": 0.012, "format": "postgres"},
        {"message": "duration: 4000 ms  statement: SELECT 1", "duration": 4.0, "format": "postgres"},
        {"message": "GET / 200", "status": 200, "format": "nginx_access"},
        {"message": "GET / 502", "status": 502, "format": "nginx_access"},
        {"message": "connect() failed (111: Connection refused)", "format": "nginx_error"},
    ])
    assert clf.candidates(batch).to_list() == [False, True, False, True, True]
    out = engine.classify(batch, clf)
    assert out.get_column("rule").to_list() == [None, "t.slow", None, "t.five", "t.refused"]


def test_duration_min_must_be_seconds(tmp_path):
    (tmp_path / "bad.toml").write_text(RULES.replace("duration_min = 3.0", 'duration_min = "3s"'))
    try:
        loader.load_rules([tmp_path], builtin=False)
    except Exception as err:  # noqa: BLE001 - the loader's error type carries the message
        assert "duration_min" in str(err)
    else:
        raise AssertionError("a non-numeric duration_min was accepted")


def test_shared_prefilter_classifies_as_each_classifier_alone():
    """analyze's one keyword pass for rules and signals changes no result on the sample logs."""
    from pathlib import Path

    from polars.testing import assert_frame_equal

    from logtriage import pipeline

    rules = loader.load_rules([])
    clf, sig = engine.Classifier(rules, "rule"), engine.Classifier(rules, "signal")
    prefilter = engine.Prefilter((clf, sig))
    sample = Path(__file__).parent.parent / "sample_logs"
    flagged = signalled = 0
    for batch in pipeline.read_events([str(sample)], run=pipeline.Run()):
        maybe = prefilter(batch)
        alone = engine.classify(batch, clf)
        assert_frame_equal(engine.classify(batch, clf, maybe), alone)
        assert_frame_equal(engine.signals(batch, sig, maybe), engine.signals(batch, sig))
        flagged += alone.get_column("class").is_not_null().sum()
        signalled += engine.signals(batch, sig).height
    assert flagged and signalled      # the sample holds both, so the comparison means something


def test_formats_exclude_leaves_out_a_family():
    """A generic rule with formats_exclude never takes that family's events; every other family's it does."""
    clf = engine.Classifier([
        loader.Rule(id="t.reset", kind="rule", file="t", klass="conn.reset", pattern="Connection reset by peer",
                    keywords=("Connection reset by peer",), formats_exclude=("nginx_error",)),
    ], "rule")
    batch = _batch([
        {"message": "recv() failed (104: Connection reset by peer) while processing HTTP/2 connection",
         "format": "nginx_error", "level": "info"},
        {"message": "could not receive data from client: Connection reset by peer", "format": "postgres"},
        {"message": "read ECONNRESET: Connection reset by peer", "format": "plain"},
    ])
    out = engine.classify(batch, clf)
    assert out.get_column("rule").to_list() == [None, "t.reset", "t.reset"]


def test_formats_and_formats_exclude_are_validated(tmp_path):
    (tmp_path / "bad.toml").write_text(RULES.replace(
        "pattern = 'Connection refused'",
        "pattern = 'Connection refused'\nformats = [\"nginx_error\"]\nformats_exclude = [\"nginx_error\", \"nginx_erorr\"]"))
    try:
        loader.load_rules([tmp_path], builtin=False)
    except Exception as err:  # noqa: BLE001 - the loader's error type carries the message
        text = str(err)
        assert "formats_exclude names unknown formats: nginx_erorr" in text
        assert "formats and formats_exclude both name nginx_error" in text
    else:
        raise AssertionError("an unknown / contradictory format list was accepted")


def test_level_with_keywords_prefilters_by_keyword():
    """A minimum level does not make every error line a candidate when the rule has keywords."""
    clf = engine.Classifier([
        loader.Rule(id="t.reset", kind="rule", file="t", klass="conn.reset", pattern="Connection reset by peer",
                    keywords=("Connection reset by peer",), level="error"),
    ], "rule")
    batch = _batch([
        {"message": "recv() failed (104: Connection reset by peer) while processing HTTP/2 connection",
         "format": "nginx_error", "level": "info"},
        {"message": "readv() failed (104: Connection reset by peer) while proxying upgraded connection",
         "format": "nginx_error", "level": "error"},
        {"message": "open() \"/srv/www/favicon.ico\" failed (2: No such file or directory)",
         "format": "nginx_error", "level": "error"},
    ])
    assert clf.candidates(batch).to_list() == [True, True, False]
    assert engine.classify(batch, clf).get_column("rule").to_list() == [None, "t.reset", None]
