"""Returns the facts every report format tells, in the same words: verdict, impact, causes, sources.

terminal.py and html.py both render from here so the text and the HTML report never disagree.
Everything reads the analysis document (docs/json-schema.md) defensively: a missing or null field
becomes "unknown" in the report instead of an exception, because a half-filled document from a
crashed run is exactly when someone most needs the report.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

# Short human names for class and cause ids (TAXONOMY.md); the id itself is always shown next to it.
LABELS: dict[str, str] = {
    "conn.refused": "connection refused",
    "conn.reset_before_headers": "connection reset before response headers",
    "conn.reset": "connection reset",
    "timeout.connect": "connect timeout",
    "timeout.upstream": "upstream timeout",
    "timeout.query": "database query timeout",
    "db.slow_query": "slow database queries",
    "pool.exhausted": "connection pool exhausted",
    "db.too_many_connections": "database connection limit reached",
    "db.connection_terminated": "database terminated its sessions",
    "db.auth_failed": "database authentication failed",
    "upstream.unavailable": "no healthy upstream",
    "dns.failure": "DNS resolution failed",
    "tls.failure": "TLS handshake failed",
    "proc.oom": "out of memory",
    "proc.crash": "process crashed",
    "health.probe_failed": "health check failed",
    "resource.fd_exhausted": "out of file descriptors",
    "resource.disk_full": "disk full",
    "ratelimit": "rate limited",
    "http.5xx": "server errors (5xx)",
    "config.port_mismatch": "port mismatch",
    "service.down": "service down",
}

# Words that show a class on a line, for highlighting evidence (the report has no match spans).
# Tried in order, case-insensitive; the first pattern that matches marks the line (once).
_MARKS: dict[str, list[str]] = {
    "conn.refused": [r"\(?111: Connection refused\)?", r"Connection refused", r"ECONNREFUSED",
                     r"delayed connect error: 111", r"(?:remote )?connection failure"],
    "conn.reset_before_headers": [r"upstream prematurely closed connection", r"reset before headers",
                                  r"\(?104: Connection reset by peer\)?", r"connection termination"],
    "conn.reset": [r"Connection reset by peer", r"ECONNRESET", r"socket hang up",
                   r"server closed the connection unexpectedly"],
    "timeout.connect": [r"\(?110: Connection timed out\)?", r"ETIMEDOUT", r"connection timeout",
                        r"timeout expired", r"timed out"],
    "timeout.upstream": [r"upstream timed out \(110: Connection timed out\)", r"upstream request timeout",
                         r"Timeout reading from socket", r"timed out", r"(?<=\" )504(?= )"],
    "timeout.query": [r"canceling statement due to [a-z ]*timeout", r"lock timeout", r"idle-in-transaction timeout"],
    "db.slow_query": [r"duration: [\d.]+ ms", r"still waiting for \w+", r"deadlock detected"],
    "pool.exhausted": [r"QueuePool limit[^,]*", r"Connection is not available", r"P2024",
                       r"no more connections allowed", r"\boverflow\b"],
    "db.too_many_connections": [r"sorry, too many clients already", r"remaining connection slots are reserved",
                                r"Too many connections", r"max number of clients reached"],
    "db.connection_terminated": [r"terminating connection due to administrator command",
                                 r"the database system is (?:shutting down|starting up|in recovery mode)",
                                 r"terminating any other active server processes",
                                 r"server closed the connection unexpectedly"],
    "db.auth_failed": [r"password authentication failed for user \"?[^\"\s]*\"?", r"no pg_hba\.conf entry",
                       r"P1000"],
    "upstream.unavailable": [r"no healthy upstream", r"no live upstreams", r"<NOSRV>"],
    "dns.failure": [r"ENOTFOUND", r"EAI_AGAIN", r"no such host", r"could not translate host name",
                    r"host not found"],
    "tls.failure": [r"CERTIFICATE_VERIFY_FAILED", r"SSL_do_handshake\(\) failed", r"certificate has expired",
                    r"TLS error"],
    "proc.oom": [r"OOMKilled", r"Out of memory", r"heap out of memory", r"OutOfMemoryError"],
    "proc.crash": [r"segfault", r"panic:", r"CrashLoopBackOff", r"terminated by signal \d+",
                   r"unrecoverable state", r"exit(?:ed)? (?:with )?(?:status |code )?\d+"],
    "health.probe_failed": [r"(?:Liveness|Readiness) probe failed", r"health ?check failed"],
    "resource.fd_exhausted": [r"Too many open files", r"EMFILE", r"worker_connections are not enough"],
    "resource.disk_full": [r"No space left on device", r"could not extend file"],
    "ratelimit": [r"local_rate_limited", r"limiting requests", r"(?<=\" )429(?= )"],
    "http.5xx": [r"(?<=\" )5\d\d(?= )", r"(?<=\"status\": )5\d\d", r"(?<=status=)5\d\d", r"\b5\d\d\b"],
}
_MARK_RE = {k: [re.compile(p, re.IGNORECASE) for p in v] for k, v in _MARKS.items()}


def label(class_id: str | None) -> str:
    """Returns the short human name of a class or cause id (the id itself when unknown)."""
    if not class_id:
        return "unclassified"
    base = class_id.split("/", 1)[0]
    return LABELS.get(base, class_id)


def mark(text: str, class_id: str | None) -> list[tuple[str, bool]]:
    """Returns `text` cut into (segment, is_match) pieces, the words that show `class_id` marked."""
    m = None
    for pattern in _MARK_RE.get((class_id or "").split("/", 1)[0], ()):
        m = pattern.search(text)
        if m and m.start() != m.end():
            break
    if not m or m.start() == m.end():
        return [(text, False)]
    return [p for p in [(text[:m.start()], False), (m.group(0), True), (text[m.end():], False)] if p[0]]


# -- numbers and times ------------------------------------------------------------------------------

def parse_ts(value: Any) -> datetime | None:
    """Returns an aware UTC datetime for an ISO 8601 string, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def clock(value: Any, *, date: bool = False) -> str:
    """Returns "10:13:09" (or "2026-11-21 10:13:09" with date=True) for an ISO time, "?" when unknown."""
    t = parse_ts(value)
    if t is None:
        return "?"
    return t.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def span(start: Any, end: Any, *, date: bool = False) -> str:
    """Returns "10:13:09–10:13:54 UTC" (the end's date shown only when it differs)."""
    a, b = parse_ts(start), parse_ts(end)
    if a is None and b is None:
        return "time unknown"
    left = clock(start, date=date)
    right = clock(end, date=bool(a and b and a.date() != b.date()))
    return f"{left}–{right} UTC"


def num(n: Any) -> str:
    """Returns an integer count with thousands separators ("12,345"), "?" when unknown."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
        return "?"
    return f"{round(n):,}"


def percent(rate: Any) -> str:
    """Returns a fraction as a percentage with sensible precision: 0.9046 -> "90.5 %", 0.001 -> "0.1 %"."""
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not math.isfinite(rate):
        return "?"
    p = rate * 100
    if p == 0 or p >= 10:
        return f"{p:.0f} %" if p == 0 or p >= 99.95 or p == int(p) else f"{p:.1f} %"
    if p >= 1:
        return f"{p:.1f} %"
    return f"{p:.2g} %"


def seconds(s: Any) -> str:
    """Returns a duration: "45 s", "2 min 5 s", "1 h 4 min"."""
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s) or s < 0:
        return "?"
    if s < 10:
        return f"{s:.1f} s".replace(".0 s", " s")
    s = round(s)
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 // 60 else "")


def latency(s: Any) -> str:
    """Returns a latency in ms below one second, else seconds: 0.004 -> "4 ms", 2.1 -> "2.10 s"."""
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s):
        return "n/a"
    if s < 1:
        ms = s * 1000
        return f"{ms:.0f} ms" if ms >= 1 or ms == 0 else f"{ms:.1f} ms"
    return f"{s:.2f} s"


def location(item: dict) -> str:
    """Returns "path:line" for an evidence or example record."""
    src = item.get("source") or "?"
    line = item.get("line")
    return f"{src}:{line}" if isinstance(line, int) else str(src)


# -- the story ------------------------------------------------------------------------------------

def _list(v: Any) -> list:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def incidents(analysis: dict) -> list[dict]:
    """Returns the incidents, most severe first (the document's order)."""
    return _list(analysis.get("incidents"))


def primary(analysis: dict) -> dict | None:
    """Returns the most severe incident, or None when nothing is wrong."""
    found = incidents(analysis)
    return found[0] if found else None


def causes(incident: dict | None) -> list[dict]:
    """Returns the incident's ranked causes, best first."""
    return sorted(_list((incident or {}).get("causes")), key=lambda c: c.get("rank") if isinstance(
        c.get("rank"), int) else 1_000_000)


def read_summary(analysis: dict) -> str:
    """Returns what was read: "844 lines from 5 sources, 10:12:38–10:13:54 UTC"."""
    totals = _dict(analysis.get("totals"))
    n_sources = len(_list(analysis.get("sources")))
    tr = _dict(analysis.get("time_range"))
    when = span(tr.get("start"), tr.get("end"), date=True) if tr.get("start") else "no timestamps"
    return (f"{num(totals.get('lines_read'))} lines from {n_sources} source{'s' if n_sources != 1 else ''}, "
            f"{when}")


def verdict(analysis: dict) -> dict:
    """Returns the one-sentence verdict and its parts.

    kind is "incident" (with a ranked cause), "unexplained" (an incident without causes) or "none".
    """
    inc = primary(analysis)
    if inc is None:
        flagged = _dict(analysis.get("totals")).get("flagged")
        others = len(_list(analysis.get("other_findings")))
        tail = (f"; {num(flagged)} flagged line{'s' if flagged != 1 else ''} did not add up to one"
                if isinstance(flagged, int) and flagged else "; no error lines were flagged")
        if others:
            tail += f" ({others} minor finding{'s' if others != 1 else ''} listed below)"
        return {"kind": "none", "headline": "No incident found",
                "sentence": f"No incident found in {read_summary(analysis)}{tail}."}
    window = span(inc.get("start"), inc.get("end"))
    dur = seconds(inc.get("duration_s"))
    sev = inc.get("severity") or "unknown severity"
    extra = len(incidents(analysis)) - 1
    also = f" {extra} more incident{'s' if extra != 1 else ''} below." if extra > 0 else ""
    ranked = causes(inc)
    if not ranked:
        return {"kind": "unexplained", "headline": "Incident, cause unknown", "incident": inc,
                "window": window, "duration": dur, "severity": sev,
                "sentence": f"An incident ({sev}) ran {window} ({dur}), but no root cause could be ranked "
                            f"from the evidence.{also}"}
    top = ranked[0]
    cid, comp = top.get("id") or "unknown", top.get("component") or "an unknown component"
    conf = top.get("confidence")
    conf_s = f"{percent(conf)} confidence" if isinstance(conf, (int, float)) else "confidence unknown"
    return {"kind": "incident", "headline": label(cid), "incident": inc, "cause": top, "cause_id": cid,
            "component": comp, "confidence": conf_s, "window": window, "duration": dur, "severity": sev,
            "sentence": f"Most likely root cause: {label(cid)} ({cid}) in {comp}, {conf_s}; "
                        f"{sev} incident {window} ({dur}).{also}"}


def impact_facts(incident: dict | None) -> dict:
    """Returns the impact numbers of an incident, formatted, with target met/missed flags."""
    imp = _dict((incident or {}).get("impact"))
    lat = _dict(imp.get("latency"))
    tgt = _dict(imp.get("targets"))
    # 0 requests: no access log read, or none of its lines fall in the window; no rate either way
    has_requests = isinstance(imp.get("requests"), int) and imp["requests"] > 0
    return {
        "duration": seconds((incident or {}).get("duration_s")),
        "has_requests": has_requests,
        "requests": num(imp.get("requests")),
        "errors": num(imp.get("errors")),
        "error_rate": percent(imp.get("error_rate")),
        "error_target": percent(tgt.get("error_rate")),
        "error_met": tgt.get("error_rate_met"),
        "p50": latency(lat.get("p50")), "p95": latency(lat.get("p95")), "p99": latency(lat.get("p99")),
        "has_latency": any(isinstance(lat.get(k), (int, float)) for k in ("p50", "p95", "p99")),
        "latency_target": latency(tgt.get("latency_s")),
        "latency_met": tgt.get("latency_met"),
        "status": {str(k): v for k, v in _dict(imp.get("status")).items()},
        "status_5xx": {str(k): v for k, v in _dict(imp.get("status")).items() if str(k).startswith("5")},
        # the bar: share of the endpoint's requests that failed, or (without request counts)
        # its share of all failed requests
        "endpoints": [{**e, "pct": _share(e.get("errors"), e.get("requests") if "requests" in e else imp.get("errors"))}
                      for e in _list(imp.get("endpoints"))],
        "endpoint_requests": any("requests" in e for e in _list(imp.get("endpoints"))),
        "upstreams": _list(imp.get("upstreams")),
    }


def _share(part: Any, whole: Any) -> float:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (part, whole))
    return round(max(0.0, min(1.0, part / whole)) * 100, 1) if ok and whole > 0 else 0.0


def met_word(flag: Any) -> str:
    """Returns "met", "missed" or "unknown" for a target flag."""
    return "met" if flag is True else "missed" if flag is False else "unknown"


def key_moments(analysis: dict, incident: dict | None, limit: int = 12) -> list[dict]:
    """Returns the key events worth listing: the incident's own, else the whole run's, by time."""
    evs = _list((incident or {}).get("key_events")) or _list(analysis.get("key_events"))
    evs = sorted(evs, key=lambda e: str(e.get("ts") or ""))
    return evs[:limit]


def pick_evidence(cause: dict, n: int) -> list[dict]:
    """Returns up to n evidence records, one per source first (the listening line beside the refusals)."""
    ev = _list(cause.get("evidence"))
    chosen, seen = [], set()
    for i, e in enumerate(ev):
        if e.get("source") not in seen and len(chosen) < n:
            seen.add(e.get("source"))
            chosen.append(i)
    for i in range(len(ev)):
        if len(chosen) >= n:
            break
        if i not in chosen:
            chosen.append(i)
    return [ev[i] for i in sorted(chosen)]
