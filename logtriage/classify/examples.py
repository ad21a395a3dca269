"""Run every rule's own examples: `match` lines must be classified by it, `no_match` lines must not.

Each example is read the way a user's log would be: parsed as a one-line source (its format
detected), then classified with the whole pack, so an example also proves that detection and
the other rules' priorities leave it to the rule that claims it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from logtriage import formats
from logtriage.classify.engine import Classifier, classify
from logtriage.classify.loader import Rule


@dataclass
class ExampleResult:
    rule: str
    kind: str            # "match" | "no_match" | "known_miss"
    index: int
    line: str
    ok: bool
    detail: str = ""

    @property
    def test_id(self) -> str:
        return f"{self.rule}-{self.kind}-{self.index}"


def events_for(line: str) -> pl.DataFrame:
    """Parse one example (it may hold several physical lines) into events, as a fresh source."""
    lines = line.split("\n")
    df = pl.DataFrame({"raw": pl.Series(lines, dtype=pl.String),
                       "line": pl.Series(range(1, len(lines) + 1), dtype=pl.UInt32)})
    return formats.parse_lines(df, formats.ParseState(), source="example", final=True).events


def check_rule(rule: Rule, rules: Classifier, signals: Classifier | None = None) -> list[ExampleResult]:
    """Results for every example of one rule (or signal)."""
    clf = signals if rule.kind == "signal" else rules
    out = []
    for kind, lines in (("match", rule.match), ("no_match", rule.no_match), ("known_miss", rule.known_miss)):
        for i, line in enumerate(lines):
            ev = events_for(line)
            if ev.height == 0:
                out.append(ExampleResult(rule.id, kind, i, line, False, "the example parsed to no event"))
                continue
            done = classify(ev.head(1), clf)
            got_rule = done.get_column("rule")[0]
            got_class = done.get_column("class")[0]
            own = Classifier([rule], kind=rule.kind)
            own_hit = own.winners(ev.head(1))[0] == rule.id
            if kind == "no_match":
                ok = not own_hit
                detail = "" if ok else "the rule matches this near miss"
            else:
                ok = own_hit and (rule.kind == "signal" or (got_class or "").split("/")[0] == rule.root_class)
                detail = "" if ok else (f"classified as {got_class!r} by {got_rule!r}" if own_hit
                                        else f"the rule does not match (got {got_class!r} by {got_rule!r}; "
                                             f"format {ev.get_column('format')[0]}, message "
                                             f"{(ev.get_column('message')[0] or '')[:120]!r})")
                if ok and kind == "match" and i == 0 and rule.expect:
                    ents = classify(ev.head(1), own).get_column("entities")[0]
                    got = {k: v for k, v in (json.loads(ents) if ents else {}).items() if v is not None}
                    missing = {k: v for k, v in rule.expect.items() if str(got.get(k)) != str(v)}
                    if missing:
                        ok, detail = False, f"expected captures {missing}, got {got}"
            if kind == "known_miss":
                ok, detail = True, ("now matches: move it to match" if own_hit else "known miss")
            out.append(ExampleResult(rule.id, kind, i, line, ok, detail))
    return out


def check_all(rules: list[Rule]) -> list[ExampleResult]:
    clf = Classifier(rules, "rule")
    sig = Classifier(rules, "signal")
    results: list[ExampleResult] = []
    for r in rules:
        results.extend(check_rule(r, clf, sig))
    return results
