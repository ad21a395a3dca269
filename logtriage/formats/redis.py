"""Redis server log: `pid:role date time.ms <symbol> message` and the 2.x/1.x shapes -> events.

Real lines:
  26571:M 27 Dec 2018 11:19:18.874 * Synchronization with replica 10.114.208.18:6023 succeeded
  5092:signal-handler (1496141844) Received SIGINT scheduling shutdown...

role: C child (RDB/AOF fork), M master, S replica, X sentinel. The symbol is the level: `.` debug,
`-` verbose, `*` notice, `#` warning. Redis 5 added the year; 3.x-4.x print `30 May 12:23:52.442`,
2.x `[pid] 31 May 04:32:08` or no pid at all. A crash writes a bug report between
`=== REDIS BUG REPORT START` and `END`: section lines (`------ STACK TRACE ------`), stack-word
dumps and unprefixed register/backtrace lines join the event before them.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, ts_epoch, ts_no_year, ts_utc

NAME = "redis"
LAYER = "cache"
DEFAULT_COMPONENT = "redis"
NAIVE_TIME = True            # local time without a zone
JOIN_UNDETECTED = True       # a crash report's backtrace and register lines carry no prefix

_DATE = r"\d\d? [A-Z][a-z]{2} (?:\d{4} )?\d\d:\d\d:\d\d(?:\.\d{3})?"
_SECTION = r"^------ [A-Z][A-Z ]+ ------$"
_STACK_WORD = r" # \([0-9a-f]{16}\) -> [0-9a-f]{16}$"

SIGNATURE = (
    rf"^(?:\d+:[CMSX] {_DATE} [.*#-](?: |$)"       # 3.x+
    rf"|\[\d+\] {_DATE} [.*#-](?: |$)"             # 2.x
    rf"|{_DATE} [.*#-] "                           # 1.x/2.x without pid
    r"|\d+:signal-handler \(\d+\) "
    r"|=== REDIS BUG REPORT (?:START|END)"
    r"|------ [A-Z][A-Z ]+ ------$)"
)

EXAMPLES = [
    "26571:M 27 Dec 2018 11:19:18.874 * Synchronization with replica 10.114.208.18:6023 succeeded",
    "98738:M 30 May 12:23:52.442 * Saving the final RDB snapshot before exiting.",
    "30 May 10:05:20 . 0 clients connected (0 slaves), 618932 bytes in use, 0 shared objects.",
    "5092:signal-handler (1496141844) Received SIGINT scheduling shutdown...",
]

_SYMBOL_LEVEL = {".": "debug", "-": "debug", "*": "info", "#": "warn"}
_STAMP = r"^(?:\d+:[CMSX] |\[\d+\] )?(\d\d? [A-Z][a-z]{2} (?:\d{4} )?\d\d:\d\d:\d\d(?:\.\d{3})?) ([.*#-])(?: |$)"


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level (from the symbol), pid, message."""
    stamp = text.str.extract(_STAMP, 1)
    with_year = stamp.str.contains(r" \d{4} ")
    return {
        "ts": pl.coalesce(
            pl.when(with_year).then(ts_utc(stamp, "%d %b %Y %H:%M:%S%.f")),
            pl.when(~with_year).then(ts_no_year(stamp, "%d %b %H:%M:%S%.f")),
            ts_epoch(text.str.extract(r"^\d+:signal-handler \((\d+)\) ", 1)),
        ),
        "level": pl.when(text.str.starts_with("=== REDIS BUG REPORT START")).then(pl.lit("fatal"))
        .otherwise(text.str.extract(_STAMP, 2).replace_strict(_SYMBOL_LEVEL, default=None,
                                                              return_dtype=pl.String)),
        "pid": text.str.extract(r"^\[?(\d+)[:\]]", 1),
        "message": text.str.replace(rf"^(?:\d+:[CMSX] |\[\d+\] )?{_DATE} [.*#-] ?|^\d+:signal-handler \(\d+\) ", ""),
    }


def continuation(text: pl.Expr) -> pl.Expr:
    """A bug report's section titles and stack-word dump lines belong to the crash event."""
    return text.str.contains(_SECTION) | text.str.contains(_STACK_WORD)


_FIELDS = regex.compile(r"""
    ^(?:(?P<pid>\d+):(?P<role>[CMSX])\ |\[(?P<pid>\d+)\]\ )?
    (?P<time>\d\d?\ [A-Z][a-z]{2}\ (?:\d{4}\ )?\d\d:\d\d:\d\d(?:\.\d{3})?)\ (?P<symbol>[.*#-])\ ?
    (?P<message>.*)
""", regex.VERBOSE | regex.S)
_SIGNAL = regex.compile(r"^(?P<pid>\d+):signal-handler \((?P<epoch>\d+)\) (?P<message>.*)", regex.S)
_ROLES = {"C": "child", "M": "master", "S": "replica", "X": "sentinel"}


def fields(text: str) -> dict:
    """pid, role (master/replica/child/sentinel), time, level symbol, message (with any joined lines)."""
    m = _FIELDS.match(text) or _SIGNAL.match(text)
    if not m:
        return {"message": text} if text.startswith("=== REDIS BUG REPORT") else {}
    out = m.groupdict()
    if out.get("role"):
        out["role"] = _ROLES[out["role"]]
    return compact(out)
