"""An incident's flagged events -> candidate root causes, scored, explained and ranked.

Candidates are the classes present in the incident, each tied to the component it blames
(a database class logged by the app blames the database), plus the incident-level causes only
correlation can establish (config.port_mismatch, service.down; see entities.py). Each is scored
from evidence a reviewer can follow:

  onset        it started before (or with) the first symptom
  depth        database, cache and system below the app, the app below the proxy
  explains     the share of the incident's other findings it explains through rules/links.toml
  specificity  a named cause beats a generic symptom (http.5xx is the least specific)
  volume       it rose above its own level before the incident (a steady background is context)
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from logtriage.classify.loader import Rule, builtin_rules_dir

WEIGHTS = {"explains": 0.30, "depth": 0.20, "onset": 0.20, "specificity": 0.15, "volume": 0.15}
EXPLAINED_FACTOR = 0.8    # score kept by a candidate that another candidate explains (links.toml)
# a class already logged at least this long before the incident's first hot bucket, at a rate the
# incident did not clearly raise, is a background the incident started beside (a monitoring agent's
# failed logins every 2 s), even when all of it falls in the look-back before the window
STEADY_LEAD_S = 20.0
ORDER_SLACK_S = 5.0       # how much earlier than its cause an effect may be logged and still be credited to it
# TAXONOMY.md defines db.slow_query as waits "where no timeout fired in the database itself": when
# the same database cancelled statements on a timeout, its lock-wait and duration lines are the
# waits that timed out, and the incident is timeout.query
SUBSUMED_BY = {"db.slow_query": "timeout.query"}
# classes that describe a server's own state (it is out of memory, full, refusing clients, restarting)
SERVER_STATE_CLASSES = ("proc.oom", "db.too_many_connections", "db.connection_terminated", "resource.disk_full")
# what a server-family client rule (redis.*) says about that server when a client logs it: its
# state, that it did not answer in time (redis-py "Timeout reading from socket": Redis stalled), or
# that it rejected the client's credentials (NOAUTH / WRONGPASS: Redis's auth, not PostgreSQL's)
SERVER_REPLY_CLASSES = SERVER_STATE_CLASSES + ("timeout.upstream", "db.auth_failed")
LAYER_DEPTH = {"proxy": 0.2, "app": 0.5, "cache": 0.8, "system": 0.8, "db": 1.0}
DB_CLASSES = ("db.too_many_connections", "db.connection_terminated", "db.auth_failed", "db.slow_query",
              "timeout.query")
SPECIFICITY = {
    "http.5xx": 0.1, "timeout.upstream": 0.35, "conn.refused": 0.4, "conn.reset": 0.4,
    "conn.reset_before_headers": 0.45, "upstream.unavailable": 0.4, "timeout.connect": 0.45,
    "health.probe_failed": 0.5, "ratelimit": 0.6, "config.port_mismatch": 0.95, "service.down": 0.9,
}
# what a class says happened, for the one-sentence explanation
PHRASES = {
    "db.too_many_connections": "{c} refused new sessions (too many clients)",
    "db.connection_terminated": "{c} terminated its sessions (shutdown, restart or recovery)",
    "db.auth_failed": "{c} rejected the application's credentials",
    "db.slow_query": "{c} ran slow or lock-blocked queries",
    "timeout.query": "{c} cancelled statements on a timeout",
    "pool.exhausted": "{c}'s connection pool had no connection to give",
    "proc.crash": "{c} crashed",
    "proc.oom": "{c} ran out of memory",
    "resource.fd_exhausted": "{c} ran out of file descriptors",
    "resource.disk_full": "{c} ran out of disk space",
    "dns.failure": "{c} could not resolve a host name",
    "tls.failure": "{c} failed TLS handshakes",
    "health.probe_failed": "{c} failed its health checks",
    "upstream.unavailable": "{c} had no healthy upstream",
    "conn.refused": "{c} had connections refused",
    "conn.reset_before_headers": "{c}'s upstream closed connections before answering",
    "conn.reset": "{c} had connections reset",
    "timeout.connect": "{c} timed out connecting",
    "timeout.upstream": "{c} timed out waiting for its upstream",
    "ratelimit": "{c} rate-limited requests",
    "http.5xx": "{c} answered with server errors",
}


def load_links(path: Path | None = None) -> dict[str, set[str]]:
    """cause -> every effect reachable through rules/links.toml (transitive)."""
    path = path or (builtin_rules_dir() / "links.toml")
    try:
        doc = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    direct: dict[str, set[str]] = {}
    for link in doc.get("link", []):
        direct.setdefault(link["cause"], set()).update(link.get("effects", []))
    closure: dict[str, set[str]] = {}
    for cause, effects in direct.items():
        seen: set[str] = set()
        todo = list(effects)
        while todo:
            e = todo.pop()
            if e in seen or e == cause:
                continue
            seen.add(e)
            todo.extend(direct.get(e, ()))
        closure[cause] = seen
    return closure


@dataclass
class Candidate:
    id: str
    component: str
    count: int
    onset: dt.datetime
    last: dt.datetime
    layer: str
    evidence: list[dict]
    rules: list[str]
    steady: bool = False
    inferred: bool = False
    phrase: str | None = None
    check_first: str = ""
    remediation: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    explains: list[dict] = field(default_factory=list)
    logged_by: list[str] = field(default_factory=list)
    answered_for: str | None = None     # the proxy whose 5xx this service answered itself (entities.blame_upstream_answers)


def root(cls: str) -> str:
    return cls.split("/", 1)[0]


def blame_expr(db_component: str | None, layers: dict[str, str]) -> pl.Expr:
    """The component a finding blames: database classes logged elsewhere blame the database.

    A server's own reply copied into a client's error (rule family = the server's log format, e.g.
    redis.oom_command_not_allowed: "OOM command not allowed when used memory > 'maxmemory'") with a
    class that describes the server's state, or the client's read timeout on that server, blames
    that server's component, when the run has exactly one component of that server's layer (the
    database classes' rule above included).
    """
    comp = pl.col("component")
    root_cls = pl.col("class").str.split("/").list.first()
    layer_of = comp.replace_strict(layers, default="app", return_dtype=pl.String)
    out = comp
    if db_component is not None:
        db_class = root_cls.is_in(list(DB_CLASSES)) & ~layer_of.is_in(["db"])
        out = pl.when(db_class).then(pl.lit(db_component)).otherwise(out)
    for family, layer in _server_families().items():
        owners = [c for c, lay in layers.items() if lay == layer]
        if len(owners) != 1:
            continue
        reply = (pl.col("rule").str.starts_with(family + ".") & root_cls.is_in(list(SERVER_REPLY_CLASSES))
                 & (layer_of != layer))
        out = pl.when(reply).then(pl.lit(owners[0])).otherwise(out)
    return out



def _server_families() -> dict[str, str]:
    """Rule family -> layer, for families named after a server's log format (redis -> cache ...)."""
    from logtriage import formats
    return {p.NAME: p.LAYER for p in formats.PARSERS if p.LAYER in ("cache", "db")}


def evidence_rows(rows: pl.DataFrame, limit: int = 5) -> list[dict]:
    """Representative lines: the first one, then the first of each other source and rule."""
    if rows.height == 0:
        return []
    picked = rows.sort("ts").unique(subset=["source", "rule"], keep="first", maintain_order=True).head(limit)
    out = []
    for r in picked.sort("ts").iter_rows(named=True):
        out.append({"ts": _iso(r["ts"]), "source": r["source"], "line": r["line"], "component": r["component"],
                    "class": r.get("class"), "rule": r.get("rule"), "text": r.get("text") or r.get("raw")})
    return out


def class_candidates(ev: pl.DataFrame, before: pl.DataFrame, window_start: dt.datetime,
                     window_end: dt.datetime, pre_seconds: float, layers: dict[str, str],
                     rules: dict[str, Rule]) -> list[Candidate]:
    """One candidate per (class, blamed component) among the incident's events."""
    out = []
    if ev.height == 0:
        return out
    ev = ev.with_columns(pl.col("class").str.split("/").list.first().alias("root"))
    before = before.with_columns(pl.col("class").str.split("/").list.first().alias("root"))
    span = max((window_end - window_start).total_seconds(), 1.0)
    for (cls, comp), rows in ev.group_by("root", "blame", maintain_order=True):
        rows = rows.sort("ts")
        n = rows.height
        pre = before.filter((pl.col("root") == cls) & (pl.col("blame") == comp)).height
        pre_rate = pre / pre_seconds if pre_seconds > 0 else 0.0
        in_rate = n / span
        steady = pre >= 3 and pre_rate >= 0.3 * in_rate or _steady_in_lookback(rows, window_start, span)
        top_rule = rows.group_by("rule").len().sort(["len", "rule"], descending=[True, False])["rule"][0]
        rule = rules.get(top_rule)
        layer = "db" if cls in DB_CLASSES else layers.get(comp, "app")
        out.append(Candidate(
            id=cls, component=comp, count=n, onset=rows["ts"][0], last=rows["ts"][-1], layer=layer,
            evidence=evidence_rows(rows), rules=rows["rule"].unique(maintain_order=True).to_list(), steady=steady,
            check_first=rule.check_first if rule else "", remediation=list(rule.remediation) if rule else [],
            logged_by=sorted(rows["component"].unique().to_list()),
        ))
    return out


def _steady_in_lookback(rows: pl.DataFrame, window_start: dt.datetime, span: float) -> bool:
    """Whether a candidate's events ran at their incident rate for STEADY_LEAD_S or more before the window.

    rows: its events in the window and the look-back before it, sorted by time. A cause that leads
    its symptoms by a few seconds (lock waits before the 504s) is not steady; one that was already
    there for a while, at a rate the incident did not raise to 3x, is background.
    """
    lead = rows.filter(pl.col("ts") < window_start)
    if lead.height < 3:
        return False
    lead_s = (window_start - lead["ts"][0]).total_seconds()
    inside = rows.height - lead.height
    return lead_s >= STEADY_LEAD_S and lead.height / lead_s >= 0.3 * inside / span


def explains(cause: Candidate, effect: Candidate, links: dict[str, set[str]]) -> bool:
    """Whether cause accounts for effect through links.toml.

    A server's own state (out of memory, full, refusing or ending sessions) is only explained by a
    cause on that same component: an app's crash does not end PostgreSQL's sessions. Server errors
    an upstream answered itself are not explained by what the proxy saw of its connections (a
    refused or reset connection makes the proxy answer 502, not pass on the app's 500).
    """
    if effect.id not in links.get(cause.id, ()):
        return False
    if effect.answered_for and cause.layer == "proxy":
        return False
    return effect.id not in SERVER_STATE_CLASSES or effect.component == cause.component


def score(cands: list[Candidate], links: dict[str, set[str]], window_start: dt.datetime,
          window_end: dt.datetime) -> list[Candidate]:
    """Score every candidate and return them best first."""
    if not cands:
        return []
    live = [c for c in cands if not c.steady]
    first = min((c.onset for c in live), default=window_start)
    duration = max((window_end - first).total_seconds(), 1.0)
    tolerance = max(1.0, 0.02 * duration)
    for c in cands:
        others = [o for o in live if o is not c and o.id != c.id]
        total = sum(o.count for o in others)
        # an effect does not come before its cause: a class that was logged well before c began is not
        # c's symptom, whatever links.toml allows (the slack covers whole-second access-log times and a
        # restart's gap: nginx's refusals start when a redeploy stops the app, its crash a second later)
        explained = [o for o in others if explains(c, o, links)
                     and o.onset >= c.onset - dt.timedelta(seconds=max(tolerance, ORDER_SLACK_S))]
        # symptoms are named where they were logged: a proxy's 5xx its upstream answered stay "nginx"
        c.explains = [{"class": o.id,
                       "component": o.answered_for or o.component,
                       "count": o.count}
                      for o in sorted(explained, key=lambda o: -o.count)]
        expl = (sum(o.count for o in explained) / total) if total else 0.3
        lead = (c.onset - first).total_seconds()
        onset = 1.0 if lead <= tolerance else max(0.0, 1.0 - lead / duration)
        depth = 0.7 if c.inferred else LAYER_DEPTH.get(c.layer, 0.5)
        spec = SPECIFICITY.get(c.id, 0.85)
        import math
        volume = min(1.0, math.log10(1 + c.count) / 2.0) * (0.2 if c.steady else 1.0)
        if c.inferred:
            volume = max(volume, 0.8)
        c.scores = {"onset": round(onset, 3), "depth": round(depth, 3), "explains": round(expl, 3),
                    "specificity": round(spec, 3), "volume": round(volume, 3)}
        c.score = sum(WEIGHTS[k] * v for k, v in c.scores.items())
        if c.steady:
            c.score *= 0.5
    # a candidate another live one explains, and that did not start first, is that one's symptom:
    # a supervisor's "killed, status=9/KILL" (proc.crash) beside the OOM kill that caused it
    for c in cands:
        explained_by = any(o is not c and o.id != c.id and explains(o, c, links)
                           and o.onset <= c.onset + dt.timedelta(seconds=tolerance) for o in live)
        subsumed = any(o.id == SUBSUMED_BY.get(c.id) and o.component == c.component for o in live)
        if explained_by or subsumed:
            c.score *= EXPLAINED_FACTOR
    return sorted(cands, key=lambda c: (-c.score, c.onset))


def confidences(ranked: list[Candidate]) -> list[float]:
    """Confidence in [0, 1]: the score, discounted by how close the runner-up is."""
    if not ranked:
        return []
    s1 = ranked[0].score
    s2 = ranked[1].score if len(ranked) > 1 else 0.0
    out = []
    for i, c in enumerate(ranked):
        if i == 0:
            conf = s1 * (0.55 + 0.45 * ((s1 - s2) / s1 if s1 else 0))
        else:
            conf = c.score * (c.score / s1 if s1 else 0) * 0.6
        out.append(round(min(0.99, max(0.01, conf)), 2))
    return out


def explanation(c: Candidate) -> str:
    """One sentence naming the chain: what happened where, from when, before which symptoms."""
    head = c.phrase or PHRASES.get(c.id, "{c}: " + c.id).format(c=c.component)
    when = c.onset.strftime("%H:%M:%S") if c.onset else "?"
    if not c.explains:
        return f"{head} from {when} ({_n(c.count)} event{'s' if c.count != 1 else ''})."
    parts = [f"{_n(e['count'])} {e['component']} {e['class']}" for e in c.explains[:4]]
    symptoms = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return f"{head} from {when}, explaining {symptoms}."


def cause_dict(rank: int, c: Candidate, confidence: float) -> dict:
    return {
        "rank": rank, "id": c.id, "component": c.component, "confidence": confidence,
        "onset": _iso(c.onset), "explanation": explanation(c), "explains": c.explains,
        "evidence": c.evidence, "check_first": c.check_first, "remediation": c.remediation,
        "count": c.count, "logged_by": c.logged_by, "score": c.scores,
    }


def entities_of(value: str | None) -> dict:
    if not value:
        return {}
    try:
        return {k: v for k, v in json.loads(value).items() if v is not None}
    except ValueError:
        return {}


def _n(x: int) -> str:
    return f"{x:,}"


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
