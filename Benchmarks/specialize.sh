#!/usr/bin/env bash
# Self-specialization throughput per stage on both local models: `specialize generate` with the
# in-process engine on the real PubMed slice (BM25 grounding unless the corpus is embedded), N
# examples each; prints examples/min per stage, kept ratios per filter and the CPU utilisation.
# usage: Benchmarks/specialize.sh [N]   (examples per model, default 24)
# env: SELFSPEC=binary (skip the build), MODELS="a.gguf b.gguf", PROMPTS=k (--prompts-per-round k),
#      SCRATCH=build folder, BENCH_DIR=work folder.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-24}
if [ -n "${SELFSPEC:-}" ]; then bin=$SELFSPEC; else
    swift build -c release --product selfspec ${SCRATCH:+--scratch-path "$SCRATCH"} >&2
    bin=${SCRATCH:-.build}/release/selfspec
fi
work=${BENCH_DIR:-runs/bench-specialize}
mkdir -p "$work"
db=$work/corpus.sqlite
$bin ingest data/pubmed_baseline/pubmed21n1298.xml.gz --db "$db" --quiet >/dev/null
for model in ${MODELS:-models/SmolLM2-135M-Instruct.Q4_1.gguf models/gemma-3-270m-q4_k_m.gguf}; do
    out=$work/$(basename "$model" .gguf)${PROMPTS:+-p$PROMPTS}
    rm -rf "$out"
    echo "== $model: $n examples${PROMPTS:+, --prompts-per-round $PROMPTS} =="
    $bin specialize generate --db "$db" --model "$model" --seeds corpora/seeds/biomedical.jsonl \
        --out "$out" --count "$n" --seed 1 --quiet ${PROMPTS:+--prompts-per-round "$PROMPTS"}
done
