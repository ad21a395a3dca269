"""Format detection and parsing: physical lines -> an event batch (model.EVENT_SCHEMA).

PARSERS lists the families in detection order, more specific before more general; `plain` is
last and takes whatever no other family recognised. Detection is per line: each source keeps the
family most of its lines showed (its hint), lines the hint does not match are tried against every
family, so a `kubectl logs --all-containers` stream mixing formats is read line by line.

The steps for one chunk (parse_lines), all vectorised over the chunk:
  1. wrappers.unwrap: CRI / docker json / kubectl timestamps / journald -> the inner line
  2. detect each line's family (the source's hint first, the rest only where it fails);
     blank lines are skipped (and counted)
  3. each family's parse() fills the hot columns on its own rows
  4. continuation lines (indented, stack frames, Postgres DETAIL ...) join the event before
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import polars as pl

from logtriage.formats import (
    app_json,
    app_text,
    envoy,
    envoy_access,
    envoy_json,
    haproxy,
    k8s_events,
    logfmt,
    nginx_access,
    nginx_error,
    pgbouncer,
    plain,
    postgres,
    postgres_csv,
    postgres_json,
    redis,
    syslog,
    wrappers,
)
from logtriage.model import EVENT_SCHEMA, PARSED_COLUMNS, UTC_DATETIME

PARSERS: tuple[ModuleType, ...] = (
    # proxies
    envoy_access,     # Envoy / Istio default text access log
    envoy_json,       # Envoy / Istio JSON access log (before app_json: it is JSON too)
    envoy,            # Envoy component log [ts][thread][level][component]
    nginx_access,
    nginx_error,
    haproxy,
    # databases and caches
    postgres_json,    # jsonlog and CloudNativePG records (before app_json)
    postgres_csv,
    pgbouncer,        # before postgres: its lines quote server messages such as "FATAL: ..."
    postgres,
    redis,
    # system and orchestrator
    k8s_events,       # kubectl get/describe events
    syslog,           # RFC 3164 / journald-style "host prog[pid]: msg", kernel, supervisors
    # applications
    app_json,
    logfmt,
    app_text,         # plain text with timestamp and level (python logging, log4j, klog, hclog ...)
    plain,            # the fallback, always last
)

BY_NAME: dict[str, ModuleType] = {p.NAME: p for p in PARSERS}

# How many lines of a source decide its hint (the family tried first on its lines).
HINT_LINES = 200

# Lines that continue the event before them, whatever the format: indented lines, stack traces.
_CONTINUATION = (
    r"^(?:[ \t]+\S"                                     # indented: stack frames, statement text
    r"|Traceback \(most recent call last\)"             # Python
    r"|During handling of the above exception"
    r"|The above exception was the direct cause"
    r"|\(Background on this error at: "                 # SQLAlchemy's closing line
    r"|Caused by: |Suppressed: "                        # Java
    r"|\.\.\. \d+ (?:more|common frames omitted)"
    r"|goroutine \d+ \[[^\]]+\]:$|created by \S"       # Go panic dump
    r"|\[stacktrace\]$|\[previous exception\] |#\d+ \S|\"\}\s*$"   # PHP / Laravel
    r"|\}$|\]$|\] ?\}$"                                 # the end of a pretty-printed JSON value
    r"|\"(?:[^\"\\]|\\.)*\"\s*(?:[:,\]\}]|$)"           # a pretty-printed JSON member or array item
    r")"
)
# After a Python traceback's frames: "psycopg2.OperationalError: ..." ends it.
_EXCEPTION_LINE = (r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault|Violation|Timeout)"
                   r"|[a-z_]\w*(?:\.\w+)+)\b(?::|$)")
# A Go frame's function line is not indented; the TAB-indented file:line after it gives it away.
_GO_FILE_LINE = r"^\s+\S+\.go:\d+"
# Wrappers whose rows are whole records: an undetected row there is its own event.
_RECORD_WRAPPERS = ("journald", "gcp")
# Families whose own lines may open with an RFC 3339 time in kubectl's style (supervisor lines,
# python/structlog isoformat): only they may claim a line whose "kubectl prefix" was its own time.
# (postgres' signature would take "<time> WARNING: ..." from any program.)
_OWN_RFC3339 = ("syslog", "app_text", "logfmt")
# Envelope families and the stricter families earlier in PARSERS whose lines they also match: a
# source hinted as the envelope still gives those lines to the stricter family, as detection in
# PARSERS order would (so a line reads the same alone, in its file, or in a mixed stream).
_SPECIFIC_SHAPES = {
    "app_json": ("envoy_json", "postgres_json"),
    "syslog": ("haproxy", "postgres", "pgbouncer", "redis"),
}
# Families whose records may span lines inside a quoted field (csvlog), and families whose
# unprefixed lines continue the event before (postgres statement text, python messages).
_QUOTED = tuple(p.NAME for p in PARSERS if getattr(p, "QUOTED_MULTILINE", False))
_JOINERS = tuple(p.NAME for p in PARSERS if getattr(p, "JOIN_UNDETECTED", False))
# The family an undetected record of a wrapper is read as (journald is the system log).
_WRAPPER_FAMILY = {"journald": "syslog"}


def names() -> list[str]:
    return [p.NAME for p in PARSERS]


def detect_expr(text: pl.Expr, order: tuple[ModuleType, ...] = PARSERS) -> pl.Expr:
    """The name of the first family in `order` whose SIGNATURE the line matches (null if none)."""
    expr = None
    for parser in order:
        if parser is plain:
            continue
        cond = text.str.contains(parser.SIGNATURE)
        expr = pl.when(cond).then(pl.lit(parser.NAME)) if expr is None else expr.when(cond).then(
            pl.lit(parser.NAME))
    return expr.otherwise(pl.lit(None, dtype=pl.String)) if expr is not None else pl.lit(None, pl.String)


def detect_lines(lines: list[str]) -> dict[str, int]:
    """Count how many of `lines` each family recognises (after unwrapping); for `formats detect`."""
    df = wrappers.unwrap(pl.DataFrame({"raw": pl.Series(lines, dtype=pl.String)}))
    df = _detect(df, None)
    counts = (df.filter(pl.col("text").str.strip_chars() != "")
              .select(pl.coalesce(pl.col("format"), pl.col("wrapper").replace_strict(
                  _WRAPPER_FAMILY, default=None, return_dtype=pl.String), pl.lit("plain")).alias("f"))
              .group_by("f").len())
    return dict(zip(counts["f"].to_list(), counts["len"].to_list(), strict=True))


def _hint_takes(hint: str) -> pl.Expr:
    """True on the lines (column text) a source hinted as `hint` gives to that family.

    Its SIGNATURE matches, and for an envelope family (JSON, syslog) no stricter family before
    it knows the line.
    """
    text = pl.col("text")
    takes = text.str.contains(BY_NAME[hint].SIGNATURE)
    for inner in _SPECIFIC_SHAPES.get(hint, ()):
        takes = takes & ~text.str.contains(BY_NAME[inner].SIGNATURE)
    return takes


def _detect(df: pl.DataFrame, hint: str | None) -> pl.DataFrame:
    """Add `format`: the hint where its SIGNATURE matches, else the first family that does (or null).

    Only the lines the hint does not take are tried against every family, so a single-format
    source costs one regex pass. A kubectl/compose time prefix that hid the line's own format is
    put back (`_outer`) when the remainder is no family but the whole line is.
    """
    n = df.height
    if hint:
        hit = df.select(_hint_takes(hint).fill_null(False)).to_series()
        fmt = pl.select(pl.when(pl.lit(hit)).then(pl.lit(hint)).otherwise(pl.lit(None, pl.String))).to_series()
        miss = (~hit).arg_true()
        if len(miss):
            found = df[miss].select(detect_expr(pl.col("text"))).to_series()
            fmt = fmt.scatter(miss, found)
    else:
        fmt = df.select(detect_expr(pl.col("text"))).to_series()
    df = df.with_columns(fmt.alias("format") if n else pl.lit(None, pl.String).alias("format"))
    if "_outer" in df.columns:
        retry = (pl.col("format").is_null() & pl.col("_outer").is_not_null())
        idx = df.select(retry.arg_true()).to_series()
        if len(idx):
            again = df[idx].select(detect_expr(pl.col("_outer")).alias("f")).to_series()
            again = again.replace_strict({f: f for f in _OWN_RFC3339}, default=None, return_dtype=pl.String)
            take = idx.filter(again.is_not_null())
            if len(take):
                outer = df[take].get_column("_outer")
                df = df.with_columns(
                    df.get_column("format").scatter(take, again.drop_nulls()),
                    df.get_column("text").scatter(take, outer),
                    df.get_column("wrap_ts").scatter(take, pl.Series([None] * len(take), dtype=df.schema["wrap_ts"])),
                )
        df = df.drop("_outer")
    return df


def _quoted_continuation(df: pl.DataFrame, families: list[str]) -> pl.Series:
    """True on lines inside a double-quoted field a record of `families` opened (csvlog statements)."""
    start = pl.col("format").is_in(families).fill_null(False)
    odd = (pl.col("text").str.count_matches('"', literal=True) % 2 == 1).cast(pl.UInt32)
    steps = df.select(start.alias("start"), start.cum_sum().alias("seg"), odd.alias("odd"))
    steps = steps.with_columns((pl.col("odd").cum_sum().over("seg") % 2 == 1).alias("open_after"))
    steps = steps.with_columns(pl.col("open_after").shift(1).over("seg").fill_null(False).alias("open_before"))
    steps = steps.with_columns(((~pl.col("open_before") & ~pl.col("start")).cast(pl.UInt32).cum_sum().over("seg")
                                > 0).alias("closed"))
    return steps.select((pl.col("seg") > 0) & ~pl.col("start") & pl.col("open_before") & ~pl.col("closed")
                        ).to_series()


@dataclass
class ParseState:
    """What parse_lines remembers about one source between chunks."""

    hint: str | None = None          # the family most of the first lines showed
    forced: str | None = None        # --as / path:format
    component: str | None = None     # from the directory the file sits in
    started: bool = False            # an event has begun in this source (continuations may attach)
    counts: dict[str, int] = field(default_factory=dict)
    columns: frozenset[str] | None = None   # the parsed columns to fill (None: all; the rest are left out)


@dataclass
class Parsed:
    """One chunk's events plus its line accounting."""

    events: pl.DataFrame
    lines_parsed: int
    lines_unparsed: int
    lines_skipped: int
    carry: pl.DataFrame | None       # rows of the last, maybe unfinished, event (raw, line)
    head: pl.DataFrame | None = None  # parse_rows(head=True): leading rows that continue an earlier event
    n_events: int | None = None      # events before a finishing step (classify, filter) ...
    ts_range: tuple | None = None    # ... and their first and last time stamp (pipeline)


def _empty_carry() -> pl.DataFrame:
    return pl.DataFrame(schema={"raw": pl.String, "line": pl.UInt32})


def parse_lines(df: pl.DataFrame, state: ParseState, *, source: str, final: bool) -> Parsed:
    """Parse a chunk (columns raw: String, line: UInt32) into events.

    Unless `final`, the last event is held back as `carry` (its continuation may be in the next
    chunk); the caller prepends it to the next chunk of the same source. Every physical line is
    counted once as parsed, unparsed or skipped (`_phys` when a wrapper joined partial records).
    """
    if df.height == 0:
        return Parsed(pl.DataFrame(schema=EVENT_SCHEMA), 0, 0, 0, _empty_carry() if not final else None)
    physical = df.select("raw", "line")
    df = wrappers.unwrap(df)
    if "_phys" not in df.columns:
        df = df.with_columns(pl.lit(1, dtype=pl.UInt32).alias("_phys"))
    if state.hint is None and not state.forced:
        learn_hint(df.get_column("text"), state)
    rows = _prepare(df, state)
    return _assemble(rows, state, source=source, final=final,
                     carry_of=lambda first_line: physical.filter(pl.col("line") >= first_line))


def learn_hint(text: pl.Series, state: ParseState) -> None:
    """Set the source's hint: the family most of its first HINT_LINES non-blank lines show."""
    sample = text.filter(text.str.strip_chars() != "").head(HINT_LINES)
    fams = pl.select(detect_expr(pl.lit(sample)).alias("f")).get_column("f").drop_nulls() if len(sample) else []
    if len(fams):
        state.hint = fams.value_counts(sort=True).row(0)[0]


def _prepare(df: pl.DataFrame, state: ParseState) -> pl.DataFrame:
    """Detect each line's family and parse the detected lines (unwrapped rows -> parsed rows).

    Adds `format` (null on lines no family took and on lines inside a quoted record), `_blank`,
    `_cont` (the family's own continuation lines, quoted-record lines) and the parsed columns.
    """
    text = pl.col("text")
    if state.forced:
        df = df.with_columns(pl.lit(state.forced).alias("format")).drop("_outer", strict=False)
    else:
        df = _detect(df, state.hint)
    df = df.with_columns((text.str.strip_chars() == "").alias("_blank"))
    fmt = pl.col("format")
    if _QUOTED and bool(df.select(fmt.is_in(_QUOTED).any()).item()):
        df = df.with_columns(_quoted_continuation(df, list(_QUOTED)).alias("_cont"))
        df = df.with_columns(pl.when(pl.col("_cont")).then(None).otherwise(fmt).alias("format"))
    else:
        df = df.with_columns(pl.lit(False).alias("_cont"))
    df = df.with_columns(pl.when(pl.col("_blank")).then(None).otherwise(fmt).alias("format"))
    return _parse_families(df, state.columns)


def _wanted(cols: dict[str, pl.Expr], columns: frozenset[str] | None) -> dict[str, pl.Expr]:
    """The parsed columns among `cols` a run fills (ParseState.columns), and the shared "_" steps."""
    return cols if columns is None else {k: e for k, e in cols.items() if k.startswith("_") or k in columns}


def _parse_families(df: pl.DataFrame, columns: frozenset[str] | None = None) -> pl.DataFrame:
    """Fill the parsed columns of each row whose `format` is set, with its family's parse()."""
    present = df.get_column("format").unique().drop_nulls().to_list()
    if not present:
        return df
    text = pl.col("text")
    parts = []
    df = df.with_row_index("_row")
    whole = len(present) == 1 and df.get_column("format").null_count() == 0
    for name in present:
        parser = BY_NAME[name]
        sub = df if whole else df.filter(pl.col("format") == name)
        exprs = [e.alias(k) for k, e in _wanted(parser.parse(text), columns).items()]
        cont = getattr(parser, "continuation", None)
        if cont is not None:
            exprs.append((pl.col("_cont") | cont(text).fill_null(False)).alias("_cont"))
        parts.append(sub.with_columns(exprs))
    if not whole:
        rest = df.filter(pl.col("format").is_null())
        if rest.height:
            parts.append(rest)
    out = pl.concat(parts, how="diagonal_relaxed").sort("_row") if len(parts) > 1 else parts[0]
    return out.drop("_row")


@dataclass
class FastPlan:
    """How the block reader parses a single-format file: the family's expressions, built once.

    `shared` are steps (in order) the other expressions read as pl.col("_..."); `ok` is False on lines
    that do not fit (they are detected and parsed the general way by parse_rows()).
    """

    name: str
    shared: dict[str, pl.Expr]
    cols: dict[str, pl.Expr]
    ok: pl.Expr
    cont: pl.Expr
    ok_unicode: pl.Expr | None = None   # what else must hold for a line to fit in a block not all ASCII

    def over(self, lines: pl.LazyFrame, *, ascii: bool = False) -> pl.LazyFrame:
        """The lazy, elementwise part of parsing `lines` (column raw) as rows for parse_rows().

        `ascii`: the lines are known to be all ASCII. `_blank` is left False here: only lines
        that do not fit can be blank, and parse_rows() looks at those alone.
        """
        ok = self.ok if ascii or self.ok_unicode is None else self.ok & self.ok_unicode
        lines = wrappers.no_wrapper(lines)
        for name, step in self.shared.items():    # in order: a step may read the ones before it
            lines = lines.with_columns(step.alias(name))
        return lines.select(
            "raw", "text",
            pl.when(ok).then(pl.lit(self.name)).otherwise(pl.lit(None, dtype=pl.String)).alias("format"),
            pl.lit(False).alias("_blank"),
            (ok & self.cont.fill_null(False)).alias("_cont"),
            pl.lit(1, dtype=pl.UInt32).alias("_phys"),
            "wrap_ts", "container", "wrap_level", "wrapper",
            *[e.alias(k) for k, e in self.cols.items()],
        )


def fast_plan(state: ParseState, sample: pl.Series) -> FastPlan | None:
    """The plan for a file whose first lines (`sample`, of its family) show one family, no wrapper.

    Every line is tried as that family only: its fast_parse() when it has one, else SIGNATURE +
    parse(). None when the source needs the general reader (no family, quoted multi-line records).
    """
    name = state.forced or state.hint
    parser = BY_NAME.get(name) if name else None
    if parser is None or parser is plain or getattr(parser, "QUOTED_MULTILINE", False):
        return None
    text = pl.col("text")
    fast = getattr(parser, "fast_parse", None)
    cols = fast(text, sample) if fast is not None and not state.forced else None
    unicode = None
    if cols is not None:
        ok, cont, unicode = cols.pop("_ok"), cols.pop("_cont", pl.lit(False)), cols.pop("_ok_unicode", None)
    else:
        cols = dict(parser.parse(text))
        ok = pl.lit(True) if state.forced else _hint_takes(name)
        own = getattr(parser, "continuation", None)
        cont = own(text) if own is not None else pl.lit(False)
    shared = {k: cols.pop(k) for k in [k for k in cols if k.startswith("_")]}
    return FastPlan(name, shared, _wanted(cols, state.columns), ok, cont, unicode)


def parse_rows(rows: pl.DataFrame, state: ParseState, *, source: str, final: bool,
               carry: pl.DataFrame | None, head: bool = False) -> Parsed:
    """A batch of fast_plan() rows -> events; the lines it did not fit are detected and parsed here.

    `rows` are FastPlan.over() rows plus `line`; `carry` is the previous batch's Parsed.carry
    (rows of its last event, as the plan gave them). With `head`, the rows before the batch's
    first event (they continue one that began earlier) are returned as Parsed.head, not as events:
    a batch parsed before the one it follows is done can be joined to it by finish_rows().
    """
    unfit = rows.select(pl.col("format").is_null().arg_true()).to_series()
    miss, outer = unfit, None
    if len(unfit):
        rows, outer = _unwrap_unfit(rows, unfit)
        text = rows.get_column("text").gather(unfit)
        blank = text.str.strip_chars() == ""
        tabbed = pl.Series([_tab_continued(t) for t in text.to_list()], dtype=pl.Boolean)
        rows = rows.with_columns(rows.get_column("_blank").scatter(unfit, blank),
                                 rows.get_column("_cont").scatter(unfit, tabbed))
        keep = ~blank & ~tabbed
        miss, outer = unfit.filter(keep), outer.filter(keep) if outer is not None else None
    if len(miss):
        lines = rows[miss].select("raw", "line", "text", "_phys", "wrap_ts", "container", "wrap_level", "wrapper")
        fixed = _prepare(lines.with_columns(outer) if outer is not None else lines, state)
        # what the plan read on these lines does not hold: only what their own family reads
        fixed = fixed.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in rows.schema.items() if c not in fixed.columns)
        rows = _put_rows(rows, miss, fixed)
    if carry is not None and carry.height:
        rows = pl.concat([carry, rows], how="diagonal_relaxed")
    if rows.height == 0:
        return Parsed(pl.DataFrame(schema=EVENT_SCHEMA), 0, 0, 0, None if final else rows)
    return _assemble(rows, state, source=source, final=final, carry_of=None, head=head)


def _unwrap_unfit(rows: pl.DataFrame, unfit: pl.Series) -> tuple[pl.DataFrame, pl.Series | None]:
    """`rows` with the wrapped lines among `unfit` (positions) unwrapped, and their `_outer`.

    A plan reads a source its first lines showed unwrapped; wrapped lines further on (a container
    runtime's, kubectl's prefix) are not its family's and are unwrapped here, to be detected as
    the general way detects them. Partial records (CRI "P") would change the rows: not done then.
    """
    raw = rows.select("raw", "line")[unfit]
    if not wrappers.has_wrapper(raw):
        return rows, None
    wrapped = wrappers.unwrap(raw)
    if "_phys" in wrapped.columns:      # partial records were joined: the rows no longer match
        return rows, None
    cols = ("text", "wrap_ts", "container", "wrap_level", "wrapper")
    rows = rows.with_columns(rows.get_column(c).scatter(unfit, wrapped.get_column(c).cast(rows.schema[c])) for c in cols)
    return rows, wrapped.get_column("_outer") if "_outer" in wrapped.columns else None


def _tab_continued(line: str) -> bool:
    """A TAB-indented line no family's SIGNATURE can take: it continues the event before, as
    _CONTINUATION would decide after detection (PostgreSQL statement text, Java frames).

    Only sure cases: an indented JSON object ("{") or a character Python and Rust disagree is
    white space leaves the line to detection. tests/test_formats.py holds the SIGNATUREs to it.
    """
    if not line.startswith("\t"):
        return False
    first = line.lstrip(" \t")[:1]
    return bool(first) and first != "{" and not first.isspace()


def finish_rows(rows: pl.DataFrame, state: ParseState, *, source: str) -> Parsed:
    """Events of rows parse_rows() already parsed: a Parsed.carry, or a carry with a later Parsed.head."""
    if rows.height == 0:
        return Parsed(pl.DataFrame(schema=EVENT_SCHEMA), 0, 0, 0, None)
    if rows.height == 1 and "text" in rows.columns:
        r = rows.row(0, named=True)
        if r["format"] and not r["_cont"] and not r["_blank"] and r["wrapper"] is None:
            return _one_event(rows, state, source=source)
    return _assemble(rows, state, source=source, final=True, carry_of=None)


def _one_event(rows: pl.DataFrame, state: ParseState, *, source: str) -> Parsed:
    """finish_rows() of one line that is an event by itself (most block edges): _assemble's result
    without its passes over the rows."""
    ev = rows.with_columns(pl.col("text").alias("raw"), pl.col("_phys").alias("_nlines"))
    ev = ev.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in _event_schema(state.columns).items()
                         if c not in ev.columns)
    state.started = True
    return _as_parsed(ev, state, source=source, skipped=0, carry=None, head=None)


def _put_rows(df: pl.DataFrame, idx: pl.Series, rows: pl.DataFrame) -> pl.DataFrame:
    """`df` with its rows at positions `idx` replaced by `rows` (columns `df` lacks are added)."""
    cols = []
    for name, dtype in rows.schema.items():
        base = df.get_column(name) if name in df.columns else pl.repeat(None, df.height, dtype=dtype, eager=True).alias(name)
        cols.append(base.scatter(idx, rows.get_column(name).cast(base.dtype)))
    return df.with_columns(cols)


def _generic_continuation(df: pl.DataFrame, undetected: pl.Series) -> pl.Series:
    """True on the `undetected` rows (positions) that continue the event before them.

    A stack frame, an exception line after indented frames, a Go frame before its file:line, or
    any unrecognised line after a family that writes unprefixed continuation lines (JOIN_UNDETECTED).
    Computed on those rows and their neighbours only: a large file has few of them.
    """
    n = df.height
    text = df.get_column("text")
    here = text.gather(undetected)
    has_prev = undetected > 0
    prev_i = (undetected.cast(pl.Int64) - 1).clip(0).cast(pl.UInt32)
    next_i = (undetected.cast(pl.Int64) + 1).clip(upper_bound=n - 1).cast(pl.UInt32)
    prev_text = pl.select(pl.when(pl.lit(has_prev)).then(pl.lit(text.gather(prev_i)))).to_series()
    next_text = pl.select(pl.when(pl.lit(undetected < n - 1)).then(pl.lit(text.gather(next_i)))).to_series()
    container = df.get_column("container")
    prev_container = pl.select(pl.when(pl.lit(has_prev)).then(pl.lit(container.gather(prev_i)))).to_series()
    fmt = df.get_column("format")
    if container.null_count() == n:
        before = fmt.forward_fill().gather(undetected)
    else:
        before = df.select(pl.col("format").forward_fill().over("container")).to_series().gather(undetected)
    rows = pl.DataFrame({"here": here, "prev": prev_text, "next": next_text, "c": container.gather(undetected),
                         "pc": prev_container, "before": before,
                         "wrapper": df.get_column("wrapper").gather(undetected)})
    h = pl.col("here")
    # lines from two containers of one compose stream never continue each other
    generic = pl.col("c").eq_missing(pl.col("pc")) & (
        h.str.contains(_CONTINUATION)
        | (h.str.contains(_EXCEPTION_LINE) & pl.col("prev").str.contains(r"^[ \t]").fill_null(False))
        | pl.col("next").str.contains(_GO_FILE_LINE).fill_null(False))
    # the family of the last detected line before: postgres statement text, python messages
    in_record = pl.col("wrapper").is_in(_RECORD_WRAPPERS).fill_null(False)
    generic = generic | (pl.col("before").is_in(_JOINERS).fill_null(False) & ~in_record)
    return rows.select(generic.fill_null(False)).to_series()


def _assemble(df: pl.DataFrame, state: ParseState, *, source: str, final: bool,
              carry_of: Callable[[int], pl.DataFrame] | None, head: bool = False) -> Parsed:
    """Parsed rows -> events: continuation lines join the event before, the rest start one.

    `carry_of(first_line)` gives the rows to hold back when the last event may go on in the
    next chunk (the physical lines from the slow reader); without it, the parsed rows are held.
    Costs a few passes over the batch; only rows no family took and multi-line events get more.
    """
    lead, lead_skipped = None, 0
    if head:
        # rows before the first line a family took may continue an event of the batch before:
        # what they are is decided with it (finish_rows), where the lines before them are known
        known = df.select((pl.col("format").is_not_null() & ~pl.col("_cont") & ~pl.col("_blank"))
                          .arg_true().first()).item()
        n_lead = df.height if known is None else known
        if n_lead:
            lead = df.slice(0, n_lead)
            blank = lead.get_column("_blank")
            lead_skipped = int(lead.filter(blank).get_column("_phys").sum()) if blank.any() else 0
            lead, df = lead.filter(~blank), df.slice(n_lead)
        if df.height == 0:
            return Parsed(pl.DataFrame(schema=EVENT_SCHEMA), 0, 0, lead_skipped, _empty_carry(), lead)
    undetected = df.select((pl.col("format").is_null() & ~pl.col("_blank") & ~pl.col("_cont")).arg_true()).to_series()
    if len(undetected):
        # lines no family took: a continuation, or a line of its own
        cont = df.get_column("_cont").scatter(undetected, _generic_continuation(df, undetected))
        df = df.with_columns(cont)
        lone = undetected.filter(~cont.gather(undetected))
        if len(lone):
            # the wrapper's family (journald: syslog) or plain
            alone = df[lone].with_columns(pl.coalesce(pl.col("wrapper").replace_strict(
                _WRAPPER_FAMILY, default=None, return_dtype=pl.String), pl.lit("plain")).alias("format"))
            df = _put_rows(df, lone, _parse_families(alone, state.columns))
    if not state.started:
        # a source's first lines cannot continue anything: the first non-blank one starts an event
        first = df.select((~pl.col("_blank")).arg_max()).item()
        if not df.item(first, "_blank"):
            at = pl.Series([first], dtype=pl.UInt32)
            row = df[at].with_columns(pl.lit(False).alias("_cont"))
            if row.item(0, "format") is None:   # a lone continuation: read it as its own line
                row = _parse_families(row.with_columns(pl.lit("plain").alias("format")), state.columns)
            df = _put_rows(df, at, row)
    pre = df
    # columns no parser filled are added to the events (after they are cut out), but a wrapper's
    # time and level fill the rows' own first
    if df.get_column("wrapper").null_count() < df.height:
        df = df.with_columns(pl.lit(None, dtype=EVENT_SCHEMA[c]).alias(c) for c in ("ts", "level") if c not in df.columns)
        df = df.with_columns(pl.coalesce(pl.col("ts"), pl.col("wrap_ts")).alias("ts"),
                             pl.coalesce(pl.col("level"), pl.col("wrap_level")).alias("level"))
    # an event's raw text is the line as the program wrote it (wrapper removed); _eid numbers events
    starts = ~pl.col("_cont") & ~pl.col("_blank")
    df = df.with_columns(pl.col("text").alias("raw"), starts.cum_sum().alias("_eid"))
    eid = df.get_column("_eid")
    last = eid[-1] if df.height else 0
    state.started = state.started or bool(last)

    carry = None
    if not final:
        if last:
            # the lines of the last event (as read: wrappers and partial records included)
            at = eid.search_sorted(last, side="left")
            carry = carry_of(df.item(at, "line")) if carry_of is not None else pre.slice(at)
            df = df.slice(0, at)
            eid = eid.slice(0, at)
        else:
            carry = _empty_carry()

    blank = df.get_column("_blank")
    skipped = int(df.filter(blank).get_column("_phys").sum()) if blank.any() else 0
    n_orphan = eid.search_sorted(1, side="left")      # rows before this batch's first event ...
    orphans = df.slice(0, n_orphan).filter(~pl.col("_blank"))   # ... continue one already emitted
    keep = [c for c in df.columns if c in EVENT_SCHEMA or c in ("_phys", "_eid", "container")]
    # (polars 2.1: the streaming engine filters a wide frame several times faster than the eager one)
    events = (df.lazy().filter(starts).select(*keep, pl.col("_phys").alias("_nlines"))
              .collect(engine="streaming"))
    schema = _event_schema(state.columns)
    missing = [pl.lit(None, dtype=dtype).alias(col) for col, dtype in schema.items() if col not in events.columns]
    if missing:
        events = events.with_columns(missing)
    body_cont = pl.col("_cont") & ~pl.col("_blank") & (pl.col("_eid") > 0)
    if events.height and bool(df.select(body_cont.any()).item()):
        # only the few events that span several lines are joined (in place: event i has _eid i + 1)
        multi_ids = df.select(pl.col("_eid").filter(body_cont).unique()).to_series()
        message = ["message"] if "message" in df.columns else []   # (scan --stats fills none)
        first_message = pl.col("message").first() if message else pl.lit(None, dtype=pl.String)
        body = df.select("_eid", "_blank", "raw", "_phys", *message)
        joined = (body.filter(pl.col("_eid").is_in(multi_ids.implode()) & ~pl.col("_blank"))
                  .group_by("_eid", maintain_order=True).agg(
                      pl.col("raw").str.join("\n"),
                      (first_message + pl.lit("\n") + pl.col("raw").slice(1).str.join("\n")).alias("message"),
                      pl.col("_phys").sum().alias("_nlines")))
        at = (joined.get_column("_eid") - 1).cast(pl.UInt32)
        events = events.with_columns([events.get_column(c).scatter(at, joined.get_column(c).cast(events.schema[c]))
                                      for c in ("raw", "message", "_nlines") if c in events.columns])
        for name in _QUOTED:
            # a quoted multi-line record reads right only whole: parse its joined text again
            redo = (pl.col("format") == name) & (pl.col("_nlines") > 1)
            if bool(events.select(redo.any()).item()):
                again = _wanted(BY_NAME[name].parse(pl.col("raw")), state.columns)
                events = events.with_columns([pl.when(redo).then(again[c]).otherwise(pl.col(c)).alias(c)
                                              for c in again if c in events.columns])
    if orphans.height:   # shown as their own plain events rather than lost
        events = pl.concat([orphans.with_columns(pl.lit("plain").alias("format"), pl.col("raw").alias("message"),
                                                 pl.col("_phys").alias("_nlines")),
                            events], how="diagonal_relaxed")

    return _as_parsed(events, state, source=source, skipped=skipped + lead_skipped, carry=carry, head=lead)


# the first and last instant of year 1 .. 9999 (a comparison: cheaper than .dt.year() on every event)
_PYTHON_YEARS = (pl.lit(_dt.datetime(1, 1, 1, tzinfo=_dt.UTC)).cast(UTC_DATETIME),
                 pl.lit(_dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=_dt.UTC)).cast(UTC_DATETIME))


@functools.cache
def _event_schema(columns: frozenset[str] | None) -> dict[str, pl.DataType]:
    """The columns of a run's event batches: EVENT_SCHEMA, less the parsed columns a run limited to
    `columns` (ParseState.columns) does not fill."""
    if columns is None:
        return EVENT_SCHEMA
    return {c: t for c, t in EVENT_SCHEMA.items() if c in columns or c == "component" or c not in PARSED_COLUMNS}


def _as_parsed(events: pl.DataFrame, state: ParseState, *, source: str, skipped: int,
               carry: pl.DataFrame | None, head: pl.DataFrame | None) -> Parsed:
    """Events (their rows, with `_nlines`) -> Parsed: source, component, the run's _event_schema()
    and the line accounting."""
    # a container the wrapper names (compose service, pod container) is more precise than the directory
    named = events.get_column("container").null_count() < events.height
    if state.component and not named:
        component = pl.lit(state.component, dtype=pl.String)
    else:
        component = pl.lit(state.component) if state.component else pl.col("component")
        if named:
            component = pl.coalesce(pl.col("container"), component)
        default_component = pl.col("format").replace_strict(
            {p.NAME: p.DEFAULT_COMPONENT for p in PARSERS}, default=None, return_dtype=pl.String)
        component = pl.coalesce(component, default_component, pl.lit("unknown"))
    # a stamp outside Python's years (an anonymised "01/Jan/0000") would break every later .row() or
    # .to_list() of the batch: such an event has no time rather than a run that stops (events only,
    # on every path here: assembled batches and the one-line block edges alike)
    events = events.with_columns(pl.lit(source).alias("source"), component.alias("component"),
                                 pl.when(pl.col("ts").cast(UTC_DATETIME).is_between(*_PYTHON_YEARS))
                                 .then(pl.col("ts")).alias("ts"))
    plain_lines, all_lines = events.select(
        pl.col("_nlines").filter(pl.col("format") == "plain").sum().alias("plain"),
        pl.col("_nlines").sum().alias("all")).row(0)
    fmt = events.get_column("format")
    one = fmt[0] if len(fmt) else None
    if one is not None and fmt.null_count() == 0 and bool((fmt == one).all()):   # one format: no hashing
        state.counts[one] = state.counts.get(one, 0) + len(fmt)
    else:
        for name, cnt in fmt.value_counts().iter_rows():
            state.counts[name] = state.counts.get(name, 0) + cnt
    return Parsed(
        events.select([pl.col(c).cast(t) for c, t in _event_schema(state.columns).items()]),
        lines_parsed=int(all_lines or 0) - int(plain_lines or 0),
        lines_unparsed=int(plain_lines or 0),
        lines_skipped=skipped,
        carry=carry,
        head=head,
    )


def fields_of(fmt: str, raw: str) -> dict:
    """Every field `fmt`'s parser knows for one event's raw text ({} when none)."""
    parser = BY_NAME.get(fmt)
    if parser is None:
        return {}
    try:
        return parser.fields(raw)
    except Exception:  # noqa: BLE001 - a field extractor's bug must not lose the event
        return {}
