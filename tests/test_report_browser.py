"""The HTML report in a real headless Chromium with the network cut off: the chart and causes render.

Chromium runs with a proxy to nowhere (127.0.0.1:9) and background networking off, so anything
the page tried to fetch would fail; the DOM after load must still hold the SVG timeline and the
cause cards, and the screenshot must not be blank. Screenshots go to tests/artifacts/ (git-ignored)
for a human to look at. Skipped, saying why, when /usr/bin/chromium is missing (scripts/test.sh
installs Debian's chromium when it can).
"""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from logtriage.report import render

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "analysis"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 20

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium not found: browser rendering checks skipped "
           "(install it with `apt-get install -y chromium`, as scripts/test.sh does)")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs headless Chromium offline on a fresh profile and returns the finished process."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
             f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([str(CHROMIUM), *flags, *args], check=False, capture_output=True, text=True,
                          timeout=TIMEOUT_S, cwd=tmp_path)


def write_report(tmp_path: Path, name: str) -> Path:
    page = tmp_path / f"{name}.html"
    page.write_text(render(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")), "html"),
                    encoding="utf-8")
    return page


# -- a minimal PNG reader (8-bit RGB/RGBA, non-interlaced: what Chromium writes) ---------------------

def read_png(path: Path, max_rows: int | None = None) -> tuple[int, int, int, bytes]:
    """Returns (width, height, channels, the first max_rows pixel rows without filter bytes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            channels = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray()
    prev = bytearray(stride)
    for y in range(min(height, max_rows or height)):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return width, height, channels, bytes(out)


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def dom_of(html: str) -> _Dom:
    d = _Dom()
    d.feed(html)
    return d


# -- tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["port_mismatch", "db_max_connections", "healthy_baseline", "hostile"])
def test_report_renders_offline_and_is_not_blank(tmp_path, name):
    page = write_report(tmp_path, name)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    proc = chromium(tmp_path, "--window-size=1280,3600", "--virtual-time-budget=2000",
                    f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), f"no screenshot written; chromium said:\n{proc.stderr[-2000:]}"
    (ARTIFACTS / f"{name}.html").write_text(page.read_text(encoding="utf-8"), encoding="utf-8")

    width, height, ch, px = read_png(shot, max_rows=1800)
    assert (width, height) == (1280, 3600)
    # Not blank: many distinct colours, and a good share of non-white pixels in the top screenful.
    top = px[: width * 900 * ch]
    colours = {top[i:i + 3] for i in range(0, len(top), ch * 7)}
    non_white = sum(1 for i in range(0, len(top), ch * 3) if top[i] < 235 or top[i + 1] < 235 or top[i + 2] < 235)
    assert len(colours) > 40, f"{name}: only {len(colours)} colours: the page looks blank"
    assert non_white > 2_000, f"{name}: only {non_white} sampled non-white pixels"
    # The chart's bars and areas are saturated colours; text and borders are greys. The chart sits in
    # the first 1,800 pixels of every fixture's page.
    chart = px[: width * 1800 * ch]
    saturated = sum(1 for i in range(0, len(chart), ch * 3)
                    if max(chart[i:i + 3]) - min(chart[i:i + 3]) > 90)
    assert saturated > 1_000, f"{name}: only {saturated} sampled saturated pixels: chart not drawn?"


@pytest.mark.parametrize("name", ["port_mismatch", "hostile"])
def test_dom_after_load_has_chart_and_causes(tmp_path, name):
    page = write_report(tmp_path, name)
    proc = chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", page.as_uri())
    dom = proc.stdout
    assert "</html>" in dom, f"no DOM dumped; chromium said:\n{proc.stderr[-2000:]}"
    d = dom_of(dom)
    tags = [t for t, _ in d.tags]
    svgs = [a for t, a in d.tags if t == "svg" and "timeline-svg" in (a.get("class") or "")]
    assert svgs, "the timeline SVG is missing after load"
    assert sum(1 for t, a in d.tags if t == "path" and "bars" in (a.get("class") or "")) >= 2
    assert any(t == "rect" and "window" in (a.get("class") or "").split() for t, a in d.tags)
    causes = [a for t, a in d.tags if t == "li" and "cause" in (a.get("class") or "").split()]
    assert [c.get("data-cause-id") for c in causes][:2] == ["config.port_mismatch", "service.down"]
    # the browser found exactly one script element (the data block), and no image/iframe/object/link
    assert tags.count("script") == 1
    assert not {"img", "iframe", "object", "embed", "link", "base"} & set(tags)
    assert not any(t == "meta" and (a.get("http-equiv") or "").lower() == "refresh" for t, a in d.tags)
    # the hostile strings are text in the rendered DOM, never elements
    if name == "hostile":
        assert "&lt;script&gt;alert(" in dom and "onerror=alert(1)&gt;" in dom
        assert not any("onerror" in a or "onload" in a for _, a in d.tags)


def test_embedded_json_parses_in_the_browser_dom(tmp_path):
    page = write_report(tmp_path, "hostile")
    proc = chromium(tmp_path, "--virtual-time-budget=1000", "--dump-dom", page.as_uri())
    start = proc.stdout.index('id="analysis"')
    body = proc.stdout[proc.stdout.index(">", start) + 1:proc.stdout.index("</script>", start)]
    assert json.loads(body) == json.loads((FIXTURES / "hostile.json").read_text(encoding="utf-8"))
