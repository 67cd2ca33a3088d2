#!/usr/bin/env bash
# LLM inference benchmark: `selfspec bench llm` vs llama.cpp (llama-cpp-python, same GGUF,
# 2 threads) in one run: 512-token prompt processing, single-stream decode, and our batched
# generation (32 x 128) against llama.cpp's single-stream decode.
# usage: Benchmarks/llm.sh [MODEL.gguf] [selfspec bench llm options, e.g. --compact-weights]
# env: SELFSPEC_BIN: an already built binary (skips the build).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
shift || true
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
py=.venv-bench/bin/python
$py -c 'import llama_cpp' 2>/dev/null || .venv-bench/bin/pip install --quiet llama-cpp-python  # compiles llama.cpp
if [ -z "${SELFSPEC_BIN:-}" ]; then swift build -c release --product selfspec >&2; fi
bin=${SELFSPEC_BIN:-.build/release/selfspec}
peer=$($py Benchmarks/llamacpp_peer.py "$model" --json)  # prefill and decode: fastest of 3 runs on both sides
ours=$($bin bench llm --model "$model" --json "$@")
$py - "$model" "$peer" "$ours" <<'PY'
import json, sys, os
model, p, s = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"model: {os.path.basename(model)}; machine: {cpu}, {os.cpu_count()} cores; peer: {p['engine']}, 2 threads")
print("| measurement | llama.cpp tok/s | selfspec tok/s | ratio |")
print("|---|---|---|---|")
rows = [(f"prompt processing ({s['prefillTokens']} tokens)", p["prefill_tokens_per_second"], s["prefillTokensPerSecond"]),
        (f"decode, single stream ({s['decodeTokens']} tokens)", p["decode_tokens_per_second"], s["decodeTokensPerSecond"]),
        (f"batched {s['batchSequences']} x 128 (aggregate) vs llama.cpp single stream", p["decode_tokens_per_second"], s["batchTokensPerSecond"])]
for name, a, b in rows:
    print(f"| {name} | {a} | {b} | {b / a:.2f}x |")
print(f"CPU ms/token (all threads; use when the machine is shared): prefill llama.cpp {p['prefill_cpu_ms_per_token']}, "
      f"selfspec {s['prefillCPUMsPerToken']}; decode llama.cpp {p['decode_cpu_ms_per_token']}, selfspec {s['decodeCPUMsPerToken']}; "
      f"batched selfspec {s['batchCPUMsPerToken']}")
print(f"peak RSS: llama.cpp {p['peak_rss_mb']} MB, selfspec {s['peakRSSMB']:.0f} MB; "
      f"selfspec with {s['memorySequences']} x {s['memoryTokens']} positions in flight: {s['memoryPeakRSSMB']:.0f} MB")
PY
