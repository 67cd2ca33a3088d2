#!/usr/bin/env bash
# Retrieval benchmarks: SelfSpec beside its peers on the same inputs, in one run, with ratios.
#   embed     MiniLM passages/s vs sentence-transformers (PyTorch CPU, 2 threads, batch 32)
#   exact     exact search q/s vs faiss IndexFlatIP (100k × 384 random unit vectors), batched + single
#   hnsw      HNSW build time, recall@10 and q/s per efSearch vs hnswlib (M=16, efC=200), real MiniLM vectors
#   scale     HNSW/exact build time, memory and q/s for growing N (random unit vectors, fixed seed)
#   pubmedqa  recall@1/@10 and MRR@10 of each pqal question's own PMID: bm25, dense, hybrid
# usage: Benchmarks/retrieval.sh [embed|exact|hnsw|scale|pubmedqa ...]   (default: all)
# Env: EMBED_LIMIT (passages of the corpus to embed, default 10000; cached and resumable in
#      runs/retrieval/corpus.sqlite), SCALE_SIZES (default 10000,100000), EXACT_N (100000).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
py=.venv-bench/bin/python
if ! $py -c 'import sentence_transformers, faiss, hnswlib' 2>/dev/null; then
    $py -m pip install --quiet torch sentence-transformers faiss-cpu hnswlib
fi
# SELFSPEC_BIN: an already built binary (skips the build).
if [ -z "${SELFSPEC_BIN:-}" ]; then swift build -c release --product selfspec >&2; fi
bin=${SELFSPEC_BIN:-.build/release/selfspec}
dir=runs/retrieval; mkdir -p "$dir"
db=$dir/corpus.sqlite
pqal=corpora/eval/pubmedqa/pqal_dev.json
steps=${*:-embed exact hnsw scale pubmedqa}
j() { $py -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# The corpus: the 500 pqal abstracts (JSONL, id = PMID, contexts joined) then the 20,788-article
# PubMed slice; the first EMBED_LIMIT passages (the pqal ones first) embedded once and kept.
corpus() {
    if [ ! -f "$db" ]; then
        $py -c "
import json; d = json.load(open('$pqal'))
with open('$dir/pqal_dev.jsonl', 'w') as f:
    for pmid, v in d.items(): f.write(json.dumps({'id': pmid, 'text': ' '.join(v['CONTEXTS'])}) + '\n')"
        $bin ingest "$dir/pqal_dev.jsonl" data/pubmed_baseline/pubmed21n1298.xml.gz --db "$db" --quiet
    fi
    # --limit counts passages embedded by this run, so ask only for what is missing.
    local have; have=$(sqlite3 "$db" "SELECT count(*) FROM vectors" 2>/dev/null || echo 0)
    if [ "$have" -lt "${EMBED_LIMIT:-10000}" ]; then
        $bin embed --db "$db" --limit $(( ${EMBED_LIMIT:-10000} - have )) --no-index --quiet --json >/dev/null
    fi
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
echo "machine: $cpu, $(nproc) cores; $(date -u +%FT%TZ)"

for step in $steps; do case $step in
embed)
    corpus
    s=$($bin bench embed --db "$db" --count 2000 --texts-out "$dir/passages.jsonl" --vectors-out "$dir/passages.f32" --json)
    p=$($py Benchmarks/retrieval_peer.py embed --texts "$dir/passages.jsonl" --threads 2 --batch 32 --compare "$dir/passages.f32")
    echo; echo "### Embedding 2,000 real PubMed passages (title + passage, $(echo "$s" | j 'd["tokensMean"]') tokens avg)"
    echo "| engine | passages/s | seconds | ratio |"; echo "|---|---|---|---|"
    echo "| $(echo "$p" | j 'd["engine"]'), 2 threads, batch 32 | $(echo "$p" | j 'd["passagesPerSecond"]') | $(echo "$p" | j 'd["seconds"]') | 1.00x |"
    echo "| selfspec MiniLMEmbedder | $(echo "$s" | j 'd["passagesPerSecond"]') | $(echo "$s" | j 'd["seconds"]') | $($py -c "print(f'{$(echo "$s" | j 'd["passagesPerSecond"]') / $(echo "$p" | j 'd["passagesPerSecond"]'):.2f}x')") |"
    echo "min cosine selfspec vs sentence-transformers over the 2,000: $(echo "$p" | j 'd["minCosineToSelfspec"]')"
    ;;
exact)
    n=${EXACT_N:-100000}
    [ -f "$dir/random-$n.f32" ] || $py Benchmarks/retrieval_peer.py random --n "$n" --q 1000 --seed 42 --base "$dir/random-$n.f32" --queries "$dir/random-q1000.f32" >/dev/null
    s=$($bin bench exact --base "$dir/random-$n.f32" --queries "$dir/random-q1000.f32" --ids-out "$dir/exact-ids.i64" --json)
    p=$($py Benchmarks/retrieval_peer.py exact --base "$dir/random-$n.f32" --queries "$dir/random-q1000.f32" --compare-ids "$dir/exact-ids.i64")
    echo; echo "### Exact search, $n × 384 random unit vectors, 1,000 queries, k = 10"
    echo "| engine | batched q/s | one-at-a-time q/s | ratio batched | ratio single |"; echo "|---|---|---|---|---|"
    pb=$(echo "$p" | j 'd["batchedQPS"]'); ps=$(echo "$p" | j 'd["singleQPS"]'); sb=$(echo "$s" | j 'd["batchedQPS"]'); ss=$(echo "$s" | j 'd["singleQPS"]')
    echo "| $(echo "$p" | j 'd["engine"]') (2 threads) | $pb | $ps | 1.00x | 1.00x |"
    echo "| selfspec ExactIndex | $sb | $ss | $($py -c "print(f'{$sb/$pb:.2f}x')") | $($py -c "print(f'{$ss/$ps:.2f}x')") |"
    echo "same results: top-1 agreement $(echo "$p" | j 'd["top1AgreementWithSelfspec"]'), top-10 overlap $(echo "$p" | j 'd["topKOverlapWithSelfspec"]')"
    ;;
hnsw)
    corpus
    e=$($py Benchmarks/retrieval_peer.py export --db "$db" --base "$dir/real-base.f32" --queries-out "$dir/real-queries.f32" --queries 500)
    s=$($bin bench hnsw --base "$dir/real-base.f32" --queries "$dir/real-queries.f32" --json)
    p=$($py Benchmarks/retrieval_peer.py hnsw --base "$dir/real-base.f32" --queries "$dir/real-queries.f32")
    echo; echo "### HNSW on real MiniLM embeddings: $(echo "$e" | j 'd["base"]') base vectors, $(echo "$e" | j 'd["queries"]') held-out passages as queries, k = 10, one query at a time"
    $py - "$s" "$p" <<'PY'
import json, sys
s, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"build: selfspec {s['buildSeconds']} s, {p['engine']} {p['buildSeconds']} s (2 threads) -> selfspec/hnswlib time {s['buildSeconds']/p['buildSeconds']:.2f}x; selfspec index {s['memoryMB']} MB")
print("| efSearch | selfspec recall@10 | selfspec q/s | hnswlib recall@10 | hnswlib q/s | q/s ratio |\n|---|---|---|---|---|---|")
pp = {x["ef"]: x for x in p["points"]}
for x in s["points"]:
    y = pp[x["ef"]]
    print(f"| {x['ef']} | {x['recall']} | {x['qps']} | {y['recall']} | {y['qps']} | {x['qps']/y['qps']:.2f}x |")
def at(points, target=0.95):
    ok = [x for x in points if x["recall"] >= target]
    return max(ok, key=lambda x: x["qps"]) if ok else None
a, b = at(s["points"]), at(p["points"])
if a and b: print(f"at recall@10 >= 0.95: selfspec {a['qps']} q/s (ef {a['ef']}), hnswlib {b['qps']} q/s (ef {b['ef']}) -> {a['qps']/b['qps']:.2f}x")
PY
    ;;
scale)
    echo; echo "### Scaling (random unit vectors, seed 42, 384-d, HNSW M=16 efC=200 efSearch=64, 200 single queries)"
    $bin bench scale --sizes "${SCALE_SIZES:-10000,100000}" --json > "$dir/scale.json"
    $py - "$dir/scale.json" <<'PYEOF'
import json, sys
print("| N | HNSW build s | HNSW MB | bytes/vector | peak RSS MB | HNSW q/s | HNSW recall@10 | exact q/s |")
print("|---|---|---|---|---|---|---|---|")
for r in json.load(open(sys.argv[1])):
    n, b, mb, bpv, rss = r["n"], r["buildSeconds"], r["hnswMB"], r["bytesPerVector"], r["peakRSSMB"]
    print(f"| {n:,} | {b} | {mb} | {bpv:.0f} | {rss:.0f} | {r['hnswQPS']} | {r['hnswRecall']} | {r['exactQPS']} |")
PYEOF
    ;;
pubmedqa)
    corpus
    echo; echo "### PubMedQA (pqal_dev) retrieval of each question's own PMID"
    $bin bench pubmedqa --db "$db" --questions "$pqal" --embedded-only --split "${SPLIT:-all}" --dense-weight "${DENSE_WEIGHT:-1}"
    ;;
*) echo "unknown step $step" >&2; exit 64 ;;
esac; done
