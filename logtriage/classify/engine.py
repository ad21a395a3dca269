"""Event batch -> the same batch with class / rule / severity / entities columns (model.CLASS_SCHEMA).

Vectorised over the batch:
  1. one prefilter pass: a case-insensitive alternation of every rule's keywords over `message`,
     plus the cheap field conditions (status range, flags present, SQLSTATE) -> candidate rows;
  2. only candidates meet the rules' own patterns and conditions, each rule one vectorised pass;
  3. the winner per event is the first matching rule in (priority desc, file order);
  4. the winner's named groups become the event's entities (one extract per winning rule).
Patterns run in polars' linear-time engine, so no line can hang a run; the few rules that need
look-around (engine = "regex") run with a timeout, on their prefiltered rows only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl
import regex

from logtriage.classify.loader import Rule
from logtriage.model import CLASS_SCHEMA, LEVELS, json_object

REGEX_TIMEOUT_S = 0.05     # per line, for engine = "regex" patterns
_LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}


def _keyword_regex(words: set[str]) -> str | None:
    if not words:
        return None
    # longest first so the automaton reports the most specific literal; all escaped, case-insensitive
    return "(?i)" + "|".join(regex.escape(w, literal_spaces=True) for w in sorted(words, key=len, reverse=True))


@dataclass
class Classifier:
    """Compiled rules of one kind ("rule" or "signal") ready to run on event batches."""

    rules: list[Rule]
    kind: str = "rule"

    def __post_init__(self) -> None:
        self.rules = [r for r in self.rules if r.kind == self.kind]
        self._gated = [r for r in self.rules if _gate(r)]
        self._words = {k.lower() for r in self.rules if not _gate(r) for k in r.keywords}
        self._kw = _keyword_regex(self._words)
        self._py = {r.id: regex.compile(r.pattern) for r in self.rules if r.engine == "regex" and r.pattern}
        self._by_id = {r.id: r for r in self.rules}
        self._names = {r.id: _group_names(r.pattern, r.capture) for r in self.rules}

    # -- conditions ------------------------------------------------------------------------------

    def _condition(self, rule: Rule) -> pl.Expr:
        """True where `rule`'s field conditions hold (format in / not in, status, flags, level, SQLSTATE)."""
        conds: list[pl.Expr] = []
        if rule.formats:
            conds.append(pl.col("format").is_in(list(rule.formats)))
        if rule.formats_exclude:
            conds.append(~pl.col("format").is_in(list(rule.formats_exclude)).fill_null(False))
        if rule.status:
            conds.append(pl.col("status").is_between(rule.status[0], rule.status[1]))
        if rule.flags:
            conds.append(pl.col("flags").str.contains(_token_regex(rule.flags)))
        if rule.flags_exclude:
            conds.append(~pl.col("flags").str.contains(_token_regex(rule.flags_exclude)).fill_null(False))
        if rule.level:
            conds.append(pl.col("level").replace_strict(_LEVEL_RANK, default=-1, return_dtype=pl.Int8)
                         >= _LEVEL_RANK[rule.level])
        if rule.sqlstate:
            conds.append(pl.col("sqlstate").is_in(list(rule.sqlstate)))
        if rule.duration_min is not None:
            conds.append(pl.col("duration") >= rule.duration_min)
        if not conds:
            return pl.lit(True)
        out = conds[0]
        for c in conds[1:]:
            out = out & c
        return out.fill_null(False)

    def _python_matches(self, rule: Rule, messages: list[str | None]) -> list[bool]:
        pat = self._py[rule.id]
        out = []
        for m in messages:
            try:
                out.append(bool(m) and pat.search(m, timeout=REGEX_TIMEOUT_S) is not None)
            except TimeoutError:
                out.append(False)
        return out

    # -- the batch ---------------------------------------------------------------------------

    def candidates(self, batch: pl.DataFrame, maybe: pl.Series | None = None) -> pl.Series:
        """True on the rows some rule may match: cheap, and never False where one does.

        A rule with a selective field condition (status, flags, SQLSTATE, duration, level) makes
        candidates of the rows that meet it; the other rules, of the rows holding one of their
        keywords (one case-insensitive pass). So a wall of 200s, or a PostgreSQL log with every
        statement's duration, costs a few comparisons per line, not the whole rule pack.
        `maybe` (from a Prefilter that knows these keywords) limits the keyword pass to its rows.
        """
        cand = pl.lit(False)
        for rule in self._gated:
            cand = cand | self._condition(rule)
        out = batch.select(pl.repeat(False, pl.len()) | cand).to_series()
        if self._kw:
            message = batch.get_column("message")
            if maybe is None:
                out = out | _has_keyword(message, self._kw)
            else:
                idx = maybe.arg_true()
                if len(idx):
                    out = out.scatter(idx, out.gather(idx) | _has_keyword(message.gather(idx), self._kw))
        return out.alias("candidate")

    def winners(self, sub: pl.DataFrame) -> pl.Series:
        """The winning rule id per row of `sub` (null where none matches).

        1. one Aho-Corasick pass finds every keyword in every row -> (row, rule) candidate pairs;
        2. keyword-less rules' field conditions run in one pass over all rows, a keyword rule's on
           its keyword rows only;
        3. each rule's pattern runs only on the messages of rows that have its keyword (rules
           without keywords: every row) and meet its conditions. In a storm of 502 access lines
           that is a handful of comparisons per line instead of every pattern.
        """
        if sub.height == 0:
            return pl.Series("rule", [], dtype=pl.String)
        rules = self.rules
        rows_of = self._keyword_rows(sub, rules)
        conditional = {i for i, r in enumerate(rules) if _conditioned(r)}
        # keyword-less rules' conditions run over every row; a keyword rule's only over its keyword rows
        conds = sub.select([self._condition(rules[i]).alias(f"_c{i}")
                            for i in sorted(conditional) if not rules[i].keywords])
        fields = sub.select([c for c in _CONDITION_FIELDS if c in sub.columns])
        messages = sub.get_column("message")
        cols: dict[str, pl.Series] = {}
        for i, rule in enumerate(rules):
            name = f"_m{i}"
            if rule.keywords:
                idx = rows_of.get(i)
                if idx is None:
                    continue
                if i in conditional:
                    idx = idx.filter(fields[idx].select(self._condition(rule)).to_series())
            else:
                ok = conds.get_column(f"_c{i}") if i in conditional else None
                idx = ok.arg_true() if ok is not None else pl.int_range(0, sub.height, dtype=pl.UInt32, eager=True)
            if len(idx):    # rules with no row left take no column
                hits = pl.repeat(False, sub.height, dtype=pl.Boolean, eager=True).alias(name)
                cols[name] = hits.scatter(idx, self._pattern_hits(rule, messages.gather(idx)))
        if not cols:
            return pl.repeat(None, sub.height, dtype=pl.String, eager=True).alias("rule")
        expr = None
        for i, r in enumerate(rules):   # the first in (priority, file) order wins
            if f"_m{i}" in cols:
                c = pl.col(f"_m{i}")
                expr = pl.when(c).then(pl.lit(r.id)) if expr is None else expr.when(c).then(pl.lit(r.id))
        return pl.DataFrame(cols).select(expr.otherwise(pl.lit(None, dtype=pl.String)).alias("rule")).get_column("rule")

    def _keyword_rows(self, sub: pl.DataFrame, rules: list[Rule]) -> dict[int, pl.Series]:
        """rule index -> the rows of `sub` containing one of its keywords (case-insensitive)."""
        pairs = [(k.lower(), i) for i, r in enumerate(rules) for k in r.keywords]
        if not pairs:
            return {}
        kwmap = pl.DataFrame({"kw": [k for k, _ in pairs], "ri": [i for _, i in pairs]},
                             schema={"kw": pl.String, "ri": pl.UInt32}).unique()
        words = sorted({k for k, _ in pairs})
        found = sub.get_column("message").str.extract_many(words, ascii_case_insensitive=True, overlapping=True)
        hits = (pl.DataFrame({"row": pl.int_range(0, sub.height, dtype=pl.UInt32, eager=True), "kw": found})
                .explode("kw").drop_nulls("kw").with_columns(pl.col("kw").str.to_lowercase())
                .join(kwmap, on="kw").select("ri", "row").unique()
                .group_by("ri").agg(pl.col("row").sort()))
        return {ri: rows for ri, rows in zip(hits["ri"].to_list(), hits["row"], strict=True)}

    def _pattern_hits(self, rule: Rule, messages: pl.Series) -> pl.Series:
        """Whether each of `messages` (rows that meet the rule's conditions) matches its pattern."""
        if not rule.pattern:
            return pl.repeat(True, len(messages), dtype=pl.Boolean, eager=True)
        if rule.engine == "regex":
            return pl.Series(self._python_matches(rule, messages.to_list()), dtype=pl.Boolean)
        return messages.str.contains(rule.pattern).fill_null(False)

    def entities(self, sub: pl.DataFrame) -> pl.Series:
        """JSON object of the winning rule's named captures per row of `sub` (column `rule` set)."""
        out = pl.repeat(None, sub.height, dtype=pl.String, eager=True).alias("entities")
        sub = sub.with_row_index("_i")
        for rule_id in sub.get_column("rule").drop_nulls().unique().to_list():
            rule = self._by_id[rule_id]
            names = self._names[rule_id]
            if not names:
                continue
            rows = sub.filter(pl.col("rule") == rule_id)
            parsed = [n for n in names if n in _PARSED_ENTITIES and n in rows.columns]
            if len(parsed) == len(names):
                # what the parser already read (a proxy line's upstream) is not searched for again;
                # the rule's pattern fills only the rows where the parser found nothing
                known = rows.select(pl.all_horizontal(pl.col(n).is_not_null() for n in parsed)).to_series()
                if known.any():
                    enc = rows.filter(known).select(pl.struct(parsed).struct.json_encode()).to_series()
                    out = out.scatter(rows.get_column("_i").filter(known), enc)
                    rows = rows.filter(~known)
                    if rows.height == 0:
                        continue
            if rule.engine == "regex" and rule.pattern:
                pat = self._py[rule_id]
                vals = []
                for m in rows.get_column("message").to_list():
                    try:
                        hit = pat.search(m or "", timeout=REGEX_TIMEOUT_S)
                    except TimeoutError:
                        hit = None
                    d = {k: v for k, v in (hit.groupdict().items() if hit else []) if v is not None}
                    vals.append(json.dumps(d) if d else None)
                enc = pl.Series(vals, dtype=pl.String)
            else:
                parts = []
                for pat in (rule.pattern, rule.capture):
                    gnames = _group_names(pat)
                    ex = pl.col("message").str.extract_groups(pat) if gnames else None
                    parts.extend(ex.struct.field(n).alias(f"{n}\x00{len(parts)}") for n in gnames)
                fields = rows.select(parts)
                merged: dict[str, pl.Series] = {}   # the pattern's capture first, then capture's
                for col in fields.columns:
                    name = col.split("\x00", 1)[0]
                    series = fields.get_column(col)
                    merged[name] = merged[name].fill_null(series) if name in merged else series
                enc = (pl.DataFrame({k: v.alias(k) for k, v in merged.items()})
                       .select(json_object(*merged).replace("{}", None)).to_series())
            out = out.scatter(rows.get_column("_i"), enc)
        return out


# The event columns Classifier._condition reads.
_CONDITION_FIELDS = ("format", "status", "flags", "level", "sqlstate", "duration")

# Named captures the parsers read as columns: taken from the column where it is set.
_PARSED_ENTITIES = ("upstream",)


@dataclass
class Prefilter:
    """One keyword pass for several classifiers (analyze runs the rules and the signals).

    Called on a batch it gives the rows holding a keyword of any of them; each classifier then
    looks for its own keywords on those rows only, instead of every classifier on every row.
    """

    classifiers: tuple[Classifier, ...]

    def __post_init__(self) -> None:
        self._kw = _keyword_regex(set().union(*(c._words for c in self.classifiers)))

    def __call__(self, batch: pl.DataFrame) -> pl.Series:
        if not self._kw:
            return pl.repeat(False, batch.height, dtype=pl.Boolean, eager=True)
        return _has_keyword(batch.get_column("message"), self._kw)


def _has_keyword(messages: pl.Series, keyword_regex: str) -> pl.Series:
    return messages.str.contains(keyword_regex).fill_null(False)


def _gate(rule: Rule) -> bool:
    """Whether a rule's field conditions alone pick few rows (its candidates need no keyword pass).

    A minimum level is not selective (most lines of an error log are errors): a rule with keywords
    and a level takes its candidates from its keywords, and the level is checked on those."""
    return bool(rule.status or rule.flags or rule.sqlstate or rule.duration_min is not None
                or (rule.level and not rule.keywords))


def _conditioned(rule: Rule) -> bool:
    """Whether a rule has any field condition (Classifier._condition is not a literal True)."""
    return bool(rule.formats or rule.formats_exclude or rule.flags_exclude or rule.level or _gate(rule))


def _token_regex(tokens: tuple[str, ...]) -> str:
    return r"(?:^|[,|])(?:" + "|".join(regex.escape(t) for t in tokens) + r")(?:$|[,|])"


def _group_names(*patterns: str | None) -> list[str]:
    """The named groups of the patterns, in order, each once."""
    names: list[str] = []
    for pat in patterns:
        if pat:
            try:
                names.extend(n for n in regex.compile(pat).groupindex if n not in names)
            except regex.error:
                pass
    return names


def classify(batch: pl.DataFrame, classifier: Classifier, maybe: pl.Series | None = None) -> pl.DataFrame:
    """Add class / rule / severity / entities to an event batch (null where no rule matches).

    `maybe`: a Prefilter's rows for this batch (the keyword pass is then not run again)."""
    n = batch.height
    cand = classifier.candidates(batch, maybe) if n else pl.Series([], dtype=pl.Boolean)
    idx = cand.arg_true()
    rule_col = pl.repeat(None, n, dtype=pl.String, eager=True).alias("rule")
    ent_col = pl.repeat(None, n, dtype=pl.String, eager=True).alias("entities")
    if len(idx):
        sub = batch[idx]
        won = classifier.winners(sub)
        sub = sub.with_columns(won)
        hit = won.is_not_null()
        if hit.any():
            rule_col = rule_col.scatter(idx, won)
            ents = classifier.entities(sub.filter(hit))
            ent_col = ent_col.scatter(idx.filter(hit), ents)
    by_id = classifier._by_id
    klass = {r: by_id[r].klass for r in by_id}
    sev = {r: by_id[r].severity for r in by_id}
    out = batch.with_columns(rule_col, ent_col)
    return out.with_columns(
        pl.col("rule").replace_strict(klass, default=None, return_dtype=pl.String).alias("class"),
        pl.col("rule").replace_strict(sev, default=None, return_dtype=pl.String).alias("severity"),
    ).select([*batch.columns, *CLASS_SCHEMA])


def signals(batch: pl.DataFrame, classifier: Classifier, maybe: pl.Series | None = None) -> pl.DataFrame:
    """Only the events that carry a signal: columns ts, source, line, component, signal, rule, entities, raw."""
    if classifier.kind != "signal":
        raise ValueError("signals() needs a Classifier of kind 'signal'")
    cand = classifier.candidates(batch, maybe)
    sub = batch.filter(cand)
    if sub.height == 0:
        return pl.DataFrame(schema={"ts": batch.schema["ts"], "source": pl.String, "line": pl.UInt32,
                                    "component": pl.String, "signal": pl.String, "rule": pl.String,
                                    "entities": pl.String, "raw": pl.String})
    won = classifier.winners(sub)
    sub = sub.with_columns(won).filter(pl.col("rule").is_not_null())
    ents = classifier.entities(sub)
    sig = {r.id: r.signal for r in classifier.rules}
    return sub.with_columns(ents, pl.col("rule").replace_strict(sig, default=None, return_dtype=pl.String)
                            .alias("signal")).select("ts", "source", "line", "component", "signal", "rule",
                                                     "entities", "raw")
