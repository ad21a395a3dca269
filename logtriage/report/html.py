"""Returns the one-file HTML postmortem report: inline CSS, inline SVG chart, the analysis as embedded JSON.

The file must open and render completely with no network (it is read during outages), so it
references nothing outside itself: no script, no web font, no URL; a Content-Security-Policy
meta tag forbids fetches and scripts as a second line of defence. Every log-derived string goes
through jinja2's autoescape; the embedded JSON has `<`, `>` and `&` written as \\u escapes so no
log line can close its <script type="application/json"> element (the approach of goaccess's
src/output.c and of Django's json_script).
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader
from markupsafe import Markup

from logtriage.report import story
from logtriage.report.limits import cap

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Okabe-Ito, reordered so neighbouring series stay apart; readable for the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F3C8D", "#8C6D31",
           "#3B3B3B", "#A0522D", "#11A579", "#F2B701", "#E73F74", "#80BA5A", "#008695", "#CF1C90"]
MAX_MARKERS = 30
NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
              172800, 604800]


def embed_json(doc: dict) -> Markup:
    """Returns `doc` as JSON safe inside <script type="application/json">: no `</`, `<!--` or `]]>`."""
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return Markup(text)


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0.0


def _fmt_axis(t, step: int, total_s: float) -> str:
    if total_s > 86400:
        return t.strftime("%m-%d %H:%M")
    return t.strftime("%H:%M:%S" if step < 60 else "%H:%M")


def chart_model(doc: dict) -> dict | None:
    """Returns the timeline chart's geometry (SVG coordinates, colours, labels), or None without data."""
    tl = story._dict(doc.get("timeline"))
    start = story.parse_ts(tl.get("start"))
    bucket = tl.get("bucket_seconds")
    series = [s for s in story._list(tl.get("series")) if isinstance(s.get("counts"), list)]
    requests = tl.get("requests") if isinstance(tl.get("requests"), list) else None
    errors = tl.get("errors") if isinstance(tl.get("errors"), list) else None
    n = max([len(s["counts"]) for s in series] + [len(requests or []), len(errors or [])], default=0)
    if start is None or not isinstance(bucket, (int, float)) or bucket <= 0 or n == 0:
        return None

    width, left, right = 1200, 64, 20
    plot_w = width - left - right
    band = 34                                   # marker band above the plots
    top_h = 200
    has_req = bool(requests and any(_num(c) for c in requests))
    bottom_h = 110 if has_req else 0
    gap = 34 if has_req else 0
    axis_h = 30
    top_y = band
    bottom_y = top_y + top_h + gap
    height = bottom_y + bottom_h + axis_h
    total_s = n * bucket
    bw = plot_w / n

    def x_of(t) -> float:
        return left + (t - start).total_seconds() / total_s * plot_w

    # stacked bars, one path per series
    stack = [0.0] * n
    peak = max((sum(_num(s["counts"][i]) if i < len(s["counts"]) else 0 for s in series) for i in range(n)),
               default=0)
    ymax = _nice_max(peak)
    paths = []
    totals = []
    for j, s in enumerate(series):
        d = []
        for i in range(n):
            c = _num(s["counts"][i]) if i < len(s["counts"]) else 0
            if c <= 0:
                continue
            h = c / ymax * top_h
            y = top_y + top_h - (stack[i] / ymax * top_h) - h
            d.append(f"M{left + i * bw:.1f} {y:.1f}h{max(bw - (1 if bw > 3 else 0), 0.6):.1f}v{h:.1f}"
                     f"h-{max(bw - (1 if bw > 3 else 0), 0.6):.1f}z")
            stack[i] += c
        total = sum(_num(c) for c in s["counts"])
        totals.append(total)
        color = "#9aa4ae" if s.get("class") == "other" else PALETTE[j % len(PALETTE)]
        paths.append({"d": "".join(d), "color": color,
                      "label": f"{s.get('component') or '?'} · {s.get('class') or '?'}",
                      "cls": s.get("class") or "", "component": s.get("component") or "", "total": total})

    # requests (area) and 5xx (area) in the lower panel
    req_path = err_path = ""
    rmax = 0.0
    if has_req:
        rmax = _nice_max(max(_num(c) for c in requests))

        def area(vals: list) -> str:
            base = bottom_y + bottom_h
            pts = [f"M{left:.1f} {base:.1f}"]
            for i in range(n):
                v = _num(vals[i]) if i < len(vals) else 0
                y = base - v / rmax * bottom_h
                pts.append(f"L{left + i * bw:.1f} {y:.1f}L{left + (i + 1) * bw:.1f} {y:.1f}")
            pts.append(f"L{left + n * bw:.1f} {base:.1f}z")
            return "".join(pts)

        req_path = area(requests)
        err_path = area(errors) if errors else ""

    # x ticks
    step = next((s for s in NICE_STEPS if total_s / s <= 10), NICE_STEPS[-1])
    first = start + timedelta(seconds=(-start.timestamp()) % step)
    ticks = []
    t = first
    while (t - start).total_seconds() <= total_s + 1e-6 and len(ticks) < 40:
        ticks.append({"x": round(x_of(t), 1), "label": _fmt_axis(t, step, total_s)})
        t += timedelta(seconds=step)

    # per-bucket hover titles (cheap: one transparent rect per bucket)
    hovers = []
    for i in range(n):
        parts = [f"{s.get('component')} {s.get('class')} {int(_num(s['counts'][i]))}"
                 for s in series if i < len(s["counts"]) and _num(s["counts"][i]) > 0]
        if has_req and i < len(requests):
            parts.append(f"requests {int(_num(requests[i]))}")
            if errors and i < len(errors):
                parts.append(f"5xx {int(_num(errors[i]))}")
        if parts:
            t0 = start + timedelta(seconds=i * bucket)
            hovers.append({"x": round(left + i * bw, 1), "w": round(max(bw, 0.6), 1),
                           "title": f"{t0.strftime('%H:%M:%S')} (+{story.seconds(bucket)}): " + ", ".join(parts)})

    # incident windows, onset, key events
    windows = []
    for inc in story.incidents(doc):
        a, b = story.parse_ts(inc.get("start")), story.parse_ts(inc.get("end"))
        if a is None:
            continue
        b = b or a
        xa, xb = max(x_of(a), left), min(x_of(b), left + plot_w)
        if xb < left or xa > left + plot_w:
            continue
        windows.append({"x": round(xa, 1), "w": round(max(xb - xa, 2), 1), "id": inc.get("id") or "",
                        "title": f"incident {inc.get('id') or ''} {story.span(inc.get('start'), inc.get('end'))}"})
    onset = None
    prim = story.primary(doc)
    top_cause = (story.causes(prim) or [None])[0]
    if top_cause and story.parse_ts(top_cause.get("onset")):
        ox = x_of(story.parse_ts(top_cause["onset"]))
        if left <= ox <= left + plot_w:
            onset = {"x": round(ox, 1), "title": f"onset of {top_cause.get('id')}: "
                                                 f"{story.clock(top_cause.get('onset'))}"}
    raw = []
    for k in moments(doc):
        if k.get("n") is None:
            continue
        mx = x_of(story.parse_ts(k.get("ts")))
        if left - 1 <= mx <= left + plot_w + 1:
            raw.append((mx, k))
    markers = _cluster(sorted(raw, key=lambda r: r[0]))
    return {
        "width": width, "height": height, "left": left, "plot_w": plot_w, "band": band,
        "top_y": top_y, "top_h": top_h, "bottom_y": bottom_y, "bottom_h": bottom_h, "has_req": has_req,
        "ymax": ymax, "rmax": rmax, "paths": paths, "req_path": req_path, "err_path": err_path,
        "ticks": ticks, "hovers": hovers, "windows": windows, "onset": onset, "markers": markers,
        "bucket": story.seconds(bucket), "n": n,
        "y_ticks": [{"y": round(top_y + top_h - f * top_h, 1), "label": _short(ymax * f)} for f in (0, .5, 1)],
        "r_ticks": [{"y": round(bottom_y + bottom_h - f * bottom_h, 1), "label": _short(rmax * f)}
                    for f in (0, 1)] if has_req else [],
        "sum_requests": sum(_num(c) for c in requests or []), "sum_errors": sum(_num(c) for c in errors or []),
        "flagged_total": sum(totals),
    }


def _cluster(raw: list) -> list[dict]:
    """Returns chart markers with events closer than a marker's width merged into one ("1–4")."""
    groups: list[list] = []
    for mx, k in raw:
        if groups and mx - groups[-1][0][0] < 16:
            groups[-1].append((mx, k))
        else:
            groups.append([(mx, k)])
    out = []
    for i, g in enumerate(groups):
        ns = [k["n"] for _, k in g]
        text = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
        title = "\n".join(f"{k['n']}. {story.clock(k.get('ts'))} {k.get('component') or ''} {k.get('kind') or ''}: "
                          f"{k.get('text') or ''}" for _, k in g)
        out.append({"x": round(g[0][0], 1), "n": text, "w": 14 if len(text) == 1 else 6 + 6.2 * len(text),
                    "row": i % 2 if len(groups) > 1 and any(
                        abs(g[0][0] - o[0][0]) < 40 for o in groups if o is not g) else 0,
                    "title": title})
    return out


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _short(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k".replace(".0k", "k")
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"


_MARKED_KINDS = {"restart", "listening", "exit", "stop", "start", "crash", "reload", "oom", "shutdown"}


def moments(doc: dict) -> list[dict]:
    """Returns the key moments under the chart, by time: incident start/end, cause onset, key events.

    Key events get a number `n` (the marker on the chart); incident bounds and the onset do not.
    """
    prim = story.primary(doc)
    evs = story._list(doc.get("key_events"))
    a = story.parse_ts((prim or {}).get("start"))
    b = story.parse_ts((prim or {}).get("end"))
    if len(evs) > MAX_MARKERS and a is not None:
        # keep the events nearest the incident
        def dist(e: dict) -> float:
            t = story.parse_ts(e.get("ts"))
            if t is None:
                return float("inf")
            if a <= t <= (b or a):
                return 0
            return min(abs((t - a).total_seconds()), abs((t - (b or a)).total_seconds()))
        evs = sorted(evs, key=dist)[:MAX_MARKERS]
    evs = [e for e in evs if story.parse_ts(e.get("ts"))][:MAX_MARKERS]
    out = [{**e, "n": None, "what": "event"} for e in evs]
    if prim is not None:
        out.append({"ts": prim.get("start"), "component": "", "kind": "incident",
                    "text": f"incident {prim.get('id') or ''} starts ({prim.get('severity') or '?'})",
                    "n": None, "what": "incident"})
        top = (story.causes(prim) or [None])[0]
        if top and top.get("onset"):
            out.append({"ts": top.get("onset"), "component": top.get("component") or "", "kind": "onset",
                        "text": f"first evidence of {top.get('id')}", "n": None, "what": "onset"})
        out.append({"ts": prim.get("end"), "component": "", "kind": "incident",
                    "text": f"incident {prim.get('id') or ''} ends after {story.seconds(prim.get('duration_s'))}",
                    "n": None, "what": "incident"})
    order = {"incident": 0, "onset": 1, "event": 2}
    out.sort(key=lambda e: (str(e.get("ts") or ""), order[e["what"]]))
    n = 0
    for e in out:
        if e["what"] == "event":
            n += 1
            e["n"] = n
    return out


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=ChainableUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update({
        "clock": story.clock, "span": story.span, "num": story.num, "percent": story.percent,
        "seconds": story.seconds, "latency": story.latency, "label": story.label, "mark": story.mark,
        "loc": story.location, "met": story.met_word,
    })
    return env


@lru_cache(maxsize=1)
def _css() -> Markup:
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return Markup(css.replace("</", "<\\/"))


def _cause_view(c: dict) -> dict:
    conf = c.get("confidence")
    conf = conf if isinstance(conf, (int, float)) and not isinstance(conf, bool) and math.isfinite(conf) else None
    score = {k: v for k, v in story._dict(c.get("score")).items() if isinstance(v, (int, float))}
    return {
        "rank": c.get("rank") if isinstance(c.get("rank"), int) else "–",
        "id": c.get("id") or "unknown", "component": c.get("component") or "unknown component",
        "confidence": conf, "conf_pct": round((conf or 0) * 100, 1),
        "onset": c.get("onset"), "explanation": c.get("explanation") or "",
        "explains": story._list(c.get("explains")),
        "evidence": story._list(c.get("evidence")),
        "check_first": c.get("check_first") or "",
        "remediation": [str(r) for r in (c.get("remediation") or []) if r],
        "score": score,
    }


def _incident_view(inc: dict) -> dict:
    return {"id": inc.get("id") or "", "start": inc.get("start"), "end": inc.get("end"),
            "severity": inc.get("severity") or "unknown", "duration": story.seconds(inc.get("duration_s")),
            "components": [str(c) for c in inc.get("components") or []],
            "classes": story._list(inc.get("classes")),
            "impact": story.impact_facts(inc), "causes": [_cause_view(c) for c in story.causes(inc)]}


def render_html(analysis: dict) -> str:
    """Returns the HTML report for `analysis` as one self-contained document."""
    doc, notes = cap(analysis if isinstance(analysis, dict) else {})
    incs = [_incident_view(i) for i in story.incidents(doc)]
    tl = story._dict(doc.get("timeline"))
    chart = chart_model(doc)
    ctx = {
        "doc": doc, "css": _css(), "embedded": embed_json(doc), "capped": bool(notes), "notes": notes,
        "tool": story._dict(doc.get("tool")), "generated_at": doc.get("generated_at"),
        "summary": story.read_summary(doc), "verdict": story.verdict(doc),
        "primary": incs[0] if incs else None, "others": incs[1:],
        "chart": chart, "moments": moments(doc), "timeline": tl,
        "other_findings": story._list(doc.get("other_findings")),
        "unrecognised": story._list(doc.get("unrecognised")),
        "sources": story._list(doc.get("sources")), "totals": story._dict(doc.get("totals")),
        "options": story._dict(doc.get("options")),
        "time_range": story._dict(doc.get("time_range")),
    }
    return _env().get_template("report.html.j2").render(**ctx)
