"""nginx error log: `time [level] pid#tid: *cid message, client: ..., upstream: "..."` -> events.

Real lines:
  2026/11/21 10:13:09 [error] 24998#24998: *316 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: shop.lab.local, request: "GET /api/items/71 HTTP/1.1", upstream: "http://127.0.0.1:28050/api/items/71", host: "shop.lab.local"
  2016/10/25 14:49:34 [error] 54053#0: *1 open() "/usr/local/Cellar/nginx/1.10.2_1/html/favicon.ico" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /favicon.ico HTTP/1.1", host: "localhost:8080"
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, level_of, level_word, ts_utc

NAME = "nginx_error"
LAYER = "proxy"
DEFAULT_COMPONENT = "nginx"
NAIVE_TIME = True   # error_log times are local time without a zone

SIGNATURE = r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(?:debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: "

EXAMPLES = [
    ('2026/11/21 10:13:09 [error] 24998#24998: *316 connect() failed (111: Connection refused) while '
    'connecting to upstream, client: 127.0.0.1, server: shop.lab.local, request: "GET /api/items/71 '
    'HTTP/1.1", upstream: "http://127.0.0.1:28050/api/items/71", host: "shop.lab.local"'),
    ('2016/10/25 14:50:44 [error] 54053#0: *3 open() "/usr/local/Cellar/nginx/1.10.2_1/html/adsasd" failed '
    '(2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /adsasd HTTP/1.1", '
    'host: "localhost:8080"'),
]


_LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")
_TIME_FORMAT = "%Y/%m/%d %H:%M:%S"


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, pid, message (without the pid#tid/*cid prefix), upstream host:port."""
    return {
        "ts": ts_utc(text.str.slice(0, 19), _TIME_FORMAT),
        "level": level_of(text.str.extract(r"^\S+ \S+ \[(\w+)\]", 1)),
        "pid": text.str.extract(r"\] (\d+)#", 1),
        "message": text.str.replace(r"^\S+ \S+ \[\w+\] \d+#\d+: (?:\*\d+ )?", ""),
        "upstream": text.str.extract(r', upstream: "(?:[a-z]+://)?([^/"]+)', 1),
    }


def fast_parse(text: pl.Expr, sample: pl.Series) -> dict[str, pl.Expr] | None:
    """parse() read by position: the time is the first 19 characters, the level the word in the
    brackets after them (up to the line's first "] "). `_ok` holds where SIGNATURE would match."""
    close = pl.col("_close")
    word = pl.col("_word")
    general = parse(text)
    ts = general.pop("ts")
    del general["level"]          # read by position below
    return {
        "_ts": ts,
        "_close": text.str.find("] ", literal=True).cast(pl.Int64),
        "_word": text.str.slice(21, (close - 21).clip(lower_bound=0)),
        **general,
        "ts": pl.col("_ts"),
        "_ok": (pl.col("_ts").is_not_null() & (text.str.slice(19, 2) == " [") & word.is_in(_LEVELS)
                & text.str.slice(close + 2, 48).str.contains(r"^\d+#\d+: ").fill_null(False)),
        "level": word.replace_strict({w: level_word(w) for w in _LEVELS}, default=None, return_dtype=pl.String),
    }


_HEAD = regex.compile(r"^(?P<time>\S+ \S+) \[(?P<level>\w+)\] (?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection>\d+) )?"
                      r"(?P<message>.*?)(?=, (?:client|server|request|upstream|host|referrer): |$)", regex.S)
_TAIL = regex.compile(r', (client|server|request|upstream|host|referrer|subrequest): ("(?:[^"\\]|\\.)*"|[^,]*)')


def fields(text: str) -> dict:
    """time, level, pid, tid, connection, message and the key/value tail (client, upstream ...)."""
    m = _HEAD.match(text)
    if not m:
        return {}
    out = m.groupdict()
    for key, value in _TAIL.findall(text, m.end("message")):
        out[key] = value[1:-1] if value.startswith('"') else value
    if out.get("upstream"):
        hp = regex.match(r"(?:[a-z]+://)?([^/]+)", out["upstream"])
        if hp:
            out["upstream_hostport"] = hp.group(1)
    return compact(out)
