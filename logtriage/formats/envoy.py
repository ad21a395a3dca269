"""Envoy component (application) log: `[time][thread][level][logger] [file:line] message` -> events.

Real lines (envoyproxy/envoy docs/root/configuration/other_features/dlb.rst, Apache-2.0):
  [2024-07-08 10:05:00.241][3596312][debug][config] [contrib/dlb/source/connection_balancer_impl.cc:92] dlb available resources: domains: 32, LDB queues: 32, LDB ports: 64, ES entries: 2048, Contig ES entries: 2048, LDB credits: 8192, Config LDB credits: 8192, LDB credit pools: 64
  [2024-07-08 10:10:48.099][3598062][debug][connection] [contrib/dlb/source/connection_balancer_impl.cc:283] worker_1 dlb send fd 49

Istio's pilot-agent (1.0-1.5) prefixed the lines it relayed with `[Envoy (Epoch 0)] `.

Debug logs dump headers on the lines after the event, one `'name', 'value'` pair a line
(`':status', '503'`); those lines join the event. The logger name (config, upstream, router ...) is
Envoy's subsystem, kept in fields() only: the event's component is the Envoy process itself.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, ts_utc

NAME = "envoy"
LAYER = "proxy"
DEFAULT_COMPONENT = "envoy"
NAIVE_TIME = True   # spdlog's %Y-%m-%d %T.%e carries no zone

_LEVELS = r"trace|debug|info|warning|error|critical"
_EPOCH = r"(?:\[Envoy \(Epoch \d+\)\] )?"   # pilot-agent relay prefix
_HEAD = rf"^{_EPOCH}\[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}\]\[\d+\]\[(?:{_LEVELS})\]\["
_HEADER_DUMP = r"^'[^']*', '"      # ':status', '503' under "... headers:" (debug level)

SIGNATURE = rf"{_HEAD}|{_HEADER_DUMP}"

# envoyproxy/envoy docs/root/configuration/other_features/dlb.rst (Apache-2.0)
EXAMPLES = [
    ("[2024-07-08 10:05:00.241][3596312][debug][config] [contrib/dlb/source/connection_balancer_impl.cc:92] dlb "
    "available resources: domains: 32, LDB queues: 32, LDB ports: 64, ES entries: 2048, Contig ES entries: 2048, "
    "LDB credits: 8192, Config LDB credits: 8192, LDB credit pools: 64"),
    ("[2024-07-08 10:10:48.099][3598062][debug][connection] [contrib/dlb/source/connection_balancer_impl.cc:283] "
    "worker_1 dlb send fd 49"),
]

# spdlog level names; Envoy's "critical" is its fatal level (it logs it just before aborting).
_LEVEL_MAP = {"trace": "debug", "debug": "debug", "info": "info", "warning": "warn", "error": "error",
              "critical": "fatal"}


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, message (after the [file:line] source location)."""
    return {
        "ts": ts_utc(text.str.extract(rf"^{_EPOCH}\[(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}})\]", 1), "%Y-%m-%d %H:%M:%S%.3f"),
        "level": text.str.extract(rf"^{_EPOCH}\[[^\]]+\]\[\d+\]\[({_LEVELS})\]", 1).replace_strict(
            _LEVEL_MAP, default=None, return_dtype=pl.String),
        "message": text.str.replace("^" + _EPOCH + r"\[[^\]]+\]\[\d+\]\[\w+\]\[[^\]]*\] (?:\[[^\]\s]+:\d+\] )?", ""),
    }


def continuation(text: pl.Expr) -> pl.Expr:
    """Header dump lines (`'content-type', 'text/plain'`) belong to the event that announced them."""
    return text.str.contains(_HEADER_DUMP)


_FIELDS = regex.compile(r"""
    ^(?:\[Envoy\ \(Epoch\ (?P<epoch>\d+)\)\]\ )?\[(?P<time>[^\]]+)\]\[(?P<thread>\d+)\]\[(?P<level>\w+)\]\[(?P<logger>[^\]]*)\]
    \ (?:\[(?P<source>[^\]\s]+):(?P<source_line>\d+)\]\ )?          # [file:line] unless %g:%# dropped
    (?:\[C(?P<connection_id>\d+)\](?:\[S(?P<stream_id>\d+)\])?\ ?)?  # connection / stream ids
    (?P<message>.*)
""", regex.VERBOSE)
_HEADER = regex.compile(r"^\s*'([^']*)', '(.*)'\s*$")


def fields(text: str) -> dict:
    """time, thread, level, logger (Envoy's subsystem), source, connection/stream ids, message, headers."""
    first, _, rest = text.partition("\n")
    m = _FIELDS.match(first)
    if not m:
        return {}
    out = m.groupdict()
    out["component"] = out["logger"]
    headers = {}
    for line in rest.splitlines():
        h = _HEADER.match(line)
        if h:
            headers[h.group(1)] = h.group(2)
    if headers:
        out["headers"] = headers
        if ":status" in headers:
            out["response_code"] = headers[":status"]
    return compact(out)
