"""Time each hot-column expression of the parsers on one chunk of each corpus file.

`logtriage scan --stats` spends its time inside polars (one `collect` per step), so cProfile and
py-spy only point at formats.parse_lines; this splits that time by expression. For each file of
the corpus (or the files given) it reads one chunk as sources.CHUNK_BYTES would, detects its
family, and prints the best of 3 for: each expression parse() returns, all of them together,
continuation(), the family's SIGNATURE, detect_expr over every family, and the generic
continuation patterns.

Usage: .venv/bin/python benchmarks/profile_parsers.py [FILE...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import polars as pl

from logtriage import formats, sources

HERE = Path(__file__).resolve().parent


def best_ms(df: pl.DataFrame, expr: pl.Expr, reps: int = 3) -> float:
    """The fastest of `reps` evaluations of `expr` over `df`, in milliseconds."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        df.select(expr.alias("x"))
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def profile(path: str) -> None:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read(sources.CHUNK_BYTES).splitlines()[:-1]
    df = pl.DataFrame({"text": lines})
    text = pl.col("text")
    fams = df.head(formats.HINT_LINES).select(formats.detect_expr(text).alias("f")).get_column("f").drop_nulls()
    if not len(fams):
        print(f"{path}: no family detected in the first lines")
        return
    parser = formats.BY_NAME[fams.value_counts(sort=True).row(0)[0]]
    print(f"\n{path}: {parser.NAME}, {len(lines):,} lines in one chunk")
    timings = [(f"{parser.NAME}.parse()[{k}]", best_ms(df, e)) for k, e in parser.parse(text).items()]
    timings.append((f"{parser.NAME}.parse() all columns at once",
                    best_ms(df, pl.struct([e.alias(k) for k, e in parser.parse(text).items()]))))
    if hasattr(parser, "continuation"):
        timings.append((f"{parser.NAME}.continuation()", best_ms(df, parser.continuation(text))))
    timings.append((f"{parser.NAME}.SIGNATURE", best_ms(df, text.str.contains(parser.SIGNATURE))))
    timings.append(("formats.detect_expr (every family)", best_ms(df, formats.detect_expr(text))))
    timings.append(("formats._CONTINUATION", best_ms(df, text.str.contains(formats._CONTINUATION))))
    for label, ms in timings:
        print(f"  {ms:8.1f} ms  {1e6 * ms / 1000 / len(lines):7.2f} us/line  {label}")


def main() -> None:
    files = sys.argv[1:]
    if not files:
        manifest = HERE / "corpus" / "manifest.json"
        if not manifest.exists():
            sys.exit("profile_parsers.py: give files, or build the corpus with `bash benchmarks/make_corpus.sh`.")
        files = [str(HERE / "corpus" / f["path"]) for f in json.loads(manifest.read_text())["files"]]
    for f in files:
        profile(f)


if __name__ == "__main__":
    main()
