"""Benchmark logtriage against ripgrep on the corpus from make_corpus.sh; print a markdown table.

Runs, alternately and --runs times each (default 5), on the same corpus files:
  rg        rg -c -f benchmarks/patterns.txt FILES         (the floor: literal/regex search only)
  stats     logtriage scan --stats FILES                    (read + detect + parse, the benchmark mode)
  ndjson    logtriage scan --format ndjson FILES > /dev/null (flagged events only), if scan has it
  analyze   logtriage analyze --format json FILES > file     if the command exists
Alternating (rg, stats, ndjson, analyze, rg, stats, ...) spreads any drift of the machine over
every command; each logtriage run is divided by the rg run of its own round (the paired ratio),
and the table shows medians. Wall time is measured around the process; peak RSS, user and
system CPU come from os.wait4 for that one child. Then a memory check streams several GB through
`logtriage scan --stats -` from a pipe (cat FILES... repeated) and reports its peak RSS.

Writes benchmarks/out/results.json (every run, the medians, the machine) and prints the table.

Usage: .venv/bin/python benchmarks/run.py [--runs 5] [--memory-gb 4] [--only rg,stats]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RSS_TARGET_MB = 200


def wait_rusage(proc: subprocess.Popen) -> tuple[int, os.struct_rusage]:
    """Reap `proc` and return (exit code, its own resource usage)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def run_measured(argv: list[str], stdout_path: str, timeout: float, stdin=None) -> dict:
    """Run one command and measure it with os.wait4 (per-child peak RSS, user and system CPU)."""
    with open(stdout_path, "wb") as out, open(stdout_path + ".err", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=stdin if stdin is not None else subprocess.DEVNULL)
        timer = _Killer(proc, timeout)
        rc, usage = wait_rusage(proc)
        wall = time.perf_counter() - t0
        timer.cancel()
    return {"wall_s": round(wall, 4), "user_s": round(usage.ru_utime, 3), "sys_s": round(usage.ru_stime, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "rc": rc, "timed_out": timer.fired}


class _Killer:
    """Kill a child that outlives its time limit (a thread, so wait4 can block meanwhile)."""

    def __init__(self, proc: subprocess.Popen, timeout: float) -> None:
        import threading
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        try:
            os.kill(self._proc.pid, 9)
        except ProcessLookupError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def available_commands(logtriage: str) -> tuple[dict[str, bool], list[str]]:
    """Which of the optional logtriage modes exist now (the CLI is being written), and notes."""
    notes = []

    def help_of(*cmd: str) -> str | None:
        r = subprocess.run([logtriage, *cmd, "--help"], capture_output=True, text=True, check=False)
        return r.stdout if r.returncode == 0 else None

    scan_help = help_of("scan") or ""
    analyze_help = help_of("analyze")
    have = {
        "stats": "--stats" in scan_help,
        "ndjson": "ndjson" in scan_help,
        "analyze": analyze_help is not None and "json" in analyze_help,
    }
    if not have["stats"]:
        notes.append("`logtriage scan --stats` is missing: nothing of logtriage measured.")
    if not have["ndjson"]:
        notes.append("`logtriage scan --format ndjson` is missing: skipped.")
    if analyze_help is None:
        notes.append("`logtriage analyze` does not exist yet: skipped.")
    elif not have["analyze"]:
        notes.append("`logtriage analyze` has no JSON output yet: skipped.")
    return have, notes


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def out(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False).stdout.strip().split("\n")[0]
        except OSError:
            return ""

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "rg": out("rg", "--version"), "commit": out("git", "rev-parse", "--short", "HEAD"),
            "uncommitted_changes_in_logtriage": bool(out("git", "status", "--porcelain", "--", "logtriage", "rules")),
            "loadavg_at_end": os.getloadavg()}


def table(rows: list[dict]) -> str:
    head = ("| command | runs | median wall s | lines/s | MB/s | peak RSS MB | CPU s (user+sys) "
            "| median ratio to rg |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    body = ""
    for r in rows:
        ratio = f"{r['median_ratio_to_rg']:.1f}x" if r.get("median_ratio_to_rg") else "1.0x (baseline)"
        body += (f"| `{r['label']}` | {r['ok_runs']}/{r['runs']} | {r['median_wall_s']:.2f} | "
                 f"{r['lines_per_s'] / 1e6:.2f} M | {r['mb_per_s']:.0f} | {r['peak_rss_mb']:.0f} | "
                 f"{r['median_cpu_s']:.1f} | {ratio} |\n")
    return head + body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--corpus", type=Path, default=HERE / "corpus")
    ap.add_argument("--patterns", type=Path, default=HERE / "patterns.txt")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--logtriage", default=str(REPO / ".venv" / "bin" / "logtriage"))
    ap.add_argument("--only", default="rg,stats,ndjson,analyze", help="comma-separated subset of the commands")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before one run is killed")
    ap.add_argument("--memory-gb", type=float, default=4.0, help="GB to stream for the memory check (0: skip)")
    args = ap.parse_args()

    manifest_path = args.corpus / "manifest.json"
    if not manifest_path.exists():
        print(f"run.py: no corpus at {args.corpus}; build it with `bash benchmarks/make_corpus.sh`.", file=sys.stderr)
        return 2
    manifest = json.loads(manifest_path.read_text())
    files = [str(args.corpus / f["path"]) for f in manifest["files"]]
    total_bytes, total_lines = manifest["total_bytes"], manifest["total_lines"]
    for tool in ("rg", args.logtriage):
        if not shutil.which(tool):
            print(f"run.py: `{tool}` not found (rg: Debian package ripgrep; logtriage: pip install -e .).",
                  file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)

    have, notes = available_commands(args.logtriage)
    lt = args.logtriage
    commands = {
        "rg": (f"rg -c -f {args.patterns.name}", ["rg", "-c", "-f", str(args.patterns), *files], "rg.out"),
        "stats": ("logtriage scan --stats", [lt, "scan", "--stats", *files], "stats.out"),
        "ndjson": ("logtriage scan --format ndjson", [lt, "scan", "--format", "ndjson", *files], os.devnull),
        "analyze": ("logtriage analyze --format json", [lt, "analyze", "--format", "json", *files], "analyze.json"),
    }
    wanted = [c for c in args.only.split(",") if c in commands]
    order = [c for c in wanted if c == "rg" or have.get(c)]
    for c in wanted:
        if c != "rg" and not have.get(c):
            print(f"note: skipping {c}")
    for n in notes:
        print(f"note: {n}")
    print(f"corpus: {len(files)} files, {total_bytes / 1e6:.0f} MB, {total_lines:,} lines "
          f"({manifest.get('copies', '?')} shifted copies of {manifest['raw']['bytes'] / 1e6:.0f} MB of real output)")

    # warm the page cache so that every command reads from memory, the first one included
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(64 << 20):
                pass

    runs: dict[str, list[dict]] = {c: [] for c in order}
    for i in range(args.runs):
        for c in order:
            _label, argv, outname = commands[c]
            dest = outname if outname == os.devnull else str(args.out / outname)
            m = run_measured(argv, dest, args.timeout)
            m["round"] = i
            m["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
            if c == "stats" and m["rc"] == 0:
                m["lines_read"] = _stats_total(dest)
            runs[c].append(m)
            flag = "" if m["rc"] == 0 else f"  (exit {m['rc']}{', killed at the time limit' if m['timed_out'] else ''})"
            print(f"  round {i + 1}/{args.runs}  {c:<8} {m['wall_s']:8.2f} s  {m['peak_rss_mb']:7.0f} MB{flag}",
                  flush=True)

    rows = []
    rg_by_round = {m["round"]: m for m in runs.get("rg", []) if m["rc"] in (0, 1)}
    for c in order:
        ok = [m for m in runs[c] if (m["rc"] in (0, 1) if c == "rg" else m["rc"] == 0)]
        ratios = [m["wall_s"] / rg_by_round[m["round"]]["wall_s"] for m in ok if m["round"] in rg_by_round and c != "rg"]
        wall = median([m["wall_s"] for m in ok]) or math.nan
        rows.append({
            "command": c, "label": commands[c][0], "runs": len(runs[c]), "ok_runs": len(ok),
            "median_wall_s": wall,
            "lines_per_s": total_lines / wall if ok else math.nan,
            "mb_per_s": total_bytes / 1e6 / wall if ok else math.nan,
            "peak_rss_mb": max((m["peak_rss_mb"] for m in ok), default=math.nan),
            "median_cpu_s": median([m["user_s"] + m["sys_s"] for m in ok]) or math.nan,
            "median_ratio_to_rg": median(ratios) if c != "rg" else None,
            "paired_ratios": [round(r, 2) for r in ratios],
        })
    for m in runs.get("stats", []):
        if m.get("lines_read") is not None and m["lines_read"] != total_lines:
            notes.append(f"scan --stats read {m['lines_read']:,} lines, the corpus has {total_lines:,}.")
            break

    memory = None
    if args.memory_gb > 0 and have["stats"] and "stats" in wanted:
        memory = memory_check(lt, files, total_bytes, total_lines, args.memory_gb, args.out, args.timeout * 4)

    results = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
               "corpus": {"files": [f["path"] for f in manifest["files"]], "bytes": total_bytes,
                          "lines": total_lines, "copies": manifest.get("copies")},
               "notes": notes, "summary": rows, "runs": runs, "memory_check": memory}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print()
    print(f"Corpus: {total_bytes / 1e6:.0f} MB, {total_lines:,} lines, {len(files)} files; "
          f"{args.runs} alternating runs; medians; ratio = median of (run / rg run of the same round).")
    print()
    print(table(rows))
    if memory:
        verdict = "below" if memory["peak_rss_mb"] < RSS_TARGET_MB else "ABOVE"
        print(f"Memory check: {memory['gb_streamed']:.1f} GB ({memory['lines_expected']:,} lines) piped through "
              f"`logtriage scan --stats -` in {memory['wall_s']:.0f} s ({memory['mb_per_s']:.0f} MB/s): "
              f"peak RSS {memory['peak_rss_mb']:.0f} MB, {verdict} the {RSS_TARGET_MB} MB target"
              + ("" if memory["lines_read"] == memory["lines_expected"]
                 else f"; it counted {memory['lines_read']} lines") + ".")
    for n in notes:
        print(f"Note: {n}")
    print(f"\nAll runs: {args.out / 'results.json'}")
    return 0


def _stats_total(path: str) -> int | None:
    """lines_read from the `total` row of scan --stats."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("total "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_check(lt: str, files: list[str], total_bytes: int, total_lines: int, gb: float, out: Path,
                 timeout: float) -> dict:
    """Stream the corpus, repeated to about `gb` GB, through `scan --stats -` and measure it."""
    copies = max(1, math.ceil(gb * 1e9 / total_bytes))
    print(f"memory check: piping {copies} x the corpus ({copies * total_bytes / 1e9:.1f} GB) into "
          f"`logtriage scan --stats -` ...", flush=True)
    cat = subprocess.Popen(["cat", *(files * copies)], stdout=subprocess.PIPE)
    try:
        m = run_measured([lt, "scan", "--stats", "-"], str(out / "memory.out"), timeout, stdin=cat.stdout)
    finally:
        cat.stdout.close()
        cat.wait()
    m.update({"copies": copies, "gb_streamed": copies * total_bytes / 1e9, "lines_expected": copies * total_lines,
              "lines_read": _stats_total(str(out / "memory.out")),
              "mb_per_s": copies * total_bytes / 1e6 / m["wall_s"], "target_mb": RSS_TARGET_MB})
    return m


if __name__ == "__main__":
    sys.exit(main())
