"""Format detection and parsing: physical lines -> an event batch (model.EVENT_SCHEMA).

PARSERS lists the families in detection order, more specific before more general; `plain` is
last and takes whatever no other family recognised. Detection is per line: each source keeps the
family most of its lines showed (its hint), lines the hint does not match are tried against every
family, so a `kubectl logs --all-containers` stream mixing formats is read line by line.

The steps for one chunk (parse_lines), all vectorised over the chunk:
  1. wrappers.unwrap: CRI / docker json / kubectl timestamps / journald -> the inner line
  2. detect each line's family; blank lines are skipped (and counted)
  3. each family's parse() fills the hot columns on its own rows
  4. continuation lines (indented, stack frames, Postgres DETAIL ...) join the event before
"""

from __future__ import annotations

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
    postgres,
    pgbouncer,
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
    r"|Caused by: "                                     # Java
    r"|\.\.\. \d+ (?:more|common frames omitted)"
    r"|goroutine \d+ \[[^\]]+\]:$"                     # Go panic dump
    r"|\[stacktrace\]$|#\d+ \S"                         # PHP / Laravel
    r"|\}$|\]$"                                         # the end of a pretty-printed JSON value
    r")"
)
# After a Python traceback's frames: "psycopg2.OperationalError: ..." ends it.
_EXCEPTION_LINE = r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault)\b(?::|$)"


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
    counts = (df.filter(pl.col("text").str.strip_chars() != "")
              .select(detect_expr(pl.col("text")).fill_null("plain").alias("f"))
              .group_by("f").len())
    return dict(zip(counts["f"].to_list(), counts["len"].to_list(), strict=True))


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
    chunk); the caller prepends it to the next chunk of the same source.
    """
    n = df.height
    if n == 0:
        return Parsed(pl.DataFrame(schema=EVENT_SCHEMA), 0, 0, 0, _empty_carry() if not final else None)
    df = wrappers.unwrap(df)
    text = pl.col("text")
    blank = text.str.strip_chars() == ""

    # -- 2. detect ---------------------------------------------------------------------------
    if state.hint is None and not state.forced:
        sample = df.head(HINT_LINES).filter(~blank)
        fams = sample.select(detect_expr(text).alias("f")).get_column("f").drop_nulls()
        if len(fams):
            top = fams.value_counts(sort=True).row(0)
            state.hint = top[0]
    if state.forced:
        fmt = pl.lit(state.forced)
    elif state.hint:
        hinted = BY_NAME[state.hint]
        fmt = pl.when(text.str.contains(hinted.SIGNATURE)).then(pl.lit(state.hint)).otherwise(detect_expr(text))
    else:
        fmt = detect_expr(text)
    df = df.with_columns(fmt.alias("format"), blank.alias("_blank"))

    # -- continuation: generic (undetected indented/trace lines) + the family's own ---------------
    undetected = pl.col("format").is_null() & ~pl.col("_blank")
    generic = undetected & (text.str.contains(_CONTINUATION)
                            | (text.str.contains(_EXCEPTION_LINE)
                               & text.shift(1).str.contains(r"^[ \t]").fill_null(False)))
    join_undetected = bool(state.hint and getattr(BY_NAME[state.hint], "JOIN_UNDETECTED", False))
    if join_undetected:
        generic = generic | undetected
    df = df.with_columns(generic.alias("_cont"))
    df = df.with_columns(pl.when(pl.col("_cont") | pl.col("_blank")).then(None)
                         .otherwise(pl.col("format").fill_null("plain")).alias("format"))

    # -- 3. parse per family ------------------------------------------------------------------------
    present = [f for f in df.get_column("format").unique().drop_nulls().to_list()]
    parts = []
    df = df.with_row_index("_row")
    for name in present:
        parser = BY_NAME[name]
        sub = df.filter(pl.col("format") == name) if len(present) > 1 or df["format"].null_count() else df
        cols = parser.parse(text)
        cont = getattr(parser, "continuation", None)
        exprs = [e.alias(k) for k, e in cols.items()]
        if cont is not None:
            exprs.append((pl.col("_cont") | cont(text).fill_null(False)).alias("_cont"))
        parts.append(sub.with_columns(exprs))
    rest = df.filter(pl.col("format").is_null())
    if rest.height:
        parts.append(rest)
    df = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
    if len(parts) > 1:
        df = df.sort("_row")

    for col, dtype in EVENT_SCHEMA.items():
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(col))
    if "wrap_ts" in df.columns:
        df = df.with_columns(pl.coalesce(pl.col("ts"), pl.col("wrap_ts")).alias("ts"))
    if "container" in df.columns:
        df = df.with_columns(pl.coalesce(pl.col("component"), pl.col("container")).alias("component"))

    # -- 4. events: a non-continuation, non-blank line starts one ---------------------------------
    starts = ~pl.col("_cont") & ~pl.col("_blank")
    if not state.started:
        # a source's first lines cannot continue anything: the first non-blank one starts an event
        first = df.select((~pl.col("_blank")).arg_max()).item()
        df = df.with_columns(pl.when(pl.col("_row") == first).then(False).otherwise(pl.col("_cont")).alias("_cont"))
        df = df.with_columns(pl.when(pl.col("_row") == first).then(pl.col("format").fill_null("plain"))
                             .otherwise(pl.col("format")).alias("format"))
    df = df.with_columns(starts.cum_sum().alias("_eid"))
    state.started = state.started or bool(df.select(starts.any()).item())

    carry = None
    if not final:
        last = df.get_column("_eid").max()
        if last and last > 0:
            carry = df.filter(pl.col("_eid") == last).select("raw", "line")
            df = df.filter(pl.col("_eid") != last)
        else:
            carry = _empty_carry()

    skipped = int(df.get_column("_blank").sum())
    body = df.filter(~pl.col("_blank"))
    orphans = body.filter(pl.col("_eid") == 0)      # continuations of an event already emitted
    body = body.filter(pl.col("_eid") > 0)
    has_cont = bool(body.get_column("_cont").any())
    if has_cont:
        events = (body.group_by("_eid", maintain_order=True).agg(
            [pl.col(c).first() for c in EVENT_SCHEMA if c not in ("raw", "message")]
            + [pl.col("raw").str.join("\n"),
               (pl.col("message").first() + pl.when(pl.len() > 1).then(
                   pl.lit("\n") + pl.col("raw").slice(1).str.join("\n")).otherwise(pl.lit(""))).alias("message"),
               pl.len().alias("_nlines")]))
    else:
        events = body.with_columns(pl.lit(1, dtype=pl.UInt32).alias("_nlines"))
    if orphans.height:   # shown as their own plain events rather than lost
        events = pl.concat([orphans.with_columns(pl.lit("plain").alias("format"), pl.col("raw").alias("message"),
                                                 pl.lit(1, dtype=pl.UInt32).alias("_nlines")),
                            events], how="diagonal_relaxed")

    component = pl.lit(state.component) if state.component else pl.col("component")
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
