"""PostgreSQL stderr log with any common log_line_prefix, syslog- or logplex-wrapped -> events.

Real lines:
  2026-11-21 10:12:38.313 UTC [24935] LOG:  listening on IPv4 address "127.0.0.1", port 28042
  2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba.conf entry for host "192.168.1.201"
  Feb 11 13:15:39 test-pc postgres[10808]: [1-1] db=,user=,app=,client= LOG:  listening on IPv4 address "127.0.0.1", port 5432
  2019-03-14T00:22:56+00:00 app[postgres.4882]: [GREEN] [15-2]  sql_error_code = 00000 DETAIL:  Process holding the lock: 4821.

DETAIL / HINT / STATEMENT / CONTEXT / QUERY / LOCATION lines, syslog's [N-2] continuation lines and
TAB-indented statement text join the message they follow.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, level_of, offset_minutes, seconds, ts_local, ts_no_year

NAME = "postgres"
LAYER = "db"
DEFAULT_COMPONENT = "postgres"
JOIN_UNDETECTED = True   # statement text continued on unprefixed lines belongs to the event before

_SEVERITIES = r"LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|DETAIL|HINT|STATEMENT|CONTEXT|QUERY|LOCATION"
_CONTINUED = ("DETAIL", "HINT", "STATEMENT", "CONTEXT", "QUERY", "LOCATION")

SIGNATURE = (
    r"^(?:(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d"                    # %m / %t prefixes (and logplex ISO)
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ postgres(?:ql)?\[\d+\]:"   # syslog
    r"|\[\d+\]: \[\d+-\d+\])"                                       # Cloud SQL textPayload (no time)
    rf".{{0,240}}?\b(?:{_SEVERITIES}):\s"
    # syslog's continuation lines [N-2], [N-3] ... carry no severity (else syslog would take them)
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ postgres(?:ql)?\[\d+\]: \[\d+-\d+\] )"
)

EXAMPLES = [
    '2026-11-21 10:12:38.313 UTC [24935] LOG:  listening on IPv4 address "127.0.0.1", port 28042',
    "2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba.conf entry for "
    'host "192.168.1.201", user "gilles", database "pgbench", SSL off',
    "Feb 11 13:15:39 test-pc postgres[10808]: [1-1] db=,user=,app=,client= LOG:  listening on IPv4 address "
    '"127.0.0.1", port 5432',
]

# Zone abbreviations PostgreSQL prints with %t/%m (log_timezone), as UTC offsets.
TZ_ABBREV = {
    "UTC": "+00:00", "GMT": "+00:00", "Z": "+00:00", "WET": "+00:00", "WEST": "+01:00", "BST": "+01:00",
    "CET": "+01:00", "CEST": "+02:00", "MET": "+01:00", "MEST": "+02:00", "EET": "+02:00",
    "EEST": "+03:00", "MSK": "+03:00", "IST": "+05:30", "JST": "+09:00", "KST": "+09:00",
    "AEST": "+10:00", "AEDT": "+11:00", "ACST": "+09:30", "AWST": "+08:00", "NZST": "+12:00",
    "NZDT": "+13:00", "EST": "-05:00", "EDT": "-04:00", "CST": "-06:00", "CDT": "-05:00",
    "MST": "-07:00", "MDT": "-06:00", "PST": "-08:00", "PDT": "-07:00", "AKST": "-09:00",
    "AKDT": "-08:00", "HST": "-10:00", "BRT": "-03:00", "ART": "-03:00", "SGT": "+08:00",
    "HKT": "+08:00", "WIB": "+07:00",
}


_TZ_MINUTES = {name: (-1 if off[0] == "-" else 1) * (int(off[1:3]) * 60 + int(off[4:6]))
               for name, off in TZ_ABBREV.items()}


def ts_with_zone(stamp: pl.Expr, zone: pl.Expr) -> pl.Expr:
    """`2024-06-27 00:00:07[.123]` + zone (`CEST`, `+03`, `-0500`, null) -> UTC (null zone: --tz)."""
    return ts_local(stamp, offset_minutes(zone, _TZ_MINUTES))


_TS = r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)(?: ?([A-Z]{1,5}\b|[+-]\d\d(?::?\d\d)?))?"
_SEV = rf"\b({_SEVERITIES}):\s"


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, pid, sqlstate, statement duration and the message after the severity."""
    severity = text.str.extract(_SEV, 1)
    iso = text.str.extract(_TS, 1)
    return {
        "ts": pl.coalesce(
            ts_with_zone(iso, text.str.extract(_TS, 2)),
            ts_no_year(text.str.extract(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ", 1), "%b %e %H:%M:%S"),
        ),
        "level": level_of(severity.replace({"DETAIL": "info", "HINT": "info", "STATEMENT": "info",
                                            "CONTEXT": "info", "QUERY": "info", "LOCATION": "info"})),
        "pid": text.str.extract(r"(?:\[|postgres(?:ql)?\[|postgres\.)(\d+)\]", 1),
        "sqlstate": text.str.extract(r"sql_error_code = ([0-9A-Z]{5})\b", 1),
        "duration": seconds(text.str.extract(r"duration: (\d+(?:\.\d+)?) ms", 1), "ms"),
        "message": text.str.replace(rf"^.*?{_SEV}\s*", ""),
    }


def continuation(text: pl.Expr) -> pl.Expr:
    """DETAIL/HINT/STATEMENT/... lines, and syslog continuation numbering [N-2], [N-3] ..."""
    sev = text.str.extract(_SEV, 1)
    return sev.is_in(_CONTINUED) | text.str.contains(r"\]: \[\d+-(?:[2-9]|\d\d+)\] ")


_PREFIX_FIELDS = regex.compile(r"""
    (?:(?P<user>[\w\[\]-]*)@(?P<database>[\w\[\]-]*)[\s:])
  | (?:\b(?:user|usr)=(?P<user>[^,\s]*))
  | (?:\b(?:db|database)=(?P<database>[^,\s]*))
  | (?:\b(?:app|appli)=(?P<application>[^,\s]*))
  | (?:\b(?:client|host)=(?P<client>[^,\s]*))
""", regex.VERBOSE)
_HEAD = regex.compile(rf"^(?P<prefix>.*?)\b(?P<severity>{_SEVERITIES}):\s+(?P<message>.*)", regex.S)


def fields(text: str) -> dict:
    """severity, message, pid, user, database, application, client, and joined DETAIL/HINT/... parts."""
    first, _, rest = text.partition("\n")
    m = _HEAD.match(first)
    if not m:
        return {}
    out: dict = {"severity": m["severity"], "message": m["message"]}
    prefix = m["prefix"]
    pid = regex.search(r"(?:\[|postgres(?:ql)?\[|postgres\.)(\d+)\]", prefix)
    if pid:
        out["pid"] = pid.group(1)
    for pm in _PREFIX_FIELDS.finditer(prefix):
        for k, v in pm.groupdict().items():
            if v and v not in ("[unknown]",):
                out.setdefault(k, v)
    for line in rest.splitlines():
        cm = _HEAD.match(line)
        if cm and cm["severity"] in _CONTINUED:
            key = cm["severity"].lower()
            out[key] = (out[key] + "\n" + cm["message"]) if key in out else cm["message"]
        elif line.strip():
            last = next((k for k in ("statement", "query", "context", "detail") if k in out), "message")
            out[last] = out[last] + "\n" + line.strip()
    dur = regex.search(r"duration: (\d+(?:\.\d+)?) ms", m["message"])
    if dur:
        out["duration_ms"] = float(dur.group(1))
    return compact(out)
