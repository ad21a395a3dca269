"""PgBouncer log: `time [zone] [pid] LEVEL [C-/S-0xADDR: db/user@addr:port] message` -> events.

Real lines (PgBouncer 1.18 run here; darold/pgbadger t/fixtures/pgbouncer.log.gz, PostgreSQL License):
  2026-11-21 11:19:46.320 UTC [12527] WARNING C-0x55fdb237c7c0: shop/app@127.0.0.1:42382 pooler error: password authentication failed for user "app"
  2018-09-12 16:08:54.776 3394 LOG listening on 127.0.0.1:6432

1.9 and older write `time pid LEVEL` (no zone, no brackets); later versions add the zone as
log_timezone prints it (`CET`, `AEST`, `+03`, `UTC`) and bracket the pid. `C-` is a client
connection, `S-` a server connection, followed by database/user@address:port.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact
from logtriage.formats.postgres import ts_with_zone

NAME = "pgbouncer"
LAYER = "db"
DEFAULT_COMPONENT = "pgbouncer"
NAIVE_TIME = True   # 1.9 and older print no zone

_LEVELS = r"LOG|WARNING|ERROR|FATAL|DEBUG|NOISE"
_TS = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})(?: ([A-Z]{2,5}|[+-]\d\d(?::?\d\d)?))? "

SIGNATURE = (r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(?: (?:[A-Z]{2,5}|[+-]\d\d(?::?\d\d)?))? (?:\[\d+\]|\d+) "
             rf"(?:{_LEVELS}) ")

EXAMPLES = [
    ('2026-11-21 11:19:46.320 UTC [12527] WARNING C-0x55fdb237c7c0: shop/app@127.0.0.1:42382 pooler error: '
    'password authentication failed for user "app"'),
    "2018-09-12 16:08:54.776 3394 LOG listening on 127.0.0.1:6432",
    ("2026-11-21 11:19:31.022 UTC [12527] LOG S-0x55fdb2383ea0: shop/app@127.0.0.1:28972 closing because: "
    "connect failed (age=0s)"),
]

_LEVEL_MAP = {"LOG": "info", "WARNING": "warn", "ERROR": "error", "FATAL": "fatal", "DEBUG": "debug",
              "NOISE": "debug"}
_HEAD = rf" \[?(\d+)\]? ({_LEVELS}) "


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, pid, upstream (a server connection's address), message (after the level)."""
    return {
        "ts": ts_with_zone(text.str.extract(_TS, 1), text.str.extract(_TS, 2)),
        "level": text.str.extract(_HEAD, 2).replace_strict(_LEVEL_MAP, default=None, return_dtype=pl.String),
        "pid": text.str.extract(_HEAD, 1),
        # S- lines name the PostgreSQL server PgBouncer dialled; C- lines name a client
        "upstream": text.str.extract(r" S-0x[0-9a-f]+: [^/\s]+/[^@\s]+@(\S+:\d+) ", 1),
        "message": text.str.replace(rf"^\S+ \S+(?: \S+)? \[?\d+\]? (?:{_LEVELS}) ", ""),
    }


_FIELDS = regex.compile(rf"""
    ^(?P<time>\S+\ \S+)(?:\ (?P<zone>[A-Z]{{2,5}}|[+-]\d\d(?::?\d\d)?))?\ \[?(?P<pid>\d+)\]?\ (?P<level>{_LEVELS})\ 
    (?:(?P<side>[CS])-(?P<connection>0x[0-9a-f]+):\ (?P<database>[^/\s]+)/(?P<user>[^@\s]+)@(?P<address>\S+?):(?P<port>\d+)\ )?
    (?P<message>.*)
""", regex.VERBOSE | regex.S)


def fields(text: str) -> dict:
    """time, zone, pid, level, connection side (C client / S server), database, user, address, message."""
    m = _FIELDS.match(text)
    if not m:
        return {}
    out = m.groupdict()
    if out.get("side"):
        out["side"] = {"C": "client", "S": "server"}[out["side"]]
    for key in ("database", "user"):
        if out.get(key) in ("(nodb)", "(nouser)"):
            out[key] = None
    reason = regex.search(r"closing because: (.*?)(?: \(age=\S+\))?$", out["message"])
    if reason:
        out["close_reason"] = reason.group(1)
    return compact(out)
