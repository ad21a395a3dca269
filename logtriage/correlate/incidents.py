"""Flagged events over time -> incident windows, and each window's impact from the access logs.

A bucket is "hot" when its error count rises clearly above the run's own baseline (the median
bucket): a steady background of errors or warnings is context, not an incident. Hot buckets
close together merge into one window; a window needs a minimum of excess errors to count, so a
run of normal traffic with an odd warning reports no incident.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import polars as pl

NICE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
MIN_EXCESS = 5            # excess error events a window needs to be an incident
MERGE_GAP_BUCKETS = 3     # hot buckets this close merge into one window ...
MERGE_GAP_SECONDS = 30    # ... or this close in time: a timeout storm comes in waves
ERROR_SHARE = 0.2         # ... or errors are at least this share of all events logged in the bucket
SUSTAIN_BUCKETS = 10      # ... or, over this many buckets around it, requests failed (5xx) ...
SUSTAIN_MIN = 5           # ... this many more than usual ...
SUSTAIN_SHARE = 0.05      # ... and at least this share of the requests


@dataclass
class Window:
    start: dt.datetime
    end: dt.datetime
    errors: int


def bucket_seconds(start: dt.datetime | None, end: dt.datetime | None, target: int = 120) -> int:
    """A round bucket size giving about `target` buckets over the run."""
    if start is None or end is None:
        return 60
    span = max((end - start).total_seconds(), 1.0)
    raw = span / target
    return next((b for b in NICE_BUCKETS if b >= raw), NICE_BUCKETS[-1])


def error_events(flagged: pl.DataFrame, access: pl.DataFrame) -> pl.DataFrame:
    """The events that count towards an incident: error/critical findings and 5xx responses."""
    errs = flagged.filter(pl.col("severity").is_in(["critical", "error"]) & pl.col("ts").is_not_null()).select("ts")
    fivexx = access.filter((pl.col("status") >= 500) & pl.col("ts").is_not_null()).select("ts")
    # a 5xx already flagged by a rule (http.5xx at error severity) must not count twice
    flagged_5xx = flagged.filter(pl.col("status").is_between(500, 599) & pl.col("severity").is_in(["critical", "error"])).height
    if flagged_5xx:
        return errs
    return pl.concat([errs, fivexx])


def find_windows(flagged: pl.DataFrame, access: pl.DataFrame, bucket: int,
                 start_end: tuple[dt.datetime, dt.datetime] | None = None,
                 activity: pl.DataFrame | None = None) -> list[Window]:
    """Time windows where error events rise above the run's baseline (over the run's whole span).

    A bucket is hot when its errors clearly exceed the baseline, or when errors are a large share
    of everything logged in it (an outage that fills the whole capture has no quiet baseline).
    """
    ev = error_events(flagged, access)
    if ev.height == 0:
        return []
    every = f"{bucket}s"
    counts = (ev.group_by(pl.col("ts").dt.truncate(every).alias("b")).len().sort("b"))
    lo, hi = start_end if start_end else (counts["b"].min(), counts["b"].max())
    full = pl.DataFrame({"b": pl.datetime_range(lo, hi, every, eager=True, time_zone="UTC")})
    counts = full.join(counts, on="b", how="left").with_columns(pl.col("len").fill_null(0))
    # the baseline: a low quantile, since an outage may fill most of the logs someone collected
    baseline = float(counts["len"].quantile(0.2, "lower") or 0.0)
    threshold = baseline + max(3.0, 3.0 * math.sqrt(baseline))
    hot_expr = pl.col("len") >= threshold
    if activity is not None and activity.height:
        per = activity.group_by(pl.col("ts").dt.truncate(every).alias("b")).agg(pl.col("len").sum().alias("all"))
        counts = counts.join(per, on="b", how="left").with_columns(pl.col("all").fill_null(0))
        hot_expr = hot_expr | ((pl.col("len") >= 2) & (pl.col("len") >= ERROR_SHARE * pl.col("all")))
    # a sparse but sustained failure of requests (a deadlock aborting one checkout every 2 s for half a
    # minute) never fills a bucket: also hot where the requests of the surrounding SUSTAIN_BUCKETS
    # buckets failed (5xx) clearly above the run's usual and at SUSTAIN_SHARE of them or more. Failed
    # requests only, so a steady stream of harmless error lines (a monitor's failed logins) is not one
    if access.height:
        reqs = (access.filter(pl.col("ts").is_not_null())
                .group_by(pl.col("ts").dt.truncate(every).alias("b"))
                .agg(pl.len().alias("req"), (pl.col("status") >= 500).sum().alias("fx")))
        counts = (counts.join(reqs, on="b", how="left")
                  .with_columns(pl.col("req").fill_null(0), pl.col("fx").fill_null(0))
                  .with_columns(pl.col("fx").rolling_sum(SUSTAIN_BUCKETS, center=True, min_samples=1).alias("rfx"),
                                pl.col("req").rolling_sum(SUSTAIN_BUCKETS, center=True, min_samples=1).alias("rreq")))
        usual = float(counts["rfx"].quantile(0.2, "lower") or 0.0)
        sustained = (pl.col("rfx") >= usual + SUSTAIN_MIN) & (pl.col("rfx") >= SUSTAIN_SHARE * pl.col("rreq"))
        # every bucket of such a stretch, not only its centres, so its failures count in full
        near = sustained.cast(pl.Int8).rolling_max(SUSTAIN_BUCKETS, center=True, min_samples=1) == 1
        hot_expr = hot_expr | (near & (pl.col("len") > baseline))
    # a bucket hot by share (not above baseline) counts all its errors
    hot = counts.filter(hot_expr).select(
        "b", pl.when(pl.col("len") >= threshold).then(pl.col("len") - baseline).otherwise(pl.col("len")).alias("x"))
    windows: list[Window] = []
    for b, x in hot.iter_rows():
        excess = int(x)
        if windows and (b - windows[-1].end).total_seconds() <= max(MERGE_GAP_BUCKETS * bucket, MERGE_GAP_SECONDS):
            w = windows[-1]
            w.end = b + dt.timedelta(seconds=bucket)
            w.errors += excess
        else:
            windows.append(Window(b, b + dt.timedelta(seconds=bucket), excess))
    windows = [w for w in windows if w.errors >= MIN_EXCESS]
    # tighten each window to the first and last error event inside it
    out = []
    for w in windows:
        inside = ev.filter(pl.col("ts").is_between(w.start, w.end, closed="left"))
        if inside.height:
            out.append(Window(inside["ts"].min(), inside["ts"].max(), w.errors))
    return out


def impact(window: Window, access: pl.DataFrame, flagged: pl.DataFrame, targets: dict) -> dict:
    """Requests, errors, latency and what was hit hardest, for one window (access logs only)."""
    req = access.filter(pl.col("ts").is_between(window.start, window.end))
    n = req.height
    errors = int(req.filter(pl.col("status") >= 500).height)
    status = {str(k): int(v) for k, v in req.group_by("status").len().sort("status").iter_rows()} if n else {}
    durations = req.get_column("duration").drop_nulls() if n else pl.Series([], dtype=pl.Float32)
    lat = None
    if len(durations):
        lat = {f"p{q}": round(float(durations.quantile(q / 100, "linear")), 4) for q in (50, 95, 99)}
    rate = (errors / n) if n else None
    out = {
        "requests": n, "errors": errors, "error_rate": round(rate, 4) if rate is not None else None,
        "status": status, "latency": lat,
        "targets": {
            "error_rate": targets["error_rate"], "latency_s": targets["latency_s"],
            "error_rate_met": (rate is not None and rate < targets["error_rate"]) if n else None,
            "latency_met": (lat["p95"] < targets["latency_s"]) if lat else None,
        },
        "endpoints": [], "upstreams": [],
    }
    # endpoints and upstreams: from the failed access-log events (extracted when collected)
    failed = flagged.filter(pl.col("ts").is_between(window.start, window.end)
                            & pl.col("format").is_in(list(_ACCESS)) & (pl.col("status") >= 500))
    ends = dict(failed.drop_nulls("endpoint").group_by("endpoint").len().iter_rows())
    ups = dict(failed.filter(pl.col("upstream").is_not_null() & (pl.col("upstream") != "-"))
               .group_by("upstream").len().iter_rows())
    out["endpoints"] = [{"endpoint": k, "errors": v} for k, v in sorted(ends.items(), key=_most_first)[:10]]
    out["upstreams"] = [{"upstream": k, "errors": v} for k, v in sorted(ups.items(), key=_most_first)[:10]]
    return out


def _most_first(kv: tuple[str, int]) -> tuple[int, str]:
    """Sort key: the highest count first, ties by name (the same order every run)."""
    return -kv[1], kv[0]


_ACCESS = ("nginx_access", "envoy_access", "envoy_json", "haproxy")


def timeline(flagged: pl.DataFrame, access: pl.DataFrame, start: dt.datetime | None, end: dt.datetime | None,
             bucket: int, max_series: int = 12) -> dict:
    """Flagged events per bucket by component and class, plus requests and 5xx per bucket."""
    if start is None or end is None:
        return {"bucket_seconds": bucket, "start": None, "end": None, "series": [], "requests": None, "errors": None}
    every = f"{bucket}s"
    lo = pl.Series([start]).dt.truncate(every)[0]
    edges = pl.datetime_range(lo, end, every, eager=True, time_zone="UTC")
    base = pl.DataFrame({"b": edges})
    series = []
    f = flagged.filter(pl.col("ts").is_not_null())
    if f.height:
        top = (f.group_by("component", "class").len()   # ties by name: the same order every run
               .sort(["len", "component", "class"], descending=[True, False, False]).head(max_series))
        for comp, cls, _n in top.iter_rows():
            c = (f.filter((pl.col("component") == comp) & (pl.col("class") == cls))
                 .group_by(pl.col("ts").dt.truncate(every).alias("b")).len())
            counts = base.join(c, on="b", how="left").get_column("len").fill_null(0).to_list()
            series.append({"component": comp, "class": cls, "counts": counts})
    requests = errors = None
    a = access.filter(pl.col("ts").is_not_null())
    if a.height:
        g = a.group_by(pl.col("ts").dt.truncate(every).alias("b")).agg(
            pl.len().alias("n"), (pl.col("status") >= 500).sum().alias("e"))
        j = base.join(g, on="b", how="left")
        requests = j.get_column("n").fill_null(0).to_list()
        errors = j.get_column("e").fill_null(0).to_list()
    return {"bucket_seconds": bucket, "start": _iso(lo), "end": _iso(end), "series": series,
            "requests": requests, "errors": errors}


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
