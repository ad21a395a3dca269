"""HAProxy logs: httplog / tcplog lines and the proxy's own messages, bare or syslog-wrapped -> events.

Real lines:
  Feb 25 16:19:49 192.168.4.2 haproxy[7]: 141.35.244.171:53332 [25/Feb/2019:16:19:48.143] prod_http_in~ bk_admin/nginx_sonst 0/0/7/1457/1487 200 11394 - - ---- 2/1/0/0/0 0/0 {Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:65.0) Gecko/20100101 Firefox/65.0} {} "GET /admin/colt/administration?survey=130&input_stats=1&ajax=1&&ajax=1&refresh=1&ihandle=1 HTTP/1.1"
  Sep 20 15:44:23 127.0.0.1 haproxy[25457]: 127.0.0.1:40962 [20/Sep/2018:15:44:23.285] main app/<NOSRV> -1/-1/1 212 SC 1/1/0/0/0 0/0

httplog: client [accept_date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes cookies
termination_state actconn/feconn/beconn/srv_conn/retries queues {captures} "request";
tcplog: ... backend/server Tw/Tc/Tt bytes termination_state ... . A timer of -1 means that phase
was never reached. HAProxy writes to syslog (any header: rsyslog's file format, `<PRI>`, ISO
time), to stdout with `format raw` (no header at all), and in master-worker mode its alerts go to
stderr as `[WARNING]  (pid) : message`.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, seconds, syslog_severity, ts_no_year, ts_utc

NAME = "haproxy"
LAYER = "proxy"
DEFAULT_COMPONENT = "haproxy"
NAIVE_TIME = True   # accept_date and the syslog header are local time without a zone

# The proxy's own messages: bare under `log stdout format raw`, hence matched by their wording.
_EVENTS = (r"(?:Server \S+/\S+ is (?:DOWN|UP|going DOWN)|backend '?\S+?'? has no server available!"
           r"|(?:Proxy|Frontend|Backend) \S+ (?:started|stopped)|Health check for (?:backup )?server \S+/\S+ "
           r"|Connect from \S+ to \S+ |Stopping (?:proxy|frontend|backend) )")
# client:port [accept_date] - every traffic line, HTTP, TCP, SSL handshake failure or <BADREQ>.
_TRAFFIC = r"(?:\S+:\d+|unix:\d+|-:\d+) \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] \S"

SIGNATURE = (
    r"^(?:<\d{1,3}>)?"                                               # syslog PRI (stdout, UDP)
    r"(?:(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*)(?: \S+)? haproxy\[\d+\]: "
    rf"|{_TRAFFIC}|{_EVENTS}"
    r"|\[(?:NOTICE|WARNING|ALERT|EMERG)\] +(?:\d+/\d+ )?\(\d+\) : )"  # stderr, 2.x and 1.x shapes
)

EXAMPLES = [
    ("Feb 25 16:19:49 192.168.4.2 haproxy[7]: 141.35.244.171:53332 [25/Feb/2019:16:19:48.143] prod_http_in~ "
    "bk_admin/nginx_sonst 0/0/7/1457/1487 200 11394 - - ---- 2/1/0/0/0 0/0 {Mozilla/5.0 (Windows NT 6.1; Win64; "
    "x64; rv:65.0) Gecko/20100101 Firefox/65.0} {} \"GET /admin/colt/administration?survey=130&input_stats=1&"
    "ajax=1&&ajax=1&refresh=1&ihandle=1 HTTP/1.1\""),
    ("Sep 20 15:44:23 127.0.0.1 haproxy[25457]: 127.0.0.1:40962 [20/Sep/2018:15:44:23.285] main app/<NOSRV> "
    "-1/-1/1 212 SC 1/1/0/0/0 0/0"),
    "Feb 25 16:19:38 192.168.4.2 haproxy[1]: Proxy prod_http_in started.",
    "Sep 20 15:42:59 1.128.3.4 haproxy[24551]: Connect from 1.128.3.4:40780 to 1.128.3.4:5000 (main/HTTP)",
]

# syslog header up to "haproxy[pid]: ", or the stderr "[LEVEL] (pid) : " prefix
_HEADER = (r"^(?:<\d{1,3}>)?(?:(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*)"
           r"(?: \S+)? haproxy\[\d+\]: |\[[A-Z]+\] +(?:\d+/\d+ )?\(\d+\) : )")
# backend/server then the timers: 5 for httplog (the last, Ta/Tt, may carry logasap's "+"), 3 for tcplog.
# httplog with a custom log-format may put a field (the Host header) between them.
_TIMERS = r" [^\s/]+/\S+(?: \S+)? (?:-?\d+/){2}(?:-?\d+/-?\d+/)?\+?(-?\d+) "
# httplog's five timers then the status; tcplog has bytes where this would be
_HTTP_STATUS = r" (?:-?\d+/){4}\+?-?\d+ (\d{3}) "
# termination state right before actconn/feconn/beconn/srv_conn/retries
_STATE = r" ([A-Za-z-]{4}|[A-Za-z-]{2}) \d+/\d+/\d+/\d+/\+?\d+ "


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, pid, status, flags (termination state), duration (Ta/Tt), upstream."""
    body = text.str.replace(_HEADER, "")
    state = text.str.extract(_STATE, 1)
    server = text.str.extract(r"\] \S+ ([^\s/]+/[^\s/]+) ", 1)
    status_line = text.str.extract(r"(?:^| )((?:Server|Health check for (?:backup )?server) [^\s/]+/[^\s/,]+)", 1)
    word = text.str.extract(r"^\[([A-Z]+)\] ", 1)
    down = text.str.contains(r" is (?:going )?DOWN\b|Health check for (?:backup )?server \S+ failed| has no server available!")
    return {
        "ts": pl.coalesce(
            ts_utc(text.str.extract(r" \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] ", 1), "%d/%b/%Y:%H:%M:%S%.3f"),
            ts_no_year(text.str.extract(r"^(?:<\d{1,3}>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ", 1), "%b %e %H:%M:%S"),
            ts_utc(text.str.extract(r"^(?:<\d{1,3}>)?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", 1), "%Y-%m-%dT%H:%M:%S"),
        ),
        # syslog PRI when present, else the stderr word ([ALERT] is HAProxy's error level), else the wording
        "level": pl.coalesce(
            syslog_severity(text.str.extract(r"^<(\d{1,3})>", 1).cast(pl.Int32, strict=False) % 8),
            word.replace_strict({"NOTICE": "info", "WARNING": "warn", "ALERT": "error", "EMERG": "fatal"},
                                default=None, return_dtype=pl.String),
            pl.when(text.str.contains(r"no server available!")).then(pl.lit("error"))
            .when(down).then(pl.lit("warn")),
        ),
        "pid": text.str.extract(r"(?:haproxy\[|^\[[A-Z]+\] +(?:\d+/\d+ )?\()(\d+)[\])]", 1),
        "status": text.str.extract(_HTTP_STATUS, 1).cast(pl.Int16, strict=False),
        # The whole state, plus its session part (who ended it, in which phase) as its own token
        # when the cookie part follows: "SC--" -> "SC--,SC", so a rule's `flags = ["SC"]` holds for
        # httplog ("SC--", "SCNN") and tcplog ("SC") alike; "--NI" (a normal end) stays as it is.
        "flags": pl.when(state.str.contains(r"^-+$")).then(None)
        .when((state.str.len_chars() == 4) & ~state.str.starts_with("--"))
        .then(pl.concat_str([state, pl.lit(","), state.str.slice(0, 2)]))
        .otherwise(state),
        "duration": seconds(text.str.extract(_TIMERS, 1), "ms"),
        "upstream": pl.coalesce(server, status_line.str.extract(r"(\S+)$", 1)),
        "message": body,
    }


_TRAFFIC_FIELDS = regex.compile(r"""
    (?P<client>\S+):(?P<client_port>\d+)\ \[(?P<accept_date>[^\]]+)\]
    \ (?:
        (?P<frontend>[^\s/]+)/(?P<bind>[^\s:]+):\ (?P<message>.*)                   # SSL handshake failure
      | (?P<frontend>\S+?)(?P<ssl>~)?\ (?P<backend>[^\s/]+)/(?P<server>\S+)
        (?:\ (?P<custom>[^\s/]+(?=\ -?\d+/)))?
        \ (?:                                                                          # httplog
            (?P<TR>-?\d+)/(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tr>-?\d+)/(?P<Ta>\+?-?\d+)
            \ (?P<status>-?\d+)\ (?P<bytes_read>\+?\d+)\ (?P<captured_request_cookie>\S+)
            \ (?P<captured_response_cookie>\S+)\ (?P<termination_state>\S{4})
          |                                                                            # tcplog
            (?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tt>\+?-?\d+)\ (?P<bytes_read>\+?\d+)
            \ (?P<termination_state>\S{2})
        )
        \ (?P<actconn>\d+)/(?P<feconn>\d+)/(?P<beconn>\d+)/(?P<srv_conn>\d+)/(?P<retries>\+?\d+)
        \ (?P<srv_queue>\d+)/(?P<backend_queue>\d+)
        (?:\ \{(?P<captured_request_headers>[^}]*)\})?(?:\ \{(?P<captured_response_headers>[^}]*)\})?
        (?:\ "(?P<request>(?P<method>[A-Z]+)\ (?P<path>\S+)(?:\ (?P<protocol>[^"]*))?|[^"]*)")?
    )
""", regex.VERBOSE)
_HEAD = regex.compile(r"""
    ^(?:<(?P<pri>\d{1,3})>)?
    (?:(?P<syslog_time>[A-Z][a-z]{2}\ [\ \d]\d\ \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*)
       (?:\ (?P<host>\S+))?\ haproxy\[(?P<pid>\d+)\]:\ 
     |\[(?P<level>[A-Z]+)\]\ +(?:\d+/\d+\ )?\((?P<pid>\d+)\)\ :\ )?
""", regex.VERBOSE)


def fields(text: str) -> dict:
    """Header fields (syslog time, host, pid), then the httplog/tcplog fields by HAProxy's names."""
    head = _HEAD.match(text)
    out: dict = {k: v for k, v in head.groupdict().items() if v} if head else {}
    body = text[head.end():] if head else text
    m = _TRAFFIC_FIELDS.match(body)
    if m:
        out.update({k: v for k, v in m.groupdict().items() if v})
    else:
        out["message"] = body
        s = regex.search(r"(?:Server|server) (?P<backend>[^\s/]+)/(?P<server>[^\s,]+)", body)
        if s:
            out.update(s.groupdict())
        b = regex.search(r"^backend '?(?P<backend>[^\s']+)'? has no server available", body)
        if b:
            out.update(b.groupdict())
        r = regex.search(r"reason: (?P<reason>[^,]+)", body)
        if r:
            out.update(r.groupdict())
    return compact(out)
