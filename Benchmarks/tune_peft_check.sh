#!/usr/bin/env bash
# PEFT export check: train 4 AdamW steps on the golden example with the golden's closed-form init and
# hyper-parameters, export the PEFT adapter, load it with PyTorch + PEFT on the Hugging Face model and
# compare its loss with the golden trajectory (loss after 4 steps). q/k LoRA B is non-zero after
# training, so this checks the undoing of GGUF's q/k row permutation.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
case "$MODEL" in
  *qwen2.5-coder-1.5b*) GOLDEN_DEFAULT=Tests/Fixtures/golden/qwen25_coder_1p5b_lora_golden.json ;;
  *) GOLDEN_DEFAULT=Tests/Fixtures/golden/smollm2_lora_golden.json ;;
esac
GOLDEN=${2:-$GOLDEN_DEFAULT}
PY=.venv-bench/bin/python
BIN=${SELFSPEC:-.build/release/selfspec}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
echo '{"messages": [{"role": "user", "content": "Which enzyme does aspirin inhibit?"}, {"role": "assistant", "content": "Aspirin irreversibly acetylates cyclooxygenase (COX-1 and COX-2), blocking prostaglandin synthesis."}]}' > "$TMP/golden.jsonl"
"$BIN" tune --model "$MODEL" --data "$TMP/golden.jsonl" --out "$TMP/run" --steps 4 --batch-size 1 \
  --lr 1e-3 --min-lr 1e-3 --warmup 0 --weight-decay 0 --clip 0 --val-fraction 0 --initialization closed-form --quiet
echo "selfspec step losses: $(grep -o '"loss":[0-9.e-]*' "$TMP/run/log.jsonl" | cut -d: -f2 | tr '\n' ' ')"
"$PY" Benchmarks/tune_peft_check.py "$MODEL" "$TMP/run/peft" "$GOLDEN" 4
