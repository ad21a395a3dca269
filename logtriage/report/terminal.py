"""Returns the `logtriage analyze` text report: the HTML report's story, in at most 100 columns.

Order: verdict, impact, top causes (explanation, what each explains, evidence with file:line,
where to check first, remediation), key moments, other findings, sources with line accounting.
ANSI colour only when asked (the CLI asks on a tty without NO_COLOR); without it the output is
plain text that pastes cleanly into a ticket.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from logtriage.report import story
from logtriage.report.limits import cap

WIDTH = 100
TOP_CAUSES = 3
EVIDENCE_LINES = 3

_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36",
           "mark": "1;33", "head": "1;4"}


class _Pen:
    """Writes lines, with ANSI styles only when colour is on."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self.lines: list[str] = []

    def s(self, text: str, style: str) -> str:
        if not self.color or not text:
            return text
        return f"\033[{_STYLES[style]}m{text}\033[0m"

    def out(self, text: str = "") -> None:
        self.lines.append(text)

    def wrap(self, text: str, indent: int, first: str | None = None, style: str | None = None) -> None:
        """Writes `text` wrapped to WIDTH, every line indented; `first` replaces the first indent."""
        pad = " " * indent
        lines = textwrap.wrap(_oneline(text), WIDTH - indent, break_long_words=True,
                              break_on_hyphens=False) or [""]
        for i, line in enumerate(lines):
            lead = first if (i == 0 and first is not None) else pad
            self.out(lead + (self.s(line, style) if style else line))


def _oneline(text: Any) -> str:
    """Returns `text` on one line with control characters made visible (log text must not drive the tty)."""
    s = str(text if text is not None else "")
    s = s.replace("\r\n", " ⏎ ").replace("\n", " ⏎ ").replace("\t", " ")
    return "".join(ch if ch.isprintable() or ch == " " else f"\\x{ord(ch):02x}" for ch in s)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def _met(pen: _Pen, flag: Any) -> str:
    word = story.met_word(flag)
    return pen.s(word, "green" if flag is True else "red" if flag is False else "dim")


def _verdict(pen: _Pen, analysis: dict) -> None:
    v = story.verdict(analysis)
    if v["kind"] == "none":
        pen.out(pen.s("No incident:", "green") + " " + pen.s(story.read_summary(analysis), "bold"))
        flagged = story._dict(analysis.get("totals")).get("flagged")
        pen.wrap(f"Nothing added up to an incident ({story.num(flagged or 0)} lines flagged).", 2)
        return
    if v["kind"] == "unexplained":
        pen.wrap(v["sentence"], 2, first=pen.s("INCIDENT", "red") + "  ")
        return
    lead = pen.s("ROOT CAUSE", "red") + "  "
    comp = _clip(_oneline(v["component"]), WIDTH - 12 - len(v["headline"]) - len(v["cause_id"]) - 7)
    pen.out(lead + f"{pen.s(v['headline'], 'bold')} in {pen.s(comp, 'bold')} ({v['cause_id']})")
    inc = v["incident"]
    pen.out(" " * 12 + f"{v['confidence']} · " + pen.s(
        f"{_oneline(inc.get('id') or 'incident')} {v['severity']} · {v['window']} ({v['duration']})", "dim"))
    extra = len(story.incidents(analysis)) - 1
    if extra > 0:
        pen.out(" " * 12 + pen.s(f"{extra} more incident{'s' if extra != 1 else ''} below", "dim"))


def _impact(pen: _Pen, incident: dict) -> None:
    f = story.impact_facts(incident)
    pen.out(pen.s("IMPACT", "head"))
    if f["has_requests"]:
        rate = f"{f['error_rate']} errors"
        pen.out(f"  {f['errors']} of {f['requests']} requests failed over {f['duration']} ({rate}; "
                f"target {f['error_target']}: {_met(pen, f['error_met'])})")
    else:
        pen.out(f"  lasted {f['duration']}; no access-log request in this window, so the error rate is unknown")
    if f["has_latency"]:
        pen.out(f"  latency p50 {f['p50']} · p95 {f['p95']} · p99 {f['p99']} "
                f"(target {f['latency_target']}: {_met(pen, f['latency_met'])})")
    if f["status"]:
        pen.wrap("status " + " · ".join(f"{k} ×{story.num(v)}" for k, v in f["status"].items()), 2,
                 first="  ")
    eps = [e for e in f["endpoints"] if (e.get("errors") or 0) > 0][:4]
    if eps:
        pen.wrap(" · ".join(f"{_oneline(e.get('endpoint'))} {story.num(e.get('errors'))}"
                            + (f"/{story.num(e.get('requests'))}" if "requests" in e else " failed")
                            for e in eps), 15, first="  hardest hit  ")
    ups = f["upstreams"][:3]
    if ups:
        pen.wrap(" · ".join(f"{_oneline(u.get('upstream'))} {story.num(u.get('errors'))} errors" for u in ups),
                 15, first="  upstreams    ")


def _readable(text: Any) -> str:
    """Returns a JSON log line as "LEVEL msg · error" (the keys a reader scans for); other text as is."""
    s = str(text if text is not None else "")
    if s.startswith("{") and s.rstrip().endswith("}"):
        try:
            d = json.loads(s)
        except ValueError:
            return s
        if isinstance(d, dict):
            msg = d.get("msg") or d.get("message")
            if isinstance(msg, str):
                level = d.get("level") or d.get("severity") or ""
                err = d.get("error") or d.get("err") or ""
                return " ".join(str(p) for p in (level, msg, f"· {err}" if err else "") if p)
    return s


def _evidence_line(pen: _Pen, e: dict, indent: int) -> None:
    loc = _oneline(story.location(e))
    text = _oneline(_readable(e.get("text")))
    room = WIDTH - indent - 2
    if len(loc) + 2 + min(len(text), 40) > room:
        pen.out(" " * indent + pen.s(_clip(loc, room), "cyan"))
        pen.out(" " * (indent + 2) + _marked(pen, _excerpt(text, e.get("class"), room), e.get("class")))
    else:
        pen.out(" " * indent + pen.s(loc, "cyan") + "  " + _marked(
            pen, _excerpt(text, e.get("class"), room - len(loc)), e.get("class")))


def _excerpt(text: str, cls: Any, room: int) -> str:
    """Returns `text` cut to `room` characters, keeping the words that show the class in view."""
    if len(text) <= room:
        return text
    pos = 0
    for seg, hit in story.mark(text, cls):
        if hit:
            if pos + len(seg) > room - 1:
                start = max(0, pos - room // 4)
                space = text.rfind(" ", max(0, start - 12), start + 1)
                start = space + 1 if space >= 0 else start
                return "…" + _clip(text[start:], room - 1)
            break
        pos += len(seg)
    return _clip(text, room)


def _marked(pen: _Pen, text: str, cls: Any) -> str:
    return "".join(pen.s(seg, "mark") if hit else seg for seg, hit in story.mark(text, cls))


LABEL_W = 13


def _field(pen: _Pen, name: str, text: str, style: str = "dim") -> None:
    pen.wrap(text, 5 + LABEL_W, first="     " + pen.s(f"{name:<{LABEL_W}}", style))


def _cause(pen: _Pen, c: dict, full: bool) -> None:
    rank = c.get("rank") if isinstance(c.get("rank"), int) else "-"
    conf = c.get("confidence")
    bar = ""
    if isinstance(conf, (int, float)):
        filled = max(0, min(10, round(conf * 10)))
        bar = "  " + pen.s("█" * filled, "bold") + pen.s("░" * (10 - filled), "dim")
    cid = c.get("id") or "unknown"
    head = (f"  {rank}  {pen.s(story.label(cid), 'bold')} ({cid}) · {_oneline(c.get('component') or '?')} · "
            f"{story.percent(conf) if isinstance(conf, (int, float)) else 'confidence ?'}")
    pen.out(head + bar)
    if c.get("explanation"):
        pen.wrap(c["explanation"], 5)
    explains = [x for x in c.get("explains") or [] if isinstance(x, dict)]
    if explains:
        _field(pen, "explains", " · ".join(f"{x.get('class')} in {_oneline(x.get('component'))} "
                                           f"×{story.num(x.get('count'))}" for x in explains))
    if not full:
        return
    ev = story.pick_evidence(c, EVIDENCE_LINES)
    if ev:
        pen.out("     " + pen.s("evidence", "dim"))
        for e in ev:
            _evidence_line(pen, e, 7)
    if c.get("check_first"):
        _field(pen, "check first", c["check_first"], "yellow")
    steps = [s for s in c.get("remediation") or [] if s]
    for i, step in enumerate(steps):
        lead = ("     " + pen.s(f"{'remediation' if i == 0 else '':<{LABEL_W}}", "green")) + "• "
        pen.wrap(step, 5 + LABEL_W + 2, first=lead)


def _sources(pen: _Pen, analysis: dict) -> None:
    srcs = story._list(analysis.get("sources"))
    totals = story._dict(analysis.get("totals"))
    pen.out(pen.s("SOURCES", "head") + "  " + pen.s(
        f"{story.num(totals.get('lines_read'))} lines read · {story.num(totals.get('lines_parsed'))} parsed · "
        f"{story.num(totals.get('lines_unparsed'))} unparsed · {story.num(totals.get('lines_skipped'))} skipped · "
        f"{story.num(totals.get('flagged'))} flagged", "dim"))
    if not srcs:
        pen.out("  no sources were read")
        return
    path_w = max(min(max(len(_oneline(s.get("path"))) + 1 for s in srcs), 28), 6)
    fmt_w = max(min(max(len(_oneline(s.get("format"))) for s in srcs), 14), 6) + 1
    cols = [("read", "lines_read"), ("parsed", "lines_parsed"), ("unparsed", "lines_unparsed"),
            ("skipped", "lines_skipped"), ("flagged", "flagged")]
    widths = [max(len(h), *(len(story.num(s.get(k))) for s in srcs)) + 1 for h, k in cols]
    hdr = f"  {'path':<{path_w}} {'format':<{fmt_w}}" + "".join(
        f"{h:>{w}}" for (h, _), w in zip(cols, widths)) + "  time range (UTC)"
    pen.out(pen.s(_clip(hdr, WIDTH), "dim"))
    problems = []
    for s in srcs:
        star = "*" if s.get("tz_assumed") else ""
        path = _clip(_oneline(s.get("path") or "?"), path_w - len(star)) + star
        rng = (f"{story.clock(s.get('first_ts'))}–{story.clock(s.get('last_ts'))}"
               if s.get("first_ts") else "no timestamps")
        row = f"  {path:<{path_w}} {_clip(_oneline(s.get('format') or '?'), fmt_w - 1):<{fmt_w}}" + "".join(
            f"{story.num(s.get(k)):>{w}}" for (_, k), w in zip(cols, widths)) + f"  {rng}"
        pen.out(_clip(row, WIDTH))
        for p in s.get("problems") or []:
            problems.append(f"{_oneline(s.get('path'))}: {_oneline(p)}")
    assumed = sorted({_oneline(s.get("tz_assumed")) for s in srcs if s.get("tz_assumed")})
    if assumed:
        pen.wrap(f"* timestamps without a zone were read as {', '.join(assumed)} (--tz).", 2, style="dim")
    for p in problems:
        pen.wrap(p, 4, first="  " + pen.s("!", "yellow") + " ")


def render_text(analysis: dict, *, color: bool = False) -> str:
    """Returns the text report for `analysis`, ANSI-coloured only when `color` is true."""
    doc, notes = cap(analysis if isinstance(analysis, dict) else {})
    pen = _Pen(color)
    tool = story._dict(doc.get("tool"))
    pen.out(pen.s(f"logtriage {tool.get('version') or ''}".strip(), "dim") + pen.s(
        f" · {story.read_summary(doc)}", "dim"))
    pen.out()
    _verdict(pen, doc)
    all_incidents = story.incidents(doc)
    for n, inc in enumerate(all_incidents):
        if n:
            pen.out()
            pen.out(pen.s(f"INCIDENT {_oneline(inc.get('id') or n + 1)}", "head") + "  " + pen.s(
                f"{inc.get('severity') or '?'} · {story.span(inc.get('start'), inc.get('end'))} "
                f"({story.seconds(inc.get('duration_s'))})", "dim"))
        pen.out()
        _impact(pen, inc)
        ranked = story.causes(inc)[:TOP_CAUSES if n == 0 else 1]
        if ranked:
            pen.out()
            pen.out(pen.s("CAUSES" if n == 0 else "MOST LIKELY CAUSE", "head"))
            for i, c in enumerate(ranked):
                if i:
                    pen.out()
                _cause(pen, c, full=(i == 0))
    moments = story.key_moments(doc, story.primary(doc), limit=8)
    if moments:
        pen.out()
        pen.out(pen.s("KEY MOMENTS", "head"))
        for k in moments:
            lead = f"  {story.clock(k.get('ts'))}  {_clip(_oneline(k.get('component') or '?'), 10):<10} "
            lead += f"{_clip(_oneline(k.get('kind') or ''), 10):<10} "
            pen.out(lead + _clip(_oneline(k.get("text")), WIDTH - len(lead)))
    others = story._list(doc.get("other_findings"))
    unrec = story._list(doc.get("unrecognised"))
    if others or unrec:
        pen.out()
        pen.out(pen.s("WHAT ELSE WAS SEEN", "head"))
        for f in others[:6]:
            pen.out(f"  {story.num(f.get('count')):>6} × {f.get('class')} in {_oneline(f.get('component'))}  "
                    + pen.s(story.span(f.get("first"), f.get("last")), "dim"))
            ex = story._dict(f.get("example"))
            if ex:
                _evidence_line(pen, {**ex, "class": f.get("class")}, 11)
        for u in unrec[:6]:
            pen.out(_clip(f"  {story.num(u.get('count')):>6} × unrecognised in {_oneline(u.get('component'))}: "
                          f"{_oneline(u.get('shape'))}", WIDTH))
    pen.out()
    _sources(pen, doc)
    for note in notes:
        pen.out(pen.s(f"  (report capped: {note})", "dim"))
    return "\n".join(line.rstrip() for line in pen.lines) + "\n"
