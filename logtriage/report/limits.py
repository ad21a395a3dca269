"""Returns a copy of the analysis document small enough for a report (a few MB at most).

A run over gigabytes of logs can produce a document with hundreds of thousands of buckets or
evidence lines; a postmortem page must still open in a second. Caps keep the document's shape
(docs/json-schema.md): lists are cut, long texts end in an ellipsis, and timeline buckets are
merged (bucket_seconds grows) so a series never has more than MAX_BUCKETS points.
"""

from __future__ import annotations

import math
from typing import Any

MAX_BUCKETS = 720
MAX_SERIES = 16
MAX_TEXT = 2_000
MAX_EVIDENCE = 12
MAX_CAUSES = 10
MAX_INCIDENTS = 20
MAX_KEY_EVENTS = 200
MAX_FINDINGS = 100
MAX_SOURCES = 500
MAX_ROWS = 20            # endpoints, upstreams, classes, explains per incident/cause
MAX_REMEDIATION = 12


def clean(value: Any) -> Any:
    """Returns `value` with NaN and infinities replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def _text(s: Any, limit: int = MAX_TEXT) -> Any:
    if isinstance(s, str) and len(s) > limit:
        return s[:limit] + f"… [{len(s) - limit:,} more characters]"
    return s


def _cut(items: Any, limit: int, notes: list[str], what: str) -> list:
    if not isinstance(items, list):
        return items
    if len(items) > limit:
        notes.append(f"{what}: {limit:,} of {len(items):,} shown")
        return items[:limit]
    return items


def _merge(counts: Any, factor: int) -> Any:
    if not isinstance(counts, list) or factor <= 1:
        return counts
    out = []
    for i in range(0, len(counts), factor):
        chunk = counts[i:i + factor]
        try:
            out.append(sum(chunk))
        except TypeError:  # a null (or worse) among the counts: sum what is numeric
            nums = [c for c in chunk if isinstance(c, (int, float)) and not isinstance(c, bool)]
            out.append(sum(nums) if nums else None)
    return out


def _timeline(tl: dict, notes: list[str]) -> dict:
    tl = dict(tl)
    series = [s for s in tl.get("series") or [] if isinstance(s, dict)]
    lengths = [len(s.get("counts") or []) for s in series]
    for key in ("requests", "errors"):
        if isinstance(tl.get(key), list):
            lengths.append(len(tl[key]))
    n = max(lengths, default=0)
    if n > MAX_BUCKETS:
        factor = math.ceil(n / MAX_BUCKETS)
        notes.append(f"timeline: {n:,} buckets merged {factor} to 1")
        if isinstance(tl.get("bucket_seconds"), (int, float)):
            tl["bucket_seconds"] = tl["bucket_seconds"] * factor
        series = [{**s, "counts": _merge(s.get("counts"), factor)} for s in series]
        for key in ("requests", "errors"):
            tl[key] = _merge(tl.get(key), factor)
    if len(series) > MAX_SERIES:
        def total(s: dict) -> float:
            return sum(c for c in s.get("counts") or [] if isinstance(c, (int, float)))
        series.sort(key=total, reverse=True)
        rest, series = series[MAX_SERIES - 1:], series[:MAX_SERIES - 1]
        width = max(len(s.get("counts") or []) for s in rest)
        other = [0] * width
        for s in rest:
            for i, c in enumerate(s.get("counts") or []):
                if isinstance(c, (int, float)):
                    other[i] += c
        series.append({"component": f"{len(rest)} more", "class": "other", "counts": other})
        notes.append(f"timeline: {len(rest)} smallest series summed into one")
    tl["series"] = series
    return tl


def _evidence(items: Any, notes: list[str]) -> list:
    out = []
    for e in _cut(items if isinstance(items, list) else [], MAX_EVIDENCE, notes, "evidence lines"):
        out.append({**e, "text": _text(e.get("text"))} if isinstance(e, dict) else e)
    return out


def _example(f: Any) -> Any:
    if isinstance(f, dict) and isinstance(f.get("example"), dict):
        return {**f, "example": {**f["example"], "text": _text(f["example"].get("text"))}}
    return f


def _put(d: dict, key: str, fn) -> None:
    if key in d:
        d[key] = fn(d[key])


def cap(analysis: dict) -> tuple[dict, list[str]]:
    """Returns (the capped document, a note per cap applied); the document itself when none applied."""
    notes: list[str] = []
    doc = dict(analysis)   # cut first, then clean: cleaning a huge document value by value is slow
    _put(doc, "timeline", lambda tl: _timeline(tl, notes) if isinstance(tl, dict) else tl)
    _put(doc, "sources", lambda v: _cut(v, MAX_SOURCES, notes, "sources"))
    _put(doc, "key_events", lambda v: [{**k, "text": _text(k.get("text"), 500)} if isinstance(k, dict) else k
                                       for k in _cut(v, MAX_KEY_EVENTS, notes, "key events") or []])
    for key, what in (("other_findings", "other findings"), ("unrecognised", "unrecognised shapes")):
        _put(doc, key, lambda v, what=what: [_example(f) for f in _cut(v, MAX_FINDINGS, notes, what) or []])

    def cause(c: Any) -> Any:
        if not isinstance(c, dict):
            return c
        c = dict(c)
        _put(c, "evidence", lambda v: _evidence(v, notes))
        _put(c, "explains", lambda v: _cut(v, MAX_ROWS, notes, "explained symptoms"))
        _put(c, "remediation", lambda v: _cut(v, MAX_REMEDIATION, notes, "remediation steps"))
        _put(c, "explanation", _text)
        _put(c, "check_first", _text)
        return c

    def incident(inc: Any) -> Any:
        if not isinstance(inc, dict):
            return inc
        inc = dict(inc)
        _put(inc, "classes", lambda v: _cut(v, MAX_ROWS, notes, "incident classes"))
        _put(inc, "key_events", lambda v: _cut(v, MAX_KEY_EVENTS // 4, notes, "incident key events"))
        if isinstance(inc.get("impact"), dict):
            imp = dict(inc["impact"])
            _put(imp, "endpoints", lambda v: _cut(v, MAX_ROWS, notes, "endpoints"))
            _put(imp, "upstreams", lambda v: _cut(v, MAX_ROWS, notes, "upstreams"))
            inc["impact"] = imp
        _put(inc, "causes", lambda v: [cause(c) for c in _cut(v, MAX_CAUSES, notes, "causes") or []])
        return inc

    _put(doc, "incidents", lambda v: [incident(i) for i in _cut(v, MAX_INCIDENTS, notes, "incidents") or []])
    doc = clean(doc)
    if doc == analysis:
        return analysis, []
    return doc, sorted(set(notes)) or ["long texts shortened or non-finite numbers dropped"]
