"""Inputs -> the analysis document (docs/json-schema.md): incidents, impact, ranked causes.

This is the whole pipeline for `analyze` and `report`: read and classify every source
(pipeline.read_events), collect what correlation needs (collect.py), find incident windows
(incidents.py), rank causes per incident (ranking.py, entities.py), and describe what else was
seen and what no rule recognised.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import polars as pl

from logtriage import __version__, formats, pipeline
from logtriage.classify.engine import Classifier, Prefilter, classify
from logtriage.classify.loader import load_rules
from logtriage.correlate import entities, incidents, ranking
from logtriage.correlate.collect import MAYBE, Collector, Digest

SCHEMA_VERSION = "1.0"
DEFAULT_TARGETS = {"error_rate": 0.001, "latency_s": 2.0}
LOOKBACK = dt.timedelta(seconds=60)   # how far before the first hot bucket a cause may start
KEY_SIGNALS = ("listening", "started", "stopping", "stopped", "exited", "restarted", "reloaded", "deployed")


def analyze(args: list[str], *, rule_dirs: list[str] | None = None, tz: str = "UTC",
            since: dt.datetime | None = None, until: dt.datetime | None = None,
            targets: dict | None = None, force_format: str | None = None,
            on_problem: Callable | None = None, builtin_rules: bool = True) -> dict:
    """Read, classify and correlate the inputs; return the analysis document."""
    targets = {**DEFAULT_TARGETS, **(targets or {})}
    rules = load_rules(rule_dirs or [], builtin=builtin_rules)
    clf = Classifier(rules, "rule")
    collector = Collector(Classifier(rules, "signal"), since=since, until=until)
    run = pipeline.Run()
    flagged_per_source: dict[str, int] = {}
    prefilter = Prefilter((clf, collector.signal_classifier))   # one keyword pass for both

    def digest(batch: pl.DataFrame) -> Digest:     # on the reader's threads
        maybe = prefilter(batch)
        return collector.digest(classify(batch, clf, maybe).with_columns(maybe.alias(MAYBE)))

    for d in pipeline.read_events(args, run=run, tz=tz, force_format=force_format, on_problem=on_problem,
                                  finish=digest):
        collector.take(d)
        for src, _rule, n in d.per_rule:
            flagged_per_source[src] = flagged_per_source.get(src, 0) + n
    data = collector.result({p.NAME: p.LAYER for p in formats.PARSERS})
    rules_by_id = {r.id: r for r in rules}
    links = ranking.load_links()

    times = pl.concat([data.activity.select("ts"), data.flagged.select("ts")]).drop_nulls()
    t0 = times["ts"].min() if times.height else None
    t1 = times["ts"].max() if times.height else None
    bucket = incidents.bucket_seconds(t0, t1)
    span = None
    if t0 is not None:
        every = f"{bucket}s"
        span = (pl.Series([t0]).dt.truncate(every)[0], pl.Series([t1]).dt.truncate(every)[0])
    windows = incidents.find_windows(data.flagged, data.access, bucket, span, data.activity)

    db_comp = _db_component(data)
    flagged = data.flagged.with_columns(ranking.blame_expr(db_comp, data.layers).alias("blame"))
    # a listen line from before --since is kept for correlation (collect.py), not reported as an event
    key_events = _key_events(data.signals if since is None else data.signals.filter(pl.col("ts") >= since))
    # when each component was last heard from, for a log silent in the whole range (collect.heard_before)
    heard = data.activity
    if data.heard_before:
        before = pl.DataFrame({"component": list(data.heard_before), "ts": list(data.heard_before.values()),
                               "len": [1] * len(data.heard_before)}, schema=data.activity.schema)
        heard = pl.concat([before, data.activity])
    doc_incidents = []
    for i, w in enumerate(windows, 1):
        lo = w.start - LOOKBACK
        ev = flagged.filter(pl.col("ts").is_between(lo, w.end))
        before = flagged.filter(pl.col("ts") < lo)
        pre_seconds = (lo - t0).total_seconds() if t0 is not None else 0.0
        cands = ranking.class_candidates(ev, before, w.start, w.end, pre_seconds, data.layers, rules_by_id)
        cands += entities.infer(ev, data.signals, heard, w.start, w.end, cands, data.layers)
        _add_own_errors(cands, data.unrecognised, data.signals, w)
        ranked = ranking.score(cands, links, w.start, w.end)
        confs = ranking.confidences(ranked)
        imp = incidents.impact(w, data.access, data.flagged, targets)
        classes = (ev.filter(pl.col("ts") >= w.start).group_by("class", "component")
                   .agg(pl.len().alias("count"), pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
                   .sort(["count", "class", "component"], descending=[True, False, False], nulls_last=True))
        doc_incidents.append({
            "id": f"I{i}",
            "start": _iso(w.start), "end": _iso(w.end),
            "duration_s": round((w.end - w.start).total_seconds(), 3),
            "severity": _severity(imp, w.errors),
            "components": sorted(set(ev["component"].to_list())),
            "classes": [{"class": c, "component": comp, "count": n, "first": _iso(f), "last": _iso(la)}
                        for c, comp, n, f, la in classes.iter_rows()],
            "impact": imp,
            "causes": [ranking.cause_dict(r, c, conf) for r, (c, conf) in enumerate(zip(ranked, confs, strict=True), 1)][:8],
            "key_events": [k for k in key_events
                           if lo.isoformat() <= (k["ts"] or "") and (k["ts"] or "") <= _iso(w.end + LOOKBACK)],
        })
    order = {"critical": 0, "major": 1, "minor": 2}
    doc_incidents.sort(key=lambda d: (order[d["severity"]], -(d["impact"]["errors"] or 0)))
    for i, d in enumerate(doc_incidents, 1):
        d["id"] = f"I{i}"

    ranked_keys = {(c["id"], c["component"]) for d in doc_incidents for c in d["causes"][:3]}
    stats = []
    for st in run.stats.values():
        s = st.as_dict()
        s["flagged"] = flagged_per_source.get(st.path, 0)
        s["component"] = _source_component(data.flagged, st.path)
        stats.append(s)
    totals = run.totals()
    totals["flagged"] = data.flagged.height
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "logtriage", "version": __version__},
        "generated_at": _iso(dt.datetime.now(dt.UTC)),
        "options": {"tz": tz, "since": _iso(since), "until": _iso(until), "targets": targets},
        "time_range": {"start": _iso(t0), "end": _iso(t1)},
        "totals": totals,
        "sources": stats,
        "problems": [str(p) for p in run.problems],
        "timeline": incidents.timeline(data.flagged, data.access, t0, t1, bucket),
        "key_events": key_events[:200],
        "incidents": doc_incidents,
        "other_findings": _other_findings(flagged, ranked_keys),
        "unrecognised": _unrecognised(data.unrecognised),
    }


RESTART_BEFORE = dt.timedelta(seconds=60)   # a start this long before a service's own errors may be their change


def _add_own_errors(cands: list, unrecognised: pl.DataFrame, signals: pl.DataFrame, w) -> None:
    """Server errors a service answered itself: its own error lines (no rule knows them) are the
    evidence that says why, beside the proxy's 500s; a start of that service shortly before the
    first of them (a release, a config change) is named in what to check first."""
    for c in cands:
        if not c.answered_for:
            continue
        own = (unrecognised.filter((pl.col("component") == c.component) & pl.col("ts").is_between(w.start, w.end))
               .sort("ts").head(2))
        extra = [{"ts": _iso(r["ts"]), "source": r["source"], "line": r["line"], "component": r["component"],
                  "class": None, "rule": None, "text": r["text"]} for r in own.iter_rows(named=True)]
        # the proxy's access times are whole seconds: the service's own first error line is the finer onset
        first = own["ts"][0] if own.height else c.onset + dt.timedelta(seconds=1)
        starts = signals.filter((pl.col("component") == c.component) & (pl.col("signal") == "started")
                                & pl.col("ts").is_between(c.onset - RESTART_BEFORE, first)).sort("ts")
        if starts.height:
            start = starts.row(-1, named=True)
            c.check_first = (f"What changed in {c.component} when it started at {start['ts']:%H:%M:%S}, just before "
                             f"its server errors began (a release, a config, a migration), and its own log "
                             "for the failing requests (the exception it logged with the 500).")
            extra.append({"ts": _iso(start["ts"]), "source": start["source"], "line": start["line"],
                          "component": start["component"], "class": None, "rule": start["rule"],
                          "text": start["raw"]})
        if extra:
            c.evidence = sorted(c.evidence[:3] + extra, key=lambda e: e["ts"] or "")[:6]


def _db_component(data) -> str | None:
    dbs = [c for c, layer in data.layers.items() if layer == "db"]
    if not dbs:
        return None
    counts = data.activity.filter(pl.col("component").is_in(dbs)).group_by("component").agg(pl.col("len").sum())
    if counts.height == 0:
        return dbs[0]
    return counts.sort(["len", "component"], descending=[True, False])["component"][0]


def _source_component(flagged: pl.DataFrame, path: str) -> str | None:
    rows = flagged.filter(pl.col("source") == path)
    return rows["component"][0] if rows.height else None


def _key_events(signals: pl.DataFrame) -> list[dict]:
    out = []
    for r in signals.filter(pl.col("signal").is_in(list(KEY_SIGNALS))).iter_rows(named=True):
        out.append({"ts": _iso(r["ts"]), "component": r["component"], "kind": r["signal"],
                    "text": (r["raw"] or "")[:300], "source": r["source"], "line": r["line"],
                    "entities": ranking.entities_of(r["entities"])})
    return out


def _severity(imp: dict, errors: int) -> str:
    rate = imp.get("error_rate") or 0.0
    n = imp.get("errors") or 0
    if rate >= 0.05 or n >= 100 or errors >= 200:
        return "critical"
    if rate >= 0.01 or n >= 10 or errors >= 20:
        return "major"
    return "minor"


def _other_findings(flagged: pl.DataFrame, ranked: set[tuple[str, str]]) -> list[dict]:
    if flagged.height == 0:
        return []
    g = (flagged.with_columns(pl.col("class").str.split("/").list.first().alias("root"))
         .group_by("root", "blame").agg(pl.len().alias("count"), pl.col("ts").min().alias("first"),
                                        pl.col("ts").max().alias("last"), pl.col("source").first(),
                                        pl.col("line").first(), pl.col("text").first())
         .sort(["count", "root", "blame"], descending=[True, False, False], nulls_last=True))   # ties: same order every run
    out = []
    for cls, comp, n, first, last, src, line, text in g.iter_rows():
        if (cls, comp) in ranked:
            continue
        out.append({"class": cls, "component": comp, "count": n, "first": _iso(first), "last": _iso(last),
                    "example": {"source": src, "line": line, "text": text}})
    return out[:30]


_MASKS = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE), "<UUID>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<IP>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.IGNORECASE), "<HEX>"),
    (re.compile(r'"[^"]{0,200}"'), '"<S>"'),
    (re.compile(r"\d+(?:\.\d+)?"), "<N>"),
]


def shape_of(message: str) -> str:
    """A message with its variable parts masked: ids, addresses, numbers, quoted strings."""
    s = message
    for pat, repl in _MASKS:
        s = pat.sub(repl, s)
    return s[:200]


def _unrecognised(un: pl.DataFrame) -> list[dict]:
    if un.height == 0:
        return []
    shapes = un.with_columns(pl.col("message").map_elements(shape_of, return_dtype=pl.String).alias("shape"))
    g = (shapes.group_by("shape").agg(pl.len().alias("count"), pl.col("component").first(),
                                       pl.col("source").first(), pl.col("line").first(), pl.col("text").first())
         .sort(["count", "shape"], descending=[True, False]).head(20))
    return [{"shape": s, "count": n, "component": c, "example": {"source": src, "line": line, "text": t}}
            for s, n, c, src, line, t in g.iter_rows()]


def _iso(t: dt.datetime | None) -> str | None:
    return incidents._iso(t)
