"""The block reader (large files, parsed by polars plans) and the chunk reader's plans (single-family
streams) must read exactly as the general way.

Each fixture is read three times: by the chunk reader the general way, by the block reader forced
on (any size, tiny blocks so events straddle block edges), and by the chunk reader with its plans
(small reads and chunks, the plan taken at the first).
Events, line accounting and formats must be the same, row for row.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from logtriage import pipeline, sources

HERE = Path(__file__).parent
FIXTURES = sorted(p for p in (HERE / "fixtures" / "formats").rglob("*") if p.is_file() and p.name != "README.md")
SAMPLES = sorted(p for p in (HERE.parent / "sample_logs").rglob("*.log"))


def _read(path: Path, *, blocks: bool, monkeypatch: pytest.MonkeyPatch, block_bytes: int = 700,
          plans: bool = False, chunk_bytes: int = sources.CHUNK_BYTES):
    """Read `path` by the block reader, or by the chunk reader (with its plans or the general way)."""
    monkeypatch.setattr(sources, "NATIVE_MIN_BYTES", 0 if blocks else 1 << 62)
    monkeypatch.setattr(sources, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(pipeline, "PLAN_CHUNKS", plans)
    monkeypatch.setattr(pipeline, "PLAN_MIN_LINES", 1)
    if plans:   # small reads, so a fixture makes many chunks
        monkeypatch.setattr(sources, "READ_BYTES", 2048)
    run = pipeline.Run()
    batches = list(pipeline.read_events([str(path)], run=run, chunk_bytes=chunk_bytes))
    events = pl.concat(batches) if batches else pl.DataFrame()
    return events, run.totals(), {k: v.formats for k, v in run.stats.items()}


def _same(path: Path, monkeypatch: pytest.MonkeyPatch, **kw) -> None:
    """The block reader and the chunk reader's plans read `path` exactly as the general way."""
    b, tb, fb = _read(path, blocks=False, monkeypatch=monkeypatch)
    for a, ta, fa in (_read(path, blocks=True, monkeypatch=monkeypatch, **kw),
                      _read(path, blocks=False, plans=True, chunk_bytes=600, monkeypatch=monkeypatch)):
        assert ta == tb
        assert fa == fb
        assert_frame_equal(a, b)


@pytest.mark.parametrize("path", FIXTURES + SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_block_reader_reads_like_the_chunk_reader(path, monkeypatch):
    _same(path, monkeypatch)


def test_block_reader_is_used_for_a_large_single_format_file(tmp_path, monkeypatch):
    """The lines the family's fast path does not fit (a plain line, a stack frame) still read right."""
    lines = [f"2026-11-21 10:12:{i % 60:02d}.{i % 1000:03d} UTC [{100 + i}] app@shop LOG:  duration: {i}.5 ms  "
             f"statement: SELECT {i}" for i in range(400)]
    lines[50] = "pg_ctl: something unprefixed"
    lines[51] = "\tcontinued statement text"
    lines[120] = ""
    lines[200] = '2026-11-21 10:13:00.000 UTC [9] app@shop ERROR:  relation "x" does not exist'
    lines[201] = "2026-11-21 10:13:00.000 UTC [9] app@shop STATEMENT:  SELECT * FROM x"
    # severities whose length the fast path cannot tell from their first letters, and a zone
    # followed by something other than what the first lines show
    lines[300] = "2026-11-21 10:13:01.000 UTC [9] app@shop DEBUG1:  autovacuum: processing database"
    lines[301] = "2026-11-21 10:13:01.000 UTC [9] app@shop DEBUG:  checkpoint record is at 0/1"
    lines[302] = "2026-11-21 10:13:01.000 UTC:[9] app@shop WARNING:  odd prefix"
    lines[303] = "2026-11-21 10:13:01.000 UTC [9] josé@shop LOG:  non-ASCII before the severity"
    # 7 two-byte letters: 7 characters after HINT's position the text reads INFO, another severity
    lines[304] = "2026-11-21 10:13:01.000 UTC [9] ééééééé@shop HINT:  INFO is not this line's severity"
    # the severity glued to the prefix (no \b before it), a message that is not ASCII, and a ":  "
    # in the prefix before the severity's
    lines[305] = "2026-11-21 10:13:01.000 UTC [9] app@shopERROR:  glued to the prefix"
    lines[306] = "2026-11-21 10:13:01.000 UTC [9] app@shop ERROR:  ошибка: значение не найдено"
    lines[307] = "2026-11-21 10:13:01.000 UTC [9] app:  x@shop WARNING:  a colon and two spaces in the prefix"
    path = tmp_path / "postgresql.log"
    path.write_text("\n".join(lines) + "\n")
    _same(path, monkeypatch)
    calls = []
    real = pipeline._run_blocks
    monkeypatch.setattr(pipeline, "_run_blocks", lambda *a, **k: calls.append(1) or real(*a, **k))
    _read(path, blocks=True, monkeypatch=monkeypatch)
    assert calls, "the block reader was not used"


def test_block_reader_unit_separator_gzip_and_oversized_line(tmp_path, monkeypatch):
    head = '127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "GET /a HTTP/1.1" 502 157 "-" "ua"'
    lines = [head] * 50 + [head.replace("ua", "u\x1fa")] + [head] * 20
    lines.append(head + " " + "x" * (sources.MAX_LINE_BYTES + 10))
    lines += [head] * 5
    raw = ("\n".join(lines) + "\n").encode()
    (tmp_path / "access.log").write_bytes(raw)
    (tmp_path / "access.log.gz").write_bytes(gzip.compress(raw))
    for name in ("access.log", "access.log.gz"):
        _same(tmp_path / name, monkeypatch, block_bytes=4096)
        _, totals, _ = _read(tmp_path / name, blocks=True, monkeypatch=monkeypatch, block_bytes=4096)
        assert totals["lines_read"] == len(lines)
        assert totals["lines_truncated"] == 1


def test_block_reader_nginx_access_lines_the_fast_path_must_not_misread(tmp_path, monkeypatch):
    """The status is read by position after the request's closing quote: odd lines read as the general way."""
    ok = ('127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "GET /a HTTP/1.1" 502 157 "-" "ua" 127.0.0.1:3000 502 '
          '0.004 0.004')
    lines = [ok] * 30 + [
        '127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "" 400 0 "-" "-" - - 0.000 -',            # empty request
        '127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "GET /b HTTP/1.1" 5020 157 "-" "ua"',     # not 3 digits
        '127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "GET /c HTTP/1.1" +12 157 "-" "ua"',      # a sign
        '127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "GET /d?q=\\x22 HTTP/1.1" 504 0 "-" "ua"',  # escaped quote
        '127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "\\x16\\x03\\x01" 400 157 "-" "-"',        # TLS on plain port
        '127.0.0.1 - - [21/Nov/2026:11:12:39 +0100] "GET /e HTTP/1.1" 200 1 "-" "ua"',         # another zone
        '127.0.0.1 - - [21/Nov/2026:10:12:39  +0000] "GET /f HTTP/1.1" 200 1 "-" "ua"',        # two spaces
    ] + [ok] * 30
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n")
    _same(path, monkeypatch)
    events, _, _ = _read(path, blocks=True, monkeypatch=monkeypatch)
    assert events.get_column("status").to_list()[30:35] == [400, None, None, 504, 400]
    assert events.get_column("ts").to_list()[35] == events.get_column("ts").to_list()[0]


def test_block_reader_nginx_error_levels_and_lines_the_fast_path_must_not_misread(tmp_path, monkeypatch):
    """The level is read by position (the word up to the first "] "): every level nginx writes
    reads as the general way reads it, and lines SIGNATURE would not take are not taken."""
    ok = ("2026/11/21 10:13:09 [{}] 24998#24998: *316 connect() failed (111: Connection refused) while "
          'connecting to upstream, client: 127.0.0.1, upstream: "http://127.0.0.1:28050/api"')
    levels = ["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"]
    lines = [ok.format(lvl) for lvl in levels * 8] + [
        ok.format("warning"),                                                    # not an nginx level
        "2026/11/21 10:13:09 [error] 24998: no thread id",
        "2026/11/21 10:13:09 [error] x#1: not a pid",
        "2026/11/21 1:13:09 [error] 24998#24998: a short time",
        "2026/11/21 10:13:09 error] 24998#24998: no bracket",
        "2026/11/21 10:13:09 [err] or] 24998#24998: a \"] \" inside",
        "2026/11/21 10:13:09 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)",
    ] + [ok.format("error")] * 20
    path = tmp_path / "error.log"
    path.write_text("\n".join(lines) + "\n")
    _same(path, monkeypatch)
    events, _, _ = _read(path, blocks=True, monkeypatch=monkeypatch)
    assert events.get_column("level").to_list()[:8] == ["debug", "info", "info", "warn", "error", "fatal", "fatal",
                                                        "fatal"]
    assert events.get_column("format").to_list()[64:71] == ["plain"] * 6 + ["nginx_error"]


@pytest.mark.parametrize("blocks", [True, False], ids=["block reader", "chunk reader"])
def test_hot_columns_read_as_the_full_read(tmp_path, monkeypatch, blocks):
    """`scan --stats` (model.HOT_COLUMNS): the same events, accounting and hot values, the other
    parsed columns left out."""
    from logtriage.model import HOT_COLUMNS
    monkeypatch.setattr(sources, "NATIVE_MIN_BYTES", 0 if blocks else 1 << 62)
    monkeypatch.setattr(sources, "BLOCK_BYTES", 700)
    paths = [str(p) for p in FIXTURES]
    full_run, hot_run = pipeline.Run(), pipeline.Run()
    full = pl.concat(list(pipeline.read_events(paths, run=full_run)), how="diagonal_relaxed")
    hot = pl.concat(list(pipeline.read_events(paths, run=hot_run, columns=HOT_COLUMNS)), how="diagonal_relaxed")
    assert hot_run.totals() == full_run.totals()
    assert "message" not in hot.columns and "upstream" not in hot.columns
    same = ["ts", "source", "line", "format", "component", "raw", *sorted(HOT_COLUMNS - {"ts"})]
    assert_frame_equal(hot.select(same), full.select(same))


def test_plans_and_wrapped_lines_further_on(tmp_path, monkeypatch):
    """A stream read by its family's plan meets container-wrapped lines: the chunk reader reads
    that chunk the general way, the block reader unwraps them among the lines the plan did not
    fit; the event across the edges stays whole, as the general way reads it."""
    pg = "2026-11-21 10:12:{:02d}.000 UTC [{}] app@shop LOG:  duration: 1.5 ms  statement: SELECT {}"
    lines = [pg.format(i % 60, 100 + i, i) for i in range(40)]
    lines += ["\tFROM items WHERE id = 1"] * 3
    lines += ["2026-11-21T10:13:00.123456789Z stderr F " + pg.format(1, 999, "wrapped")] * 5
    lines += ["\tFROM wrapped"]
    lines += [pg.format(i % 60, 200 + i, i) for i in range(40)]
    path = tmp_path / "stream.log"
    path.write_text("\n".join(lines) + "\n")
    _same(path, monkeypatch)
    events, totals, _ = _read(path, blocks=False, plans=True, chunk_bytes=600, monkeypatch=monkeypatch)
    assert totals["lines_read"] == len(lines) and totals["events"] == 85
    assert events.get_column("raw").to_list()[39].count("\n") == 3


def test_chunk_reader_plans_follow_a_stream_that_changes_family(tmp_path, monkeypatch):
    """`cat postgresql.log access.log | logtriage scan -`: once chunks are mostly another family,
    that family's plan reads them; every line reads as the general way reads it."""
    pg = "2026-11-21 10:12:{:02d}.000 UTC [{}] app@shop LOG:  duration: 1.5 ms  statement: SELECT {}"
    ng = '127.0.0.1 - - [21/Nov/2026:10:13:{:02d} +0000] "GET /a/{} HTTP/1.1" 502 157 "-" "ua" 127.0.0.1:3000 502 0.004 0.004'
    lines = [pg.format(i % 60, 100 + i, i) for i in range(60)] + [ng.format(i % 60, i) for i in range(60)]
    path = tmp_path / "stream.log"
    path.write_text("\n".join(lines) + "\n")
    plans = []
    real = pipeline._plan_for
    monkeypatch.setattr(pipeline, "_plan_for", lambda *a: plans.append(real(*a)) or plans[-1])
    general = _read(path, blocks=False, monkeypatch=monkeypatch)
    events, totals, seen = _read(path, blocks=False, plans=True, chunk_bytes=600, monkeypatch=monkeypatch)
    assert_frame_equal(events, general[0])
    assert (totals, seen) == general[1:]
    assert [p.name for p in plans] == ["postgres", "nginx_access"]


def test_a_docker_record_split_in_parts_is_sampled_without_error(tmp_path, monkeypatch):
    """Deciding a plan unwraps the first lines, docker json-file records split in parts (a log
    without its "\\n") among them: they are joined, not a crash (heldout4 found one)."""
    inner = "2026-11-21 10:12:00.000 UTC [1] app@shop LOG:  duration: 1.5 ms  statement: SELECT 1"
    lines = ['{"log":"' + inner[:40] + '","stream":"stderr","time":"2026-11-21T10:12:00.1Z"}',
             '{"log":"' + inner[40:] + '\\n","stream":"stderr","time":"2026-11-21T10:12:00.1Z"}',
             '{"log":"' + inner + '","stream":"stderr","time":"2026-11-21T10:12:00.2Z"}']
    path = tmp_path / "container.log"
    path.write_text("\n".join(lines) + "\n")
    _same(path, monkeypatch)
    events, totals, _ = _read(path, blocks=False, plans=True, monkeypatch=monkeypatch)
    assert totals["lines_read"] == 3 and events.get_column("format").to_list() == ["postgres", "postgres"]
