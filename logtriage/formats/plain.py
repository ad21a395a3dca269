"""The fallback: a line no other family recognised becomes an event of its own, kept and counted.

Real lines:
  pg_ctl: could not start server
  Exception in thread "main" java.lang.IllegalStateException: ..Exception

It still picks up a leading timestamp and a level word when the line has them, so the event
sorts in time and a rule can look at it.
"""

from __future__ import annotations

import polars as pl

from logtriage.formats.base import level_of, ts_iso, ts_utc

NAME = "plain"
LAYER = "app"
DEFAULT_COMPONENT = None
NAIVE_TIME = True   # whatever time a plain line has, it usually carries no zone
SIGNATURE = r"^"           # matches anything: always last in PARSERS

EXAMPLES = [
    "pg_ctl: could not start server",
    'Exception in thread "main" java.lang.IllegalStateException: ..Exception',
]

_ISO = r"^\[?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
_LEVEL = r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|PANIC|SEVERE)\b"


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Best effort: an ISO or syslog-style leading timestamp and an upper-case level word."""
    iso = text.str.extract(_ISO, 1).str.replace(",", ".", literal=True)
    return {
        "ts": pl.coalesce(ts_iso(iso),
                          ts_utc(text.str.extract(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)", 1), "%Y/%m/%d %H:%M:%S")),
        "level": level_of(text.str.slice(0, 120).str.extract(_LEVEL, 1)),
        "message": text,
    }


def fields(text: str) -> dict:
    """A plain line has no fields."""
    return {}
