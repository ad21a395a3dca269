"""rules/*.toml -> Rule objects; every problem in every file is collected before failing.

The schema is rules/README.md. The built-in rules ship inside the package (`logtriage.rules`);
`--rules DIR` adds files whose rules override built-in ones by id.
"""

from __future__ import annotations

import importlib.resources
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import regex

from logtriage.errors import LogtriageError, RuleFileError
from logtriage.formats import names as parser_names
from logtriage.model import CLASS_IDS, INCIDENT_IDS, LEVELS, SEVERITIES, SIGNALS


@dataclass(frozen=True)
class Rule:
    """One [[rule]] (kind "rule": classifies) or [[signal]] (kind "signal": a fact for correlation)."""

    id: str
    kind: str
    file: str
    klass: str | None = None              # the TAXONOMY id ("class" in TOML)
    signal: str | None = None
    severity: str = "error"
    pattern: str | None = None
    keywords: tuple[str, ...] = ()
    engine: str = "polars"
    formats: tuple[str, ...] = ()
    formats_exclude: tuple[str, ...] = ()
    status: tuple[int, int] | None = None
    flags: tuple[str, ...] = ()
    flags_exclude: tuple[str, ...] = ()
    level: str | None = None
    duration_min: float | None = None     # seconds, on the parsed duration
    sqlstate: tuple[str, ...] = ()
    capture: str | None = None
    priority: int = 0
    order: int = 0                        # position across all files: ties go to the first listed
    blame: str | None = None
    explain: str = ""
    check_first: str = ""
    remediation: tuple[str, ...] = ()
    match: tuple[str, ...] = ()
    no_match: tuple[str, ...] = ()
    expect: dict = field(default_factory=dict)
    known_miss: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()

    @property
    def root_class(self) -> str | None:
        return self.klass.split("/", 1)[0] if self.klass else None


_RULE_KEYS = {"id", "class", "severity", "pattern", "keywords", "engine", "formats", "formats_exclude", "status",
              "flags", "flags_exclude", "level", "duration_min", "sqlstate", "capture", "priority", "blame", "explain",
              "check_first", "remediation", "match", "no_match", "expect", "known_miss", "refs"}
_SIGNAL_KEYS = {"id", "signal", "pattern", "keywords", "engine", "formats", "formats_exclude", "capture", "priority",
                "match", "no_match", "expect", "known_miss", "refs", "explain", "level"}
_LIST_KEYS = ("keywords", "formats", "formats_exclude", "flags", "flags_exclude", "sqlstate", "remediation", "match",
              "no_match", "known_miss", "refs")


def builtin_rules_dir() -> Path:
    """The rules shipped with logtriage (the repo's rules/ folder, installed as logtriage.rules)."""
    here = Path(__file__).resolve().parent.parent.parent / "rules"
    if here.is_dir():
        return here
    try:
        return Path(str(importlib.resources.files("logtriage.rules")))
    except ModuleNotFoundError:
        return here


def rule_files(dirs: list[Path]) -> list[Path]:
    out = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            out.append(d)
        else:
            out.extend(sorted(p for p in d.glob("*.toml") if p.name != "links.toml"))
    return out


def load_rules(extra_dirs: list[str | os.PathLike] | None = None, *, builtin: bool = True) -> list[Rule]:
    """Load and validate every rule file; raise RuleFileError listing all problems found."""
    dirs = ([builtin_rules_dir()] if builtin else []) + [Path(d) for d in (extra_dirs or [])]
    problems: list[LogtriageError] = []
    for d in dirs[1 if builtin else 0:]:
        if not Path(d).exists():
            problems.append(LogtriageError("rules directory not found", path=str(d),
                                           hint="give a directory holding *.toml rule files"))
    by_id: dict[str, Rule] = {}
    order = 0
    for path in rule_files([d for d in dirs if Path(d).exists()]):
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            problems.append(LogtriageError(f"invalid TOML: {err}", path=str(path),
                                           hint="check quoting: regexes read best as '...' literal strings"))
            continue
        except OSError as err:
            problems.append(LogtriageError(err.strerror or str(err), path=str(path)))
            continue
        unknown_tables = set(doc) - {"rule", "signal"}
        for t in sorted(unknown_tables):
            problems.append(LogtriageError(f"unknown table [{t}]", path=str(path), hint="use [[rule]] or [[signal]]"))
        seen_in_file: set[str] = set()
        for kind in ("rule", "signal"):
            for raw in doc.get(kind, []):
                rule, errs = _build(raw, kind, str(path), order)
                order += 1
                problems.extend(errs)
                if rule is None:
                    continue
                if rule.id in seen_in_file:
                    problems.append(LogtriageError(f"rule id {rule.id!r} defined twice", path=str(path),
                                                   hint="ids are unique; pick a new one"))
                seen_in_file.add(rule.id)
                by_id[rule.id] = rule   # a later directory overrides by id
    if problems:
        raise RuleFileError(problems)
    return sorted(by_id.values(), key=lambda r: (-r.priority, r.order))


def _build(raw: dict, kind: str, path: str, order: int) -> tuple[Rule | None, list[LogtriageError]]:
    errs: list[LogtriageError] = []
    rid = raw.get("id")

    def err(msg: str, hint: str | None = None) -> None:
        errs.append(LogtriageError(f"{kind} {rid or '?'}: {msg}", path=path, hint=hint))

    if not isinstance(rid, str) or not regex.fullmatch(r"[a-z0-9_]+\.[a-z0-9_.]+", rid or ""):
        err("missing or malformed id", "ids look like family.what (snake case), e.g. nginx.upstream_refused")
    allowed = _RULE_KEYS if kind == "rule" else _SIGNAL_KEYS
    for key in sorted(set(raw) - allowed):
        err(f"unknown key {key!r}", f"allowed keys: {', '.join(sorted(allowed))}")
    for key in _LIST_KEYS:
        if key in raw and not (isinstance(raw[key], list) and all(isinstance(x, str) for x in raw[key])):
            err(f"{key} must be a list of strings")
    if kind == "rule":
        cls = raw.get("class")
        if not isinstance(cls, str) or cls.split("/", 1)[0] not in CLASS_IDS + INCIDENT_IDS:
            err(f"class {cls!r} is not a TAXONOMY.md id", f"one of: {', '.join(CLASS_IDS)}")
        if raw.get("severity") not in SEVERITIES:
            err(f"severity must be one of {', '.join(SEVERITIES)}")
        for key in ("explain", "check_first"):
            if not isinstance(raw.get(key), str) or not raw.get(key, "").strip():
                err(f"{key} is required (a sentence for the person reading the result)")
        if not raw.get("remediation"):
            err("remediation is required (a list of concrete steps)")
    else:
        if raw.get("signal") not in SIGNALS:
            err(f"signal must be one of {', '.join(SIGNALS)}")
    if not raw.get("match"):
        err("needs at least one `match` example line")
    if not raw.get("no_match"):
        err("needs at least one `no_match` example line (a near miss from the neighbouring class)")
    pattern = raw.get("pattern")
    engine = raw.get("engine", "polars")
    if engine not in ("polars", "regex"):
        err("engine must be 'polars' or 'regex'")
    for key in ("pattern", "capture"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            err(f"{key} must be a string")
            continue
        problem = _check_regex(value, engine if key == "pattern" else "polars")
        if problem:
            err(f"{key} does not compile: {problem}",
                "polars patterns have no look-around or back-references; use engine = \"regex\" for those")
    _check_formats(raw, err)
    status = raw.get("status")
    if status is not None and not (isinstance(status, list) and len(status) == 2
                                   and all(isinstance(x, int) for x in status) and status[0] <= status[1]):
        err("status must be [lo, hi] (inclusive integers)")
    if raw.get("level") is not None and raw.get("level") not in LEVELS:
        err(f"level must be one of {', '.join(LEVELS)}")
    duration_min = raw.get("duration_min")
    if duration_min is not None and (isinstance(duration_min, bool) or not isinstance(duration_min, int | float)
                                     or duration_min < 0):
        err("duration_min must be a number of seconds (>= 0)")
        duration_min = None
    if pattern is None and status is None and not raw.get("flags") and not raw.get("sqlstate"):
        err("needs a pattern or a field condition (status, flags, sqlstate)")
    keywords = tuple(raw.get("keywords") or ())
    if pattern and not keywords and isinstance(pattern, str):
        derived = derive_keywords(pattern)
        if derived is None and status is None and not raw.get("flags") and not raw.get("sqlstate"):
            err("no literal of 4+ characters to prefilter on",
                "add keywords = [...]: literals, one of which every matching line contains")
        keywords = tuple(derived or ())
    expect = raw.get("expect", {})
    if not isinstance(expect, dict):
        err("expect must be a table of entity = value")
        expect = {}
    if errs:
        return None, errs
    return Rule(
        id=rid, kind=kind, file=path, klass=raw.get("class"), signal=raw.get("signal"),
        severity=raw.get("severity", "info"), pattern=pattern, keywords=keywords, engine=engine,
        formats=tuple(raw.get("formats") or ()), formats_exclude=tuple(raw.get("formats_exclude") or ()),
        status=tuple(status) if status else None,
        flags=tuple(raw.get("flags") or ()), flags_exclude=tuple(raw.get("flags_exclude") or ()),
        level=raw.get("level"), duration_min=float(duration_min) if duration_min is not None else None,
        sqlstate=tuple(raw.get("sqlstate") or ()), capture=raw.get("capture"),
        priority=int(raw.get("priority", 0)), order=order, blame=raw.get("blame"),
        explain=raw.get("explain", "").strip(), check_first=raw.get("check_first", "").strip(),
        remediation=tuple(raw.get("remediation") or ()), match=tuple(raw.get("match") or ()),
        no_match=tuple(raw.get("no_match") or ()), expect=dict(expect),
        known_miss=tuple(raw.get("known_miss") or ()), refs=tuple(raw.get("refs") or ()),
    ), []


def _check_formats(raw: dict, err) -> None:
    """formats / formats_exclude name known parsers, and no parser is in both lists."""
    known = parser_names()
    for key in ("formats", "formats_exclude"):
        value = raw.get(key)
        if not isinstance(value, list):
            continue
        unknown = [f for f in value if isinstance(f, str) and f not in known]
        if unknown:
            err(f"{key} names unknown formats: {', '.join(unknown)}", f"parser names: {', '.join(known)}")
    both = set(raw.get("formats") or ()) & set(raw.get("formats_exclude") or ())
    if both and all(isinstance(x, str) for x in both):
        err(f"formats and formats_exclude both name {', '.join(sorted(both))}",
            "a format is either looked at or left out; keep it in one list")


def _check_regex(pattern: str, engine: str) -> str | None:
    try:
        if engine == "regex":
            regex.compile(pattern)
        else:
            pl.Series([""], dtype=pl.String).str.contains(pattern)
    except Exception as exc:  # noqa: BLE001 - any compile error is reported, with the engine's words
        return str(exc).splitlines()[0][:200]
    return None


_META = set(".^$*+?{}[]()|\\")
_QUANT = set("*+?{")


def derive_keywords(pattern: str) -> list[str] | None:
    """Literal runs one of which every match must contain (one per top-level alternative), or None.

    Conservative: only text at group depth 0 counts, and a character followed by an optional
    quantifier is left out. Matching is case-insensitive, so case flags do not matter.
    """
    p = regex.sub(r"^\(\?[a-zA-Z]+\)", "", pattern)
    alternatives, depth, cur, i, in_class = [], 0, [], 0, False
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            cur.append(p[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            alternatives.append(cur)
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    alternatives.append(cur)
    out = []
    for tokens in alternatives:
        best = _longest_literal(tokens)
        if best is None or len(best) < 4:
            return None
        out.append(best)
    return out


def _longest_literal(tokens: list[str]) -> str | None:
    runs: list[str] = []
    run = ""
    depth = 0
    in_class = False
    for idx, tok in enumerate(tokens):
        nxt = tokens[idx + 1] if idx + 1 < len(tokens) else ""
        optional = nxt[:1] in ("*", "?") or nxt.startswith("{0")
        if in_class:
            in_class = tok != "]"
            continue
        if tok == "[":
            in_class = True
            runs.append(run)
            run = ""
            continue
        if tok == "(":
            depth += 1
            runs.append(run)
            run = ""
            continue
        if tok == ")":
            depth -= 1
            continue
        if depth > 0:
            continue
        if len(tok) == 2 and tok[0] == "\\":
            lit = tok[1] if not tok[1].isalnum() else None   # \. \( are literal; \d \s \b are not
        else:
            lit = tok if tok not in _META else None
        if lit is None or optional:
            runs.append(run)
            run = ""
            continue
        run += lit
        if nxt[:1] == "+" or nxt.startswith("{"):
            runs.append(run)
            run = ""
    runs.append(run)
    runs = [r.strip() for r in runs if len(r.strip()) >= 1]
    return max(runs, key=len) if runs else None
