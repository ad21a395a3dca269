"""nginx access log: combined, combined + upstream fields, ingress-nginx's upstreaminfo -> events.

Real lines:
  127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "GET /api/report HTTP/1.1" 200 2342 "-" "Mozilla/5.0" 127.0.0.1:28050 200 0.037 0.037
  192.168.64.1 - - [07/Feb/2020:11:48:51 +0000] "POST /products HTTP/1.1" 200 59 "-" "curl/7.54.0" 89 0.001 [default-web-8080] [] 172.17.0.5:8080 59 0.000 200 529a007902362a5f51385a5fa7049884

The hot path reads time, status and request time; the request, upstream and the rest come from
fields() for the events that are shown.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, offset_minutes, seconds, ts_utc
from logtriage.model import UTC_DATETIME

NAME = "nginx_access"
LAYER = "proxy"
DEFAULT_COMPONENT = "nginx"

# remote_addr (may be an X-Forwarded-For list) - remote_user [time_local] "request" status bytes
SIGNATURE = r'^\S+(?:, \S+)* \S+ \S+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "[^"]*" \d{3} '

EXAMPLES = [
    ('127.0.0.1 - - [21/Nov/2026:10:12:39 +0000] "GET /api/report HTTP/1.1" 200 2342 "-" "Mozilla/5.0" '
    '127.0.0.1:28050 200 0.037 0.037'),
    '192.168.202.254 - - [20/Jul/2009:22:59:26 +0000] "GET /vmw/cgi/tramp HTTP/1.0" 200 134 "-" "gPXE/0.9.7"',
]

# upstream fields after the user agent: $upstream_addr $upstream_status, then the times that end
# the line, $request_time $upstream_response_time (lists when nginx tried several upstreams).
# Groups: 1 the upstream address(es), 2 their status(es), 3 the request time. (correlate reads 1.)
_TIMES_AT_END = r" (\d+\.\d+) (?:-|\d+\.\d+)(?:, (?:-|\d+\.\d+))*$"
UPSTREAM_TAIL = r'" (\S+(?:, \S+)*) ((?:\d{3}|-)(?:, (?:\d{3}|-))*)' + _TIMES_AT_END
# ingress-nginx: "ua" $request_length $request_time [$proxy_upstream_name] ...
_INGRESS_TIME = r'" \d+ (\d+\.\d+) \['


_TIME = r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]"
_STATUS = r'" (\d{3}) '


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, status, duration (request time)."""
    return {
        "ts": ts_utc(text.str.extract(_TIME, 1), "%d/%b/%Y:%H:%M:%S %z", aware=True),
        "status": text.str.extract(_STATUS, 1).cast(pl.Int16, strict=False),
        "duration": pl.coalesce(seconds(text.str.extract(UPSTREAM_TAIL, 3)),
                                seconds(text.str.extract(_INGRESS_TIME, 1))),
        "message": text,
    }


def fast_parse(text: pl.Expr, sample: pl.Series) -> dict[str, pl.Expr] | None:
    """parse() specialised to `sample` (a file's first lines): one log_format, one zone.

    The time is read by position after the first " [", in a format that ends in the server's
    zone (the same on every line); the request time with the one log_format tail the sample shows,
    from the end of the line. `_ok` is False on lines that do not fit; those go through parse()
    (after detection) instead.
    """
    zones = sample.str.extract(_TIME, 1).str.slice(21, 5)
    if zones.null_count() or len(zones) == 0 or zones.n_unique() != 1:
        return None
    zone = zones[0]
    minutes = pl.select(offset_minutes(pl.lit(zone))).item()
    at = pl.col("_at") + 2          # the first character of the time
    naive = pl.col("_naive")
    tail = next((p for p in (UPSTREAM_TAIL, _INGRESS_TIME) if sample.str.contains(p).mean() > 0.5), None)
    if tail == UPSTREAM_TAIL:
        # "... $request_time $upstream_response_time" ends the line (upstream times may be a list)
        duration = text.str.extract(_TIMES_AT_END, 1)
    elif tail == _INGRESS_TIME:
        duration = text.str.extract(_INGRESS_TIME, 1)
    else:
        duration = pl.lit(None, dtype=pl.String)
    status = pl.col("_status")
    return {
        "_at": text.str.find(" [", literal=True),
        # the zone and "]" read as part of the time's format: a line with another zone does not parse
        "_naive": text.str.slice(at, 27).str.to_datetime(f"%d/%b/%Y:%H:%M:%S {zone}]", strict=False,
                                                         time_unit="us", exact=True),
        # the status follows the request's closing quote, the line's first '" ' (nginx writes a
        # quote inside the request as \x22): ' 200 ' read by position, not by pattern
        "_after": text.str.slice(text.str.find('" ', literal=True) + 1, 5),
        "_status": pl.col("_after").str.slice(1, 3).cast(pl.Int16, strict=False),
        "_ok": (naive.is_not_null() & status.is_between(100, 999) & pl.col("_after").str.ends_with(" ")),
        "ts": (naive - pl.duration(minutes=minutes)).dt.replace_time_zone("UTC").cast(UTC_DATETIME),
        "status": status,
        "duration": duration.cast(pl.Float64, strict=False),
        "message": text,
    }


_FIELDS = regex.compile(r'''
    ^(?P<remote_addr>\S+(?:,\ \S+)*)\ (?P<ident>\S+)\ (?P<remote_user>\S+)
    \ \[(?P<time_local>[^\]]+)\]
    \ "(?P<request>(?P<method>[A-Z]+)\ (?P<path>\S+)(?:\ (?P<protocol>[^"]*))?|[^"]*)"
    \ (?P<status>\d{3})\ (?P<body_bytes_sent>\d+|-)
    (?:\ "(?P<referer>[^"]*)"\ "(?P<user_agent>[^"]*)")?
    (?:                                                       # ingress-nginx upstreaminfo
        \ (?P<request_length>\d+)\ (?P<request_time>\d+\.\d+)\ \[(?P<proxy_upstream_name>[^\]]*)\]
        \ \[(?P<proxy_alternative_upstream_name>[^\]]*)\]
        \ (?P<upstream_addr>\S+(?:,\ \S+)*)\ (?P<upstream_response_length>\S+(?:,\ \S+)*)
        \ (?P<upstream_response_time>\S+(?:,\ \S+)*)\ (?P<upstream_status>\S+(?:,\ \S+)*)
        (?:\ (?P<req_id>\S+))?
    |                                                          # $upstream_addr $upstream_status $request_time $upstream_response_time
        \ (?P<upstream_addr>\S+(?:,\ \S+)*)\ (?P<upstream_status>(?:\d{3}|-)(?:,\ (?:\d{3}|-))*)
        \ (?P<request_time>\d+\.\d+)\ (?P<upstream_response_time>(?:-|\d+\.\d+)(?:,\ (?:-|\d+\.\d+))*)
    )?
    (?:\ "(?P<x_forwarded_for>[^"]*)")?
''', regex.VERBOSE)


def fields(text: str) -> dict:
    """Every field of the access line, by nginx variable name."""
    m = _FIELDS.match(text)
    return compact(m.groupdict()) if m else {}
