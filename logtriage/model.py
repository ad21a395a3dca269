"""The shared nouns of the pipeline: the event batch schema and the few records left after reduction.

sources -> formats -> classify -> correlate -> report. Events travel between stages as polars
DataFrames ("event batches") with the columns below, never as one Python object per line.

Event batch columns (EVENT_SCHEMA), one row per event (a multi-line record is one row):

  ts          Datetime(us, UTC)  when it happened; naive source timestamps are read in --tz (default UTC)
  source      String   the path as given ("-" for stdin)
  line        UInt32   1-based line number of the event's first physical line in its source
  format      String   the parser family that read it (formats.PARSERS names; "plain" when none fits)
  component   String   service/component: a service field or container name, the directory the file
                       sits in (postgres/postgresql.log -> "postgres"), or the family's default
  level       String   debug | info | warn | error | fatal, or null when the line has none
  message     String   the message part of the line (the whole line when there is no better split)
  raw         String   the physical line(s) as read (wrapper removed), joined by "\n" for multi-line events
  status      Int16    HTTP status (access logs) or null
  duration    Float64  request or statement duration in seconds, or null
  upstream    String   the upstream host:port a proxy dialled, or null
  flags       String   Envoy response flags / HAProxy termination state, or null
  pid         String   process id where the line names one, or null
  sqlstate    String   PostgreSQL SQLSTATE where logged, or null

classify adds (CLASS_SCHEMA):

  class       String   a TAXONOMY.md id (optionally "id/sub"), null when not flagged
  rule        String   the id of the rule that decided it
  severity    String   the rule's severity
  entities    String   JSON object of the rule's named captures (upstream, database, user, port ...)

The full parsed fields of an event (everything its format knows) are extracted only for the
events that are shown: formats.fields_of(format, raw).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": UTC_DATETIME,
    "source": pl.String(),
    "line": pl.UInt32(),
    "format": pl.String(),
    "component": pl.String(),
    "level": pl.String(),
    "message": pl.String(),
    "raw": pl.String(),
    "status": pl.Int16(),
    "duration": pl.Float64(),
    "upstream": pl.String(),
    "flags": pl.String(),
    "pid": pl.String(),
    "sqlstate": pl.String(),
}

# The columns a parser may fill (everything but the bookkeeping the pipeline sets itself).
PARSED_COLUMNS = ("ts", "level", "message", "status", "duration", "upstream", "flags", "pid",
                  "sqlstate", "component")

# What `scan --stats` parses on every line (the rest of PARSED_COLUMNS is left out of its batches): the
# fields the later stages read on every line, besides the message the classifier reads.
HOT_COLUMNS = frozenset({"ts", "level", "status", "duration"})

CLASS_SCHEMA: dict[str, pl.DataType] = {
    "class": pl.String(),
    "rule": pl.String(),
    "severity": pl.String(),
    "entities": pl.String(),
}

LEVELS = ("debug", "info", "warn", "error", "fatal")

# The class ids of ../shared/TAXONOMY.md (tests/test_rule_files.py checks they still agree).
CLASS_IDS = (
    "conn.refused", "conn.reset_before_headers", "conn.reset", "timeout.connect", "timeout.upstream",
    "timeout.query", "db.slow_query", "pool.exhausted", "db.too_many_connections",
    "db.connection_terminated", "db.auth_failed", "upstream.unavailable", "dns.failure", "tls.failure",
    "proc.oom", "proc.crash", "health.probe_failed", "resource.fd_exhausted", "resource.disk_full",
    "ratelimit", "http.5xx",
)
# Root causes only correlation across lines can establish.
INCIDENT_IDS = ("config.port_mismatch", "service.down")

SEVERITIES = ("critical", "error", "warning", "info")
SIGNALS = ("listening", "started", "stopping", "stopped", "exited", "restarted", "reloaded", "deployed")


def detached(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with its text columns copied out of the batch they were cut from.

    polars keeps a string taken from a larger frame (filter, slice) as a view into that frame's
    buffers: a handful of events kept from every batch would keep all the text read alive.
    Whatever is kept across batches goes through here.
    """
    text = [pl.concat_str([pl.col(c), pl.lit("")]).alias(c) for c, t in df.schema.items() if t == pl.String]
    return df.with_columns(text) if text else df


def json_object(*columns: str | pl.Expr) -> pl.Expr:
    """A JSON object of the columns' non-null values (`{}` when all are null), encoded by polars."""
    # each member is its own one-key object without the braces: `"key":value`, null members left out
    if not columns:
        return pl.lit("{}")
    members = [pl.when(c.is_not_null()).then(pl.struct(c).struct.json_encode().str.slice(1).str.head(-1))
               for c in (pl.col(c) if isinstance(c, str) else c for c in columns)]
    return pl.concat_str([pl.lit("{"), pl.concat_str(members, separator=",", ignore_nulls=True), pl.lit("}")])


def empty_events(with_class: bool = False) -> pl.DataFrame:
    """Return an empty event batch with the full schema."""
    schema = dict(EVENT_SCHEMA)
    if with_class:
        schema.update(CLASS_SCHEMA)
    return pl.DataFrame(schema=schema)


@dataclass
class SourceStats:
    """Line accounting for one source: every physical line read is parsed, unparsed or skipped."""

    path: str
    formats: dict[str, int] = field(default_factory=dict)   # events per detected format
    lines_read: int = 0          # physical lines read
    lines_parsed: int = 0        # physical lines read by a format parser (incl. continuation lines)
    lines_unparsed: int = 0      # physical lines no parser knew: kept as "plain" events
    lines_skipped: int = 0       # physical lines not turned into events (blank lines)
    lines_truncated: int = 0     # lines over the length limit, cut (still counted as read)
    events: int = 0              # events (a multi-line record counts once)
    first_ts: str | None = None
    last_ts: str | None = None
    tz_assumed: str | None = None  # the zone naive timestamps were read in, when there were any
    problems: list[str] = field(default_factory=list)  # read problems: truncated gzip, unreadable ...

    @property
    def main_format(self) -> str | None:
        if not self.formats:
            return None
        return max(self.formats.items(), key=lambda kv: kv[1])[0]

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "format": self.main_format,
            "formats": dict(sorted(self.formats.items(), key=lambda kv: -kv[1])),
            "lines_read": self.lines_read,
            "lines_parsed": self.lines_parsed,
            "lines_unparsed": self.lines_unparsed,
            "lines_skipped": self.lines_skipped,
            "lines_truncated": self.lines_truncated,
            "events": self.events,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "tz_assumed": self.tz_assumed,
            "problems": list(self.problems),
        }
