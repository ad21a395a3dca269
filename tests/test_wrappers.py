"""Wrappers: docker json-file, compose, kubectl --timestamps, CRI, journald, Cloud Logging.

Real wrapped files are in tests/data/ (origins in fixtures/formats/README.md). CRI partial (P)
records, docker's split records and kubectl prefixes are built here from real inner lines, the way
the runtime writes them, since no real partial record was found to copy.
"""

from __future__ import annotations

import json

import polars as pl

from logtriage import formats, pipeline
from tests.conftest import DATA, FIXTURES

NGINX_LINE = (FIXTURES / "formats/nginx_error/upstream_refused.log").read_text().splitlines()[0]
SUPERVISOR = (FIXTURES / "formats/syslog/supervisor_restarts.log").read_text().splitlines()


def _frame(lines: list[str], first: int = 1) -> pl.DataFrame:
    return pl.DataFrame({"raw": pl.Series(lines, dtype=pl.String),
                         "line": pl.Series(range(first, first + len(lines)), dtype=pl.UInt32)})


def _parse(lines: list[str]) -> formats.Parsed:
    return formats.parse_lines(_frame(lines), formats.ParseState(), source="t", final=True)


def _read(path) -> tuple[pl.DataFrame, pipeline.Run]:
    run = pipeline.Run()
    events = pl.concat(list(pipeline.read_events([str(path)], run=run)))
    stats = run.stats[str(path)]
    assert stats.lines_parsed + stats.lines_unparsed + stats.lines_skipped == stats.lines_read
    return events, run


def test_docker_json_file_with_a_corrupted_line():
    events, _ = _read(DATA / "docker_json_corrupted_line.log")
    assert events.height == 21                       # one event per record, the corrupted one included
    seventh = events.filter(pl.col("line") == 7).row(0, named=True)
    assert seventh["message"] == "cp packetbeat.yml /build/packetbeat-linux.yml"
    assert str(seventh["ts"]) == "2016-03-02 22:59:04.647847+00:00"
    assert events.get_column("ts").null_count() == 0
    assert not events.get_column("raw").str.contains('"stream"').any()


def test_docker_compose_prefix_colours_and_timestamps():
    events, _ = _read(DATA / "docker_compose_ansi_timestamps.log")
    assert set(events.get_column("component")) == {"web", "redis"}
    assert not events.get_column("raw").str.contains("\x1b").any()
    redis = events.filter(pl.col("component") == "redis")
    assert redis.height == 12                         # web's lines never join redis' and back
    assert redis.get_column("raw").str.starts_with("1:").all()
    assert str(events.row(0, named=True)["ts"]) == "2024-04-25 05:32:35.584725+00:00"


def test_journald_json_export():
    events, _ = _read(FIXTURES / "formats/syslog/journald_export.json")
    rows = events.select("format", "level", "component", "message").rows()
    assert rows == [("syslog", "fatal", "medusa-GpsLocator", "GPS Reference longitude: 7.358143333"),
                    ("syslog", "info", "medusa-GpsLocator", "GPS Reference latitude: 46.908706667")]
    assert str(events.row(0, named=True)["ts"]) == "2018-08-21 14:04:21.221373+00:00"


def test_cloud_logging_text_payload_is_the_inner_postgres_line():
    events, run = _read(DATA / "gcp_cloudsql_textpayload.jsonl")
    assert set(events.get_column("format")) == {"postgres"}
    assert run.stats[str(DATA / "gcp_cloudsql_textpayload.jsonl")].lines_unparsed == 0
    assert "fatal" in events.get_column("level").to_list()


def test_kubectl_timestamps_keep_the_inner_lines_own_format():
    # kubectl logs --timestamps: RFC 3339 nano time + space + the container's line (a supervisor line
    # that itself opens with an RFC 3339 time)
    wrapped = [f"2026-11-21T10:17:{i:02d}.123456789Z {line}" for i, line in enumerate(SUPERVISOR[:4])]
    parsed = _parse(wrapped)
    assert parsed.events.get_column("format").to_list() == ["syslog"] * 4
    assert str(parsed.events.row(1, named=True)["ts"]) == "2026-11-21 10:17:23.275000+00:00"   # the line's own
    # a line whose own time has kubectl's shape is not cut in two (its rest is no family alone)
    own = SUPERVISOR[1].replace("10:17:23.275Z", "10:17:23.275123Z")
    event = _parse([own]).events.row(0, named=True)
    assert (event["format"], event["raw"]) == ("syslog", own)
    assert str(event["ts"]) == "2026-11-21 10:17:23.275123+00:00"


def test_cri_partial_records_join_and_count_every_physical_line():
    head, tail = NGINX_LINE[:60], NGINX_LINE[60:]
    lines = [f"2026-11-21T10:13:09.565000000Z stderr P {head}",
             f"2026-11-21T10:13:09.565000001Z stderr F {tail}",
             f"2026-11-21T10:13:09.566000000Z stderr F {NGINX_LINE}"]
    parsed = _parse(lines)
    assert parsed.events.height == 2
    assert parsed.events.get_column("raw").to_list() == [NGINX_LINE, NGINX_LINE]
    assert parsed.events.get_column("format").to_list() == ["nginx_error"] * 2
    assert parsed.lines_parsed + parsed.lines_unparsed + parsed.lines_skipped == 3


def test_docker_split_record_joins():
    half = len(NGINX_LINE) // 2
    # docker writes compact JSON (no spaces)
    records = [json.dumps({"log": NGINX_LINE[:half], "stream": "stderr", "time": "2026-11-21T10:13:09.1Z"}, separators=(",", ":")),
               json.dumps({"log": NGINX_LINE[half:] + "\n", "stream": "stderr", "time": "2026-11-21T10:13:09.2Z"}, separators=(",", ":"))]
    parsed = _parse(records)
    assert parsed.events.get_column("raw").to_list() == [NGINX_LINE]
    assert parsed.lines_parsed == 2


def test_partial_record_across_a_chunk_boundary():
    head, tail = NGINX_LINE[:60], NGINX_LINE[60:]
    lines = [f"2026-11-21T10:13:09.565000000Z stderr F {NGINX_LINE}",
             f"2026-11-21T10:13:09.565000000Z stderr P {head}",
             f"2026-11-21T10:13:09.565000001Z stderr F {tail}"]
    state = formats.ParseState()
    first = formats.parse_lines(_frame(lines[:2]), state, source="t", final=False)
    assert first.carry.get_column("raw").to_list() == lines[1:2]     # the physical record, not the join
    second = formats.parse_lines(pl.concat([first.carry, _frame(lines[2:], 3)]), state, source="t", final=True)
    events = pl.concat([first.events, second.events])
    assert events.get_column("raw").to_list() == [NGINX_LINE, NGINX_LINE]
    counted = sum(p.lines_parsed + p.lines_unparsed + p.lines_skipped for p in (first, second))
    assert counted == 3


def test_unwrapped_chunks_take_the_cheap_path():
    df = formats.wrappers.unwrap(_frame([NGINX_LINE] * 3))
    assert df.get_column("wrapper").null_count() == 3
    assert df.get_column("text").to_list() == [NGINX_LINE] * 3
