"""Classified event batches -> the compact frames correlation needs, with bounded memory.

Correlation does not keep every event: it keeps the flagged ones (text cut short), a narrow
frame of access-log requests (time, status, duration) for impact figures, per-second activity
counts per component (to see a log fall silent), the signals (listening, started, exited ...)
and a capped sample of error-level lines no rule recognised.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from logtriage.classify.engine import Classifier, signals
from logtriage.formats import nginx_access
from logtriage.model import UTC_DATETIME, detached

ACCESS_FORMATS = ("nginx_access", "envoy_access", "envoy_json", "haproxy")
# libpq >= 14 names the PostgreSQL server it could not reach (quotes escaped inside a JSON string):
# connection to server at "127.0.0.1", port 28142 failed: Connection refused
LIBPQ_REFUSED = r'connection to server at \\?"(?P<host>[^"\\]+)\\?", port (?P<port>\d+) failed: Connection refused'
MAX_TEXT = 600             # characters of an event's text kept for evidence ...
# ... of a longer one (a multi-line record), its first TEXT_HEAD characters and its end: a Python
# traceback ends with the exception that says what failed, after the app's line that started it
TEXT_HEAD = 200
TEXT_PER_RULE = 200        # ... for this many events per (source, rule): the rest keep counts only
MAX_UNRECOGNISED = 20_000  # error-level unclassified events kept for the "what else" shapes


@dataclass
class Collected:
    """Everything correlation reads, concatenated at the end of the run."""

    flagged: pl.DataFrame
    access: pl.DataFrame
    activity: pl.DataFrame
    signals: pl.DataFrame
    unrecognised: pl.DataFrame
    layers: dict[str, str]          # component -> deepest layer its formats say (db, cache, app, proxy, system)
    formats: dict[str, set[str]]    # component -> formats seen
    # component -> the (1 s) time of its last line before --since: when it was last heard from, for a
    # log that says nothing in the range (a Redis at `notice` SIGKILLed: silent, not unknown)
    heard_before: dict = field(default_factory=dict)


# Column a batch may carry into add(): the rows engine.Prefilter found a keyword on (for signals)
MAYBE = "_maybe"


@dataclass
class Digest:
    """Collector.digest() of one batch: its share of each Collected frame, before take() keeps it."""

    flagged: pl.DataFrame | None = None      # with _rank: the row's place among its (source, rule) in the batch
    per_rule: list[tuple] = field(default_factory=list)   # (source, rule, flagged events)
    access: pl.DataFrame | None = None
    activity: pl.DataFrame | None = None
    signals: pl.DataFrame | None = None
    unrecognised: pl.DataFrame | None = None
    formats: list[tuple] = field(default_factory=list)    # (component, [formats])
    heard_before: list[tuple] = field(default_factory=list)   # (component, last time before --since)


@dataclass
class Collector:
    signal_classifier: Classifier
    since: object = None
    until: object = None
    _flagged: list[pl.DataFrame] = field(default_factory=list)
    _access: list[pl.DataFrame] = field(default_factory=list)
    _activity: list[pl.DataFrame] = field(default_factory=list)
    _signals: list[pl.DataFrame] = field(default_factory=list)
    _unrec: list[pl.DataFrame] = field(default_factory=list)
    _unrec_n: int = 0
    _comp_formats: dict[str, set[str]] = field(default_factory=dict)
    _heard_before: dict = field(default_factory=dict)
    _texts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, batch: pl.DataFrame) -> None:
        """Take what correlation needs from one classified batch."""
        self.take(self.digest(batch))

    def digest(self, batch: pl.DataFrame) -> Digest:
        """What correlation needs from one classified batch. Reads no state: may run on any thread."""
        # --since / --until limit the findings, not the standing facts: which components wrote which
        # formats (their layers), and where a service said it listens (a start-up long before the
        # window still names who listens on the port the proxy dials), come from the lines before too
        d = Digest(formats=batch.group_by("component").agg(pl.col("format").unique()).rows())
        if self.until is not None:
            batch = batch.filter(pl.col("ts").is_null() | (pl.col("ts") <= self.until))
        earlier = None
        if self.since is not None:
            before = pl.col("ts").is_not_null() & (pl.col("ts") < self.since)
            earlier = batch.filter(before)
            batch = batch.filter(~before)
        if earlier is not None and earlier.height:
            d.heard_before = earlier.group_by("component").agg(pl.col("ts").max().dt.truncate("1s")).rows()
            maybe = earlier.get_column(MAYBE) if MAYBE in earlier.columns else None
            listens = signals(earlier, self.signal_classifier, maybe).filter(pl.col("signal") == "listening")
            if listens.height:
                d.signals = detached(listens.with_columns(pl.col("raw").str.slice(0, MAX_TEXT)))
        if batch.height == 0:
            return d
        raw = pl.col("raw")
        text = (pl.when(raw.str.len_chars() > MAX_TEXT)
                .then(raw.str.slice(0, TEXT_HEAD) + " [...] " + raw.str.slice(-(MAX_TEXT - TEXT_HEAD - 7)))
                .otherwise(raw))
        flagged = batch.filter(pl.col("class").is_not_null())
        if flagged.height:
            # evidence needs a few texts per rule, not all of them (take() counts across batches)
            rank = pl.int_range(pl.len()).over("source", "rule")
            access = pl.col("format").is_in(ACCESS_FORMATS)
            request = pl.col("raw").str.extract_groups(r'"([A-Z]{3,7}) (/[^ "?]*)')
            path = (request.struct.field("2").str.replace_all(r"/[0-9]+(/|$)", "/{id}$1")
                    .str.replace_all(r"/[0-9a-fA-F-]{8,}(/|$)", "/{id}$1"))
            tail = pl.col("raw").str.extract_groups(nginx_access.UPSTREAM_TAIL)
            nginx_upstream = tail.struct.field("1").str.split(", ").list.first()
            # the status the (last) upstream answered: equal to the response's, the 5xx is the upstream's own
            upstream_status = tail.struct.field("2").str.split(", ").list.last().cast(pl.Int16, strict=False)
            libpq = pl.col("raw").str.extract_groups(LIBPQ_REFUSED)
            d.flagged = detached(flagged.select(
                "ts", "source", "line", "component", "format", "class", "rule", "severity", "entities",
                pl.coalesce(pl.col("upstream"), pl.when(pl.col("format") == "nginx_access").then(nginx_upstream))
                .alias("upstream"),
                "status", pl.when(pl.col("format") == "nginx_access").then(upstream_status).alias("upstream_status"),
                "level",
                pl.when(rank < TEXT_PER_RULE).then(text).alias("text"),
                pl.when(access).then(request.struct.field("1") + " " + path).alias("endpoint"),
                (libpq.struct.field("host") + ":" + libpq.struct.field("port")).alias("pg_dialled"),
                rank.alias("_rank"),
            ))
            d.per_rule = flagged.group_by("source", "rule").len().rows()
        d.access = detached(batch.filter(pl.col("format").is_in(ACCESS_FORMATS) & pl.col("status").is_not_null())
                            .select("ts", "component", "status", pl.col("duration").cast(pl.Float32)))
        d.activity = detached(batch.filter(pl.col("ts").is_not_null())
                              .group_by("component", pl.col("ts").dt.truncate("1s")).len())
        sig = signals(batch, self.signal_classifier, batch.get_column(MAYBE) if MAYBE in batch.columns else None)
        if sig.height:
            sig = detached(sig.with_columns(pl.col("raw").str.slice(0, MAX_TEXT)))
            d.signals = sig if d.signals is None else pl.concat([d.signals, sig], how="vertical_relaxed")
        d.unrecognised = detached(
            batch.filter(pl.col("class").is_null() & pl.col("level").is_in(["error", "fatal"])).select(
                "ts", "source", "line", "component", pl.col("message").str.split("\n").list.first()
                .str.slice(0, 400).alias("message"), text.alias("text")).head(MAX_UNRECOGNISED))
        return d

    def take(self, d: Digest) -> None:
        """Keep a batch's digest (in batch order: the evidence texts are the first ones per rule)."""
        if d.flagged is not None:
            seen = pl.concat_str("source", pl.lit("\x00"), "rule").replace_strict(
                {f"{s}\x00{r}": n for (s, r), n in self._texts.items()}, default=0, return_dtype=pl.Int64)
            self._flagged.append(d.flagged.with_columns(
                pl.when(pl.col("_rank") + seen < TEXT_PER_RULE).then(pl.col("text")).alias("text")).drop("_rank"))
            for src, rule, n in d.per_rule:
                self._texts[(src, rule)] = self._texts.get((src, rule), 0) + n
        for kept, frame in ((self._access, d.access), (self._activity, d.activity), (self._signals, d.signals)):
            if frame is not None and frame.height:
                kept.append(frame)
        if d.unrecognised is not None and self._unrec_n < MAX_UNRECOGNISED:
            un = d.unrecognised.head(MAX_UNRECOGNISED - self._unrec_n)
            self._unrec_n += un.height
            self._unrec.append(un)
        for comp, fmts in d.formats:
            self._comp_formats.setdefault(comp, set()).update(fmts)
        for comp, ts in d.heard_before:
            self._heard_before[comp] = max(ts, self._heard_before.get(comp, ts))

    def result(self, layer_of_format: dict[str, str]) -> Collected:
        def cat(frames: list[pl.DataFrame], schema: dict) -> pl.DataFrame:
            frames = [f for f in frames if f.height]
            return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame(schema=schema)

        flagged = cat(self._flagged, {"ts": UTC_DATETIME, "source": pl.String, "line": pl.UInt32,
                                      "component": pl.String, "format": pl.String, "class": pl.String,
                                      "rule": pl.String, "severity": pl.String, "entities": pl.String,
                                      "upstream": pl.String, "status": pl.Int16, "upstream_status": pl.Int16,
                                      "level": pl.String,
                                      "text": pl.String, "endpoint": pl.String, "pg_dialled": pl.String})
        access = cat(self._access, {"ts": UTC_DATETIME, "component": pl.String, "status": pl.Int16,
                                    "duration": pl.Float32})
        activity = cat(self._activity, {"component": pl.String, "ts": UTC_DATETIME, "len": pl.UInt32})
        if activity.height:
            activity = activity.group_by("component", "ts").agg(pl.col("len").sum()).sort("ts")
        sigs = cat(self._signals, {"ts": UTC_DATETIME, "source": pl.String, "line": pl.UInt32,
                                   "component": pl.String, "signal": pl.String, "rule": pl.String,
                                   "entities": pl.String, "raw": pl.String})
        unrec = cat(self._unrec, {"ts": UTC_DATETIME, "source": pl.String, "line": pl.UInt32,
                                  "component": pl.String, "message": pl.String, "text": pl.String})
        layers = {comp: component_layer(fmts, layer_of_format) for comp, fmts in self._comp_formats.items()}
        return Collected(flagged.sort("ts", nulls_last=True), access, activity, sigs.sort("ts", nulls_last=True),
                         unrec, layers, dict(self._comp_formats), dict(self._heard_before))


# layers from the top of the stack down; db, cache and system are equally deep (below the app),
# and a component that writes lines of several says the more specific: a database's directory
# with journald lines about its unit is the database
_LAYER_ORDER = {"proxy": 1, "app": 2, "system": 3, "cache": 4, "db": 5}


def component_layer(fmts: Iterable[str], layer_of_format: dict[str, str]) -> str:
    """The deepest layer the formats a component wrote say (whatever order they come in)."""
    ls = [layer_of_format.get(f, "app") for f in fmts if f != "plain"] or ["app"]
    return max(ls, key=lambda x: _LAYER_ORDER.get(x, 2))
