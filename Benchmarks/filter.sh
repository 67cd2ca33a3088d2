#!/usr/bin/env bash
# Stage-1 novelty filter: `selfspec specialize bench-filter` (pruned bit-parallel ROUGE-L) vs the
# self-instruct loop over Google's rouge_score, on the same real instructions (PubMedQA and
# MedMCQA questions from corpora/eval); both must keep the same number of lines.
# usage: Benchmarks/filter.sh [N]   (N instructions, default 1500)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1500}
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
py=.venv-bench/bin/python
$py -c 'import rouge_score' 2>/dev/null || .venv-bench/bin/pip install --quiet rouge-score
swift build -c release --product selfspec ${SCRATCH:+--scratch-path "$SCRATCH"} >&2
file=$(mktemp)
$py - "$n" > "$file" <<'PY'
import json, sys
n = int(sys.argv[1])
q = [v["QUESTION"] for v in json.load(open("corpora/eval/pubmedqa/pqal_dev.json")).values()]
q += [v["question"].replace("\n", " ") for v in json.load(open("corpora/eval/medmcqa/medmcqa_dev.json"))["medmcqa"].values()]
print("\n".join(q[:n]))
PY
peer=$($py Benchmarks/filter_peer.py "$file" --json)
ours=$(${SCRATCH:-.build}/release/selfspec specialize bench-filter "$file" --json)
rm -f "$file"
$py - "$peer" "$ours" <<'PY'
import json, sys
p, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("| engine | instructions | kept | seconds | instructions/s |")
print("|---|---|---|---|---|")
print(f"| {p['engine']} | {p['instructions']} | {p['kept']} | {p['seconds']} | {p['instructions_per_second']} |")
print(f"| {s['engine']} | {s['instructions']} | {s['kept']} | {s['seconds']} | {s['instructionsPerSecond']} |")
print(f"ratio (peer time / ours): {p['seconds'] / max(s['seconds'], 1e-9):.1f}x; exact LCS on {s['exactLCS']} of {s['pairs']} pairs")
assert p["kept"] == s["kept"], "the two filters disagree"
PY
