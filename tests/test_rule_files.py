"""The rule pack as a whole: ids unique, classes from TAXONOMY.md, every class covered, loader errors."""

from __future__ import annotations

import re

import pytest

from logtriage.classify.loader import builtin_rules_dir, derive_keywords, load_rules, rule_files
from logtriage.errors import RuleFileError
from logtriage.model import CLASS_IDS, INCIDENT_IDS
from tests.conftest import SHARED


def test_taxonomy_ids_match_shared_taxonomy():
    path = SHARED / "TAXONOMY.md"
    if not path.exists():
        pytest.skip(f"{path} not found: taxonomy agreement not checked")
    text = path.read_text()
    main, _, incident = text.partition("## Root causes of an incident")
    assert tuple(re.findall(r"^\| `([a-z0-9_.]+)` \|", main, re.MULTILINE)) == CLASS_IDS
    assert tuple(re.findall(r"^\| `([a-z0-9_.]+)` \|", incident, re.MULTILINE)) == INCIDENT_IDS


def test_every_taxonomy_class_has_a_rule():
    classes = {r.root_class for r in load_rules() if r.kind == "rule"}
    missing = [c for c in CLASS_IDS if c not in classes]
    assert not missing, f"classes without a rule: {missing}"


def test_ids_are_unique_across_files():
    import tomllib
    ids: dict[str, str] = {}
    for path in rule_files([builtin_rules_dir()]):
        for kind in ("rule", "signal"):
            for raw in tomllib.loads(path.read_text()).get(kind, []):
                assert raw["id"] not in ids, f"{raw['id']} in {path.name} and {ids[raw['id']]}"
                ids[raw["id"]] = path.name


def test_every_rule_has_both_kinds_of_example():
    for r in load_rules():
        assert r.match and r.no_match, r.id


def test_loader_reports_every_problem_with_file_and_rule(tmp_path):
    (tmp_path / "bad.toml").write_text('''
[[rule]]
id = "x.one"
class = "no.such_class"
severity = "error"
pattern = '(?<=look)behind'
explain = "e"
check_first = "c"
remediation = ["r"]
match = ["a"]

[[rule]]
id = "x.two"
class = "conn.refused"
severity = "loud"
pattern = 'refused'
explain = "e"
check_first = "c"
remediation = ["r"]
match = ["a"]
no_match = ["b"]
''')
    with pytest.raises(RuleFileError) as info:
        load_rules([tmp_path], builtin=False)
    text = str(info.value)
    assert "bad.toml" in text
    assert "x.one: class 'no.such_class'" in text
    assert "x.one: pattern does not compile" in text
    assert "x.one: needs at least one `no_match`" in text
    assert "x.two: severity must be one of" in text
    assert len(info.value.problems) == 4


def test_invalid_toml_names_the_file_and_line(tmp_path):
    (tmp_path / "broken.toml").write_text('[[rule]]\nid = "x.y\n')
    with pytest.raises(RuleFileError) as info:
        load_rules([tmp_path], builtin=False)
    assert "broken.toml" in str(info.value) and "line 2" in str(info.value)


@pytest.mark.parametrize("pattern,expected", [
    (r"connect\(\) failed \(111: Connection refused\)", ["connect() failed (111: Connection refused)"]),
    (r"(?i)sorry, too many clients already", ["sorry, too many clients already"]),
    (r"no live upstreams|no healthy upstream", ["no live upstreams", "no healthy upstream"]),
    (r"(?:a|b)c", None),
    (r"colou?r is (?P<c>\w+)", ["colo"]),   # "colo" and "r is" are both required; the first longest wins
])
def test_derived_keywords_are_required_literals(pattern, expected):
    got = derive_keywords(pattern)
    if expected is None:
        assert got is None or all(len(k) >= 4 for k in got)
    else:
        assert got == expected
