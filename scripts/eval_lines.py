"""Per-class precision / recall / F1 of the rule pack on labelled real lines.

Reads a JSONL corpus (default ../shared/corpus/real_lines_dev.jsonl; one object per line with
`text` and `label`, "" = benign), feeds each record's text alone to the classifier exactly as
`logtriage scan --format ndjson --all -` does (in-process: the same pipeline.read_events on a
one-record temp file, classified with the built-in rules), takes the first flagged event's class
(prefix before any "/"), and prints a per-class table, macro-F1, the benign false-positive rate
and every misclassified record.

Usage:
    python scripts/eval_lines.py [CORPUS.jsonl] [--check-cli N] [--rules DIR]

--check-cli N also runs the real CLI on stdin for the first N records and reports any record where
it disagrees with the in-process result (a guard that this script measures what users get).
Exit code 0 always (it reports; it does not gate), also when the corpus is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "real_lines_dev.jsonl"


def make_classifier(rules_dirs: list[Path]):
    """Return a function event-batch -> classified batch, built from the rule pack."""
    from logtriage.classify.engine import Classifier, classify
    from logtriage.classify.loader import load_rules

    rules = load_rules(rules_dirs) if rules_dirs else load_rules()
    clf = Classifier(rules, "rule")
    return lambda batch: classify(batch, clf)


def predict(text: str, classify_fn) -> tuple[str, str | None]:
    """(class prefix or "", rule id) of the first flagged event when `text` is read as a source."""
    from logtriage import pipeline

    fd, path = tempfile.mkstemp(suffix=".log")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        run = pipeline.Run()
        for batch in pipeline.read_events([path], run=run, finish=classify_fn):
            for row in batch.select("class", "rule").iter_rows(named=True):
                if row["class"]:
                    return row["class"].split("/", 1)[0], row["rule"]
        return "", None
    finally:
        os.unlink(path)


def predict_cli(text: str) -> str:
    """The class the real CLI gives the record on stdin (first flagged event)."""
    exe = ROOT / ".venv" / "bin" / "logtriage"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "logtriage"]
    out = subprocess.run([*cmd, "scan", "--format", "ndjson", "--all", "-"], input=text + "\n",
                         capture_output=True, text=True, cwd=ROOT, check=False).stdout   # a failing run shows as a miss
    for line in out.splitlines():
        rec = json.loads(line)
        if rec.get("class"):
            return rec["class"].split("/", 1)[0]
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--check-cli", type=int, default=0, metavar="N",
                    help="compare with the real CLI on stdin for the first N records")
    ap.add_argument("--rules", action="append", default=[], type=Path, help="extra rule directory")
    args = ap.parse_args()

    corpus = Path(args.corpus)
    if not corpus.exists():
        print(f"corpus {corpus} is absent: nothing to evaluate.")
        return 0
    records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    classify_fn = make_classifier(args.rules)

    preds = []
    for rec in records:
        got, rule = predict(rec["text"], classify_fn)
        preds.append((rec.get("label", "") or "", got, rule))

    if args.check_cli:
        mismatches = 0
        for rec, (_, got, _) in list(zip(records, preds))[: args.check_cli]:
            cli = predict_cli(rec["text"])
            if cli != got:
                mismatches += 1
                print(f"CLI DISAGREES: in-process {got!r} vs cli {cli!r}: {rec['text'][:100]!r}")
        print(f"CLI check: {args.check_cli - mismatches}/{args.check_cli} records agree\n")

    classes = sorted({t for t, _, _ in preds if t} | {g for _, g, _ in preds if g})
    tp, fp, fn = Counter(), Counter(), Counter()
    for truth, got, _ in preds:
        if truth == got:
            if truth:
                tp[truth] += 1
            continue
        if got:
            fp[got] += 1
        if truth:
            fn[truth] += 1

    print(f"{'class':<28}{'n':>4}{'tp':>5}{'fp':>5}{'fn':>5}{'P':>8}{'R':>8}{'F1':>8}")
    f1s = []
    for c in classes:
        n = tp[c] + fn[c]
        p = tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 0.0
        r = tp[c] / n if n else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        if n:               # classes present in the labels count for macro-F1
            f1s.append(f)
        print(f"{c:<28}{n:>4}{tp[c]:>5}{fp[c]:>5}{fn[c]:>5}{p:>8.2f}{r:>8.2f}{f:>8.2f}")
    benign = [g for t, g, _ in preds if not t]
    flagged = sum(1 for g in benign if g)
    macro = sum(f1s) / len(f1s) if f1s else 0.0
    print(f"\nmacro-F1 over {len(f1s)} labelled classes: {macro:.3f}")
    print(f"benign flagged: {flagged}/{len(benign)} = {flagged / len(benign) if benign else 0:.1%}")
    print(f"records: {len(records)}, correct: {sum(1 for t, g, _ in preds if t == g)}")

    wrong = [(rec, t, g, rule) for rec, (t, g, rule) in zip(records, preds) if t != g]
    if wrong:
        print(f"\nmisclassified ({len(wrong)}):")
        for rec, t, g, rule in wrong:
            text = rec["text"].replace("\n", "\\n")
            print(f"  want {t or '-':<26} got {g or '-':<26} {rule or '':<34} {text[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
