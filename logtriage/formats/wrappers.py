"""Wrappers lines arrive in (container runtime, docker json-file, kubectl --timestamps) -> the inner line.

Real lines:
  2023-05-15T10:22:31.181347221Z stdout F [2023-05-15T10:22:31.181Z] "GET /status HTTP/1.1" 200 - ...
  {"log":"2016/10/25 14:49:34 [error] 54053#0: *1 open() failed\\n","stream":"stderr","time":"2016-10-25T14:49:34.123Z"}

unwrap() adds `text` (the inner line, what detection and parsing read), `wrap_ts` (the wrapper's
own time, used when the inner line has none) and `container` (when the wrapper names one); a
line without a wrapper is its own text. CRI partial lines (tag P) and docker records without a
trailing newline are joined with the record that completes them.
"""

from __future__ import annotations

import polars as pl

from logtriage.formats.base import ts_iso
from logtriage.model import UTC_DATETIME

_CRI = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) ?(.*)$"
_DOCKER = r'^\{"log":"'
# `kubectl logs --timestamps`: RFC 3339 with nanoseconds and Z, then the container's own line
_KUBECTL = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6,9}Z) (.*)$"


def _json_unescape(expr: pl.Expr) -> pl.Expr:
    return (expr.str.replace_all(r"\\u001b\[[0-9;]*[A-Za-z]", "")     # ANSI colours
            .str.replace_all(r"\\n", "\n", literal=True).str.replace_all(r"\\t", "\t", literal=True)
            .str.replace_all(r'\"', '"', literal=True).str.replace_all(r"\/", "/", literal=True)
            .str.replace_all("\\\\", "\\", literal=True))


def unwrap(df: pl.DataFrame) -> pl.DataFrame:
    """Add text / wrap_ts / container / wrapper columns; join partial records."""
    raw = pl.col("raw")
    # Cheap first: most chunks have no wrapper at all.
    probe = df.head(50).get_column("raw")
    starts = probe.str.slice(0, 2)
    maybe = bool((starts.str.starts_with("{") | starts.str.contains(r"^\d\d")).any()) or df.height > 50
    if not maybe:
        return df.with_columns(raw.alias("text"), pl.lit(None, dtype=UTC_DATETIME).alias("wrap_ts"),
                               pl.lit(None, dtype=pl.String).alias("container"),
                               pl.lit(None, dtype=pl.String).alias("wrapper"))

    is_cri = raw.str.contains(_CRI)
    is_docker = raw.str.contains(_DOCKER)
    # kubectl's prefix only when the rest is not simply the line's own time + text (no double time)
    is_kubectl = raw.str.contains(_KUBECTL) & ~is_cri
    docker_log = _json_unescape(raw.str.extract(r'^\{"log":"((?:[^"\\]|\\.)*)"', 1))
    df = df.with_columns(
        pl.when(is_cri).then(pl.lit("cri")).when(is_docker).then(pl.lit("docker"))
        .when(is_kubectl).then(pl.lit("kubectl")).otherwise(None).alias("wrapper"),
    )
    w = pl.col("wrapper")
    df = df.with_columns(
        pl.when(w == "cri").then(raw.str.extract(_CRI, 4))
        .when(w == "docker").then(docker_log)
        .when(w == "kubectl").then(raw.str.extract(_KUBECTL, 2))
        .otherwise(raw).alias("text"),
        pl.when(w == "cri").then(ts_iso(raw.str.extract(_CRI, 1)))
        .when(w == "docker").then(ts_iso(raw.str.extract(r'"time":"([^"]+)"', 1)))
        .when(w == "kubectl").then(ts_iso(raw.str.extract(_KUBECTL, 1)))
        .otherwise(None).cast(UTC_DATETIME).alias("wrap_ts"),
        pl.when(w == "docker").then(raw.str.extract(r'"(?:container_name|attrs":\{"name)":"([^"]+)"', 1))
        .otherwise(None).alias("container"),
        # a record that does not complete its line: CRI tag P, docker log without a final \n
        (((w == "cri") & (raw.str.extract(_CRI, 3) == "P"))
         | ((w == "docker") & ~docker_log.str.ends_with("\n"))).fill_null(False).alias("_partial"),
    )
    df = df.with_columns(pl.col("text").str.strip_chars_end("\n"))
    if bool(df.get_column("_partial").any()):
        # a partial record and the ones after it up to a complete one make one line
        group = (~pl.col("_partial")).shift(1, fill_value=True).cum_sum()
        df = (df.with_columns(group.alias("_pg"))
              .group_by("_pg", maintain_order=True)
              .agg(pl.col("raw").str.join("\n"), pl.col("line").first(), pl.col("text").str.join(""),
                   pl.col("wrap_ts").first(), pl.col("container").first(), pl.col("wrapper").first())
              .drop("_pg"))
    return df.drop("_partial", strict=False)
