"""syslog: RFC 3164 / RFC 5424 lines, supervisor and journal-style `prog[pid]: msg`, kernel lines -> events.

Real lines:
  Mar 24 14:02:51 bigproduct-web1 automount[7999]: lookup(file): lookup for opt failed
  2026-11-21T10:17:23.275Z supervisor[9294]: shop-api.service: Main process exited, code=exited, status=70

Also read: `<34>1 2003-10-11T22:14:15.003Z host app procid msgid [sd] msg` (RFC 5424, the level
from PRI), rsyslog's ISO prefix `2026-11-21T10:17:23+00:00 host prog[pid]: msg`, dmesg
`[12345.678901] msg`, and the kernel lines journald passes on bare (`AVC apparmor=...`,
`audit: type=1400 ...`, `Out of memory: Killed process 1234 (java)`). RFC 3164 carries no level:
kernel OOM kills, failed units and non-zero exits are marked error, the rest stay without one.
TAB-indented continuation lines (macOS ASL) join the line before (the framework does that).
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, syslog_severity, ts_iso, ts_no_year

NAME = "syslog"
LAYER = "system"
DEFAULT_COMPONENT = None

_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d"
_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)"
_PROG = r"[\w./@()-]{1,64}"

SIGNATURE = (
    r"^(?:"
    rf"(?:<\d{{1,3}}>)?{_MON} (?:\S+ {_PROG}(?:\[\d+\])?: |(?:\S+ )?--- last message repeated)"  # RFC 3164
    rf"|(?:<\d{{1,3}}>)?{_ISO} (?:[\w.-]+ )?{_PROG}\[\d+\]: "          # rsyslog ISO, supervisor (no host)
    rf"|{_ISO} \S+ {_PROG}: "                                      # rsyslog ISO, tag without pid
    r"|<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ "                           # RFC 5424
    r"|\[ *\d+\.\d{6}\] "                                         # dmesg
    r"|\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] "   # dmesg -T
    r"|AVC apparmor=|audit: type=\d+ audit\(|audit\(\d+\.\d+:\d+\): "            # kernel audit, bare
    r"|(?:Memory cgroup out of memory|Out of memory): Kill"                       # OOM killer, bare
    r")"
)

EXAMPLES = [
    "Mar 24 14:02:51 bigproduct-web1 automount[7999]: lookup(file): lookup for opt failed",
    "2026-11-21T10:17:23.275Z supervisor[9294]: shop-api.service: Main process exited, code=exited, status=70",
    ("Jan  3 09:47:02 veridian sudo: timstack : TTY=pts/6 ; PWD=/auto/wstimstack/rpms/lbuild/test ; USER=root ; "
    "COMMAND=/usr/bin/tail /var/log/messages"),
]

# The header up to the message, one alternative per layout (the message is what follows).
_HEAD = (
    r"^(?:"
    rf"(?:<\d{{1,3}}>)?{_MON} (?:\S+ {_PROG}(?:\[\d+\])?: |(?:[^\s-]\S* )?)"
    rf"|(?:<\d{{1,3}}>)?{_ISO} (?:[\w.-]+ )?{_PROG}(?:\[\d+\])?: "
    r"|<\d{1,3}>1 \S+ \S+ \S+ \S+ \S+ (?:-|(?:\[[^\]]*\])+) ?"
    r"|\[ *\d+\.\d{6}\] "
    r"|\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\] "
    r")"
)
_ERRORISH = (r"(?i)(?:\b(?:error|failed|failure|fatal|panic|segfault|oom-kill|out of memory|killed process)\b"
             r"|code=(?:killed|dumped)|code=exited, status=[1-9])")


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level (PRI, or error for failures/OOM/non-zero exits), pid, component, message."""
    head = text.str.slice(0, 300)
    pri = head.str.extract(r"^<(\d{1,3})>", 1).cast(pl.Int32, strict=False)
    message = text.str.replace(_HEAD, "")
    prog = head.str.extract(rf"^(?:<\d+>)?(?:{_MON}|{_ISO}) (?:[\w.-]+ )?({_PROG})(?:\[\d+\])?: ", 1)
    rfc5424_app = head.str.extract(r"^<\d{1,3}>1 \S+ \S+ (\S+) ", 1)
    unit = message.str.slice(0, 200).str.extract(r"(?:^|\s)([\w@-]+)\.service\b", 1)
    victim = message.str.extract(r"Kill(?:ed)? process (\d+) \(([^)]{1,64})\)", 2)
    guessed = (pl.when(message.str.slice(0, 300).str.contains(_ERRORISH)).then(pl.lit("error"))
               .when(message.str.slice(0, 200).str.contains(r"(?i)\bwarn(?:ing)?\b")).then(pl.lit("warn"))
               .otherwise(pl.lit(None, pl.String)))
    return {
        "ts": pl.coalesce(
            ts_no_year(head.str.extract(rf"^(?:<\d+>)?({_MON})", 1), "%b %e %H:%M:%S"),
            ts_iso(head.str.extract(rf"^(?:<\d+>1? ?)?({_ISO})", 1)),
        ),
        "level": pl.coalesce(syslog_severity((pri % 8).cast(pl.String)), guessed),
        "pid": pl.coalesce(message.str.extract(r"Kill(?:ed)? process (\d+) ", 1),
                           head.str.extract(rf"^(?:<\d+>)?(?:{_MON}|{_ISO}) (?:[\w.-]+ )?{_PROG}\[(\d+)\]: ", 1),
                           head.str.extract(r"^<\d{1,3}>1 \S+ \S+ \S+ (\d+) ", 1)),
        "component": pl.coalesce(victim, unit, prog.str.replace(r"\.log$", ""), rfc5424_app.replace("-", None),
                                 pl.when(head.str.contains(r"^(?:\[ *\d|\[\w{3} |AVC |audit)"))
                                 .then(pl.lit("kernel")).otherwise(None)),
        "message": message,
    }


_HEAD_FIELDS = regex.compile(
    rf"^(?:<(?P<pri>\d{{1,3}})>)?(?:1 )?(?P<time>{_MON}|{_ISO}) (?:(?P<host>\S+) )??"
    rf"(?P<program>{_PROG})(?:\[(?P<pid>\d+)\])?: (?P<message>.*)", regex.S)


def fields(text: str) -> dict:
    """time, host, program, pid, message (priority/facility/severity when a PRI is present)."""
    m = _HEAD_FIELDS.match(text)
    out: dict = m.groupdict() if m else {"message": text}
    if out.get("pri"):
        pri = int(out["pri"])
        out["facility"], out["severity"] = pri // 8, pri % 8
    oom = regex.search(r"Kill(?:ed)? process (\d+) \(([^)]+)\)", text)
    if oom:
        out["killed_pid"], out["killed_process"] = oom.group(1), oom.group(2)
    unit = regex.search(r"([\w@-]+\.service)\b", text)
    if unit:
        out["unit"] = unit.group(1)
    exit_ = regex.search(r"code=(\w+), status=(\S+)", text)
    if exit_:
        out["exit_code"], out["exit_status"] = exit_.group(1), exit_.group(2)
    return compact(out)

