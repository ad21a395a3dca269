"""sources -> formats -> classify, as a stream of event batches, with the line accounting.

read_events() is what every command runs first: it reads each input chunk by chunk (bounded
memory), parses and classifies each chunk as one vectorised batch, and keeps per-source
accounting (model.SourceStats) so that nothing is dropped without being counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
        carry: pl.DataFrame | None = None
        for chunk in sources.read_chunks(inp, chunk_bytes=chunk_bytes, on_problem=problem):
            stats.lines_read += len(chunk.lines)
            stats.lines_truncated += chunk.truncated
            df = pl.DataFrame({"raw": chunk.lines,
                               "line": pl.int_range(chunk.first_line, chunk.first_line + len(chunk.lines),
                                                    dtype=pl.UInt32, eager=True)})
            if carry is not None and carry.height:
                df = pl.concat([carry, df])
            final = chunk.final or chunk.flushed
            parsed = formats.parse_lines(df, state, source=inp.path, final=final)
            carry = parsed.carry
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


def _has_naive(state: formats.ParseState) -> bool:
    """Whether any family this source used writes timestamps without a zone."""
    return any(getattr(formats.BY_NAME.get(f), "NAIVE_TIME", False) for f in state.counts)


def _note_time_range(stats: SourceStats, events: pl.DataFrame) -> None:
    lo, hi = events.select(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi")).row(0)
    if lo is not None:
        lo_s, hi_s = lo.isoformat(), hi.isoformat()
        stats.first_ts = lo_s if stats.first_ts is None or lo_s < stats.first_ts else stats.first_ts
        stats.last_ts = hi_s if stats.last_ts is None or hi_s > stats.last_ts else stats.last_ts
