#!/usr/bin/env bash
# LoRA training speed: selfspec's tuner vs PyTorch + PEFT (CPU, 2 threads), side by side in one run.
# Batch 4 x 256 tokens of real PubMed abstract text, LoRA r=8 alpha=16 on all seven projections, AdamW.
# Usage: Benchmarks/tune.sh [MODEL] [STEPS]   (needs .venv-bench with torch, transformers, peft, gguf)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
STEPS=${2:-3}
PY=.venv-bench/bin/python
BIN=${SELFSPEC:-.build/release/selfspec}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
# The first abstracts of the PubMed baseline file, as plain text.
"$PY" - "$TMP/pubmed.txt" <<'PYEOF'
import gzip, sys, xml.etree.ElementTree as ET
out, n = [], 0
with gzip.open("data/pubmed_baseline/pubmed21n1298.xml.gz") as f:
    for _, el in ET.iterparse(f):
        if el.tag == "AbstractText" and el.text:
            out.append(el.text.strip()); n += len(el.text)
        if el.tag == "PubmedArticle": el.clear()
        if n > 40000: break
open(sys.argv[1], "w", encoding="utf-8").write("\n\n".join(out))
PYEOF
ours=$("$BIN" tune bench --model "$MODEL" --text "$TMP/pubmed.txt" --steps "$STEPS" --json)
peer=$("$PY" Benchmarks/tune_peer.py "$MODEL" "$TMP/pubmed.txt" 4 256 "$STEPS")
"$PY" - "$ours" "$peer" <<'PYEOF'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = o["result"]
print(f"selfspec tuner : {r['tokensPerSecond']:8.1f} tokens/s  {r['secondsPerStep']:.2f} s/step  peak RSS {o['peakRSSMB']:.0f} MB  "
      f"{r['achievedGflops']:.1f} GFLOP/s = {100 * r['fractionOfPeak']:.0f}% of sgemm peak {r['sgemmPeakGflops']:.1f} GFLOP/s  losses {r['losses']}")
print(f"{p['engine']:15}: {p['tokensPerSecond']:8.1f} tokens/s  {p['secondsPerStep']:.2f} s/step  peak RSS {p['peakRSSMB']} MB  losses {p['losses']}")
print(f"ratio (selfspec / PyTorch+PEFT): {r['tokensPerSecond'] / p['tokensPerSecond']:.2f}x tokens/s")
PYEOF
