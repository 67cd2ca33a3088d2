#!/usr/bin/env bash
# Ingest benchmark: SelfSpec vs a Python lxml.etree.iterparse extraction of the same fields
# (Benchmarks/lxml_ingest_peer.py), side by side on the same machine in the same run.
# usage: Benchmarks/ingest.sh [FILE]   (default: the 20,788-article PubMed slice)
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-data/pubmed_baseline/pubmed21n1298.xml.gz}
runs=${RUNS:-3}

# The peer's Python environment lives inside the clone.
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
    .venv-bench/bin/pip install --quiet lxml
fi
py=.venv-bench/bin/python
swift build -c release --product selfspec >&2
bin=.build/release/selfspec
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

best() { sort -n | head -1; }
peer=(); parse=(); ingest=(); rss_parse=0; rss_ingest=0; peer_rss=0
for i in $(seq "$runs"); do
    peer+=("$($py Benchmarks/lxml_ingest_peer.py "$file" --json | $py -c 'import json,sys; d=json.load(sys.stdin); print(d["seconds"], d["peak_rss_mb"])')")
    parse+=("$($bin bench parse "$file" --json | $py -c 'import json,sys; d=json.load(sys.stdin); print(d["seconds"], d["peakRSSMB"])')")
    rm -f "$tmp"/c.sqlite*
    /usr/bin/time -f "%e %M" -o "$tmp/time" $bin ingest "$file" --db "$tmp/c.sqlite" --quiet --json > "$tmp/report.json"
    ingest+=("$(awk '{print $1, $2/1024}' "$tmp/time")")
done
articles=$($py -c 'import json; print(json.load(open("'"$tmp/report.json"'"))["documentsRead"])')
p=$(printf '%s\n' "${peer[@]}" | best); s=$(printf '%s\n' "${parse[@]}" | best); e=$(printf '%s\n' "${ingest[@]}" | best)
read -r pt prss <<<"$p"; read -r st srss <<<"$s"; read -r et erss <<<"$e"
$py - "$articles" "$pt" "$prss" "$st" "$srss" "$et" "$erss" "$file" <<'PY'
import sys, platform, os
n, pt, prss, st, srss, et, erss, f = int(sys.argv[1]), *map(float, sys.argv[2:8]), sys.argv[8]
cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"file: {f} ({n} articles); machine: {cpu}, {os.cpu_count()} cores; best of runs")
print(f"| engine | seconds | articles/s | peak RSS MB | vs lxml |")
print(f"|---|---|---|---|---|")
print(f"| lxml.etree.iterparse (peer, parse only) | {pt:.2f} | {n/pt:.0f} | {prss:.0f} | 1.00x |")
print(f"| selfspec bench parse (parse only) | {st:.2f} | {n/st:.0f} | {srss:.0f} | {pt/st:.2f}x |")
print(f"| selfspec ingest (parse, chunk, SQLite + FTS5) | {et:.2f} | {n/et:.0f} | {erss:.0f} | {pt/et:.2f}x |")
PY
