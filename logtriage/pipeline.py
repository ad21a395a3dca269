"""sources -> formats -> classify, as a stream of event batches, with the line accounting.

read_events() is what every command runs first: it reads each input chunk by chunk (bounded
memory), parses and classifies each chunk as one vectorised batch, and keeps per-source
accounting (model.SourceStats) so that nothing is dropped without being counted.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from logtriage import formats, sources
from logtriage.formats.base import set_assumed_tz
from logtriage.model import SourceStats

# Blocks in flight in the block reader. A worker waits much of its time (for polars' two pools,
# for the GIL), so two workers kept a 2-core machine 1.4 cores busy: four make `scan --stats` on
# the benchmark corpus ~10 % faster for ~130 MB more memory (analyze: same time, +50 MB).
BLOCK_WORKERS = 4
# Whether the chunk reader parses a single-family stream by its family's plan (tests turn it off
# to hold the plans to the general way), and how many first lines decide.
PLAN_CHUNKS = True
PLAN_MIN_LINES = formats.HINT_LINES
_PLAN_SAMPLE_LINES = 1000


@dataclass
class Run:
    """What one read of the inputs produced besides the events: accounting and problems."""

    stats: dict[str, SourceStats] = field(default_factory=dict)
    problems: list[sources.Problem] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        keys = ("lines_read", "lines_parsed", "lines_unparsed", "lines_skipped", "lines_truncated", "events")
        return {k: sum(getattr(s, k) for s in self.stats.values()) for k in keys}


def read_events(args: list[str], *, run: Run, finish: Callable[[pl.DataFrame], Any] | None = None,
                tz: str = "UTC", force_format: str | None = None, chunk_bytes: int = sources.CHUNK_BYTES,
                on_problem: Callable[[sources.Problem], None] | None = None,
                columns: frozenset[str] | None = None) -> Iterator[pl.DataFrame]:
    """Yield event batches (model.EVENT_SCHEMA) for the inputs in `args`, or what `finish` makes of each.

    `finish` (classify; render; digest) runs on the block reader's worker threads, BLOCK_WORKERS
    batches at once, so it must not change shared state; batches still arrive in input order. The
    accounting counts events before it. Batches with no event are not yielded.
    `columns` limits the parsed columns filled (model.PARSED_COLUMNS), as `scan --stats` does with
    model.HOT_COLUMNS: the batches then carry only those of the parsed columns (and component).
    """
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
                                   component=sources.component_from_path(inp), columns=columns)
        batches = _native_batches(inp, state, stats, problem, finish) if sources.native_ok(inp) else None
        if batches is None:   # (the block reader finishes on its threads)
            batches = (_finished(b, finish) for b in _chunk_batches(inp, state, stats, problem, chunk_bytes))
        for parsed in batches:
            stats.lines_parsed += parsed.lines_parsed
            stats.lines_unparsed += parsed.lines_unparsed
            stats.lines_skipped += parsed.lines_skipped
            if not parsed.n_events:
                continue
            stats.events += parsed.n_events
            _note_time_range(stats, *parsed.ts_range)
            yield parsed.events
        stats.formats = dict(state.counts)
        if any(stats.formats.get(f) for f in stats.formats if f != "plain"):
            stats.tz_assumed = tz if _has_naive(state) else None


def _chunk_batches(inp: sources.Input, state: formats.ParseState, stats: SourceStats,
                   problem: Callable[[sources.Problem], None], chunk_bytes: int) -> Iterator[formats.Parsed]:
    """The general reader: any input (pipes, gzip, small files) in chunks of physical lines.

    Once a chunk of PLAN_MIN_LINES lines or more shows one family and no wrapper, chunks are parsed
    by that family's plan (as the block reader parses a file); a chunk holding a wrapped line is
    read the general way, and a chunk mostly of another family takes that family's plan. The last
    event's lines wait for the next chunk either way: as parsed rows after the plan, as physical
    lines after the general way.
    """
    carry: pl.DataFrame | None = None      # the general way's: physical lines (raw, line)
    rows: pl.DataFrame | None = None       # the plan's: parsed rows of the last event
    plan: formats.FastPlan | None = None
    decided = False
    for chunk in sources.read_chunks(inp, chunk_bytes=chunk_bytes, on_problem=problem):
        stats.lines_read += len(chunk.lines)
        stats.lines_truncated += chunk.truncated
        df = pl.DataFrame({"raw": chunk.lines,
                           "line": pl.int_range(chunk.first_line, chunk.first_line + len(chunk.lines),
                                                dtype=pl.UInt32, eager=True)})
        final = chunk.final or chunk.flushed
        if not decided and PLAN_CHUNKS and (len(chunk.lines) >= PLAN_MIN_LINES or chunk.final):
            decided = True
            plan = _plan_for(df.get_column("raw").head(_PLAN_SAMPLE_LINES), state)
        planned = _plan_rows(plan, df) if plan is not None and not formats.wrappers.has_wrapper(df) else None
        if planned is not None and 2 * planned.get_column("format").null_count() > planned.height:
            # most lines are not the plan's family: the stream went on with another one
            plan = _plan_for(df.get_column("raw").head(_PLAN_SAMPLE_LINES), state)
            planned = _plan_rows(plan, df) if plan is not None else None
        if planned is not None:
            if carry is not None and carry.height:
                rows = _plan_rows(plan, carry)
            carry = None
            parsed = formats.parse_rows(planned, state, source=inp.path, final=final, carry=rows)
            rows = parsed.carry
        else:
            if rows is not None and rows.height:
                carry = rows.select("raw", "line")
            rows = None
            if carry is not None and carry.height:
                df = pl.concat([carry, df])
            parsed = formats.parse_lines(df, state, source=inp.path, final=final)
            carry = parsed.carry
        yield parsed


def _plan_rows(plan: formats.FastPlan, lines: pl.DataFrame) -> pl.DataFrame:
    """`lines` (raw, line) parsed by `plan`: rows for formats.parse_rows()."""
    return plan.over(lines.lazy()).collect().with_columns(lines.get_column("line"))


def _plan_for(sample: pl.Series, state: formats.ParseState) -> formats.FastPlan | None:
    """The plan for a source whose first lines are `sample`: one family, no wrapper (else None).

    Sets the source's hint from them; with no plan the hint is cleared, for the general way to
    learn it again.
    """
    head = formats.wrappers.unwrap(pl.DataFrame({"raw": sample}))
    if head.get_column("wrapper").null_count() < head.height:
        return None
    if not state.forced:
        formats.learn_hint(sample, state)
    name = state.forced or state.hint
    plan = None
    if name:
        own = sample.filter(pl.select(formats.detect_expr(pl.lit(sample)) == name).to_series().fill_null(False))
        plan = formats.fast_plan(state, own.head(formats.HINT_LINES))
    if plan is None:
        state.hint = None
    return plan


def _native_batches(inp: sources.Input, state: formats.ParseState, stats: SourceStats,
                    problem: Callable[[sources.Problem], None],
                    finish: Callable[[pl.DataFrame], Any] | None) -> Iterator[formats.Parsed] | None:
    """A large single-format file, parsed block by block by polars plans (None: not such a file).

    The first lines decide: one family, no wrapper. BLOCK_WORKERS blocks are parsed, assembled and
    classified at a time on worker threads (polars releases the GIL), so memory stays at a few
    blocks whatever the file size.
    """
    blocks = sources.line_blocks(inp, on_problem=problem)
    first = next(blocks, None)
    if first is None:
        return None
    plan = _plan_for(sources.lines_from_bytes(first[:first.rfind(b"\n", 0, sources.SAMPLE_BYTES) + 1]), state)
    if plan is None:
        return None
    return _run_blocks(inp, itertools.chain([first], blocks), plan, state, stats, finish)


@dataclass
class _Piece:
    """One block, parsed (and classified) on a worker thread, as the reading thread takes it."""

    parsed: list[formats.Parsed]     # its events: one joined across the edge with the block before, its own
    lines: int                       # physical lines read
    truncated: int
    end_line: int                    # the source's line number of its last line
    carry: pl.DataFrame | None       # rows of the event still open at its end (source line numbers)
    started: bool                    # an event has begun in the source by its end
    counts: dict[str, int]           # events per format


def _run_blocks(inp: sources.Input, blocks: Iterator[bytes], plan: formats.FastPlan, state: formats.ParseState,
                stats: SourceStats, finish: Callable[[pl.DataFrame], Any] | None = None,
                ) -> Iterator[formats.Parsed]:
    """Parse `blocks` BLOCK_WORKERS at a time on worker threads; yield their events in file order.

    A worker parses, assembles and `finish`es (classifies) its block alone. Its first rows may
    continue the last event of the block before: when that block is done, the worker joins them
    (Parsed.head) to that block's open event (Parsed.carry) and numbers its lines. This thread
    only adds up the accounting.
    """
    def events(parsed: formats.Parsed, offset: int) -> formats.Parsed:
        if offset:
            parsed.events = parsed.events.with_columns(pl.col("line") + offset)
        return _finished(parsed, finish)

    def work(block: bytes, before: Future | None) -> _Piece:
        ascii = block.isascii()
        rows = plan.over(sources.block_lines(block, ascii=ascii), ascii=ascii).collect(engine="streaming")
        rows, truncated = _cut_long(rows)
        rows = rows.with_columns(pl.int_range(1, rows.height + 1, dtype=pl.UInt32).alias("line"))
        own = replace(state, started=before is not None or state.started, counts={})
        part = formats.parse_rows(rows, own, source=inp.path, final=False, carry=None, head=True)
        prev = before.result() if before is not None else None   # submitted first: running or done
        offset = prev.end_line if prev else 0
        started = prev.started if prev else state.started
        head = part.head.with_columns(pl.col("line") + offset) if part.head is not None else None
        parts = [x for x in (prev.carry if prev else None, head) if x is not None and x.height]
        edge = pl.concat(parts, how="diagonal_relaxed") if parts else None
        out = []
        has_start = part.carry is not None and part.carry.height > 0
        if has_start:
            if edge is not None:
                joint = replace(state, started=started, counts=own.counts)
                out.append(events(formats.finish_rows(edge, joint, source=inp.path), 0))
            carry = part.carry.with_columns(pl.col("line") + offset)
        else:
            carry = edge
        out.append(events(part, offset))
        return _Piece(out, rows.height, truncated, offset + rows.height, carry, started or has_start, own.counts)

    last: _Piece | None = None
    with ThreadPoolExecutor(max_workers=BLOCK_WORKERS) as pool:
        running: deque[Future] = deque()
        for block in itertools.islice(blocks, BLOCK_WORKERS):
            running.append(pool.submit(work, block, running[-1] if running else None))
        while running:
            piece = running.popleft().result()
            nxt = next(blocks, None)
            if nxt is not None:
                running.append(pool.submit(work, nxt, running[-1] if running else None))
            stats.lines_read += piece.lines
            stats.lines_truncated += piece.truncated
            for name, n in piece.counts.items():
                state.counts[name] = state.counts.get(name, 0) + n
            last = piece
            yield from piece.parsed
    if last is not None:     # the workers are done: the source's state is this thread's again
        state.started = last.started
        if last.carry is not None and last.carry.height:
            yield events(formats.finish_rows(last.carry, state, source=inp.path), 0)


def _cut_long(rows: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Cut lines over MAX_LINE_BYTES as read_chunks() does (they are parsed again); and how many."""
    long = rows.get_column("raw").str.len_bytes() > sources.MAX_LINE_BYTES
    if not long.any():
        return rows, 0
    idx = long.arg_true()
    cut = pl.Series([sources.cut_line(v) for v in rows.get_column("raw").gather(idx).to_list()], dtype=pl.String)
    return rows.with_columns(rows.get_column("raw").scatter(idx, cut), rows.get_column("text").scatter(idx, cut),
                             rows.get_column("format").scatter(idx, pl.Series([None] * len(idx), dtype=pl.String))
                             ), len(idx)


def _has_naive(state: formats.ParseState) -> bool:
    """Whether any family this source used writes timestamps without a zone."""
    return any(getattr(formats.BY_NAME.get(f), "NAIVE_TIME", False) for f in state.counts)


def _finished(parsed: formats.Parsed, finish: Callable[[pl.DataFrame], Any] | None) -> formats.Parsed:
    """`parsed` with its events counted and their time range noted, then `finish`ed (classified)."""
    ev = parsed.events
    parsed.n_events = ev.height
    if ev.height:
        parsed.ts_range = ev.select(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")).row(0)
        if finish is not None:
            parsed.events = finish(ev)
    return parsed


def _note_time_range(stats: SourceStats, lo, hi) -> None:
    if lo is not None:
        lo_s, hi_s = lo.isoformat(), hi.isoformat()
        stats.first_ts = lo_s if stats.first_ts is None or lo_s < stats.first_ts else stats.first_ts
        stats.last_ts = hi_s if stats.last_ts is None or hi_s > stats.last_ts else stats.last_ts
