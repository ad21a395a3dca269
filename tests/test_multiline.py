"""Stack traces and multi-line records stay one event with their first line, also across chunks.

Inputs are real (tests/data/ and tests/fixtures/formats/, origins in fixtures/formats/README.md).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from logtriage import formats
from tests.conftest import DATA, FIXTURES


def _frame(lines: list[str], first: int = 1) -> pl.DataFrame:
    return pl.DataFrame({"raw": pl.Series(lines, dtype=pl.String),
                         "line": pl.Series(range(first, first + len(lines)), dtype=pl.UInt32)})


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def parse_whole(lines: list[str]) -> pl.DataFrame:
    return formats.parse_lines(_frame(lines), formats.ParseState(), source="t", final=True).events


def parse_split(lines: list[str], cut: int) -> tuple[pl.DataFrame, int]:
    """Parse lines[:cut] then lines[cut:] as two chunks with the carry, as the pipeline does."""
    state = formats.ParseState()
    first = formats.parse_lines(_frame(lines[:cut]), state, source="t", final=False)
    rest = _frame(lines[cut:], cut + 1)
    if first.carry is not None and first.carry.height:
        rest = pl.concat([first.carry, rest])
    second = formats.parse_lines(rest, state, source="t", final=True)
    counted = sum(p.lines_parsed + p.lines_unparsed + p.lines_skipped for p in (first, second))
    return pl.concat([first.events, second.events]), counted


def _event_at(events: pl.DataFrame, line: int) -> dict:
    rows = events.filter(pl.col("line") == line).to_dicts()
    assert rows, f"no event starts at line {line}: {events.select('line', 'format').rows()}"
    return rows[0]


# (input, first line of the trace's event, its physical line count, expected format, a text it must hold)
TRACES = [
    pytest.param(FIXTURES / "formats/app_text/python_traceback.log", 7, 6, "app_text", "ZeroDivisionError",
                 id="python-traceback"),
    pytest.param(DATA / "java_caused_by.log", 2, 14, "app_text", "Caused by: java.lang.IllegalStateException",
                 id="java-caused-by"),
    pytest.param(DATA / "java_exception_and_go_panic.log", 2, 6, "plain", "MyProject.main(MyProject.java:6)",
                 id="java-at-frames"),
    # 52: the unprefixed "one more line, no multiline" after the dump joins it too (JOIN_UNDETECTED)
    pytest.param(DATA / "java_exception_and_go_panic.log", 9, 52, "app_text", "created by runtime.gcenable",
                 id="go-panic-goroutines"),
    pytest.param(FIXTURES / "formats/app_text/zap_console_go_stack.log", 2, 7, "app_text",
                 "exporterqueue/async_queue.go:47", id="go-stack-unindented-functions"),
    pytest.param(DATA / "node_uncaught_error.log", 6, 10, "plain", "at node:internal/main/run_main_module",
                 id="node-error"),
    pytest.param(FIXTURES / "formats/app_text/laravel_stacktrace.log", 1, 31, "app_text", "#27 {main}",
                 id="laravel-stacktrace"),
    pytest.param(DATA / "pretty_json_record_stacktrace.jsonl", 1, 54, "app_json", "java.lang.Thread.run",
                 id="pretty-json-record"),
    pytest.param(FIXTURES / "formats/postgres_csv/pg15_multiline_statement_errors.csv", 12, 3, "postgres_csv",
                 "WHERE id = 1;", id="csvlog-quoted-statement"),
]


@pytest.mark.parametrize(("path", "start", "nlines", "fmt", "text"), TRACES)
def test_trace_is_one_event(path, start, nlines, fmt, text):
    lines = _lines(path)
    event = _event_at(parse_whole(lines), start)
    assert event["format"] == fmt
    raw_lines = event["raw"].split("\n")
    # blank lines inside a Go dump are skipped, not joined: compare non-blank physical lines
    wanted = [ln for ln in lines[start - 1:start - 1 + nlines] if ln.strip()]
    assert raw_lines == wanted or len([r for r in raw_lines if r.strip()]) == len(wanted), raw_lines
    assert text in event["raw"]


@pytest.mark.parametrize(("path", "start", "nlines", "fmt", "text"), TRACES)
def test_chunk_boundary_inside_a_trace(path, start, nlines, fmt, text):
    lines = _lines(path)
    whole = parse_whole(lines)
    for cut in sorted({start, start + 1, start + nlines // 2, start + nlines - 1}):
        if not 0 < cut < len(lines):
            continue
        split, counted = parse_split(lines, cut)
        assert counted == len(lines), f"cut at {cut}: lines counted {counted} of {len(lines)}"
        assert split.select("line", "format", "raw").rows() == whole.select("line", "format", "raw").rows(), (
            f"cut at {cut}")


def test_python_multiline_messages_join_their_record():
    events = parse_whole(_lines(FIXTURES / "formats/app_text/python_traceback.log"))
    assert events.get_column("line").to_list() == [1, 2, 4, 6, 7]
    assert _event_at(events, 4)["message"] == "warning message:\nlow disk space"


def test_java_and_go_events_of_the_fluentbit_sample():
    events = parse_whole(_lines(DATA / "java_exception_and_go_panic.log"))
    assert events.get_column("line").to_list()[:4] == [1, 2, 8, 9]
    assert _event_at(events, 9)["level"] == "fatal"
