"""The command line: help that teaches, exit codes by meaning, stdin, clear errors on bad input."""

from __future__ import annotations

import json

import pytest

from logtriage.cli import main
from tests.conftest import DATA

COMMANDS = [["scan"], ["analyze"], ["report"], ["formats"], ["formats", "detect"], ["rules"], ["rules", "list"],
            ["rules", "test"], ["rules", "explain"]]
LINE = ('2026/11/21 10:13:09 [error] 24998#24998: *316 connect() failed (111: Connection refused) while connecting '
        'to upstream, client: 127.0.0.1, server: shop.lab.local, request: "GET /api/items/71 HTTP/1.1", upstream: '
        '"http://127.0.0.1:28050/api/items/71", host: "shop.lab.local"')


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(runner, cmd):
    for flag in ("--help", "-h"):
        result = runner.invoke(main, [*cmd, flag])
        assert result.exit_code == 0, result.output
        assert "Example" in result.output


def test_scan_reads_stdin_and_flags_with_entities(runner):
    result = runner.invoke(main, ["scan", "--format", "ndjson", "--fields", "full", "--rules",
                                  str(DATA / "rules_small"), "-"], input=LINE + "\n")
    assert result.exit_code == 0, result.output
    [event] = [json.loads(x) for x in result.stdout.splitlines()]
    assert event["class"] == "conn.refused" and event["rule"] == "nginx.upstream_refused"
    assert event["entities"] == {"upstream": "127.0.0.1:28050"}
    assert event["format"] == "nginx_error" and event["line"] == 1 and event["source"] == "-"
    assert event["fields"]["client"] == "127.0.0.1" and event["fields"]["pid"] == "24998"
    parsed = runner.invoke(main, ["scan", "--format", "ndjson", "-"], input=LINE + "\n")
    assert json.loads(parsed.stdout)["fields"] == {"upstream": "127.0.0.1:28050", "pid": "24998"}


def test_scan_all_emits_unflagged_events_with_null_class(runner):
    result = runner.invoke(main, ["scan", "--format", "ndjson", "--all", "-"], input="hello world\n")
    [event] = [json.loads(x) for x in result.stdout.splitlines()]
    assert event["class"] is None and event["format"] == "plain" and event["message"] == "hello world"


def test_no_readable_input_exits_2_and_names_the_path(runner, tmp_path):
    result = runner.invoke(main, ["analyze", str(tmp_path / "missing.log")])
    assert result.exit_code == 2
    assert "missing.log: no such file or directory" in result.stderr


def test_invalid_rule_files_exit_2_with_every_problem(runner, tmp_path):
    (tmp_path / "bad.toml").write_text('[[rule]]\nid = "x.y"\nclass = "nope"\n')
    result = runner.invoke(main, ["scan", "--rules", str(tmp_path), "-"], input="x\n")
    assert result.exit_code == 2
    assert "bad.toml" in result.stderr and "x.y: class 'nope' is not a TAXONOMY.md id" in result.stderr


def test_fail_on_exit_codes(runner, tmp_path):
    log = tmp_path / "nginx" / "error.log"
    log.parent.mkdir()
    log.write_text("".join(LINE.replace("10:13:09", f"10:13:{s:02d}").replace("*316", f"*{s}") + "\n"
                           for s in range(60) for _ in range(2)))
    rules = ["--rules", str(DATA / "rules_small")]
    found = runner.invoke(main, ["analyze", str(tmp_path), "--fail-on", "any", *rules])
    assert found.exit_code == 1, found.output
    other = runner.invoke(main, ["analyze", str(tmp_path), "--fail-on", "proc.oom", *rules])
    assert other.exit_code == 0
    plain = runner.invoke(main, ["analyze", str(tmp_path), "--format", "json", *rules])
    assert plain.exit_code == 0 and json.loads(plain.stdout)["schema_version"] == "1.0"


def test_rules_explain_unknown_id_suggests(runner):
    result = runner.invoke(main, ["rules", "explain", "nope.upstream_refused", "--rules", str(DATA / "rules_small")])
    assert result.exit_code == 2 and "nginx.upstream_refused" in result.stderr


def test_bad_since_is_a_usage_error(runner, tmp_path):
    (tmp_path / "a.log").write_text(LINE + "\n")
    result = runner.invoke(main, ["analyze", str(tmp_path), "--since", "yesterday-ish"])
    assert result.exit_code == 2 and "ISO 8601" in result.output + result.stderr


def test_scan_into_a_reader_that_leaves_exits_quietly(tmp_path):
    """`logtriage scan ... | head`: the closed pipe ends the run with status 0, no traceback."""
    import subprocess
    import sys

    log = tmp_path / "error.log"
    log.write_text((LINE + "\n") * 20000)
    proc = subprocess.Popen([sys.executable, "-m", "logtriage", "scan", "--format", "ndjson", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert json.loads(first)["class"] == "conn.refused"
    assert "Traceback" not in err


def test_analyze_gives_the_same_json_whatever_the_hash_seed():
    # Python salts str hashes per process: set iteration and ties sorted by count alone used to
    # reorder the timeline's series and a cause's advice between two runs on the same logs
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    def run(seed: str) -> dict:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-m", "logtriage", "analyze", str(ROOT / "sample_logs"), "--format", "json"],
                             capture_output=True, text=True, env=env, check=True, cwd=ROOT).stdout
        doc = json.loads(out)
        doc.pop("generated_at")
        return doc

    first = run("1")
    assert first["incidents"] and first["timeline"]["series"]
    assert run("2") == first


def test_a_year_python_cannot_hold_leaves_the_event_without_time(runner):
    # an anonymised access line (ingress-nginx upstreaminfo) with the date zeroed out
    line = ('x.x.x.x - - [01/Jan/0000:00:00:00 +0000] "GET / HTTP/1.1" 502 150 "-" "curl/7.87.0" 197 0.002 '
            '[xxx] [] x.x.x.x:x 0 0.002 502 d4acbcddeb068470b9adb8c89c9fdbc4')
    result = runner.invoke(main, ["scan", "--format", "ndjson", "--all", "-"], input=line + "\n")
    assert result.exit_code == 0, result.output
    [event] = [json.loads(x) for x in result.stdout.splitlines()]
    assert event["ts"] is None and event["class"] == "http.5xx"


def test_an_internal_error_is_one_line_and_exit_3(runner, tmp_path, monkeypatch):
    from logtriage.correlate import analysis

    def broken(*args, **kwargs):
        raise ValueError("year 0 is out of range")

    monkeypatch.setattr(analysis, "analyze", broken)
    log = tmp_path / "error.log"
    log.write_text(LINE + "\n")
    result = runner.invoke(main, ["analyze", str(log)])
    assert result.exit_code == 3
    assert "internal error" in result.output and "ValueError: year 0 is out of range" in result.output
    assert "Traceback" not in result.output and "LOGTRIAGE_DEBUG=1" in result.output
    monkeypatch.setenv("LOGTRIAGE_DEBUG", "1")
    result = runner.invoke(main, ["analyze", str(log)])
    assert isinstance(result.exception, ValueError)
