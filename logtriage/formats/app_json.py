"""Application JSON lines (structlog, logrus, zap, pino, bunyan, ECS, python-json-logger ...) -> events.

Real lines:
  {"timestamp": "2026-11-21T10:12:39.379Z", "level": "INFO", "logger": "shop-api", "msg": "starting shop-api version 1.8.2", "pid": 24960}
  {"level":"info","time":1669574907327,"pid":1,"hostname":"h","msg":"request completed"}

Keys are found under their usual names: time/timestamp/ts/@timestamp, level/severity/log.level,
msg/message, error/err/exception/stack. The error and exception text join the message, so rules
see what went wrong, not only that something did.
"""

from __future__ import annotations

import polars as pl

from logtriage.formats.base import compact, json_record, level_numeric, level_of, seconds, ts_epoch, ts_iso

NAME = "app_json"
LAYER = "app"
DEFAULT_COMPONENT = None

SIGNATURE = r'^\s*\{\s*"[^"]+"\s*:'

EXAMPLES = [
    ('{"timestamp": "2026-11-21T10:12:39.379Z", "level": "INFO", "logger": "shop-api", "msg": '
    '"starting shop-api version 1.8.2", "pid": 24960}'),
    '{"level":30,"time":1531171074631,"msg":"hello world","pid":657,"hostname":"Davids-MBP-3.fritz.box"}',
]


def _string(keys: str) -> str:
    """Pattern capturing the JSON string value of the first of `keys` (an alternation)."""
    return rf'"(?:{keys})"\s*:\s*"((?:[^"\\]|\\.)*)"'


def _unescape(expr: pl.Expr) -> pl.Expr:
    return (expr.str.replace_all("\\n", "\n", literal=True).str.replace_all("\\t", "\t", literal=True)
            .str.replace_all(r'\"', '"', literal=True).str.replace_all("\\\\", "\\", literal=True))


_TS_KEYS = r"timestamp|@timestamp|time|ts|t|date|datetime|asctime|eventTime"
_LEVEL_KEYS = r"level|severity|log\.level|lvl|levelname|loglevel|@l"
_MSG_KEYS = r"msg|message|@message|@m|event|log"
_ERR_KEYS = r"error|err|error\.message|exception|exc_info|exc|stack|stack_trace|stacktrace|error\.stack_trace|trace"
_SERVICE_KEYS = r"service|service\.name|service_name|app|application|container_name|k8s_container"


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, message (+ error/exception text), status, duration_ms, component."""
    # log4j2/Elasticsearch JSON writes a decimal comma: "2019-01-10T10:46:55,705+0100"
    ts_str = text.str.extract(_string(_TS_KEYS), 1).str.replace(r"(:\d\d),(\d)", "$1.$2")
    ts_num = text.str.extract(rf'"(?:{_TS_KEYS})"\s*:\s*(\d+(?:\.\d+)?)', 1)
    level_str = text.str.extract(_string(_LEVEL_KEYS), 1)
    level_num = text.str.extract(rf'"(?:{_LEVEL_KEYS})"\s*:\s*(\d+)', 1)
    msg = _unescape(text.str.extract(_string(_MSG_KEYS), 1))
    err = _unescape(text.str.extract(_string(_ERR_KEYS), 1))
    exc = _unescape(text.str.extract(_string(r"exception|exc_info|stack|stack_trace|stacktrace"), 1))
    body = pl.when(err.is_not_null()).then(pl.coalesce(msg, pl.lit("")) + "\n" + err).otherwise(msg)
    body = pl.when(exc.is_not_null() & (exc != err)).then(body + "\n" + exc).otherwise(body)
    return {
        "ts": pl.coalesce(ts_iso(ts_str), ts_epoch(ts_num)),
        "level": pl.coalesce(level_of(level_str), level_numeric(level_num)),
        "message": pl.coalesce(body, text),
        "status": text.str.extract(r'"(?:status|status_code|statusCode|http\.status_code|response_code)"\s*:\s*'
                                   r'"?(\d{3})\b', 1).cast(pl.Int16, strict=False),
        "duration": seconds(text.str.extract(r'"(?:duration_ms|elapsed_ms|took_ms|latency_ms|response_time_ms)"'
                                             r'\s*:\s*"?(\d+(?:\.\d+)?)', 1), "ms"),
        "pid": text.str.extract(r'"pid"\s*:\s*"?(\d+)', 1),
        "component": text.str.extract(_string(_SERVICE_KEYS), 1),
    }


def fields(text: str) -> dict:
    """The JSON object, nested objects flattened with dots (first physical line of the event)."""
    obj = json_record(text.split("\n", 1)[0], text)
    if obj is None:
        return {}
    out: dict = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict) and prefix.count(".") < 3:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value

    walk("", obj)
    return compact(out)
