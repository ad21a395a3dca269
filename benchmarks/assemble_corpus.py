"""Assemble the benchmark corpus from the real server output in corpus/raw/ (see make_corpus.sh).

Each raw log is written COPIES times into corpus/<same path>; copy k has every timestamp moved
forward by k x (the raw run's span + a minute), so the corpus reads as COPIES consecutive runs of
the same servers: real lines and real proportions, repeated. COPIES is the smallest number that
reaches both --target-mb and --min-lines. Writes corpus/manifest.json (bytes and lines per file),
which run.py reads.

Usage: python3 benchmarks/assemble_corpus.py --raw benchmarks/corpus/raw --out benchmarks/corpus
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MONTH_NO = {m.encode(): i + 1 for i, m in enumerate(MONTHS)}


def _nginx_access(m: re.Match, delta: timedelta) -> bytes:
    # [21/Nov/2025:11:13:05 +0000]: the offset stays, only the wall clock moves
    s = m.group(1)
    t = datetime(int(s[7:11]), MONTH_NO[s[3:6]], int(s[0:2]), int(s[12:14]), int(s[15:17]), int(s[18:20]))
    t += delta
    return f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year}:{t:%H:%M:%S}".encode()


def _iso_like(fmt: str):
    def shift(m: re.Match, delta: timedelta) -> bytes:
        return (datetime.strptime(m.group(1).decode(), fmt) + delta).strftime(fmt).encode()
    return shift


# file name -> (timestamp pattern with the part to move as group 1, how to move it)
KINDS = {
    "access": (re.compile(rb"(?<=\[)(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d)(?= [+-]\d{4}\])"), _nginx_access),
    "error": (re.compile(rb"(?m)^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)"), _iso_like("%Y/%m/%d %H:%M:%S")),
    "postgres": (re.compile(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"), _iso_like("%Y-%m-%d %H:%M:%S")),
}


def kind_of(path: Path) -> str:
    """Which timestamp layout a raw log uses, from its name."""
    name = path.name
    if "access" in name:
        return "access"
    if "error" in name:
        return "error"
    if "postgres" in name or path.parent.name == "postgres":
        return "postgres"
    raise SystemExit(f"assemble_corpus.py: no timestamp layout known for {path}; name it *access*, *error* or postgres*.")


def first_last_times(path: Path, kind: str) -> tuple[datetime, datetime] | None:
    """The first and the last timestamp in a raw log (None when it has none)."""
    pattern, _ = KINDS[kind]
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
        fh.seek(max(0, size - (1 << 16)))
        tail = fh.read()
    found_head, found_tail = pattern.findall(head), pattern.findall(tail)
    if not found_head:
        return None
    parse = {
        "access": lambda b: datetime(int(b[7:11]), MONTH_NO[b[3:6]], int(b[0:2]), int(b[12:14]), int(b[15:17]),
                                     int(b[18:20])),
        "error": lambda b: datetime.strptime(b.decode(), "%Y/%m/%d %H:%M:%S"),
        "postgres": lambda b: datetime.strptime(b.decode(), "%Y-%m-%d %H:%M:%S"),
    }[kind]
    return parse(found_head[0]), parse(found_tail[-1])


def _substituter(move, delta: timedelta):
    """re.sub callback moving one timestamp by `delta`; a second repeats on many lines, so cache it."""
    cache: dict[bytes, bytes] = {}

    def sub(m: re.Match) -> bytes:
        key = m.group(1)
        new = cache.get(key)
        if new is None:
            new = cache[key] = move(m, delta)
        return new

    return sub


def write_copies(src: Path, dst: Path, kind: str, copies: int, step: timedelta) -> int:
    """Write `copies` time-shifted copies of src to dst; return the number of lines written."""
    pattern, move = KINDS[kind]
    tmp = dst.with_suffix(dst.suffix + ".part")
    lines = 0
    with tmp.open("wb") as out:
        for k in range(copies):
            sub = _substituter(move, step * k)
            with src.open("rb") as fh:
                rest = b""
                while True:
                    block = fh.read(32 << 20)
                    if not block:
                        break
                    block = rest + block
                    cut = block.rfind(b"\n") + 1
                    block, rest = block[:cut], block[cut:]
                    lines += block.count(b"\n")
                    out.write(block if k == 0 else pattern.sub(sub, block))
                if rest:
                    rest += b"\n"
                    lines += 1
                    out.write(rest if k == 0 else pattern.sub(sub, rest))
    os.replace(tmp, dst)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--raw", type=Path, required=True, help="the real output (make_corpus.sh's raw/)")
    ap.add_argument("--out", type=Path, required=True, help="the corpus directory")
    ap.add_argument("--target-mb", type=float, default=1200, help="at least this many MB in total")
    ap.add_argument("--min-lines", type=int, default=4_000_000, help="at least this many lines in total")
    args = ap.parse_args()

    raws = sorted(p for p in args.raw.rglob("*.log") if p.is_file() and p.stat().st_size)
    if not raws:
        raise SystemExit(f"assemble_corpus.py: no *.log files in {args.raw}; run make_corpus.sh first.")
    raw_bytes = sum(p.stat().st_size for p in raws)
    raw_lines = 0
    for p in raws:
        with p.open("rb") as fh:
            raw_lines += sum(block.count(b"\n") for block in iter(lambda: fh.read(32 << 20), b""))
    spans = [t for p in raws if (t := first_last_times(p, kind_of(p)))]
    start = min(a for a, _ in spans)
    end = max(b for _, b in spans)
    step = timedelta(seconds=math.ceil((end - start).total_seconds()) + 60)
    copies = max(1, math.ceil(args.target_mb * 1e6 / raw_bytes), math.ceil(args.min_lines / max(raw_lines, 1)))

    files = []
    t0 = time.monotonic()
    for p in raws:
        rel = p.relative_to(args.raw)
        dst = args.out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        n = write_copies(p, dst, kind_of(p), copies, step)
        files.append({"path": str(rel), "bytes": dst.stat().st_size, "lines": n, "raw_bytes": p.stat().st_size})
        print(f"  {rel}: {copies} copies, {dst.stat().st_size / 1e6:.0f} MB, {n:,} lines")
    manifest = {
        "note": "real nginx/PostgreSQL output from make_corpus.sh, repeated with shifted timestamps",
        "copies": copies,
        "copy_step_seconds": int(step.total_seconds()),
        "raw": {"bytes": raw_bytes, "lines": raw_lines, "first_ts": start.isoformat(), "last_ts": end.isoformat()},
        "files": files,
        "total_bytes": sum(f["bytes"] for f in files),
        "total_lines": sum(f["lines"] for f in files),
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"  total {manifest['total_bytes'] / 1e6:.0f} MB, {manifest['total_lines']:,} lines "
          f"in {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    main()
