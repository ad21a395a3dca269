"""Event batches -> `scan` output lines (NDJSON or text), built as polars expressions.

`scan` may print hundreds of thousands of flagged events during an outage, so each line is
assembled in one vectorised pass (on the reader's worker threads), not one Python dict per
event, and written by polars, not joined into one Python string. NDJSON `fields` holds the
parsed columns (status, duration, upstream, flags, pid, sqlstate); with full=True it also holds
everything the event's format knows (formats.fields_of), which runs per event: for people and
small streams, not for bulk.
"""

from __future__ import annotations

import errno
import json
from typing import BinaryIO

import polars as pl

from logtriage import formats
from logtriage.model import json_object

_FIELD_COLUMNS = ("status", "duration", "upstream", "flags", "pid", "sqlstate")


def ndjson(batch: pl.DataFrame, *, full: bool = False) -> pl.Series:
    """One JSON object per event (no newline): ts, source, line, format, component, level, message,
    raw, fields, class, rule, severity, entities."""
    if batch.height == 0:
        return pl.Series("l", [], dtype=pl.String)
    has_class = "class" in batch.columns
    if not has_class:
        batch = batch.with_columns(*(pl.lit(None, dtype=pl.String).alias(c)
                                     for c in ("class", "rule", "severity", "entities")))
    base = pl.struct(
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ").alias("ts"), "source", "line", "format", "component",
        "level", "message", "raw").struct.json_encode()
    tail = pl.struct("class", "rule", "severity").struct.json_encode()
    fields = json_object(*_FIELD_COLUMNS)
    if full:
        full_fields = []
        for row in batch.select("format", "raw", *_FIELD_COLUMNS).iter_rows(named=True):
            merged = {c: row[c] for c in _FIELD_COLUMNS if row[c] is not None}
            merged.update(formats.fields_of(row["format"], row["raw"]))
            full_fields.append(json.dumps(merged, ensure_ascii=False, default=str))
        batch = batch.with_columns(pl.Series("_full", full_fields, dtype=pl.String))
        fields = pl.col("_full")
    line = pl.concat_str([base.str.head(-1), pl.lit(',"fields":'), fields, pl.lit(","), tail.str.slice(1).str.head(-1),
                          pl.lit(',"entities":'), pl.col("entities").fill_null("{}"), pl.lit("}")])
    return batch.select(line.alias("l")).get_column("l")


def text(batch: pl.DataFrame) -> pl.Series:
    """One readable line per event: time, class, component, file:line, the message's first line."""
    if batch.height == 0:
        return pl.Series("l", [], dtype=pl.String)
    cls = pl.col("class").fill_null("-") if "class" in batch.columns else pl.lit("-")
    line = pl.format(
        "{}  {} {} {}:{}  {}",
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").fill_null("-" * 19),
        cls.str.pad_end(26), pl.col("component").str.pad_end(10), pl.col("source"), pl.col("line"),
        pl.col("message").fill_null("").str.split("\n").list.first().str.slice(0, 300))
    return batch.select(line.alias("l")).get_column("l")


def write(lines: pl.Series, out: BinaryIO) -> None:
    """Write `lines` (no newlines inside: JSON-escaped or cut at the first) one per line, natively."""
    if not len(lines):
        return
    try:
        lines.to_frame().write_csv(out, include_header=False, quote_style="never")
    except OSError as err:   # polars' own OSError when the reader left (`| head`)
        if err.errno == errno.EPIPE or "Broken pipe" in str(err):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe") from err
        raise
