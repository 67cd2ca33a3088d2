"""How close llama.cpp (through llama-cpp-python, same GGUF) comes to the golden float32 references
that our own engine is tested against (Tests/Fixtures/golden/*_logits.json): the top-20 logits at the
last position, the mean NLL of the prompt and the 24 greedy tokens, with the tolerances our tests use.
usage: llamacpp_golden.py MODEL.gguf GOLDEN_logits.json [--f32-cache]
"""
import argparse, json
import numpy as np
from llama_cpp import Llama

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("golden")
ap.add_argument("--f32-cache", action="store_true", help="float32 K/V cache (llama.cpp's default is float16)")
a = ap.parse_args()
extra = {"type_k": 0, "type_v": 0} if a.f32_cache else {}
llm = Llama(model_path=a.model, n_ctx=512, n_threads=2, logits_all=True, verbose=False, **extra)
for n, c in enumerate(json.load(open(a.golden))["cases"]):
    ids = c["ids"]
    llm.reset()
    llm.eval(ids)
    scores = np.array(llm.scores[:len(ids)], dtype=np.float64)
    diff = max(abs(scores[-1][i] - g) for i, g in zip(c["last_top20_ids"], c["last_top20_logits"]))
    top = scores.max(1, keepdims=True)
    lse = (np.log(np.exp(scores - top).sum(1, keepdims=True)) + top)[:, 0]
    nll = -np.mean([scores[t, ids[t + 1]] - lse[t] for t in range(len(ids) - 1)])
    greedy = []
    for _ in range(24):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy.append(token)
        llm.eval([token])
    gold = float(c["mean_nll"])
    print(f"case {n}: top-20 logits max diff {diff:.4f} (tolerance 0.02); mean NLL {nll:.6f} vs {gold:.6f} "
          f"(diff {abs(nll - gold):.1e}, tolerance 1e-3); 24 greedy tokens identical: {greedy == c['greedy_24']}")
