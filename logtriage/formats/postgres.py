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

from logtriage.formats.base import assumed_tz, compact, offset_minutes, ts_local, ts_no_year
from logtriage.model import UTC_DATETIME

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
    ("2020-03-11 20:40:50 CET:192.168.1.201(50906):gilles@pgbench:[12795]:FATAL:  no pg_hba.conf entry for "
    'host "192.168.1.201", user "gilles", database "pgbench", SSL off'),
    ("Feb 11 13:15:39 test-pc postgres[10808]: [1-1] db=,user=,app=,client= LOG:  listening on IPv4 address "
    '"127.0.0.1", port 5432'),
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


# what may stand before the severity in a prefix the fast way reads (others take the general way)
_BEFORE_SEVERITY = (" ", ":", "]", ")", "\t", ">", "|", ",", "-")
_BEFORE_SEVERITY_BYTES = [ord(c) for c in _BEFORE_SEVERITY]

_TS = r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)(?: ?([A-Z]{1,5}\b|[+-]\d\d(?::?\d\d)?))?"
_SEV = rf"\b({_SEVERITIES}):\s"
_SQLSTATE = r"sql_error_code = ([0-9A-Z]{5})\b"    # logplex's (Heroku) form of %e


# severity word -> level (DETAIL, HINT ... are parts of the message they follow)
_SEV_LEVEL = {"LOG": "info", "INFO": "info", "NOTICE": "info", "DEBUG": "debug", **{f"DEBUG{i}": "debug" for i in range(1, 6)},
              "WARNING": "warn", "ERROR": "error", "FATAL": "fatal", "PANIC": "fatal",
              **{c: "info" for c in _CONTINUED}}


def _level(severity: pl.Expr) -> pl.Expr:
    return severity.replace_strict(_SEV_LEVEL, default=None, return_dtype=pl.String)


def _duration(text: pl.Expr) -> pl.Expr:
    return text.str.extract(r"duration: (\d+(?:\.\d+)?) ms", 1).cast(pl.Float64, strict=False) / 1e3


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, sqlstate, statement duration and the message after the severity."""
    severity = text.str.extract(_SEV, 1)
    iso = text.str.extract(_TS, 1)
    return {
        "ts": pl.coalesce(
            ts_with_zone(iso, text.str.extract(_TS, 2)),
            ts_no_year(text.str.extract(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ", 1), "%b %e %H:%M:%S"),
        ),
        "level": _level(severity),
        "sqlstate": text.str.extract(_SQLSTATE, 1),
        "duration": _duration(text),
        "message": text.str.replace(rf"^.*?{_SEV}\s*", ""),
    }


def fast_parse(text: pl.Expr, sample: pl.Series) -> dict[str, pl.Expr] | None:
    """parse() specialised to the prefix layout of `sample` (a file's first lines), or None.

    Within one server's log the time stamp has one width and one zone (log_line_prefix and
    log_timezone are set once), so it is read by position instead of by pattern. `_ok` is False
    on lines that do not fit; those go through parse() (after detection) instead.
    """
    parts = sample.str.extract_groups(r"^(\d{4}-\d\d-\d\d([ T])\d\d:\d\d:\d\d(?:\.\d+)?)"
                                      r"( ?(?:[A-Z]{1,5}\b|[+-]\d\d(?::?\d\d)?))?")
    stamps = parts.struct.field("1")
    if stamps.null_count() or len(stamps) == 0:
        return None
    widths, seps, zones = stamps.str.len_bytes().unique(), parts.struct.field("2").unique(), parts.struct.field("3").unique()
    if len(widths) != 1 or len(seps) != 1 or len(zones) != 1:
        return None
    width, zone = int(widths[0]), zones[0]
    naive = pl.col("_naive")
    stamp = f"%Y-%m-%d{seps[0]}%H:%M:%S" + ("%.f" if width > 19 else "")
    if zone is None:
        # the time parses and no zone follows it
        stamped = naive.is_not_null() & ~text.str.slice(width, 2).str.contains(r"^ ?[A-Z+-]")
        ts = naive.dt.replace_time_zone(assumed_tz(), ambiguous="earliest", non_existent="null")
    else:
        minutes = pl.select(offset_minutes(pl.lit(zone.strip()), _TZ_MINUTES)).item()
        # a zone followed by a letter or digit would read differently by pattern ("UTCX": no zone)
        after = sample.str.slice(width + len(zone), 1).unique()
        if minutes is None or "%" in zone or len(after) != 1 or regex.match(r"[A-Za-z0-9]", after[0] or ""):
            return None
        # the zone is read as part of the time's format: a line with another zone does not parse
        width, stamp, stamped = width + len(zone), stamp + zone, naive.is_not_null()
        ts = (naive - pl.duration(minutes=minutes)).dt.replace_time_zone("UTC")
    # PostgreSQL writes the severity and ":  " (two spaces): one literal search finds its colon,
    # and the four characters before the colon name it (" LOG", "RROR", "TAIL" ...) and its length,
    # so no pattern runs. The character before the word must be one a prefix ends with (the \b of
    # the general way). str.find gives bytes and str.slice counts characters: in a block that is
    # not all ASCII, a line where the two may differ takes the general way (_ok_unicode).
    tail = pl.col("_tail")
    at = pl.col("_at")
    has_state = bool(sample.str.contains("sql_error_code = ", literal=True).any())
    return {
        # first: what the columns after share, in order
        "_naive": text.str.head(width).str.to_datetime(stamp, strict=False, time_unit="us", exact=True),
        "_colon": text.str.find(":  ", literal=True),
        "_tail": text.str.slice(pl.col("_colon") - 4, 4),
        "_word": tail.replace_strict(_TAIL_LENGTH, default=None, return_dtype=pl.Int32),
        "_at": pl.col("_colon") - pl.col("_word"),
        "_duration_at": text.str.find("duration: ", literal=True).cast(pl.Int64),
        "_ms_at": text.str.find(" ms", literal=True).cast(pl.Int64),
        # a " ms" before "duration: " (in the prefix) hides the duration's unit: the general way
        "_ok": (stamped & pl.col("_word").is_not_null()
                & text.cast(pl.Binary).bin.get(at - 1, null_on_oob=True).is_in(_BEFORE_SEVERITY_BYTES)
                & (pl.col("_duration_at").is_null() | (pl.col("_ms_at") > pl.col("_duration_at")))),
        "_ok_unicode": text.str.len_bytes() == text.str.len_chars(),
        "_cont": tail.is_in(_CONTINUED_TAILS),
        "ts": ts.dt.convert_time_zone("UTC").cast(UTC_DATETIME),
        "level": tail.replace_strict(_TAIL_LEVEL, default=None, return_dtype=pl.String),
        # the log_line_prefix is the same on every line: no %e in the first lines, none later
        "sqlstate": (text.str.extract(_SQLSTATE, 1) if has_state
                     else pl.lit(None, dtype=pl.String)),
        # PostgreSQL prints "duration: %.3f ms"; anything else there does not cast and stays null
        "duration": (text.str.slice(pl.col("_duration_at") + 10,
                                    (pl.col("_ms_at") - pl.col("_duration_at") - 10).clip(lower_bound=0))
                     .cast(pl.Float64, strict=False) / 1e3),
        "message": text.str.slice(at + pl.col("_word") + 1).str.strip_chars_start(),
    }


# the four characters before a severity's colon -> its length, level, "continues the event before".
# LOG has three letters: its key holds the character before it too (the prefix's last).
_TAILS = {sev: sev[-4:] for sev in _SEVERITIES.replace("DEBUG[1-5]?", "DEBUG|" + "|".join(f"DEBUG{i}" for i in range(1, 6)))
          .split("|") if sev != "LOG"}
_TAIL_LENGTH = {**{tail: len(sev) for sev, tail in _TAILS.items()}, **{c + "LOG": 3 for c in _BEFORE_SEVERITY}}
_TAIL_LEVEL = {**{tail: _SEV_LEVEL[sev] for sev, tail in _TAILS.items()}, **{c + "LOG": "info" for c in _BEFORE_SEVERITY}}
_CONTINUED_TAILS = [_TAILS[c] for c in _CONTINUED]


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
