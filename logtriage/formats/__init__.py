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
from logtriage.model import EVENT_SCHEMA

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


def _detect(df: pl.DataFrame, hint: str | None) -> pl.DataFrame:
    """Add `format`: the hint where its SIGNATURE matches, else the first family that does (or null).

    Only the lines the hint does not take are tried against every family, so a single-format
    source costs one regex pass. A kubectl/compose time prefix that hid the line's own format is
    put back (`_outer`) when the remainder is no family but the whole line is.
    """
    text = df.get_column("text")
    n = df.height
    if hint:
        hit = text.str.contains(BY_NAME[hint].SIGNATURE).fill_null(False)
        inner = [BY_NAME[f] for f in _SPECIFIC_SHAPES.get(hint, ()) if f in BY_NAME]
        if inner:
            # an envelope family (JSON, syslog) never takes a line a stricter family before it knows
            hit = hit & ~df.select(pl.any_horizontal([pl.col("text").str.contains(p.SIGNATURE) for p in inner])
                                   .fill_null(False)).to_series()
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


@dataclass
class Parsed:
    """One chunk's events plus its line accounting."""

    events: pl.DataFrame
    lines_parsed: int
    lines_unparsed: int
    lines_skipped: int
    carry: pl.DataFrame | None       # rows of the last, maybe unfinished, event (raw, line)


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
    quoted = [p.NAME for p in PARSERS if getattr(p, "QUOTED_MULTILINE", False)]
    if quoted and bool(df.select(fmt.is_in(quoted).any()).item()):
        df = df.with_columns(_quoted_continuation(df, quoted).alias("_cont"))
        df = df.with_columns(pl.when(pl.col("_cont")).then(None).otherwise(fmt).alias("format"))
    else:
        df = df.with_columns(pl.lit(False).alias("_cont"))
    df = df.with_columns(pl.when(pl.col("_blank")).then(None).otherwise(fmt).alias("format"))
    return _parse_families(df)


def _parse_families(df: pl.DataFrame) -> pl.DataFrame:
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
        exprs = [e.alias(k) for k, e in parser.parse(text).items()]
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


def _assemble(df: pl.DataFrame, state: ParseState, *, source: str, final: bool,
              carry_of: Callable[[int], pl.DataFrame]) -> Parsed:
    """Parsed rows -> events: continuation lines join the event before, the rest start one.

    `carry_of(first_line)` gives the rows to hold back when the last event may go on in the
    next chunk (the physical lines from the slow reader, parsed rows from the file fast lane).
    """
    text = pl.col("text")
    fmt = pl.col("format")
    undetected = fmt.is_null() & ~pl.col("_blank") & ~pl.col("_cont")
    if bool(df.select(undetected.any()).item()):
        # lines no family took: a stack frame, an indented or unprefixed continuation, or plain
        indented_before = text.shift(1).str.contains(r"^[ \t]").fill_null(False)
        # lines from two containers of one compose stream never continue each other
        same_stream = pl.col("container").eq_missing(pl.col("container").shift(1))
        generic = undetected & same_stream & (text.str.contains(_CONTINUATION)
                                | (text.str.contains(_EXCEPTION_LINE) & indented_before)
                                | text.shift(-1).str.contains(_GO_FILE_LINE).fill_null(False))
        joiners = [p.NAME for p in PARSERS if getattr(p, "JOIN_UNDETECTED", False)]
        if joiners:
            # the family of the last detected line before: postgres statement text, python messages
            before = fmt.forward_fill().over("container")
            in_record = pl.col("wrapper").is_in(_RECORD_WRAPPERS).fill_null(False)
            generic = generic | (undetected & before.is_in(joiners).fill_null(False) & ~in_record)
        df = df.with_columns((pl.col("_cont") | generic).alias("_cont"))
        # what is left is its own event: the wrapper's family (journald: syslog) or plain
        default = pl.col("wrapper").replace_strict(_WRAPPER_FAMILY, default=None, return_dtype=pl.String)
        lone = fmt.is_null() & ~pl.col("_blank") & ~pl.col("_cont")
        df = df.with_columns(pl.when(lone).then(pl.coalesce(default, pl.lit("plain"))).otherwise(fmt).alias("format"),
                             lone.alias("_lone"))
        lone_rows = df.filter(pl.col("_lone")).drop("_lone")
        if lone_rows.height:
            df = df.with_row_index("_at")
            lone_rows = _parse_families(df.filter(pl.col("_lone")).drop("_lone"))
            df = pl.concat([df.filter(~pl.col("_lone")).drop("_lone"), lone_rows],
                           how="diagonal_relaxed").sort("_at").drop("_at")
        else:
            df = df.drop("_lone")
    if not state.started:
        # a source's first lines cannot continue anything: the first non-blank one starts an event
        first = df.select((~pl.col("_blank")).arg_max()).item()
        if not df.item(first, "_blank"):
            if df.item(first, "format") is None:   # a lone continuation: read it as its own line
                df = _parse_families(df.with_columns(pl.when(pl.int_range(pl.len()) == first).then(pl.lit("plain"))
                                                     .otherwise(fmt).alias("format")))
            df = df.with_columns(pl.when(pl.int_range(pl.len()) == first).then(False).otherwise(pl.col("_cont"))
                                 .alias("_cont"))
    pre = df
    for col, dtype in EVENT_SCHEMA.items():
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(col))
    if df.get_column("wrapper").null_count() < df.height:
        df = df.with_columns(pl.coalesce(pl.col("ts"), pl.col("wrap_ts")).alias("ts"),
                             pl.coalesce(pl.col("level"), pl.col("wrap_level")).alias("level"))
    # an event's raw text is the line as the program wrote it (wrapper removed)
    df = df.with_columns(text.alias("raw"))

    # -- events: a non-continuation, non-blank line starts one ---------------------------------------
    starts = ~pl.col("_cont") & ~pl.col("_blank")
    df = df.with_columns(starts.cum_sum().alias("_eid"))
    state.started = state.started or bool(df.select(starts.any()).item())

    carry = None
    if not final:
        last = df.get_column("_eid").max()
        if last and last > 0:
            # the lines of the last event (as read: wrappers and partial records included)
            first_line = df.filter(pl.col("_eid") == last).get_column("line").min()
            carry = carry_of(first_line) if carry_of is not None else pre.filter(pl.col("line") >= first_line)
            df = df.filter(pl.col("_eid") != last)
        else:
            carry = _empty_carry()

    quoted = [p.NAME for p in PARSERS if getattr(p, "QUOTED_MULTILINE", False)]
    skipped = int(df.filter(pl.col("_blank")).get_column("_phys").sum())
    body = df.filter(~pl.col("_blank"))
    orphans = body.filter(pl.col("_eid") == 0)      # continuations of an event already emitted
    body = body.filter(pl.col("_eid") > 0)
    has_cont = bool(body.get_column("_cont").any())
    if has_cont:
        # only the few events that span several lines go through the group_by
        multi_ids = body.filter(pl.col("_cont")).get_column("_eid").unique()
        is_multi = pl.col("_eid").is_in(multi_ids.implode())
        single = body.filter(~is_multi).with_columns(pl.col("_phys").alias("_nlines"))
        events = (body.filter(is_multi).group_by("_eid", maintain_order=True).agg(
            [pl.col(c).first() for c in (*EVENT_SCHEMA, "container") if c not in ("raw", "message")]
            + [pl.col("raw").str.join("\n"),
               (pl.col("message").first() + pl.when(pl.len() > 1).then(
                   pl.lit("\n") + pl.col("raw").slice(1).str.join("\n")).otherwise(pl.lit(""))).alias("message"),
               pl.col("_phys").sum().alias("_nlines")]))
        events = pl.concat([single.select(events.columns), events]).sort("_eid")
        for name in quoted:
            # a quoted multi-line record reads right only whole: parse its joined text again
            redo = (pl.col("format") == name) & (pl.col("_nlines") > 1)
            if bool(events.select(redo.any()).item()):
                again = BY_NAME[name].parse(pl.col("raw"))
                events = events.with_columns([pl.when(redo).then(again[c]).otherwise(pl.col(c)).alias(c)
                                              for c in again if c in events.columns])
    else:
        events = body.with_columns(pl.col("_phys").alias("_nlines"))
    if orphans.height:   # shown as their own plain events rather than lost
        events = pl.concat([orphans.with_columns(pl.lit("plain").alias("format"), pl.col("raw").alias("message"),
                                                 pl.col("_phys").alias("_nlines")),
                            events], how="diagonal_relaxed")

    # a container the wrapper names (compose service, pod container) is more precise than the directory
    component = pl.lit(state.component) if state.component else pl.col("component")
    if "container" in events.columns:
        component = pl.coalesce(pl.col("container"), component)
    default_component = pl.col("format").replace_strict(
        {p.NAME: p.DEFAULT_COMPONENT for p in PARSERS}, default=None, return_dtype=pl.String)
    events = events.with_columns(
        pl.lit(source).alias("source"),
        pl.coalesce(component, default_component, pl.lit("unknown")).alias("component"),
    )
    lines_per = events.group_by(pl.col("format") == "plain").agg(pl.col("_nlines").sum())
    counts = dict(zip(lines_per[:, 0].to_list(), lines_per[:, 1].to_list(), strict=True))
    for name, cnt in events.get_column("format").value_counts().iter_rows():
        state.counts[name] = state.counts.get(name, 0) + cnt
    return Parsed(
        events.select([pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()]),
        lines_parsed=int(counts.get(False, 0) or 0),
        lines_unparsed=int(counts.get(True, 0) or 0),
        lines_skipped=skipped,
        carry=carry,
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
