"""The report stage: renders the analysis document (docs/json-schema.md) as text, JSON or HTML."""

from __future__ import annotations

FORMATS = ("text", "json", "html")


def render(analysis: dict, fmt: str, *, color: bool = False) -> str:
    """Returns the report for `analysis` in `fmt` (text, json or html); `color` adds ANSI to text only."""
    if fmt == "json":
        from logtriage.report.as_json import render_json
        return render_json(analysis)
    if fmt == "text":
        from logtriage.report.terminal import render_text
        return render_text(analysis, color=color)
    if fmt == "html":
        from logtriage.report.html import render_html
        return render_html(analysis)
    raise ValueError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")
