"""Reading inputs: files, directories, gzip by magic bytes, stdin, and every odd input a user meets."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

from logtriage import pipeline, sources

LINE = '2026/11/21 10:13:09 [error] 7#7: *1 connect() failed (111: Connection refused) while connecting to upstream'


def read_all(*paths: str) -> tuple[list[str], pipeline.Run]:
    run = pipeline.Run()
    raws = []
    for batch in pipeline.read_events(list(paths), run=run):
        raws.extend(batch["raw"].to_list())
    return raws, run


def assert_accounted(run: pipeline.Run) -> None:
    for st in run.stats.values():
        assert st.lines_parsed + st.lines_unparsed + st.lines_skipped == st.lines_read, st


def test_gzip_is_recognised_by_magic_bytes_not_name(tmp_path):
    p = tmp_path / "error.log.1"          # a rotated file, compressed, without .gz
    p.write_bytes(gzip.compress(((LINE + "\n") * 3).encode()))
    raws, run = read_all(str(p))
    assert raws == [LINE] * 3
    assert run.stats[str(p)].main_format == "nginx_error"


def test_truncated_gzip_keeps_what_was_read_and_names_the_file(tmp_path):
    p = tmp_path / "error.log.2.gz"
    data = gzip.compress(((LINE + "\n") * 5000).encode())
    p.write_bytes(data[: len(data) // 2])
    raws, run = read_all(str(p))
    assert len(raws) > 100
    assert any("truncated gzip" in str(pr) and str(p) in str(pr) for pr in run.problems)
    assert_accounted(run)


def test_invalid_utf8_is_replaced_not_fatal(tmp_path):
    p = tmp_path / "latin1.log"
    p.write_bytes(b"caf\xe9 " + LINE.encode() + b"\n" + LINE.encode() + b"\n")
    raws, run = read_all(str(p))
    assert raws[0].startswith("caf\ufffd ") and raws[1] == LINE
    assert_accounted(run)


def test_a_line_over_one_mib_is_cut_and_counted(tmp_path):
    p = tmp_path / "huge.log"
    p.write_bytes(LINE.encode() + b"\n" + b"x" * (3 << 20) + b"\n" + LINE.encode() + b"\n")
    raws, run = read_all(str(p))
    st = run.stats[str(p)]
    assert st.lines_read == 3 and st.lines_truncated == 1
    assert len(raws[1]) == sources.MAX_LINE_BYTES and raws[2] == LINE


def test_directories_are_walked_recursively_and_a_symlink_loop_is_reported(tmp_path):
    (tmp_path / "nginx").mkdir()
    (tmp_path / "nginx" / "error.log").write_text(LINE + "\n")
    (tmp_path / "nginx" / "error.log.1").write_text(LINE + "\n")
    os.symlink(tmp_path, tmp_path / "nginx" / "loop")
    raws, run = read_all(str(tmp_path))
    assert len(raws) == 2
    assert any("symlink loop" in str(pr) for pr in run.problems)
    assert {st.path.rsplit("/", 1)[1] for st in run.stats.values()} == {"error.log", "error.log.1"}


def test_component_comes_from_the_directory_a_file_sits_in(tmp_path):
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "postgresql.log").write_text(
        "2026-11-21 10:12:38.313 UTC [24935] LOG:  database system is ready to accept connections\n")
    run = pipeline.Run()
    [batch] = list(pipeline.read_events([str(tmp_path)], run=run))
    assert batch["component"].to_list() == ["postgres"]


def test_missing_path_and_empty_directory_are_problems_not_crashes(tmp_path):
    (tmp_path / "empty").mkdir()
    raws, run = read_all(str(tmp_path / "nope.log"), str(tmp_path / "empty"))
    assert raws == []
    reasons = {str(p) for p in run.problems}
    assert any("nope.log: no such file" in r for r in reasons)
    assert any("directory holds no log files" in r for r in reasons)


def test_unreadable_file_is_named_and_the_run_goes_on(tmp_path, monkeypatch):
    good, bad = tmp_path / "a.log", tmp_path / "b.log"
    good.write_text(LINE + "\n")
    bad.write_text(LINE + "\n")
    real_open = open

    def fake_open(path, *a, **k):
        if str(path) == str(bad):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    raws, run = read_all(str(bad), str(good))
    assert raws == [LINE]
    assert any(str(bad) in str(p) and "Permission denied" in str(p) for p in run.problems)


def test_multiline_record_split_across_chunks_stays_one_event(tmp_path):
    p = tmp_path / "postgresql.log"
    head = "2026-11-21 10:15:57.950 UTC [5034] app@appdb ERROR:  canceling statement due to statement timeout"
    lines = [head, "2026-11-21 10:15:57.950 UTC [5034] app@appdb STATEMENT:  SELECT price", "\tFROM items"]
    p.write_text(("\n".join(lines) + "\n") * 2000)
    run = pipeline.Run()
    events = []
    for batch in pipeline.read_events([str(p)], run=run, chunk_bytes=4096):
        events.extend(batch["raw"].to_list())
    assert len(events) == 2000 and all(e.count("\n") == 2 for e in events)
    assert_accounted(run)


def test_stdin_streams_events_while_the_pipe_stays_open():
    # an event must show long before the writer closes the pipe (kubectl logs -f)
    proc = subprocess.Popen([sys.executable, "-m", "logtriage", "scan", "--all", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write((LINE + "\n").encode())
        proc.stdin.flush()
        import select
        ready, _, _ = select.select([proc.stdout], [], [], 5.0)
        assert ready, "no event within 5 s while the pipe was open"
        assert b"connect() failed" in proc.stdout.readline()
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
