#!/usr/bin/env bash
# Server benchmark: `selfspec serve` vs llama.cpp's server (`python -m llama_cpp.server`, same
# GGUF, 2 threads) in one run. The same load client (Benchmarks/serve_load.py) sends short
# completions (16 tokens, greedy) from 1, 8 and 32 concurrent clients over loopback and reports
# requests/s and p50/p99 latency; the table gives the ratio selfspec / llama.cpp.
# usage: Benchmarks/serve.sh [MODEL.gguf]   environment: CONCURRENCY (1,8,32), PER_CLIENT (4),
#        MAX_TOKENS (16), SELFSPEC_BIN (a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
conc=${CONCURRENCY:-1,8,32}; per=${PER_CLIENT:-4}; maxtok=${MAX_TOKENS:-16}
py=.venv-bench/bin/python
if [ -z "${SELFSPEC_BIN:-}" ]; then swift build -c release --product selfspec >&2; SELFSPEC_BIN=.build/release/selfspec; fi
pick_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "server at $1 did not start" >&2; return 1; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

ours_port=$(pick_port)
"$SELFSPEC_BIN" serve --model "$model" --model-id bench --port "$ours_port" --batch 32 --queue 256 --no-embedder >/dev/null &
pids+=($!)
wait_up "http://127.0.0.1:$ours_port/health"
ours=$($py Benchmarks/serve_load.py "http://127.0.0.1:$ours_port" bench --concurrency "$conc" --requests-per-client "$per" --max-tokens "$maxtok" --json)
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

peer="null"
if $py -c 'import llama_cpp.server' 2>/dev/null; then
    peer_port=$(pick_port)
    $py -m llama_cpp.server --model "$model" --model_alias bench --host 127.0.0.1 --port "$peer_port" --n_threads 2 \
        --n_threads_batch 2 --n_ctx 2048 --verbose false >/dev/null 2>&1 &
    pids+=($!)
    wait_up "http://127.0.0.1:$peer_port/v1/models"
    peer=$($py Benchmarks/serve_load.py "http://127.0.0.1:$peer_port" bench --concurrency "$conc" --requests-per-client "$per" --max-tokens "$maxtok" --json)
else
    echo "llama-cpp-python[server] not in .venv-bench: no peer column" >&2
fi
$py - "$model" "$ours" "$peer" "$maxtok" <<'PY'
import json, os, sys
model, ours, peer, maxtok = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"model: {os.path.basename(model)}; {maxtok}-token greedy completions over loopback; machine: {cpu}, {os.cpu_count()} cores")
print("| clients | selfspec req/s | p50 ms | p99 ms | llama.cpp server req/s | p50 ms | p99 ms | req/s ratio |")
print("|---|---|---|---|---|---|---|---|")
for i, s in enumerate(ours):
    p = peer[i] if peer else None
    cols = [str(s["clients"]), str(s["requests_per_second"]), str(s["p50_ms"]), str(s["p99_ms"])]
    cols += [str(p["requests_per_second"]), str(p["p50_ms"]), str(p["p99_ms"]), f"{s['requests_per_second'] / p['requests_per_second']:.2f}x"] if p else ["-"] * 4
    print("| " + " | ".join(cols) + " |")
    for name, r in (("selfspec", s), ("llama.cpp", p)):
        if r and r["errors"]:
            print(f"  {name} at {r['clients']} clients: {r['errors']} errors, first: {r['first_error']}")
PY
