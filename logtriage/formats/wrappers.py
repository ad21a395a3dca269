"""Wrappers lines arrive in (container runtime, docker, kubectl, journald, Cloud Logging) -> the inner line.

Real lines:
  2023-05-15T10:22:31.181347221Z stdout F [2023-05-15T10:22:31.181Z] "GET /status HTTP/1.1" 200 - ...
  {"log":"2016/10/25 14:49:34 [error] 54053#0: *1 open() failed\\n","stream":"stderr","time":"2016-10-25T14:49:34.123Z"}
  web-1  | 2024-04-25T05:32:35.584799505Z  * Debug mode: on           (docker compose logs -t)
  { "__CURSOR" : "s=e991...", "__REALTIME_TIMESTAMP" : "1534860261221373", "PRIORITY" : "6", ... "MESSAGE" : "GPS Reference longitude: 7.358143333" }
  {"insertId":"s=a4e3...","severity":"INFO","textPayload":"[24961]: [1-1] db=[unknown],user=[unknown] LOG:  connection received: host=127.0.0.1 port=60290","timestamp":"2020-05-02T13:28:50.382215Z"}

unwrap() adds `text` (the inner line, what detection and parsing read), `wrap_ts` (the wrapper's
own time, used when the inner line has none), `container` (when the wrapper names one),
`wrap_level` (journald PRIORITY, Cloud Logging severity) and `wrapper`; a line without a wrapper
is its own text. CRI partial lines (tag P) and docker records without a trailing newline are
joined with the record that completes them; `_phys` then counts the physical lines of each row.

`kubectl logs --timestamps` prepends an RFC 3339 time to lines that may start with their own
(hclog, supervisor lines, istio): the prefix is split off and the remainder detected; when the
remainder is no known family but the whole line is, parse_lines reads the whole line (`_outer`).
"""

from __future__ import annotations

import polars as pl

from logtriage.formats.base import level_of, syslog_severity, ts_epoch, ts_iso
from logtriage.model import UTC_DATETIME

_ANSI = r"\x1b\[[0-9;?]*[A-Za-z]"
_RFC3339_NANO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6,9}Z"
# CRI (containerd, CRI-O): time, stream, tag (F full / P partial), the line
_CRI = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (?:stdout|stderr) ([FP]) ?"
# docker json-file; the `{` may be lost in a corrupted file. The "message" spelling is a log
# shipper's rename of the same record (kept only when "stream" follows, unlike app JSON).
_DOCKER = r'^(?:\{?"log":"|\{"message":"(?:[^"\\]|\\.)*","stream":"(?:stdout|stderr)")'
_DOCKER_LOG = r'^\{?"(?:log|message)":"((?:[^"\\]|\\.)*)"'
# `docker compose logs`: service-replica, padding, "| " (colours when on a terminal)
_COMPOSE = rf"^(?:{_ANSI})*([\w.-]*[-_]\d+)(?:{_ANSI})* +(?:{_ANSI})*\|(?:{_ANSI})* ?"
# `kubectl logs --timestamps` (and `docker compose logs -t` after its prefix)
_KUBECTL = rf"^({_RFC3339_NANO}) "
_JOURNALD = r'"__REALTIME_TIMESTAMP"\s*:\s*"\d'
_GCP = r'"textPayload"\s*:\s*"'
# one cheap anchored test: does any line of the chunk look wrapped at all?
_CANDIDATE = r'^(?:\d{4}-\d\d-\d\dT|\{|"log":"|\x1b|[\w.-]*[-_]\d+ +\|)'


def _json_unescape(expr: pl.Expr) -> pl.Expr:
    return (expr.str.replace_all(r"\\u001b\[[0-9;]*[A-Za-z]", "")     # ANSI colours
            .str.replace_all(r"\\u003c", "<", literal=True).str.replace_all(r"\\u003e", ">", literal=True)
            .str.replace_all(r"\\u0026", "&", literal=True)
            .str.replace_all("\\n", "\n", literal=True).str.replace_all("\\t", "\t", literal=True)
            .str.replace_all(r'\"', '"', literal=True).str.replace_all(r"\/", "/", literal=True)
            .str.replace_all("\\\\", "\\", literal=True))


def _json_string(raw: pl.Expr, key: str) -> pl.Expr:
    return raw.str.extract(rf'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)"', 1)


def no_wrapper(df: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """The columns unwrap() adds, for lines known to carry no wrapper: text is the line itself."""
    return df.with_columns(pl.col("raw").alias("text"), pl.lit(None, dtype=UTC_DATETIME).alias("wrap_ts"),
                           pl.lit(None, dtype=pl.String).alias("container"),
                           pl.lit(None, dtype=pl.String).alias("wrap_level"),
                           pl.lit(None, dtype=pl.String).alias("wrapper"))


def has_wrapper(df: pl.DataFrame) -> bool:
    """Whether any line of `df` (column raw) is wrapped (cheap when none even looks it)."""
    if not df.select(pl.col("raw").str.contains(_CANDIDATE).any()).item():
        return False
    wrapper = unwrap(df.select("raw")).get_column("wrapper")
    return wrapper.null_count() < len(wrapper)


def unwrap(df: pl.DataFrame) -> pl.DataFrame:
    """Add text / wrap_ts / container / wrap_level / wrapper columns; join partial records."""
    raw = pl.col("raw")
    # Cheap first: most chunks have no wrapper at all (one anchored test that fails on the first chars).
    if not df.select(raw.str.contains(_CANDIDATE).any()).item():
        return no_wrapper(df)

    json_obj = raw.str.starts_with("{")
    is_cri = raw.str.contains(_CRI)
    is_docker = raw.str.contains(_DOCKER)
    is_journald = json_obj & raw.str.contains(_JOURNALD)
    is_gcp = json_obj & raw.str.contains(_GCP)
    compose_prefix = raw.str.extract(_COMPOSE, 0)
    kubectl_ts = raw.str.extract(_KUBECTL, 1)
    df = df.with_columns(
        pl.when(is_cri).then(pl.lit("cri")).when(is_docker).then(pl.lit("docker"))
        .when(is_journald).then(pl.lit("journald")).when(is_gcp).then(pl.lit("gcp"))
        .when(compose_prefix.is_not_null()).then(pl.lit("compose"))
        .when(kubectl_ts.is_not_null()).then(pl.lit("kubectl")).otherwise(None).alias("wrapper"),
    )
    w = pl.col("wrapper")
    if df.get_column("wrapper").null_count() == df.height:
        return no_wrapper(df.drop("wrapper"))

    cri_prefix = raw.str.extract(_CRI, 0)
    docker_log = _json_unescape(raw.str.extract(_DOCKER_LOG, 1))
    journald_msg = _json_unescape(_json_string(raw, "MESSAGE"))
    gcp_msg = _json_unescape(_json_string(raw, "textPayload"))
    compose_rest = raw.str.slice(compose_prefix.str.len_chars()).str.replace_all(_ANSI, "")
    compose_ts = compose_rest.str.extract(_KUBECTL, 1)
    unit = _json_string(raw, "_SYSTEMD_UNIT").str.replace(r"\.service$", "")
    df = df.with_columns(
        pl.when(w == "cri").then(raw.str.slice(cri_prefix.str.len_chars()))
        .when(w == "docker").then(docker_log)
        .when(w == "journald").then(pl.coalesce(journald_msg, raw))
        .when(w == "gcp").then(gcp_msg)
        .when(w == "compose").then(pl.when(compose_ts.is_not_null())
                                   .then(compose_rest.str.slice(compose_ts.str.len_chars() + 1))
                                   .otherwise(compose_rest))
        .when(w == "kubectl").then(raw.str.slice(kubectl_ts.str.len_chars() + 1))
        .otherwise(raw).alias("text"),
        # the line before a kubectl/compose time was split off, in case it is the line's own time
        pl.when(w == "kubectl").then(raw).when((w == "compose") & compose_ts.is_not_null()).then(compose_rest)
        .otherwise(None).alias("_outer"),
        pl.when(w == "cri").then(ts_iso(raw.str.extract(_CRI, 1)))
        .when(w == "docker").then(ts_iso(_json_string(raw, "time")))
        .when(w == "journald").then(ts_epoch(_json_string(raw, "__REALTIME_TIMESTAMP")))
        .when(w == "gcp").then(ts_iso(_json_string(raw, "timestamp")))
        .when(w == "compose").then(ts_iso(compose_ts))
        .when(w == "kubectl").then(ts_iso(kubectl_ts))
        .otherwise(None).cast(UTC_DATETIME).alias("wrap_ts"),
        pl.when(w == "docker").then(raw.str.extract(r'"(?:container_name|attrs":\{"name|container": \{ "name)"'
                                                    r'\s*:\s*"([^"]+)"', 1))
        .when(w == "journald").then(pl.coalesce(unit, _json_string(raw, "SYSLOG_IDENTIFIER")))
        .when(w == "gcp").then(_json_string(raw, "container_name"))
        .when(w == "compose").then(compose_prefix.str.replace_all(_ANSI, "").str.extract(r"^([\w.-]*?)[-_]\d+", 1))
        .otherwise(None).alias("container"),
        pl.when(w == "journald").then(syslog_severity(_json_string(raw, "PRIORITY")))
        .when(w == "gcp").then(level_of(_json_string(raw, "severity")))
        .otherwise(None).alias("wrap_level"),
        # a record that does not complete its line: CRI tag P, docker log without a final \n
        (((w == "cri") & (raw.str.extract(_CRI, 2) == "P"))
         | ((w == "docker") & ~docker_log.str.ends_with("\n"))).fill_null(False).alias("_partial"),
    )
    df = df.with_columns(pl.col("text").str.strip_chars_end("\n"))
    if df.get_column("_outer").null_count() == df.height:
        df = df.drop("_outer")
    if bool(df.get_column("_partial").any()):
        # a partial record and the ones after it up to a complete one make one line
        group = (~pl.col("_partial")).shift(1, fill_value=True).cum_sum()
        keep = [c for c in df.columns if c not in ("raw", "line", "text", "_partial")]
        line = [pl.col("line").first()] if "line" in df.columns else []   # (a sample's lines have none)
        df = (df.with_columns(group.alias("_pg"))
              .group_by("_pg", maintain_order=True)
              .agg(pl.col("raw").str.join("\n"), *line, pl.col("text").str.join(""),
                   *[pl.col(c).first() for c in keep], pl.len().cast(pl.UInt32).alias("_phys"))
              .drop("_pg"))
    return df.drop("_partial", strict=False)
