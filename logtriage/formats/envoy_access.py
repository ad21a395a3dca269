"""Envoy default text access log, Istio's default access log, Ambassador's `ACCESS` lines -> events.

Real lines (istio/istio.io docs, Apache-2.0):
  [2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default
  [2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 3 1 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "127.0.0.1:80" inbound|8000|| 127.0.0.1:41854 10.44.1.27:80 10.44.1.23:37652 outbound_.8000_._.httpbin.foo.svc.cluster.local default

The shapes differ only between RESPONSE_FLAGS and BYTES_RECEIVED: nothing (Envoy's default
format), `"mixer status" "transport failure"` (Istio 1.5-1.8) or `RESPONSE_CODE_DETAILS
CONNECTION_TERMINATION_DETAILS "transport failure"` (Istio 1.9+); Istio appends the cluster and
addresses after UPSTREAM_HOST. TCP proxy lines log the request as `"- - -"` and status 0.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, seconds, ts_iso

NAME = "envoy_access"
LAYER = "proxy"
DEFAULT_COMPONENT = "envoy"

# [START_TIME] "request" RESPONSE_CODE ; Ambassador prefixes its access lines with "ACCESS ".
SIGNATURE = r'^(?:ACCESS )?\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)\] "[^"]*" \d{1,3} '

# istio/istio.io content/en/docs/tasks/observability/logs/access-log/index.md (Apache-2.0)
EXAMPLES = [
    ('[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" '
    '"curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" '
    'outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default'),
    ('[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 3 1 "-" '
    '"curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "127.0.0.1:80" '
    'inbound|8000|| 127.0.0.1:41854 10.44.1.27:80 10.44.1.23:37652 '
    'outbound_.8000_._.httpbin.foo.svc.cluster.local default'),
]

# `" CODE FLAGS `: the first `" digits` is the end of the request line (paths carry no `" `).
_CODE_FLAGS = r'" (\d{1,3}) ([A-Z]{2,5}(?:,[A-Z]{2,5})*|-) '
# BYTES_RECEIVED BYTES_SENT DURATION UPSTREAM_SERVICE_TIME "X-FORWARDED-FOR: the same in every shape
_COUNTERS = r' \d+ \d+ (\d+) (?:\d+|-) "'
# "UPSTREAM_HOST" is the last quoted field: at the end (Envoy) or before Istio's six unquoted ones
_UPSTREAM_HOST = r'"([^"\s]*)"(?: [^\s"]+){0,6} ?$'


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts (START_TIME), status, flags, duration, upstream (UPSTREAM_HOST)."""
    flags = text.str.extract(_CODE_FLAGS, 2)
    upstream = text.str.extract(_UPSTREAM_HOST, 1)
    return {
        "ts": ts_iso(text.str.extract(r"^(?:ACCESS )?\[([^\]]+)\]", 1)),
        "status": text.str.extract(_CODE_FLAGS, 1).cast(pl.Int16, strict=False),
        "flags": pl.when(flags != "-").then(flags),
        "duration": seconds(text.str.extract(_COUNTERS, 1), "ms"),
        "upstream": pl.when(upstream != "-").then(upstream),
        "message": text,
    }


_FIELDS = regex.compile(r'''
    ^(?:ACCESS\ )?\[(?P<start_time>[^\]]+)\]
    \ "(?P<method>\S+)\ (?P<path>\S+)\ (?P<protocol>[^"]*)"
    \ (?P<response_code>\d+)\ (?P<response_flags>\S+)
    (?:\ (?P<response_code_details>[^\s"]+)\ (?P<connection_termination_details>[^\s"]+))?   # Istio 1.9+
    (?:\ "(?P<istio_mixer_status>[^"]*)"(?=\ ")|)                                            # Istio 1.5-1.8
    (?:\ "(?P<upstream_transport_failure_reason>[^"]*)")?                                   # Istio
    \ (?P<bytes_received>\d+)\ (?P<bytes_sent>\d+)\ (?P<duration>\d+)\ (?P<upstream_service_time>\S+)
    \ "(?P<x_forwarded_for>[^"]*)"\ "(?P<user_agent>[^"]*)"\ "(?P<request_id>[^"]*)"
    \ "(?P<authority>[^"]*)"\ "(?P<upstream_host>[^"]*)"
    (?:\ (?P<upstream_cluster>\S+)\ (?P<upstream_local_address>\S+)\ (?P<downstream_local_address>\S+)
       \ (?P<downstream_remote_address>\S+)\ (?P<requested_server_name>\S+)(?:\ (?P<route_name>\S+))?)?
''', regex.VERBOSE)


def fields(text: str) -> dict:
    """Every field of the line, named after Envoy's command operators (response_flags, upstream_host ...)."""
    m = _FIELDS.match(text.replace("\n", ""))
    if not m:
        return {}
    out = compact(m.groupdict())
    if "response_flags" in out:
        out["response_flags_list"] = out["response_flags"].split(",")
    return out
