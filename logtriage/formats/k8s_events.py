"""Kubernetes events as `kubectl get events` and `kubectl describe` print them -> events.

Real lines:
  4m37s       Normal   Pulling                   pod/nginx-deployment-7759cfdc55-2xczh    Pulling image "nginx:1.7.9"
    Warning  BackOff    4m53s (x72 over 20m)  kubelet            Back-off restarting failed container manager

The table headers (`Events:`, `Type  Reason  Age  From  Message`, `LAST SEEN  TYPE ...`, the `----`
rule) are read as header events without a level, so a pasted table is read whole. Ages are
relative to when kubectl ran, so events have no timestamp. The message is `Reason: Message` (a
rule can look for `BackOff` or `OOMKilling` as easily as for the text).
"""

from __future__ import annotations

import polars as pl
import regex

from logtriage.formats.base import compact

NAME = "k8s_events"
LAYER = "system"
DEFAULT_COMPONENT = "kubernetes"

_AGE = r"(?:(?:\d+[smhdy])+|<unknown>|<invalid>)"
_TYPE = r"(?:Normal|Warning)"

# `kubectl get events [-A] [-o wide]`: [NAMESPACE] LAST SEEN TYPE REASON OBJECT MESSAGE
_GET = rf"^(?:[a-z0-9][\w.-]* +)?{_AGE} +{_TYPE} +\w+ +[\w.-]+/\S+ +"
# `kubectl describe ...` Events: Type Reason Age From Message (Age may carry "(x72 over 20m)")
_DESCRIBE = rf"^ +{_TYPE} +\w+ +{_AGE}(?: \(x\d+ over {_AGE}\))? +\S"
_HEADERS = r"^(?:Events:(?:\s+<none>)?\s*$| +Type +Reason +Age +From +Message\s*$| +-{4} +-{6} +-{3}|(?:NAMESPACE +)?LAST SEEN +TYPE +REASON +OBJECT)"

SIGNATURE = rf"(?:{_GET}|{_DESCRIBE}|{_HEADERS})"

EXAMPLES = [
    ('4m37s       Normal   Pulling                   pod/nginx-deployment-7759cfdc55-2xczh    Pulling image '
    '"nginx:1.7.9"'),
    "  Warning  BackOff    4m53s (x72 over 20m)  kubelet            Back-off restarting failed container manager",
]

_GET_ROW = (rf"^(?:(?P<namespace>[a-z0-9][\w.-]*) +)?(?P<age>{_AGE}) +(?P<type>{_TYPE}) +(?P<reason>\w+) +"
            r"(?P<object>[\w.-]+/\S+) +(?P<message>.*)$")
_DESCRIBE_ROW = (rf"^ +(?P<type>{_TYPE}) +(?P<reason>\w+) +(?P<age>{_AGE})(?: \(x(?P<count>\d+) over "
                 rf"(?P<over>{_AGE})\))? +(?P<source>\S+(?:, \S+)?) +(?P<message>.*)$")


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: level (Warning -> warn, Normal -> info), component (the object), message."""
    kind = text.str.extract(rf"^(?:[a-z0-9][\w.-]* +)?{_AGE}(?: \(x\d+ over {_AGE}\))? +({_TYPE}) ", 1)
    kind = pl.coalesce(kind, text.str.extract(rf"^ +({_TYPE}) +\w+ +{_AGE}", 1))
    get_reason = text.str.extract(rf"{_TYPE} +(\w+) +[\w.-]+/\S+ +", 1)
    get_msg = text.str.extract(rf"{_TYPE} +\w+ +[\w.-]+/\S+ +(.*)$", 1)
    obj = text.str.extract(rf"{_TYPE} +\w+ +[\w.-]+/(\S+) +", 1)
    desc_reason = text.str.extract(rf"^ +{_TYPE} +(\w+) +", 1)
    desc_msg = text.str.extract(rf"^ +{_TYPE} +\w+ +{_AGE}(?: \(x\d+ over {_AGE}\))? +\S+(?:, \S+)? +(.*)$", 1)
    return {
        "level": kind.replace_strict({"Warning": "warn", "Normal": "info"}, default=None, return_dtype=pl.String),
        "component": obj,
        "message": pl.coalesce(get_reason + ": " + get_msg, desc_reason + ": " + desc_msg,
                               text.str.strip_chars()),
    }


def fields(text: str) -> dict:
    """type, reason, age, object or source, count, namespace and message of one table row."""
    for pattern in (_GET_ROW, _DESCRIBE_ROW):
        m = regex.match(pattern, text)
        if m:
            return compact(m.groupdict())
    return {}
