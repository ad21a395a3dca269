"""PostgreSQL csvlog (PG <= 12: 23 columns, PG 13: 24, PG 14+: 26) -> events.

Real lines:
  2021-02-14 10:45:48.164 UTC,"postgres","postgres",86,"172.24.0.1:48978",6028ff3a.56,6,"idle in transaction",2021-02-14 10:45:14 UTC,3/4,0,FATAL,25P03,"terminating connection due to idle-in-transaction timeout",,,,,,,,,"psql","client backend"
  "2026-05-16 05:20:03.994 UTC","health_user","health_db",1002,"192.0.2.20:54322",00000002.000003ea,2,"idle","2026-05-16 05:00:00 UTC",2/2,0,LOG,00000,"statement: SELECT example_schema.health_check()",,,,,,,,,"example healthcheck","client backend",0

A quoted field may hold newlines (a multi-line statement): the physical lines up to the one that
closes the quote belong to the record (QUOTED_MULTILINE, tracked by the framework). The first
14 columns are the same in every version; DETAIL and HINT (columns 15, 16) join the message.
"""

from __future__ import annotations

import csv
import io

import polars as pl

from logtriage.formats.base import compact, level_of, seconds
from logtriage.formats.postgres import ts_with_zone

NAME = "postgres_csv"
LAYER = "db"
DEFAULT_COMPONENT = "postgres"
QUOTED_MULTILINE = True   # a record continues while a double-quoted field is open

_Q = r'(?:"(?:[^"]|"")*"|[^,"]*)'          # one CSV field, quoted or bare
_STAMP = r'"?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?:[A-Za-z]{1,6}|[+-]\d\d(?::?\d\d)?)"?'

# log_time, user, database, pid, ... : the anchored start that tells a csvlog record from other CSV
SIGNATURE = rf'^{_STAMP},{_Q},{_Q},\d*,{_Q},[0-9a-f]+\.[0-9a-f]+,\d+,'

EXAMPLES = [
    ('2021-02-14 10:45:48.164 UTC,"postgres","postgres",86,"172.24.0.1:48978",6028ff3a.56,6,"idle in transaction",'
    "2021-02-14 10:45:14 UTC,3/4,0,FATAL,25P03,\"terminating connection due to idle-in-transaction timeout\""
    ',,,,,,,,,"psql","client backend"'),
    ('"2026-05-16 05:20:03.994 UTC","health_user","health_db",1002,"192.0.2.20:54322",00000002.000003ea,2,"idle",'
    '"2026-05-16 05:00:00 UTC",2/2,0,LOG,00000,"statement: SELECT example_schema.health_check()",,,,,,,,,'
    '"example healthcheck","client backend",0'),
]

_COLUMNS = ("log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
            "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
            "transaction_id", "error_severity", "sql_state_code", "message", "detail", "hint",
            "internal_query", "internal_query_pos", "context", "query", "query_pos", "location",
            "application_name", "backend_type", "leader_pid", "query_id")

# columns 1-13, then the message and detail/hint as far as this physical line has them
_ROW = (r'^"?(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (?P<zone>[^",]+)"?,' + rf"{_Q},{_Q},"
        rf'(?P<pid>\d*),{_Q},{_Q},{_Q},{_Q},{_Q},{_Q},{_Q},(?P<severity>[A-Z]+\d?),(?P<sqlstate>[0-9A-Z]{{5}})?,'
        r'(?:"(?P<message>(?:[^"]|"")*)(?:"|$))?'
        r'(?:,(?:"(?P<detail>(?:[^"]|"")*)")?(?:,(?:"(?P<hint>(?:[^"]|"")*)")?)?)?')


def _unquote(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_all('""', '"', literal=True)


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, pid, sqlstate, duration, message (+ DETAIL / HINT)."""
    row = text.str.extract_groups(_ROW)
    message = _unquote(row.struct.field("message"))
    detail = _unquote(row.struct.field("detail"))
    hint = _unquote(row.struct.field("hint"))
    body = pl.when(detail.is_not_null() & (detail != "")).then(message + "\nDETAIL:  " + detail).otherwise(message)
    body = pl.when(hint.is_not_null() & (hint != "")).then(body + "\nHINT:  " + hint).otherwise(body)
    return {
        "ts": ts_with_zone(row.struct.field("stamp"), row.struct.field("zone")),
        "level": level_of(row.struct.field("severity")),
        "pid": row.struct.field("pid").replace("", None),
        "sqlstate": row.struct.field("sqlstate"),
        "duration": seconds(message.str.extract(r"^duration: (\d+(?:\.\d+)?) ms", 1), "ms"),
        "message": pl.coalesce(body, text),
    }


def fields(text: str) -> dict:
    """Every column by name (23, 24 or 26 of them, by PostgreSQL version)."""
    try:
        row = next(csv.reader(io.StringIO(text)))
    except (StopIteration, csv.Error):
        return {}
    return compact(dict(zip(_COLUMNS, row, strict=False)))
