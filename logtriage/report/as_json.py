"""Returns the analysis document as stable, pretty JSON (`logtriage analyze --format json`)."""

from __future__ import annotations

import json

from logtriage.report.limits import clean


def render_json(analysis: dict) -> str:
    """Returns `analysis` as indented UTF-8 JSON text ending in a newline; NaN/inf become null."""
    return json.dumps(clean(analysis), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
