"""sources -> formats -> classify, as a stream of event batches, with the line accounting.

read_events() is what every command runs first: it reads each input chunk by chunk (bounded
memory), parses and classifies each chunk as one vectorised batch, and keeps per-source
accounting (model.SourceStats) so that nothing is dropped without being counted.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from logtriage import formats, sources
from logtriage.formats.base import set_assumed_tz
from logtriage.model import SourceStats


@dataclass
class Run:
    """What one read of the inputs produced besides the events: accounting and problems."""

    stats: dict[str, SourceStats] = field(default_factory=dict)
    problems: list[sources.Problem] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        keys = ("lines_read", "lines_parsed", "lines_unparsed", "lines_skipped", "lines_truncated", "events")
        return {k: sum(getattr(s, k) for s in self.stats.values()) for k in keys}


def read_events(args: list[str], *, run: Run, classify: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
                tz: str = "UTC", force_format: str | None = None, chunk_bytes: int = sources.CHUNK_BYTES,
                on_problem: Callable[[sources.Problem], None] | None = None) -> Iterator[pl.DataFrame]:
    """Yield event batches (model.EVENT_SCHEMA, plus classify's columns) for the inputs in `args`."""
    set_assumed_tz(tz)
    found = sources.expand_paths(args, set(formats.names()))

    def problem(p: sources.Problem) -> None:
        run.problems.append(p)
        if p.path in run.stats:
            run.stats[p.path].problems.append(p.reason)
        if on_problem:
            on_problem(p)

    for p in found.problems:
        problem(p)
    for inp in found.inputs:
        stats = run.stats.setdefault(inp.path, SourceStats(inp.path))
        state = formats.ParseState(forced=inp.forced_format or force_format,
                                   component=sources.component_from_path(inp))
        batches = _native_batches(inp, state, stats, problem) if sources.native_ok(inp) else None
        if batches is None:
            batches = _chunk_batches(inp, state, stats, problem, chunk_bytes)
        for parsed in batches:
            stats.lines_parsed += parsed.lines_parsed
            stats.lines_unparsed += parsed.lines_unparsed
            stats.lines_skipped += parsed.lines_skipped
            events = parsed.events
            if events.height == 0:
                continue
            stats.events += events.height
            _note_time_range(stats, events)
            if classify is not None:
                events = classify(events)
            yield events
        stats.formats = dict(state.counts)
        if any(stats.formats.get(f) for f in stats.formats if f != "plain"):
            stats.tz_assumed = tz if _has_naive(state) else None


def _chunk_batches(inp: sources.Input, state: formats.ParseState, stats: SourceStats,
                   problem: Callable[[sources.Problem], None], chunk_bytes: int) -> Iterator[formats.Parsed]:
    """The general reader: any input (pipes, gzip, small files) in chunks of physical lines."""
    carry: pl.DataFrame | None = None
    for chunk in sources.read_chunks(inp, chunk_bytes=chunk_bytes, on_problem=problem):
        stats.lines_read += len(chunk.lines)
        stats.lines_truncated += chunk.truncated
        df = pl.DataFrame({"raw": chunk.lines,
                           "line": pl.int_range(chunk.first_line, chunk.first_line + len(chunk.lines),
                                                dtype=pl.UInt32, eager=True)})
        if carry is not None and carry.height:
            df = pl.concat([carry, df])
        parsed = formats.parse_lines(df, state, source=inp.path, final=chunk.final or chunk.flushed)
        carry = parsed.carry
        yield parsed


def _native_batches(inp: sources.Input, state: formats.ParseState, stats: SourceStats,
                    problem: Callable[[sources.Problem], None]) -> Iterator[formats.Parsed] | None:
    """A large single-format file, parsed block by block by polars plans (None: not such a file).

    The first lines decide: one family, no wrapper. Two blocks are parsed at a time on worker
    threads (polars releases the GIL) while this thread assembles the events of the one before,
    so memory stays at a few blocks whatever the file size.
    """
    blocks = sources.line_blocks(inp, on_problem=problem)
    first = next(blocks, None)
    if first is None:
        return None
    sample = sources.lines_from_bytes(first[:first.rfind(b"\n", 0, sources.SAMPLE_BYTES) + 1])
    head = formats.wrappers.unwrap(pl.DataFrame({"raw": sample}))
    if head.get_column("wrapper").null_count() < head.height:
        return None
    if not state.forced:
        formats.learn_hint(sample, state)
    name = state.forced or state.hint
    own = sample.filter(pl.select(formats.detect_expr(pl.lit(sample)) == name).to_series().fill_null(False))
    plan = formats.fast_plan(state, own.head(formats.HINT_LINES)) if name else None
    if plan is None:
        state.hint = None
        return None
    return _run_blocks(inp, itertools.chain([first], blocks), plan, state, stats)


def _run_blocks(inp: sources.Input, blocks: Iterator[bytes], plan: formats.FastPlan, state: formats.ParseState,
                stats: SourceStats) -> Iterator[formats.Parsed]:
    def parse(block: bytes) -> pl.DataFrame:
        return plan.over(sources.block_lines(block)).collect(engine="streaming")

    carry: pl.DataFrame | None = None
    done = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        running: deque = deque(pool.submit(parse, b) for b in itertools.islice(blocks, 2))
        while running:
            rows = running.popleft().result()
            nxt = next(blocks, None)
            if nxt is not None:
                running.append(pool.submit(parse, nxt))
            rows = _cut_long(rows.with_columns(
                pl.int_range(done + 1, done + 1 + rows.height, dtype=pl.UInt32).alias("line")), stats)
            stats.lines_read += rows.height
            done += rows.height
            parsed = formats.parse_rows(rows, state, source=inp.path, final=not running, carry=carry)
            carry = parsed.carry
            yield parsed


def _cut_long(rows: pl.DataFrame, stats: SourceStats) -> pl.DataFrame:
    """Cut lines over MAX_LINE_BYTES as read_chunks() does (and count them); they are parsed again."""
    long = rows.get_column("raw").str.len_bytes() > sources.MAX_LINE_BYTES
    if not long.any():
        return rows
    idx = long.arg_true()
    cut = pl.Series([sources.cut_line(v) for v in rows.get_column("raw").gather(idx).to_list()], dtype=pl.String)
    stats.lines_truncated += len(idx)
    return rows.with_columns(rows.get_column("raw").scatter(idx, cut), rows.get_column("text").scatter(idx, cut),
                             rows.get_column("format").scatter(idx, pl.Series([None] * len(idx), dtype=pl.String)))


def _has_naive(state: formats.ParseState) -> bool:
    """Whether any family this source used writes timestamps without a zone."""
    return any(getattr(formats.BY_NAME.get(f), "NAIVE_TIME", False) for f in state.counts)


def _note_time_range(stats: SourceStats, events: pl.DataFrame) -> None:
    lo, hi = events.select(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")).row(0)
    if lo is not None:
        lo_s, hi_s = lo.isoformat(), hi.isoformat()
        stats.first_ts = lo_s if stats.first_ts is None or lo_s < stats.first_ts else stats.first_ts
        stats.last_ts = hi_s if stats.last_ts is None or hi_s > stats.last_ts else stats.last_ts
