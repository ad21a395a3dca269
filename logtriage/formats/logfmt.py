"""logfmt lines (go-kit, logrus text formatter, containerd) `key=value key="quoted value"` -> events.

Real lines:
  ts=2024-04-16T15:10:44.103611953Z caller=filetargetmanager.go:181 level=info component=logs logs_config=default msg="received file watcher event"
  time="2021-09-15T21:17:11.674149Z" level=warning msg="Failed to DeletePod in the provider" error="pod inc-1-domain-c14-ns-6/fe-inc-1-domain-c14-ns-6-5-656d9bb695-4584b is not found: PodNotFound"

A line is logfmt when it opens with two `key=value` pairs. The err/error value joins the message,
as in app_json, so rules see what went wrong.
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact, level_of, ts_iso

NAME = "logfmt"
LAYER = "app"
DEFAULT_COMPONENT = None

_KEY = r"[A-Za-z_][\w.-]*"
_VALUE = r'(?:"(?:[^"\\]|\\.)*"|[^\s"]*)'
SIGNATURE = rf"^{_KEY}={_VALUE} {_KEY}=[^\s]"

EXAMPLES = [
    ("ts=2024-04-16T15:10:44.103611953Z caller=filetargetmanager.go:181 level=info component=logs "
    'logs_config=default msg="received file watcher event"'),
    ('time="2021-09-15T21:17:11.674149Z" level=warning msg="Failed to DeletePod in the provider" error="pod '
    'inc-1-domain-c14-ns-6/fe-inc-1-domain-c14-ns-6-5-656d9bb695-4584b is not found: PodNotFound"'),
]


def _value(text: pl.Expr, keys: str) -> pl.Expr:
    """The value of the first of `keys` (an alternation), quotes removed and escapes undone."""
    raw = text.str.extract(rf'(?:^|\s)(?:{keys})=("(?:[^"\\]|\\.)*"|[^\s"]+)', 1)
    quoted = raw.str.starts_with('"')
    inner = (raw.str.slice(1).str.strip_suffix('"').str.replace_all(r'\"', '"', literal=True)
             .str.replace_all(r"\n", "\n", literal=True).str.replace_all(r"\t", "\t", literal=True)
             .str.replace_all("\\\\", "\\", literal=True))
    return pl.when(quoted).then(inner).otherwise(raw)


# msg= / message= with an unquoted value that runs to the next ` key=` (group 1 the key, 2 the value)
_BARE_MESSAGE = rf'(?:^|\s)(msg|message)=([^"\s][^=]*?)(?:\s+{_KEY}=|\s*$)'


def _message(text: pl.Expr) -> pl.Expr:
    """msg / message. Unquoted, it runs to the next ` key=` or the line's end: some formatters
    (Django's key=value handlers, shell scripts) write `message=Internal Server Error: /` bare."""
    bare = text.str.extract(_BARE_MESSAGE, 2)
    return pl.coalesce(bare, _value(text, "msg|message"))


def go_duration(expr: pl.Expr) -> pl.Expr:
    """A Go duration with one unit (`1.368313ms`, `944.101µs`, `2s`) as Float64 seconds."""
    num = expr.str.extract(r"^(\d+(?:\.\d+)?)", 1).cast(pl.Float64, strict=False)
    unit = expr.str.extract(r"^\d+(?:\.\d+)?(ns|us|µs|ms|s|m|h)$", 1)
    factor = unit.replace_strict({"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                                  "h": 3600.0}, default=None, return_dtype=pl.Float64)
    return num * factor


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts, level, message (+ err), status, duration, component (service/app)."""
    msg = _message(text)
    err = _value(text, "err|error")
    body = pl.when(err.is_not_null()).then(pl.coalesce(msg, pl.lit("")) + "\n" + err).otherwise(msg)
    return {
        "ts": ts_iso(_value(text, "ts|time|timestamp|t")),
        "level": level_of(_value(text, "level|lvl|severity")),
        "message": pl.coalesce(body, text),
        # go-kit HTTP middleware writes "POST /path (200) 1.3ms" in msg
        "status": pl.coalesce(_value(text, "status|status_code|code"), msg.str.extract(r" \((\d{3})\) \d", 1))
        .str.extract(r"^(\d{3})$", 1).cast(pl.Int16, strict=False),
        "duration": pl.coalesce(go_duration(_value(text, "duration|latency|took|elapsed")),
                                go_duration(msg.str.extract(r" \(\d{3}\) (\S+)$", 1))),
        "pid": _value(text, "pid"),
        "component": _value(text, "service|app|service_name"),
    }


_PAIR = regex.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def fields(text: str) -> dict:
    """Every key=value pair of the first line, quotes removed."""
    out: dict = {}
    for key, value in _PAIR.findall(text.split("\n", 1)[0]):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        out.setdefault(key, value)
    bare = regex.search(_BARE_MESSAGE, text.split("\n", 1)[0])
    if bare and out.get(bare[1]) == bare[2].split()[0]:
        out[bare[1]] = bare[2]
    return compact(out)
