"""The report stage: text, JSON and HTML rendered from analysis documents (tests/fixtures/analysis/).

The fixtures follow docs/json-schema.md with values taken from the shared scenario corpus
(make_fixtures.py there regenerates them). hostile.json carries markup, template syntax and
script-closing strings in every field a log line or a path can reach.
"""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from logtriage.report import render
from logtriage.report.html import embed_json
from logtriage.report.limits import MAX_BUCKETS

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "analysis"
NAMES = ["port_mismatch", "db_max_connections", "healthy_baseline", "hostile"]
SECTIONS = ["verdict", "impact", "timeline", "causes", "other", "sources"]
HOSTILE = ['<script>alert("pwn")</script>', '"><img src=x onerror=alert(1)>', "</textarea>", "{{ 7*7 }}"]
ANSI = re.compile(r"\x1b\[")


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


class Page(HTMLParser):
    """Collects the tags, the text per section id and the raw content of <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.sections: list[str] = []
        self.text: dict[str, str] = {}
        self.all_text: list[str] = []
        self.scripts: list[tuple[dict, str]] = []
        self._section: str | None = None
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section":
            self._section = a.get("id")
            self.sections.append(a.get("id"))
            self.text[self._section] = ""
        if tag == "script":
            self._script = a

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self.scripts.append((self._script, data))
            return
        self.all_text.append(data)
        if self._section:
            self.text[self._section] += data


def page(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


def squash(s: str) -> str:
    return re.sub(r"\s+", " ", s)


@pytest.fixture(scope="module", params=NAMES)
def rendered(request):
    doc = load(request.param)
    return request.param, doc, render(doc, "html")


# -- HTML ---------------------------------------------------------------------------------------------

def test_html_sections_in_order(rendered):
    _, _, html = rendered
    assert page(html).sections == SECTIONS


@pytest.mark.parametrize("name,cause,component", [
    ("port_mismatch", "port mismatch", "nginx config"),
    ("db_max_connections", "database connection limit reached", "postgres"),
])
def test_html_verdict_names_cause_component_confidence_window(name, cause, component):
    doc = load(name)
    p = page(render(doc, "html"))
    verdict = squash(p.text["verdict"])
    top = doc["incidents"][0]["causes"][0]
    assert f"Most likely root cause: {cause} in {component}" in verdict
    assert top["id"] in verdict
    assert f"{round(top['confidence'] * 100)} % confidence" in verdict
    assert "10:1" in verdict and "UTC" in verdict
    assert "critical" in verdict


def test_html_no_incident_says_so_plainly():
    p = page(render(load("healthy_baseline"), "html"))
    verdict = squash(p.text["verdict"])
    assert "No incident found" in verdict
    assert "822 lines from 5 sources" in verdict
    assert "Most likely" not in verdict


@pytest.mark.parametrize("name", ["port_mismatch", "db_max_connections"])
def test_html_causes_show_evidence_with_file_line(name):
    doc = load(name)
    causes = squash(page(render(doc, "html")).text["causes"])
    for cause in doc["incidents"][0]["causes"]:
        assert cause["id"] in causes
        for e in cause["evidence"][:4]:
            assert f"{e['source']}:{e['line']}" in causes
        for step in cause["remediation"]:
            assert squash(step) in causes
    assert "Check first" in causes or "CHECK FIRST" in causes.upper()


def test_html_marks_the_matched_class_words():
    html = render(load("port_mismatch"), "html")
    assert "<mark>(111: Connection refused)</mark>" in html
    assert "<mark>502</mark>" in html


def test_html_timeline_has_svg_window_onset_and_key_events():
    html = render(load("port_mismatch"), "html")
    p = page(html)
    assert any(t == "svg" for t, _ in p.tags)
    classes = [a.get("class", "") for _, a in p.tags]
    assert "window" in classes and "onset" in classes and "marker" in classes
    assert sum(c == "bars" for c in classes) == 2
    timeline = squash(p.text["timeline"])
    assert "listening on http://127.0.0.1:28051" in timeline and "incident I1 starts" in timeline


def test_html_impact_and_sources(rendered):
    _name, doc, html = rendered
    p = page(html)
    sources = squash(p.text["sources"])
    for s in doc["sources"]:
        assert squash(s["path"]) in sources
    if doc["incidents"]:
        impact = squash(p.text["impact"])
        imp = doc["incidents"][0]["impact"]
        assert f"{imp['requests']:,}" in impact and f"{imp['errors']:,}" in impact
        assert "missed" in impact.lower()      # error-rate target, missed in both incidents
        assert imp["endpoints"][0]["endpoint"] in impact


def test_html_has_no_external_reference(rendered):
    _, _, html = rendered
    low = html.lower()
    assert not re.search(r"""(src|href|action|poster|srcset|xlink:href)\s*=\s*["']?\s*(https?:)?//""", low)
    style = low[low.index("<style>"):low.index("</style>")]
    assert "@import" not in style and "url(" not in style and "@font-face" not in style
    assert "url(http" not in low and "url(//" not in low
    assert "<link" not in low and "<img" not in low.replace("&lt;img", "")
    p = page(html)
    scripts = [a for t, a in p.tags if t == "script"]
    assert len(scripts) == 1 and scripts[0]["type"] == "application/json" and "src" not in scripts[0]
    assert not [a for _, a in p.tags if any(k.startswith("on") for k in a)]


def test_html_hostile_strings_are_text_never_markup():
    doc = load("hostile")
    html = render(doc, "html")
    p = page(html)
    text = "".join(p.all_text)
    for s in HOSTILE:
        assert s in text, f"{s!r} should be visible as text"
    assert text.count("{{ 7*7 }}") >= 4          # never evaluated as a template
    # exactly the elements the template makes: no tag from the data
    tags = {t for t, _ in p.tags}
    assert not {"img", "textarea", "iframe", "svg:script"} & tags
    assert 'nginx config <b>"bold"</b>' in text
    assert [t for t, _ in p.tags].count("script") == 1
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "</textarea>" not in html
    # attribute values carrying log text are escaped too
    assert 'data-component="nginx config &lt;b&gt;&#34;bold&#34;&lt;/b&gt;"' in html


@pytest.mark.parametrize("name", NAMES)
def test_html_embedded_json_parses_back_equal(name):
    doc = load(name)
    p = page(render(doc, "html"))
    (attrs, body), = [(a, d) for a, d in p.scripts if a.get("id") == "analysis"]
    assert attrs.get("type") == "application/json"
    assert json.loads(body) == doc


def test_embed_json_cannot_close_its_element():
    doc = {"text": "</script><!-- <script> ]]> \u2028 &amp;"}
    out = str(embed_json(doc))
    assert "</" not in out and "<!--" not in out and "<" not in out
    assert json.loads(out) == doc


def test_html_tolerates_a_sparse_document():
    html = render({"schema_version": "1.0", "incidents": [{"id": "I1", "causes": [{"id": "proc.crash"}]}]}, "html")
    p = page(html)
    assert p.sections == SECTIONS
    assert "process crashed" in squash(p.text["verdict"])
    assert render({}, "html").count("<section") == 6


def huge_document() -> dict:
    doc = load("port_mismatch")
    inc = doc["incidents"][0]
    n = 100_000
    doc["timeline"]["series"] = [{"component": f"svc{i}", "class": "http.5xx", "counts": [i % 7] * n}
                                 for i in range(40)]
    doc["timeline"]["requests"] = [100] * n
    doc["timeline"]["errors"] = [3] * n
    line = inc["causes"][0]["evidence"][0]
    inc["causes"][0]["evidence"] = [{**line, "line": k, "text": line["text"] * 40} for k in range(50_000)]
    inc["causes"] = inc["causes"] * 20
    doc["key_events"] = doc["key_events"] * 5_000
    doc["unrecognised"] = [{"shape": f"shape {k}", "count": k, "component": "app",
                            "example": {"source": "app/app.log", "line": k, "text": "x" * 50_000}}
                           for k in range(5_000)]
    doc["sources"] = doc["sources"] * 2_000
    return doc


def test_html_size_cap_on_a_huge_document():
    doc = huge_document()
    html = render(doc, "html")
    assert len(html.encode("utf-8")) < 5_000_000
    assert len(doc["timeline"]["requests"]) == 100_000       # the caller's document is not changed
    p = page(html)
    assert p.sections == SECTIONS
    (attrs, body), = [(a, d) for a, d in p.scripts if a.get("id") == "analysis"]
    assert attrs.get("data-capped") == "true"
    capped = json.loads(body)
    assert all(len(s["counts"]) <= MAX_BUCKETS for s in capped["timeline"]["series"])
    assert capped["timeline"]["bucket_seconds"] > doc["timeline"]["bucket_seconds"]
    assert "capped" in squash("".join(p.all_text))
    assert len(render(doc, "text").encode()) < 200_000


def test_nan_never_reaches_json():
    doc = load("port_mismatch")
    doc["incidents"][0]["causes"][0]["confidence"] = float("nan")
    doc["incidents"][0]["impact"]["latency"]["p99"] = float("inf")
    out = render(doc, "json")
    assert "NaN" not in out and "Infinity" not in out
    assert json.loads(out)["incidents"][0]["causes"][0]["confidence"] is None
    html = render(doc, "html")
    assert "NaN" not in html
    text = render(doc, "text")
    assert "nan" not in text.lower().replace("nanoseconds", "")


# -- JSON -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_json_round_trips_and_is_stable(name):
    doc = load(name)
    out = render(doc, "json")
    assert json.loads(out) == doc
    assert out == render(copy.deepcopy(doc), "json")
    assert out.endswith("\n") and out.startswith("{\n  ")
    if name == "hostile":
        assert "\\u" not in out.replace("\\u2028", "")     # ensure_ascii=False: text stays readable


# -- text -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_text_fits_100_columns_without_ansi(name):
    out = render(load(name), "text", color=False)
    assert not ANSI.search(out)
    assert all(len(line) <= 100 for line in out.splitlines()), max(out.splitlines(), key=len)


def test_text_colour_only_when_asked():
    doc = load("port_mismatch")
    assert ANSI.search(render(doc, "text", color=True))
    assert not ANSI.search(render(doc, "text"))


def test_text_tells_the_story_in_order():
    doc = load("port_mismatch")
    out = render(doc, "text")
    order = ["ROOT CAUSE", "IMPACT", "CAUSES", "KEY MOMENTS", "SOURCES"]
    positions = [out.index(h) for h in order]
    assert positions == sorted(positions)
    first = out.split("IMPACT")[0]
    assert "port mismatch in nginx config (config.port_mismatch)" in first
    assert "87 % confidence" in first and "10:13:09–10:13:54 UTC (45 s)" in first
    assert "237 of 262 requests failed" in out and "90.5 %" in out and "missed" in out
    assert "p50 0 ms · p95 1 ms · p99 2 ms" in out
    assert "nginx/error.log:1" in out and "app/app.log:158" in out     # evidence from both sides
    assert "check first" in out and "• Point the nginx upstream at 127.0.0.1:28051" in out
    assert re.search(r"nginx/error.log\*?\s+nginx_error\s+237\s+237\s+0\s+0\s+237", out)


def test_text_no_incident():
    out = render(load("healthy_baseline"), "text")
    assert out.splitlines()[2].startswith("No incident: 822 lines from 5 sources")
    assert "ROOT CAUSE" not in out and "timeout.upstream" in out


def test_text_neutralises_control_characters():
    doc = load("hostile")
    doc["incidents"][0]["causes"][0]["evidence"][0]["text"] = "evil \x1b[2J\x1b]0;title\x07 line\r\nnext"
    out = render(doc, "text")
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b[2J" in out


def test_unknown_format_is_an_error():
    with pytest.raises(ValueError, match="text, json, html"):
        render({}, "yaml")


def test_an_incident_without_requests_in_its_window_has_no_error_rate():
    # only database and app logs (or access logs that were quiet then): not "0 of 0 requests failed"
    doc = load("db_max_connections")
    doc["incidents"][0]["impact"].update(requests=0, errors=0, error_rate=None, status={}, latency=None)
    doc["incidents"][0]["impact"]["targets"].update(error_rate_met=None, latency_met=None)
    out = render(doc, "text")
    assert "0 of 0" not in out
    assert "no access-log request in this window, so the error rate is unknown" in out
    html = page(render(doc, "html"))
    assert "no access-log request in the window" in squash(html.text["impact"])
