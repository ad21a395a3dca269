"""Plain-text application logs with a timestamp and a level -> events.

Real lines:
  [2024-05-07 10:55:53,434] INFO [ProducerStateManager partition=ingest-3] Wrote producer snapshot at offset 184233903 with 0 producer ids in 2 ms. (kafka.log.ProducerStateManager)
  E0517 15:04:22.619632 1952452992 logging_unittest.cc:253] Log every 3, iteration 19

The layouts read (one alternative each in SIGNATURE):
  Python logging     2025-09-26 21:12:39,385 ERROR error message: failed to open resource
                     2024-.. - name - ERROR - msg        loguru 2024-.. | ERROR | mod:fn:1 - msg
  log4j / logback    [2024-05-07 10:55:53,434] INFO msg (logger)   2024-.. ERROR [thread] logger - msg
  hclog              2024-05-07T10:58:13.877Z [INFO]  expiration: revoked lease: ...
  calico felix       2024-05-08 15:23:58.902 [DEBUG][606918] felix/sync_client.go 356: Pong sent
  zap console        2025-04-24T22:09:20.856Z<TAB>error<TAB>internal/queue_sender.go:128<TAB>Exporting failed.
  klog / glog        I0507 12:04:17.597069       1 descheduler.go:169] "Number of evicted pods"
  Laravel / Monolog  [2025-01-02 11:19:06] local.INFO: Page Access {...}
  uWSGI requests     [pid: 88185|app: 0|req: 1/1] 127.0.0.1 () {..} [Sun Mar 13 22:49:12 2016] POST /x => generated 47 bytes in 129 msecs (HTTP/1.1 200) ...
  winston simple     error: connect ECONNREFUSED 127.0.0.1:5432
  crash openers      panic: ..., fatal error: ..., Exception in thread "main" ... (the trace joins them)

Lines that no family takes, right after one of these, continue it (JOIN_UNDETECTED): Python's
multi-line messages, Go's unindented goroutine frames.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, level_of, seconds, ts_iso, ts_no_year, ts_utc

NAME = "app_text"
LAYER = "app"
DEFAULT_COMPONENT = None
JOIN_UNDETECTED = True

_TS = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z| ?[+-]\d\d:?\d\d)?"
# longest spelling first (WARNING before WARN): the head is cut after the level word
_LEVELS = (r"(?i:trace|debug|information|info|notice|warning|warn|error|err|critical|crit|fatal|severe|alert"
           r"|emergency|emerg|panic|dpanic)\b")
# what may sit between the time and the level: [thread], "- logger -", "|", or nothing
_BETWEEN = r"(?:\[[^\]]{1,60}\]\s+|-\s+[\w.-]+\s+-\s+|\|\s+)?"
_GENERIC = rf"\[?{_TS}\]?\s+{_BETWEEN}\[?{_LEVELS}\s*\]?(?:[\s:\[|]|$)"
_KLOG = r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6}\s+\d+ [^ \]]+:\d+\] "
_LARAVEL = rf"\[{_TS}\] [\w-]+\.(?:DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL|ALERT|EMERGENCY): "
_UWSGI = r"\[pid: \d+\|app: -?\d+\|req: -?\d+/\d+\] "
_WINSTON = r"(?:error|warn|info|debug|verbose|silly|http): \S"
_CRASH = r'(?:panic: |fatal error: |Exception in thread "[^"]*" )'

SIGNATURE = rf"^(?:{_GENERIC}|{_KLOG}|{_LARAVEL}|{_UWSGI}|{_WINSTON}|{_CRASH})"

EXAMPLES = [
    ("[2024-05-07 10:55:53,434] INFO [ProducerStateManager partition=ingest-3] Wrote producer snapshot at offset "
    "184233903 with 0 producer ids in 2 ms. (kafka.log.ProducerStateManager)"),
    "E0517 15:04:22.619632 1952452992 logging_unittest.cc:253] Log every 3, iteration 19",
    ("2024-05-07T10:58:13.877Z [INFO]  expiration: revoked lease: lease_id=auth/kubernetes/dev-us-central-0/login/"
    "h8fc47b8d69b6067dfef3bfc7ce32d9b79f04c7658699678d333a6fe1ec1f94d6"),
    "2025-09-26 21:12:39,385 ERROR error message: failed to open resource",
]

_HEAD = (
    r"^(?:"
    rf"\[?{_TS}\]?\s+{_BETWEEN}\[?{_LEVELS}\s*\]?(?:\[\d+\])?(?:\s*[:|-])?\s*"   # generic (+ calico [pid])
    r"|[IWEF]\d{4} \S+\s+\d+ [^ \]]+\] "
    rf"|\[{_TS}\] [\w-]+\.[A-Z]+: "
    r"|(?:error|warn|info|debug|verbose|silly|http): "
    r")"
)


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, pid (calico/uWSGI), status and duration (uWSGI), message after the head."""
    head = text.str.slice(0, 160)
    iso = head.str.extract(rf"^\[?({_TS})", 1).str.replace(",", ".", literal=True).str.replace(
        r" ([+-]\d\d:?\d\d)$", "$1")
    status = head.str.extract(r" \(HTTP/[\d.]+ (\d{3})\)", 1)
    status = pl.coalesce(status, text.str.extract(r"=> generated \d+ bytes in \d+ \w+ \(HTTP/[\d.]+ (\d{3})\)", 1))
    uwsgi_level = (pl.when(status.cast(pl.Int16, strict=False) >= 500).then(pl.lit("error"))
                   .when(status.is_not_null()).then(pl.lit("info")).otherwise(pl.lit(None, pl.String)))
    crash = (pl.when(head.str.contains(r"^(?:panic: |fatal error: )")).then(pl.lit("fatal"))
             .when(head.str.starts_with("Exception in thread ")).then(pl.lit("error"))
             .otherwise(pl.lit(None, pl.String)))
    return {
        "ts": pl.coalesce(
            ts_iso(iso),
            ts_no_year(head.str.extract(r"^[IWEF](\d{4} \d\d:\d\d:\d\d\.\d{6}) ", 1), "%m%d %H:%M:%S%.f"),
            ts_utc(head.str.extract(r"^\[pid: [^\]]+\] .{0,200}?\[\w{3} (\w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\] ", 1),
                   "%b %e %H:%M:%S %Y"),
        ),
        "level": pl.coalesce(
            level_of(head.str.extract(rf"^\[?{_TS}\]?\s+{_BETWEEN}\[?({_LEVELS})\s*\]?(?:[\s:\[|]|$)", 1)),
            level_of(head.str.extract(r"^([IWEF])\d{4} ", 1)),
            level_of(head.str.extract(rf"^\[{_TS}\] [\w-]+\.([A-Z]+): ", 1)),
            level_of(head.str.extract(r"^(error|warn|info|debug|verbose|silly|http): ", 1)),
            uwsgi_level, crash,
        ),
        "pid": pl.coalesce(head.str.extract(r"^\S+ \S+ \[[A-Z]+\]\[(\d+)\] ", 1),
                           head.str.extract(r"^\[pid: (\d+)\|", 1)),
        "status": status.cast(pl.Int16, strict=False),
        "duration": pl.coalesce(
            seconds(text.str.extract(r"=> generated \d+ bytes in (\d+) msecs", 1), "ms"),
            seconds(text.str.extract(r"=> generated \d+ bytes in (\d+) micros", 1), "us")),
        "message": text.str.replace(_HEAD, ""),
    }


_FIELDS = (
    regex.compile(r"^(?P<time>[IWEF]\d{4} \S+)\s+(?P<thread>\d+) (?P<file>[^ \]]+):(?P<line>\d+)\] (?P<message>.*)",
                  regex.S),
    regex.compile(rf"^\[(?P<time>{_TS})\] (?P<env>[\w-]+)\.(?P<level>[A-Z]+): (?P<message>.*)", regex.S),
    regex.compile(r"^\[pid: (?P<pid>\d+)\|app: (?P<app>-?\d+)\|req: (?P<req>[-\d/]+)\] (?P<client>\S+) .*?"
                  r"\[(?P<time>[^\]]+)\] (?P<method>[A-Z]+) (?P<uri>\S+) => generated (?P<bytes>\d+) bytes in "
                  r"(?P<took>\d+ \w+) \((?P<protocol>\S+) (?P<status>\d{3})\)", regex.S),
    regex.compile(rf"^\[?(?P<time>{_TS})\]?\s+(?:\[(?P<thread>[^\]]{{1,60}})\]\s+|-\s+(?P<logger>[\w.-]+)\s+-\s+|\|\s+)?"
                  rf"\[?(?P<level>{_LEVELS})\s*\]?(?:\[(?P<pid>\d+)\])?(?:\s*[:|-])?\s*(?P<message>.*)", regex.S),
)


def fields(text: str) -> dict:
    """time, level, thread/logger/pid or klog's file:line, message (uWSGI: the request fields)."""
    for pattern in _FIELDS:
        m = pattern.match(text)
        if m:
            out = m.groupdict()
            first = out.get("message", "").split("\n", 1)[0]
            logger = regex.search(r" \(([\w.$]+)\)$", first)     # log4j's trailing (logger)
            if logger and not out.get("logger"):
                out["logger"] = logger.group(1)
            return compact(out)
    return {}
