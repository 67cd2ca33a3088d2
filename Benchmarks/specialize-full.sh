#!/usr/bin/env bash
# The full self-specialization run (5,000 examples by default) on the real PubMed slice, resumable
# across sittings: ingest and embed the corpus (hybrid grounding) once, then `specialize generate`
# with `--resume` whenever the run folder already has progress. Ctrl-C stops after the current
# round; run the script again to continue. Time spent generating adds up in DIR/data/stats.json
# ("seconds", per stage in "stageSeconds"), so the total is the run's measured time however many
# sittings it took.
# usage: Benchmarks/specialize-full.sh [specialize generate options, e.g. --bf16]
# env: SELFSPEC (a built binary; default: build it), RUN (default runs/full5000), COUNT (5000),
#      MODEL (SmolLM2), EVAL (held-out file whose 13-grams are kept out; default PubMedQA dev).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SELFSPEC:-}" ]; then bin=$SELFSPEC; else
    swift build -c release --product selfspec >&2
    bin=.build/release/selfspec
fi
run=${RUN:-runs/full5000}
db=$run/corpus.sqlite
mkdir -p "$run"
[ -f "$db" ] || $bin ingest data/pubmed_baseline/pubmed21n1298.xml.gz --db "$db" --quiet
$bin embed --db "$db" --quiet   # resumes; nothing to do once every passage is embedded
eval_file=${EVAL:-corpora/eval/pubmedqa/pqal_dev.json}
held=(); [ -f "$eval_file" ] && held=(--eval "$eval_file")
resume=(); [ -f "$run/data/progress.json" ] && resume=(--resume)
/usr/bin/time -v $bin specialize generate --db "$db" --model "${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}" \
    --seeds corpora/seeds/biomedical.jsonl --out "$run/data" --count "${COUNT:-5000}" --seed 0 \
    "${held[@]}" "${resume[@]}" "$@"
