#!/usr/bin/env python3
"""Score `logtriage analyze` on the fault-injection scenarios: is the top cause the truth's?

For every directory in ../shared/corpus/scenarios/ (or --corpus DIR), the logs only (never its
truth.json) are copied to a temporary directory and analysed in-process, exactly as
`logtriage analyze DIR --format json` would. A scenario passes when the first-ranked cause of the
first incident has the truth's root_cause id and component; `healthy_baseline` (root_cause "")
passes when no incident is reported. Prints a table; exit 1 when a scenario fails.

--around-fault PRE,POST analyses only PRE seconds before the truth's fault_injected_at to POST after
(as `--since`/`--until` would; the logs' start-up lines then fall outside): a robustness check for
captures that begin shortly before an outage. Scenarios without a fault time are analysed whole.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from logtriage.correlate.analysis import analyze


def component_matches(truth: str, got: str) -> bool:
    """`nginx config` matches `nginx config`; case and separators do not matter."""
    norm = lambda s: " ".join(s.lower().replace("_", " ").replace("-", " ").split())
    return norm(truth) == norm(got)


def score(scenario: Path, around: tuple[float, float] | None = None) -> dict:
    truth = json.loads((scenario / "truth.json").read_text())
    window = {}
    if around and truth.get("fault_injected_at"):
        fault = dt.datetime.fromisoformat(truth["fault_injected_at"])
        window = {"since": fault - dt.timedelta(seconds=around[0]), "until": fault + dt.timedelta(seconds=around[1])}
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / scenario.name
        shutil.copytree(scenario, dest, ignore=shutil.ignore_patterns("truth.json", "README*"))
        t = time.perf_counter()
        doc = analyze([str(dest)], **window)
        took = time.perf_counter() - t
    want_id, want_comp = truth.get("root_cause") or "", truth.get("component") or ""
    top = doc["incidents"][0]["causes"][0] if doc["incidents"] and doc["incidents"][0]["causes"] else None
    if not want_id:
        ok = not doc["incidents"]
        got = "no incident" if ok else f"{len(doc['incidents'])} incident(s): {top['id'] if top else '-'}"
    else:
        ok = bool(top) and top["id"] == want_id and component_matches(want_comp, top["component"])
        got = f"{top['id']} / {top['component']} ({top['confidence']:.2f})" if top else "no incident"
    runner = ""
    if top and doc["incidents"][0]["causes"][1:]:
        r = doc["incidents"][0]["causes"][1]
        runner = f"{r['id']} / {r['component']} ({r['confidence']:.2f})"
    return {"scenario": scenario.name, "want": f"{want_id or 'no incident'}" + (f" / {want_comp}" if want_comp else ""),
            "got": got, "runner_up": runner, "ok": ok, "seconds": round(took, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "scenarios"))
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--around-fault", metavar="PRE,POST",
                    help="analyse only PRE s before each truth's fault time to POST s after")
    args = ap.parse_args()
    around = tuple(float(x) for x in args.around_fault.split(",")) if args.around_fault else None
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"scenario corpus not found at {corpus}: nothing evaluated")
        return 0
    rows = [score(d, around) for d in sorted(corpus.iterdir()) if (d / "truth.json").exists()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("| scenario | truth | logtriage's top cause | runner-up | ok | s |\n|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['scenario']} | {r['want']} | {r['got']} | {r['runner_up']} | {'yes' if r['ok'] else 'NO'} | {r['seconds']} |")
        print(f"\n{sum(r['ok'] for r in rows)} of {len(rows)} scenarios ranked right")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
