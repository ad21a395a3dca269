"""What every parser module shares: its interface, timestamp and level helpers.

A parser is a module under logtriage/formats/ with:

  NAME               str    equal to the module name ("nginx_error")
  LAYER              str    where it sits in a request's path: "proxy", "app", "db", "cache",
                            "system" (kernel, supervisor, orchestrator) - the correlator's depth
  DEFAULT_COMPONENT  str | None   component when neither a service field nor a directory names one
  SIGNATURE          str    a polars (Rust regex) pattern that lines of this family match; keep it
                            anchored and cheap: it runs on lines a source's main format did not take
  parse(text)        -> dict[str, pl.Expr]  expressions over the `text` column (the line with any
                            wrapper removed) for the columns in model.PARSED_COLUMNS it knows;
                            vectorised, and only the hot fields: time, level, status, duration ...
  continuation(text) -> pl.Expr | None      optional: True where a line continues the event before
                            (a Postgres DETAIL/STATEMENT line). Indented lines and stack traces are
                            joined by the framework for every format.
  fast_parse(text, sample) -> dict | None  optional: parse() specialised to the layout a large
                            file's first lines show (time stamp width, zone, log_format tail), read
                            by position where parse() needs a pattern. Returns parse()'s columns
                            plus `_ok` (False: the line does not fit; it is detected and parsed the
                            general way), optionally `_ok_unicode` (what else must hold when the
                            block is not all ASCII), `_cont`, and shared steps named "_..."
                            (computed in order, each may read those before it) that the other
                            expressions use as pl.col("_..."). Used by the block reader
                            (files of 16 MB and more); tests/test_block_reader.py holds it to
                            reading exactly as parse() does.
  fields(text)       -> dict               every field the format knows, for one event's raw text;
                            called only for the few events that are shown.
  EXAMPLES           list[str]  two or more real lines; tests check each detects as NAME.

Keep capture groups short-spanned (`" (\\d{3}) `, not `^.* (\\d{3}) .*$`): polars finds a match
with a fast automaton, then resolves groups only inside the matched span.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import polars as pl

from logtriage.model import UTC_DATETIME

# The zone naive timestamps are read in; the pipeline sets it from --tz before parsing.
_ASSUMED_TZ = "UTC"


def set_assumed_tz(tz: str) -> None:
    """Set the zone in which timestamps without an offset are interpreted."""
    global _ASSUMED_TZ
    _ASSUMED_TZ = tz


def assumed_tz() -> str:
    return _ASSUMED_TZ


def ts_utc(expr: pl.Expr, fmt: str | None, *, aware: bool = False) -> pl.Expr:
    """Parse a timestamp string expression into Datetime(us, UTC); unparseable values become null.

    `fmt` is a chrono format; with `aware=True` the string carries its own offset (%z / Z) and is
    converted, otherwise it is read in the assumed zone (--tz).
    """
    parsed = expr.str.to_datetime(fmt, strict=False, time_unit="us", exact=True, ambiguous="earliest")
    if aware:
        return parsed.dt.convert_time_zone("UTC").cast(UTC_DATETIME)
    return parsed.dt.replace_time_zone(_ASSUMED_TZ, ambiguous="earliest",
                                       non_existent="null").dt.convert_time_zone("UTC").cast(UTC_DATETIME)


_ISO_STAMP = r"^\s*(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d(?:[.,]\d+)?)"
_ISO_OFFSET = r"(Z|[+-]\d\d(?::?\d\d)?)\s*$"


def offset_minutes(zone: pl.Expr, names: dict[str, int] | None = None) -> pl.Expr:
    """`Z`, `+03`, `-0500`, `+05:30` (or a zone name in `names`) -> minutes east of UTC; else null."""
    sign = pl.when(zone.str.starts_with("-")).then(-1).otherwise(1)
    digits = zone.str.replace(":", "", literal=True)
    hours = digits.str.slice(1, 2).cast(pl.Int32, strict=False)
    minutes = digits.str.slice(3, 2).cast(pl.Int32, strict=False).fill_null(0)
    numeric = pl.when(zone.str.contains(r"^[+-]\d")).then(sign * (hours * 60 + minutes))
    named = {"Z": 0, **(names or {})}
    return pl.coalesce(numeric, zone.replace_strict(named, default=None, return_dtype=pl.Int32))


def ts_local(stamp: pl.Expr, offset: pl.Expr) -> pl.Expr:
    """`YYYY-MM-DD[T ]HH:MM:SS[.fff]` + minutes east of UTC (null: the assumed zone) -> UTC.

    One fixed-format parse per line; the offset is arithmetic, not a second, zone-aware parse.
    """
    naive = (stamp.str.replace(" ", "T", literal=True).str.replace(",", ".", literal=True)
             .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"))
    shifted = (naive - pl.duration(minutes=offset)).dt.replace_time_zone("UTC")
    if _ASSUMED_TZ == "UTC":
        local = naive.dt.replace_time_zone("UTC")
    else:
        local = naive.dt.replace_time_zone(_ASSUMED_TZ, ambiguous="earliest",
                                           non_existent="null").dt.convert_time_zone("UTC")
    return pl.when(offset.is_not_null()).then(shifted).otherwise(local).cast(UTC_DATETIME)


def ts_iso(expr: pl.Expr) -> pl.Expr:
    """Parse ISO-8601 / RFC 3339 strings with or without offset (naive ones in the assumed zone)."""
    parts = expr.str.extract_groups(_ISO_STAMP)
    stamp = parts.struct.field("1") + "T" + parts.struct.field("2")
    return ts_local(stamp, offset_minutes(expr.str.extract(_ISO_OFFSET, 1)))


def ts_epoch(expr: pl.Expr) -> pl.Expr:
    """Parse epoch seconds, milliseconds, microseconds or nanoseconds (by magnitude) into UTC."""
    v = expr.cast(pl.Float64, strict=False)
    us = (pl.when(v > 1e17).then(v / 1e3)
          .when(v > 1e14).then(v)
          .when(v > 1e11).then(v * 1e3)
          .otherwise(v * 1e6))
    return us.cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def ts_no_year(expr: pl.Expr, fmt: str) -> pl.Expr:
    """Parse a timestamp that has no year (syslog "Nov 21 10:12:38"): the latest year not in the future."""
    year = _dt.datetime.now(_dt.UTC).year
    this = ts_utc(pl.lit(f"{year} ") + expr, "%Y " + fmt)
    last = ts_utc(pl.lit(f"{year - 1} ") + expr, "%Y " + fmt)
    tomorrow = _dt.datetime.now(_dt.UTC) + _dt.timedelta(days=1)
    return pl.when(this > pl.lit(tomorrow).cast(UTC_DATETIME)).then(last).otherwise(this)


_LEVEL_WORDS = {
    "debug": "debug", "trace": "debug", "debug1": "debug", "debug2": "debug", "debug3": "debug",
    "debug4": "debug", "debug5": "debug", "dbug": "debug", "d": "debug", "verbose": "debug",
    "info": "info", "information": "info", "informational": "info", "notice": "info", "log": "info",
    "statement": "info", "i": "info", "inf": "info", "n": "info", "normal": "info",
    "warn": "warn", "warning": "warn", "w": "warn", "wrn": "warn",
    "error": "error", "err": "error", "e": "error", "eror": "error", "severe": "error",
    "fatal": "fatal", "panic": "fatal", "crit": "fatal", "critical": "fatal", "alert": "fatal",
    "emerg": "fatal", "emergency": "fatal", "f": "fatal", "dpanic": "fatal", "ftl": "fatal",
    "crt": "fatal",
}


def level_of(expr: pl.Expr) -> pl.Expr:
    """Normalise a level word (WARNING, err, CRIT, E ...) to debug/info/warn/error/fatal or null."""
    return expr.str.strip_chars().str.to_lowercase().replace_strict(_LEVEL_WORDS, default=None,
                                                                   return_dtype=pl.String)


def level_word(word: str | None) -> str | None:
    """The same normalisation as level_of, for one Python string."""
    return _LEVEL_WORDS.get(word.strip().lower()) if word else None


_NUMERIC_LEVELS = {"10": "debug", "20": "info", "30": "info", "40": "warn", "50": "error", "60": "fatal"}


def level_numeric(expr: pl.Expr) -> pl.Expr:
    """bunyan/pino numeric levels (10 trace ... 60 fatal) to the normal words."""
    return expr.cast(pl.String).replace_strict(_NUMERIC_LEVELS, default=None, return_dtype=pl.String)


def syslog_severity(expr: pl.Expr) -> pl.Expr:
    """journald/syslog PRIORITY 0-7 to the normal words."""
    return expr.cast(pl.String).replace_strict(
        {"0": "fatal", "1": "fatal", "2": "fatal", "3": "error", "4": "warn", "5": "info", "6": "info",
         "7": "debug"}, default=None, return_dtype=pl.String)


def seconds(expr: pl.Expr, unit: str = "s") -> pl.Expr:
    """A duration string or number in `unit` (s, ms, us) as Float64 seconds; "-" and junk become null."""
    v = expr.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    return v / {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]


def compact(d: dict[str, Any]) -> dict[str, Any]:
    """Drop None/""/"-" values: what fields() returns is what the line really said."""
    return {k: v for k, v in d.items() if v not in (None, "", "-")}


def json_record(*texts: str) -> dict | None:
    """The first of `texts` that parses as JSON, if it is an object (for the JSON formats' fields())."""
    for text in texts:
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        return obj if isinstance(obj, dict) else None
    return None
