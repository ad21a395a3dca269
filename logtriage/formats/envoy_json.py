"""envoy_json: not written yet (a stub that never matches)."""

from __future__ import annotations

import polars as pl

NAME = "envoy_json"
LAYER = "app"
DEFAULT_COMPONENT = None
SIGNATURE = r"\b\B"   # never matches
EXAMPLES: list[str] = []


def parse(text: pl.Expr) -> dict[str, pl.Expr]:
    return {"message": text}


def fields(text: str) -> dict:
    return {}
