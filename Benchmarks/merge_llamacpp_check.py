"""Optional check (not CI) that llama.cpp loads our files: the base model with our GGUF LoRA
(`--lora`) and the merged GGUFs `selfspec merge` writes, greedy on one chat prompt.

    .venv-bench/bin/python Benchmarks/merge_llamacpp_check.py MODEL.gguf ADAPTER.gguf MERGED.gguf [MERGED2.gguf ...]

Prints each completion; the base+LoRA text and the merged texts should agree (F16 exactly in
practice, Q8_0 usually).
"""
import sys
from llama_cpp import Llama

model, adapter, merged = sys.argv[1], sys.argv[2], sys.argv[3:]
messages = [{"role": "user", "content": "What does aspirin inhibit?"}]


def run(**kw):
    llm = Llama(verbose=False, n_ctx=256, n_threads=2, seed=0, **kw)
    out = llm.create_chat_completion(messages=messages, max_tokens=24, temperature=0)
    return out["choices"][0]["message"]["content"]


print("base        ", repr(run(model_path=model)))
reference = run(model_path=model, lora_path=adapter)
print("base + LoRA ", repr(reference))
for path in merged:
    text = run(model_path=path)
    print(f"{'same' if text == reference else 'DIFFERENT'}  {path}: {text!r}")
