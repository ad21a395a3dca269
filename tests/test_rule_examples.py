"""Every example of every rule in rules/*.toml, each its own test case: `<rule id>-match-0` ..."""

from __future__ import annotations

import pytest

from logtriage.classify.engine import Classifier
from logtriage.classify.examples import check_rule
from logtriage.classify.loader import load_rules

RULES = load_rules()
CLF = Classifier(RULES, "rule")
SIG = Classifier(RULES, "signal")
CASES = [(r, kind, i) for r in RULES for kind, lines in (("match", r.match), ("no_match", r.no_match))
         for i in range(len(lines))]


@pytest.mark.parametrize("rule,kind,index", CASES, ids=[f"{r.id}-{k}-{i}" for r, k, i in CASES])
def test_rule_example(rule, kind, index):
    results = [x for x in check_rule(rule, CLF, SIG) if x.kind == kind and x.index == index]
    assert results and results[0].ok, f"{results[0].line!r}: {results[0].detail}"
