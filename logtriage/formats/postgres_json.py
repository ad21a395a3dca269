"""PostgreSQL jsonlog (PG 15+) and CloudNativePG's JSON records -> events.

Real lines:
  {"timestamp":"2024-06-27 00:00:07.369 CEST","pid":58151,"session_id":"667c8f67.e327","line_num":1,"session_start":"2024-06-27 00:00:07 CEST","vxid":"21/52610848","txid":3949960645,"error_severity":"LOG","message":"automatic analyze of table \"testdb.sales.tab_shop_stats\"\nI/O timings: ...","backend_type":"autovacuum worker","query_id":0}
  {"level":"info","ts":1669574907.3228729,"logger":"postgres","msg":"record","logging_pod":"myapp-pg-cluster-1","record":{"log_time":"2022-11-27 18:48:27.322 UTC","process_id":"83","connection_from":"[local]","session_id":"6383b0fb.53","session_line_num":"1","session_start_time":"2022-11-27 18:48:27 UTC","transaction_id":"0","error_severity":"LOG","sql_state_code":"00000","message":"connection received: host=[local]","backend_type":"not initialized","query_id":"0"}}

Keys differ between the two (pid/process_id, state_code/sql_state_code, timestamp/log_time);
both are read. DETAIL and HINT join the message as on the stderr log. Other CloudNativePG
operator lines (no error_severity) are app_json.
"""

from __future__ import annotations

import polars as pl

from logtriage.formats.base import compact, json_record, level_of, seconds
from logtriage.formats.postgres import ts_with_zone

NAME = "postgres_json"
LAYER = "db"
DEFAULT_COMPONENT = "postgres"

SIGNATURE = r'^\s*\{\s*"[^"]+"\s*:.*"error_severity"\s*:\s*"[A-Z]+'

EXAMPLES = [
    ('{"timestamp":"2024-06-27 00:00:07.373 CEST","pid":58151,"session_id":"667c8f67.e327","line_num":2,'
    '"session_start":"2024-06-27 00:00:07 CEST","vxid":"21/52610850","txid":0,"error_severity":"LOG",'
    '"message":"automatic vacuum of table \\"testdb.replication.tab_queue_tmp\\": index scans: 1",'
    '"backend_type":"autovacuum worker","query_id":0}'),
    ('{"level":"info","ts":1669574907.3228729,"logger":"postgres","msg":"record","logging_pod":"myapp-pg-cluster-1",'
    '"record":{"log_time":"2022-11-27 18:48:27.322 UTC","process_id":"83","connection_from":"[local]",'
    '"session_id":"6383b0fb.53","session_line_num":"1","session_start_time":"2022-11-27 18:48:27 UTC",'
    '"transaction_id":"0","error_severity":"LOG","sql_state_code":"00000","message":"connection received: '
    'host=[local]","backend_type":"not initialized","query_id":"0"}}'),
]


def _string(text: pl.Expr, keys: str) -> pl.Expr:
    raw = text.str.extract(rf'"(?:{keys})"\s*:\s*"((?:[^"\\]|\\.)*)"', 1)
    return (raw.str.replace_all(r"\n", "\n", literal=True).str.replace_all(r"\t", "\t", literal=True)
            .str.replace_all(r'\"', '"', literal=True).str.replace_all("\\\\", "\\", literal=True))


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, pid, sqlstate, duration, message (+ DETAIL / HINT)."""
    stamp = text.str.extract(r'"(?:timestamp|log_time)"\s*:\s*"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)', 1)
    zone = text.str.extract(r'"(?:timestamp|log_time)"\s*:\s*"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? ([^"]+)"', 1)
    severity = text.str.extract(r'"error_severity"\s*:\s*"([A-Z]+\d?)"', 1)
    message = _string(text, "message")
    detail = _string(text, "detail")
    hint = _string(text, "hint")
    body = pl.when(detail.is_not_null()).then(message + "\nDETAIL:  " + detail).otherwise(message)
    body = pl.when(hint.is_not_null()).then(body + "\nHINT:  " + hint).otherwise(body)
    return {
        "ts": ts_with_zone(stamp, zone),
        "level": level_of(severity),
        "pid": text.str.extract(r'"(?:pid|process_id)"\s*:\s*"?(\d+)', 1),
        "sqlstate": text.str.extract(r'"(?:state_code|sql_state_code)"\s*:\s*"([0-9A-Z]{5})"', 1),
        "duration": seconds(message.str.extract(r"^duration: (\d+(?:\.\d+)?) ms", 1), "ms"),
        "message": pl.coalesce(body, text),
    }


def fields(text: str) -> dict:
    """Every key of the record (CloudNativePG: of the nested `record`, plus logging_pod)."""
    obj = json_record(text.split("\n", 1)[0])
    if obj is None:
        return {}
    rec = obj.get("record") if isinstance(obj.get("record"), dict) else obj
    out = dict(rec)
    if rec is not obj and obj.get("logging_pod"):
        out["logging_pod"] = obj["logging_pod"]
    return compact(out)
