"""Envoy / Istio JSON access log (`json_format`, Istio's accessLogEncoding=JSON) -> events.

Real lines: none quoted yet - the real samples read while writing this (Istio's
accessLogEncoding=JSON, an ingressgateway 503 UAEX record) are Elastic-License or issue-thread text,
which may not be copied here. One JSON object a line with keys such as start_time, method, path,
response_code, response_flags, response_code_details, duration, upstream_host, upstream_cluster.

Keys are Envoy's command operators in snake case; values may be strings ("503") or numbers (503)
depending on the version, and absent values are "-" or null.
"""

from __future__ import annotations

import polars as pl

from logtriage.formats.base import compact, json_record, seconds, ts_iso

NAME = "envoy_json"
LAYER = "proxy"
DEFAULT_COMPONENT = "envoy"

# A JSON object carrying a key only Envoy's access log has (app JSON logs have status/duration too).
SIGNATURE = (r'^\s*\{.*"(?:response_flags|upstream_cluster|upstream_transport_failure_reason'
             r'|response_code_details)"\s*:')

# Empty until a permissively licensed real line is found (tests/fixtures/formats/README.md).
EXAMPLES: list[str] = []
# The real samples we have (Istio JSON access logs in ../shared/corpus) may not be copied here, and
# no Envoy binary is packaged for this machine to produce our own; the corpus test covers them.
EXAMPLES_MISSING = "no real Envoy JSON line under a licence we may ship, and no Envoy binary to produce one"


def _value(text: pl.Expr, key: str, pattern: str = r'[^"]*') -> pl.Expr:
    """One key's string or number value (quotes dropped); "-" and null become null."""
    v = text.str.extract(rf'"{key}"\s*:\s*"?({pattern})', 1)
    return pl.when((v != "-") & (v != "")).then(v)


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    """Hot columns: ts (start_time), status, flags, duration (ms), upstream (upstream_host)."""
    return {
        "ts": ts_iso(_value(text, "start_time")),
        "status": _value(text, "response_code", r"\d+").cast(pl.Int16, strict=False),
        "flags": _value(text, "response_flags"),
        "duration": seconds(_value(text, "duration", r"\d+"), "ms"),
        "upstream": _value(text, "upstream_host"),
        "message": text,
    }


def fields(text: str) -> dict:
    """The record's keys as logged (Envoy command-operator names), without "-"/null values."""
    record = json_record(text)
    if record is None:
        return {}
    out = compact(record)
    if isinstance(out.get("response_flags"), str):
        out["response_flags_list"] = out["response_flags"].split(",")
    return out
